// The incremental cache (ISR pages, route handlers, the fetch data cache) on Redis, shared by
// every instance, traced.
import { traceIncrementalCacheHandler } from '@nextrace/next/cache-handler';

import RedisIncrementalCacheHandler from '../lib/redis-incremental-cache-handler.mjs';

export default traceIncrementalCacheHandler(RedisIncrementalCacheHandler);
