import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

/** @type {import('next').NextConfig} */
const nextConfig = {
  // The repository's root: @nextrace/next is installed from ../../js/next, a link out of the app
  // that Turbopack resolves only inside its root.
  turbopack: { root: here('../..') },
  cacheComponents: true,
  // The 'use cache' handlers, each wrapped by @nextrace/next/cache-handler: `default` is
  // Next.js's own in-memory handler (one cache per instance), `remote` a Redis one that every
  // instance shares ('use cache: remote').
  cacheHandlers: {
    default: here('./cache-handlers/default.mjs'),
    remote: here('./cache-handlers/remote.mjs'),
  },
  // The incremental cache (ISR pages, route handlers, the fetch data cache), on Redis too.
  cacheHandler: here('./cache-handlers/incremental.mjs'),
  cacheMaxMemorySize: 0, // every lookup reaches the shared handler, none stops in memory
  cacheLife: {
    // Short, so that a test can see an entry go stale and expire.
    product: { stale: 30, revalidate: 30, expire: 3600 },
  },
};

export default nextConfig;
