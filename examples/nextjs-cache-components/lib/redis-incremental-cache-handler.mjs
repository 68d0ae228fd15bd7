// An incremental cache handler on Redis (next.config's `cacheHandler`: ISR pages, route
// handlers and the fetch data cache), shared by every instance of the app, after the interface
// in next/dist/server/lib/incremental-cache/index.d.ts:
//
// - an entry is one Redis string: when it was stored, its tags and its value (v8-serialized:
//   page entries hold Buffers and Maps), living as long as its `expire` allows, a day at most;
// - a page's or a route's entry belongs to its build (its key holds the build id), as Next.js's
//   own cache keeps them in the build's folder: a new build must not serve the last one's
//   pages, whose assets are gone. A fetch's entry is the build's data, kept across builds;
// - a tag's revalidations are a field of one Redis hash, ms since the epoch; `get` returns
//   nothing for an entry one of whose tags (its own, or the lookup's soft tags) was revalidated
//   after it was stored. Next.js serves an entry past its revalidate time stale and refreshes it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';

import { createClient } from 'redis';

const PREFIX = 'nextrace-example:incremental:';
const TAGS = `${PREFIX}tags`;
const DAY_S = 24 * 60 * 60;

let connected;
function redis() {
  if (!connected) {
    const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    client.on('error', (error) => console.error('redis incremental cache:', error.message));
    connected = client.connect().then(() => client);
  }
  return connected;
}

function buildId(serverDistDir) {
  try {
    return readFileSync(join(serverDistDir ?? '.next/server', '..', 'BUILD_ID'), 'utf8').trim();
  } catch {
    return ''; // during the build, before it has an id
  }
}

export default class RedisIncrementalCacheHandler {
  constructor(options) {
    this.build = buildId(options?.serverDistDir);
  }

  key(cacheKey, kind) {
    return kind === 'FETCH' ? `${PREFIX}fetch:${cacheKey}` : `${PREFIX}${this.build}:${cacheKey}`;
  }

  async get(cacheKey, ctx) {
    const client = await redis();
    const stored = await client.get(this.key(cacheKey, ctx?.kind));
    if (!stored) return null;
    const { lastModified, tags, value } = deserialize(Buffer.from(stored, 'base64'));
    const allTags = [...tags, ...(ctx?.tags ?? []), ...(ctx?.softTags ?? [])];
    if (allTags.length) {
      const revalidated = await client.hmGet(TAGS, allTags);
      if (revalidated.some((at) => at && Number(at) > lastModified)) return null;
    }
    return { lastModified, value };
  }

  async set(cacheKey, data, ctx) {
    if (!data) return;
    const tags = ctx?.tags ?? [];
    const stored = serialize({ lastModified: Date.now(), tags, value: data }).toString('base64');
    const expire = ctx?.cacheControl?.expire;
    const ttl = typeof expire === 'number' && expire > 0 ? Math.min(expire, DAY_S) : DAY_S;
    await (await redis()).set(this.key(cacheKey, data.kind), stored, { EX: ttl });
  }

  async revalidateTag(tags) {
    const now = String(Date.now());
    const list = Array.isArray(tags) ? tags : [tags];
    if (list.length) await (await redis()).hSet(TAGS, Object.fromEntries(list.map((t) => [t, now])));
  }

  resetRequestCache() {}
}
