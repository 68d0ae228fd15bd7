// Node's test runner: `npm test` here, or the repository's test command (tests/js/).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  cacheLayer,
  functionNames,
  incrementalOutcome,
  keyDigest,
  lookupOutcome,
  traceCacheHandler,
  traceIncrementalCacheHandler,
} from '../cache-handler.js';
import { FakeTracer, provider } from '../testing/fake-tracer.js';


/** A handler as Next.js's types describe it, over a Map; `failing` makes every call throw. */
function memoryHandler({ failing = false } = {}) {
  const entries = new Map();
  const calls = [];
  const fail = (what) => {
    if (failing) throw new Error(`${what}: store is down`);
  };
  return {
    entries,
    calls,
    async get(key, softTags) {
      calls.push(['get', key, softTags]);
      fail('get');
      return entries.get(key);
    },
    async set(key, pending) {
      calls.push(['set', key]);
      fail('set');
      entries.set(key, await pending);
    },
    async refreshTags() {
      calls.push(['refreshTags']);
    },
    async getExpiration(tags) {
      calls.push(['getExpiration', tags]);
      return 0;
    },
    async updateTags(tags, durations) {
      calls.push(['updateTags', tags, durations]);
      fail('updateTags');
    },
  };
}

const entry = (timestamp, { revalidate = 900, expire = 3600, tags = ['product-1'] } = {}) => ({
  value: 'a stream',
  tags,
  stale: 300,
  timestamp,
  revalidate,
  expire,
});

test('a layer per handler, and keys as digests', () => {
  assert.equal(cacheLayer('default'), 'use_cache');
  assert.equal(cacheLayer('remote'), 'use_cache_remote');
  assert.notEqual(keyDigest('a').digest, keyDigest('b').digest);
  assert.equal(keyDigest('a').functionId, undefined);
});

test("Next.js's key gives the function's id, and a digest that a new build keeps", () => {
  const before = keyDigest('["7f3a9c",[{"id":"1"}],["build-1"]]');
  const after = keyDigest('["7f3a9c",[{"id":"1"}],["build-2"]]');
  const other = keyDigest('["7f3a9c",[{"id":"2"}],["build-1"]]');
  assert.equal(before.functionId, '7f3a9c');
  assert.match(before.digest, /^[0-9a-f]{32}$/);
  assert.equal(before.digest, after.digest); // the same entry, in a new build
  assert.notEqual(before.digest, other.digest); // other arguments, another entry
  assert.ok(!before.digest.includes('7f3a9c'));
});

// A server reference manifest as `next build` (16.4) writes it, ids as they are per build.
function manifestOf(ids) {
  const dir = mkdtempSync(join(tmpdir(), 'nextrace-manifest-'));
  const path = join(dir, 'server-reference-manifest.json');
  const node = Object.fromEntries(
    ids.map((id, i) => [
      id,
      {
        workers: { 'app/products/[id]/page': { moduleId: 16344, async: false } },
        filename: 'lib/data.js',
        exportedName: `$$RSC_SERVER_CACHE_${i}`,
      },
    ]),
  );
  writeFileSync(path, JSON.stringify({ node, edge: {}, encryptionKey: 'k' }));
  return path;
}

test('a function keeps its name and its entries their digest from one build to the next', () => {
  const first = functionNames(manifestOf(['c04fad61', 'c0297245']));
  const second = functionNames(manifestOf(['40a1b2c3', '40d4e5f6'])); // new ids, same code
  assert.equal(first.get('c04fad61'), 'lib/data.js#$$RSC_SERVER_CACHE_0');
  const before = keyDigest('["c04fad61",["1"],["build-1"]]', first);
  const after = keyDigest('["40a1b2c3",["1"],["build-2"]]', second);
  assert.equal(before.functionId, 'lib/data.js#$$RSC_SERVER_CACHE_0');
  assert.deepEqual(after, before);
  assert.notEqual(keyDigest('["40d4e5f6",["1"],["build-2"]]', second).digest, before.digest);
  assert.equal(functionNames('/nonexistent/manifest.json').size, 0); // never throws
});

test('a handler reads the manifest it is given, once, at its first lookup', async () => {
  const tracer = new FakeTracer();
  const manifest = manifestOf(['c04fad61']);
  const traced = traceCacheHandler(memoryHandler(), { tracerProvider: provider(tracer), manifest });
  await traced.get('["c04fad61",["1"],["b"]]', []);
  writeFileSync(manifest, '{}'); // read already: not again
  await traced.get('["c04fad61",["2"],["b"]]', []);
  assert.deepEqual(
    tracer.spans.map((s) => s.attributes['nextrace.cache.function']),
    ['lib/data.js#$$RSC_SERVER_CACHE_0', 'lib/data.js#$$RSC_SERVER_CACHE_0'],
  );
});

test('what a lookup found is read as Next.js reads the entry', () => {
  const now = 1_000_000;
  assert.deepEqual(lookupOutcome(undefined, now), { result: 'miss', reason: undefined, ageMs: undefined });
  assert.deepEqual(lookupOutcome(entry(now - 1000), now), { result: 'hit', reason: undefined, ageMs: 1000 });
  assert.deepEqual(lookupOutcome(entry(now - 901_000), now), { result: 'stale', reason: 'expired', ageMs: 901_000 });
  assert.deepEqual(lookupOutcome(entry(now - 3_601_000), now), { result: 'miss', reason: 'expired', ageMs: 3_601_000 });
  assert.deepEqual(lookupOutcome(entry(now - 5, { revalidate: -1 }), now), {
    result: 'stale',
    reason: 'tag_invalidated',
    ageMs: 5,
  });
});

test('a fill then a hit: two spans with the layer, the key digest, the life and the tags', async () => {
  const tracer = new FakeTracer();
  const handler = memoryHandler();
  let now = 50_000;
  const traced = traceCacheHandler(handler, { name: 'remote', tracerProvider: provider(tracer), now: () => now });
  assert.equal(await traced.get('key-1', ['_N_T_/layout']), undefined);
  await traced.set('key-1', Promise.resolve(entry(now)));
  now += 2500;
  const found = await traced.get('key-1', ['_N_T_/layout']);
  assert.equal(found.value, 'a stream'); // the handler's entry, unchanged
  assert.deepEqual(
    handler.calls.map((c) => c[0]),
    ['get', 'set', 'get'],
  );
  const [miss, fill, hit] = tracer.spans;
  assert.deepEqual(
    tracer.spans.map((s) => [s.name, s.ended]),
    [
      ['cache get use_cache_remote', true],
      ['cache set use_cache_remote', true],
      ['cache get use_cache_remote', true],
    ],
  );
  assert.equal(miss.attributes['cache.result'], 'miss');
  assert.equal(miss.attributes['cache.hit'], false);
  assert.equal(miss.attributes['cache.key'], keyDigest('key-1').digest);
  assert.equal(miss.attributes['nextrace.cache.kind'], 'use_cache_remote');
  assert.equal(miss.attributes['nextrace.cache.shared'], true);
  // The collector writes the lookup's row with its request: no span carries cache.layer.
  assert.equal(miss.attributes['cache.layer'], undefined);
  assert.equal(miss.attributes['nextrace.phase'], 'cache');
  assert.equal(fill.attributes['nextrace.cache.operation'], 'set');
  assert.equal(fill.attributes['nextrace.cache.handler'], 'remote');
  assert.equal(fill.attributes['nextrace.cache.life.expire_s'], 3600);
  assert.deepEqual(fill.attributes['cache.tags'], ['product-1']);
  assert.equal(hit.attributes['cache.result'], 'hit');
  assert.equal(hit.attributes['cache.hit'], true);
  assert.equal(hit.attributes['cache.entry.age_ms'], 2500);
  assert.equal(hit.attributes['nextrace.cache.life.revalidate_s'], 900);
  assert.ok(!JSON.stringify(tracer.spans).includes('key-1'), 'no raw key is recorded');
});

test('a handler error reaches Next.js unchanged, and its span says so', async () => {
  const tracer = new FakeTracer();
  const traced = traceCacheHandler(memoryHandler({ failing: true }), { tracerProvider: provider(tracer) });
  await assert.rejects(traced.get('k', []), /get: store is down/);
  await assert.rejects(traced.set('k', Promise.resolve(entry(0))), /set: store is down/);
  await assert.rejects(traced.updateTags(['product-1']), /updateTags: store is down/);
  assert.deepEqual(
    tracer.spans.map((s) => [s.status?.code, s.ended]),
    [
      [2, true],
      [2, true],
      [2, true],
    ],
  );
  assert.equal(tracer.spans[2].attributes['nextrace.revalidate.outcome'], 'error');
});

test('updateTags is traced as a revalidation of its tags', async () => {
  const tracer = new FakeTracer();
  const handler = memoryHandler();
  const traced = traceCacheHandler(handler, { tracerProvider: provider(tracer) });
  await traced.updateTags(['product-1', 'products'], { expire: 0 });
  await traced.refreshTags();
  assert.equal(await traced.getExpiration(['product-1']), 0);
  assert.deepEqual(handler.calls, [
    ['updateTags', ['product-1', 'products'], { expire: 0 }],
    ['refreshTags'],
    ['getExpiration', ['product-1']],
  ]);
  const [span] = tracer.spans; // refreshTags and getExpiration are not traced
  assert.equal(tracer.spans.length, 1);
  assert.equal(span.attributes['nextrace.phase'], 'revalidate');
  assert.equal(span.attributes['nextrace.revalidate.target'], 'product-1,products');
  assert.equal(span.attributes['nextrace.revalidate.profile'], 'expire');
  assert.equal(span.attributes['nextrace.revalidate.outcome'], 'ok');
});

test('a broken tracer never breaks the cache', async () => {
  const handler = memoryHandler();
  const traced = traceCacheHandler(handler, { tracerProvider: provider(new FakeTracer({ failing: true })) });
  await traced.set('k', Promise.resolve(entry(Date.now())));
  assert.equal((await traced.get('k', [])).value, 'a stream');
  await traced.updateTags(['t']);
  assert.ok(traced.errors >= 3);
});

test("Next.js's default handler is one cache per instance unless the app says otherwise", async () => {
  for (const [options, shared] of [
    [{}, false],
    [{ name: 'default', shared: true }, true],
    [{ name: 'products' }, true],
  ]) {
    const tracer = new FakeTracer();
    const traced = traceCacheHandler(memoryHandler(), { ...options, tracerProvider: provider(tracer) });
    await traced.get('k', []);
    assert.equal(tracer.spans[0].attributes['nextrace.cache.shared'], shared);
  }
});

test("a stale tag's mark (revalidate -1) is the lookup's reason, not the entry's life", async () => {
  const tracer = new FakeTracer();
  const handler = { ...memoryHandler(), get: async () => entry(1000, { revalidate: -1 }) };
  const traced = traceCacheHandler(handler, { tracerProvider: provider(tracer), now: () => 1500 });
  await traced.get('k', []);
  const [lookup] = tracer.spans;
  assert.equal(lookup.attributes['cache.result'], 'stale');
  assert.equal(lookup.attributes['cache.miss_reason'], 'tag_invalidated');
  assert.equal(lookup.attributes['nextrace.cache.life.revalidate_s'], undefined);
  assert.equal(lookup.attributes['nextrace.cache.life.expire_s'], 3600);
});


/** An incremental cache handler class as Next.js's types describe it, over a Map. */
class MemoryIncrementalHandler {
  static made = [];

  constructor(ctx) {
    this.ctx = ctx;
    this.entries = new Map();
    this.revalidated = [];
    MemoryIncrementalHandler.made.push(this);
  }

  async get(key) {
    if (key === 'broken') throw new Error('store is down');
    return this.entries.get(key) ?? null;
  }

  async set(key, data) {
    this.entries.set(key, { lastModified: this.clock(), value: data });
  }

  async revalidateTag(tags, durations) {
    this.revalidated.push([tags, durations]);
  }

  resetRequestCache() {}
}

test('the incremental cache: a miss, a fill, a hit and a stale entry, with their kind and tags', async () => {
  const tracer = new FakeTracer();
  let now = 10_000;
  const Traced = traceIncrementalCacheHandler(MemoryIncrementalHandler, {
    tracerProvider: provider(tracer),
    now: () => now,
  });
  const handler = new Traced({ revalidatedTags: [] }); // as Next.js makes it
  handler.clock = () => now;
  assert.ok(handler instanceof MemoryIncrementalHandler);
  const ctx = { kind: 'FETCH', revalidate: 60, tags: ['product-1'], softTags: [] };
  assert.equal(await handler.get('fetch-key', ctx), null);
  // As Next.js 16.4 fills a fetch's entry: the context says neither its kind nor its life.
  await handler.set('fetch-key', { kind: 'FETCH', data: {}, revalidate: 60 }, {
    fetchCache: true,
    tags: ['product-1'],
  });
  now += 2_000;
  const found = await handler.get('fetch-key', ctx);
  assert.equal(found.lastModified, 10_000); // the handler's entry, unchanged
  now += 60_000;
  await handler.get('fetch-key', ctx);
  const [miss, fill, hit, stale] = tracer.spans;
  assert.deepEqual(
    tracer.spans.map((s) => [s.name, s.attributes['cache.result'], s.ended]),
    [
      ['cache get incremental', 'miss', true],
      ['cache set incremental', undefined, true],
      ['cache get incremental', 'hit', true],
      ['cache get incremental', 'stale', true],
    ],
  );
  for (const span of tracer.spans) {
    assert.equal(span.attributes['nextrace.cache.kind'], 'incremental');
    assert.equal(span.attributes['nextrace.cache.entry_kind'], 'FETCH');
    assert.equal(span.attributes['nextrace.cache.shared'], true);
    assert.deepEqual(span.attributes['cache.tags'], ['product-1']);
    assert.equal(span.attributes['cache.key'], keyDigest('fetch-key').digest);
  }
  assert.equal(miss.attributes['cache.hit'], false);
  assert.equal(fill.attributes['nextrace.cache.life.revalidate_s'], 60);
  assert.equal(hit.attributes['cache.entry.age_ms'], 2_000);
  assert.equal(stale.attributes['cache.miss_reason'], 'expired');
});

test('what an incremental lookup found is read as the IncrementalCache reads it', () => {
  const entry = { lastModified: 1_000, value: { kind: 'APP_PAGE' }, cacheControl: { revalidate: 5 } };
  assert.equal(incrementalOutcome(null, { kind: 'APP_PAGE' }, 2_000).result, 'miss');
  assert.equal(incrementalOutcome(entry, { kind: 'APP_PAGE' }, 3_000).result, 'hit');
  assert.equal(incrementalOutcome(entry, { kind: 'APP_PAGE' }, 7_000).result, 'stale');
  // revalidate: false (never) is a hit, however old
  const forever = { lastModified: 0, value: { kind: 'FETCH', revalidate: false } };
  assert.equal(incrementalOutcome(forever, { kind: 'FETCH' }, 1e12).result, 'hit');
});

test("the incremental handler's revalidateTag is traced, and its errors reach Next.js", async () => {
  const tracer = new FakeTracer();
  const Traced = traceIncrementalCacheHandler(MemoryIncrementalHandler, {
    tracerProvider: provider(tracer),
  });
  const handler = new Traced({});
  await handler.revalidateTag(['product-1', 'products'], { expire: 0 });
  assert.deepEqual(handler.revalidated, [[['product-1', 'products'], { expire: 0 }]]);
  const [revalidation] = tracer.spans;
  assert.equal(revalidation.attributes['nextrace.revalidate.target'], 'product-1,products');
  assert.equal(revalidation.attributes['nextrace.revalidate.call'], 'revalidateTag');
  assert.equal(revalidation.attributes['nextrace.revalidate.outcome'], 'ok');
  await assert.rejects(handler.get('broken', { kind: 'FETCH' }), /store is down/);
  assert.equal(tracer.spans[1].status.code, 2);
  const Broken = traceIncrementalCacheHandler(MemoryIncrementalHandler, {
    tracerProvider: provider(new FakeTracer({ failing: true })),
  });
  const unharmed = new Broken({});
  unharmed.clock = () => 1;
  await unharmed.set('k', { kind: 'FETCH' }, { kind: 'FETCH' });
  assert.equal((await unharmed.get('k', { kind: 'FETCH' })).lastModified, 1);
  assert.ok(Broken.tracingErrors > 0);
});
