// The 'use cache: remote' handler: entries and tag revalidations in Redis (REDIS_URL), shared by
// every instance of the app, traced.
import { traceCacheHandler } from '@nextrace/next/cache-handler';

import { createRedisCacheHandler } from '../lib/redis-cache-handler.mjs';

export default traceCacheHandler(
  createRedisCacheHandler(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
  { name: 'remote', shared: true },
);
