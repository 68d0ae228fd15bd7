// Next.js's own in-memory 'use cache' handler (what `default` is without this file), traced:
// each instance has a cache of its own.
import { traceCacheHandler } from '@nextrace/next/cache-handler';
import { createDefaultCacheHandler } from 'next/dist/server/lib/cache-handlers/default.js';

const MAX_BYTES = 50 * 1024 * 1024; // Next.js's default cacheMaxMemorySize

export default traceCacheHandler(createDefaultCacheHandler(MAX_BYTES), {
  name: 'default',
  shared: false,
});
