// A 'use cache' handler on Redis, after the interface in
// next/dist/server/lib/cache-handlers/types.d.ts and the behaviour of Next.js's default one:
//
// - an entry is one Redis string (its metadata and its value, base64), living `expire` seconds;
// - a tag's revalidations are a field of one Redis hash: `{ stale, expired }`, ms since the epoch;
// - `get` returns nothing for an entry whose tag expired after it was made, and marks one whose
//   tag went stale after it was made with `revalidate: -1`, so Next.js serves it once more and
//   refreshes it in the background. An entry past its `revalidate` is returned as it is: Next.js
//   serves it stale and refreshes it (the default handler drops it instead).
import { createClient } from 'redis';

const PREFIX = 'nextrace-example:use-cache:';
const TAGS = `${PREFIX}tags`;

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function streamOf(bytes) {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(new Uint8Array(bytes));
      controller.close();
    },
  });
}

export function createRedisCacheHandler(url) {
  const client = createClient({ url });
  client.on('error', (error) => console.error('redis cache handler:', error.message));
  let connected;
  const redis = () => {
    connected ??= client.connect().then(() => client);
    return connected;
  };
  const pendingSets = new Map(); // a get waits for a set of its key still under way

  async function tagStates(tags) {
    if (!tags.length) return [];
    const states = await (await redis()).hmGet(TAGS, tags);
    return states.map((state) => (state ? JSON.parse(state) : {}));
  }

  return {
    async get(cacheKey) {
      await pendingSets.get(cacheKey);
      const stored = await (await redis()).get(PREFIX + cacheKey);
      if (!stored) return undefined;
      const { value, ...entry } = JSON.parse(stored);
      const now = Date.now();
      if (now > entry.timestamp + entry.expire * 1000) return undefined;
      let { revalidate } = entry;
      for (const { stale = 0, expired = 0 } of await tagStates(entry.tags)) {
        if (expired > entry.timestamp && expired <= now) return undefined;
        if (stale > entry.timestamp) revalidate = -1;
      }
      return { ...entry, revalidate, value: streamOf(Buffer.from(value, 'base64')) };
    },

    async set(cacheKey, pendingEntry) {
      let done;
      pendingSets.set(cacheKey, new Promise((resolve) => (done = resolve)));
      try {
        const { value, ...entry } = await pendingEntry;
        const bytes = await readAll(value);
        if (entry.expire === 0) return; // a dynamic entry is never served again
        const stored = JSON.stringify({ ...entry, value: bytes.toString('base64') });
        await (await redis()).set(PREFIX + cacheKey, stored, { EX: Math.ceil(entry.expire) });
      } finally {
        pendingSets.delete(cacheKey);
        done();
      }
    },

    async refreshTags() {
      // Every get reads the tags' states from Redis: nothing to refresh.
    },

    async getExpiration(tags) {
      const expirations = (await tagStates(tags)).map(({ expired = 0 }) => expired);
      return Math.max(0, ...expirations);
    },

    async updateTags(tags, durations) {
      const now = Date.now();
      const states = await tagStates(tags);
      const updates = {};
      tags.forEach((tag, i) => {
        const state = { ...states[i] };
        if (durations) {
          state.stale = now;
          if (durations.expire !== undefined) state.expired = now + durations.expire * 1000;
        } else {
          state.expired = now;
        }
        updates[tag] = JSON.stringify(state);
      });
      if (tags.length) await (await redis()).hSet(TAGS, updates);
    },
  };
}
