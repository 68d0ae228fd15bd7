import { fileURLToPath } from 'node:url';

/** @type {import('next').NextConfig} */
const nextConfig = {
  // The repository's root: @nextrace/next is installed from ../../js/next, a link out of the app
  // that Turbopack resolves only inside its root.
  turbopack: { root: fileURLToPath(new URL('../..', import.meta.url)) },
};

export default nextConfig;
