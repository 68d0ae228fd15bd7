// Node's test runner: `npm test` here, or the repository's test command (tests/js/).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import { test } from 'node:test';

import { NextraceSpanProcessor, currentBuildId, prefetchKind } from '../index.js';

class FakeSpan {
  constructor(attributes, { failing = false } = {}) {
    this.attributes = { ...attributes };
    this.recording = true;
    this.failing = failing;
  }

  setAttribute(key, value) {
    if (this.failing) throw new Error('span is broken');
    this.attributes[key] = value;
  }

  isRecording() {
    return this.recording;
  }
}

const REQUEST_SPAN = { 'next.span_type': 'BaseServer.handleRequest' };

/** A server that, like Next.js, starts its request span, then sets x-nextjs-cache. */
async function serve(handle) {
  const server = createServer((req, res) => handle(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** A server whose every request starts one request span, like Next.js; the spans it made. */
async function serveRequestSpans(t, processor) {
  const spans = [];
  const server = await serve((req, res) => {
    const span = new FakeSpan(REQUEST_SPAN);
    processor.onStart(span);
    spans.push(span);
    res.end('ok');
  });
  t.after(() => server.close());
  return { server, spans };
}

async function get(server, headers) {
  const { port } = server.address();
  const req = request({ host: '127.0.0.1', port, path: '/products/1', headers });
  req.end();
  const [res] = await once(req, 'response');
  res.resume();
  await once(res, 'end');
  return res;
}

test('the prefetch kind comes from the request headers', () => {
  assert.equal(prefetchKind({ 'next-router-segment-prefetch': '/_tree', 'next-router-prefetch': '1' }), 'segment');
  assert.equal(prefetchKind({ 'next-router-prefetch': '1' }), 'auto');
  assert.equal(prefetchKind({ purpose: 'prefetch' }), 'auto');
  assert.equal(prefetchKind({ rsc: '1' }), 'none');
});

test('request spans get the prefetch kind and the full route cache answer', async (t) => {
  const processor = new NextraceSpanProcessor();
  t.after(() => processor.shutdown());
  const spans = [];
  const server = await serve((req, res) => {
    const early = new FakeSpan(REQUEST_SPAN);
    processor.onStart(early); // before the header: updated when it is set
    res.setHeader('x-nextjs-cache', 'HIT');
    const late = new FakeSpan(REQUEST_SPAN);
    processor.onStart(late); // after the header: gets it at once
    const other = new FakeSpan({ 'next.span_type': 'AppRender.fetch' });
    processor.onStart(other);
    spans.push({ early, late, other });
    res.end('ok');
  });
  t.after(() => server.close());

  await get(server, { 'next-router-prefetch': '1', rsc: '1' });
  await get(server, {});
  const [prefetch, page] = spans;
  assert.equal(prefetch.early.attributes['next.prefetch'], 'auto');
  assert.deepEqual(prefetch.early.attributes['http.response.header.x-nextjs-cache'], ['HIT']);
  assert.deepEqual(prefetch.late.attributes['http.response.header.x-nextjs-cache'], ['HIT']);
  assert.equal(page.early.attributes['next.prefetch'], 'none');
  assert.equal(prefetch.other.attributes['next.prefetch'], undefined); // not a request span
  assert.equal(processor.errors, 0);
});

test('a failing hook is counted and never reaches the request', async (t) => {
  const processor = new NextraceSpanProcessor();
  t.after(() => processor.shutdown());
  const warnings = [];
  t.mock.method(console, 'warn', (message) => warnings.push(message));
  const server = await serve((req, res) => {
    processor.onStart(new FakeSpan(REQUEST_SPAN, { failing: true }));
    res.setHeader('x-nextjs-cache', 'MISS');
    res.end('still served');
  });
  t.after(() => server.close());

  const res = await get(server, {});
  assert.equal(res.statusCode, 200);
  assert.equal(processor.errors, 1);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /@nextrace\/next: a tracing hook failed/);
});

test('outside a request, and after shutdown, nothing is recorded', async (t) => {
  const processor = new NextraceSpanProcessor();
  const outside = new FakeSpan(REQUEST_SPAN);
  processor.onStart(outside);
  assert.equal(outside.attributes['next.prefetch'], undefined);

  await processor.shutdown();
  const { server, spans } = await serveRequestSpans(t, processor);
  await get(server, { 'next-router-prefetch': '1' });
  assert.equal(spans[0].attributes['next.prefetch'], undefined);
});

test('request spans carry the build that served them', async (t) => {
  const processor = new NextraceSpanProcessor({ buildId: 'build-7' });
  t.after(() => processor.shutdown());
  const { server, spans } = await serveRequestSpans(t, processor);
  await get(server, {});
  assert.equal(spans[0].attributes['nextrace.build_id'], 'build-7');
});

test('a request whose start the processor did not see still names its build', async (t) => {
  // The first request after `next start` can arrive while instrumentation registers: the
  // processor misses its start, but the build serving it is the process's.
  const processor = new NextraceSpanProcessor({ buildId: 'build-7' });
  t.after(() => processor.shutdown());
  const unseen = new FakeSpan(REQUEST_SPAN);
  processor.onStart(unseen);
  assert.equal(unseen.attributes['nextrace.build_id'], 'build-7');
  assert.equal(unseen.attributes['next.prefetch'], undefined); // only its start says that
});

test('the build id comes from NEXT_DEPLOYMENT_ID, else from .next/BUILD_ID', async (t) => {
  const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const app = await mkdtemp(join(tmpdir(), 'nextrace-next-'));
  t.after(() => rm(app, { recursive: true, force: true }));
  assert.equal(currentBuildId({}, app), ''); // no build yet: nothing recorded
  await mkdir(join(app, '.next'));
  await writeFile(join(app, '.next', 'BUILD_ID'), 'Xk3h9\n');
  assert.equal(currentBuildId({}, app), 'Xk3h9');
  assert.equal(currentBuildId({ NEXT_DEPLOYMENT_ID: 'dpl_1' }, app), 'dpl_1');
});

const URL_1 = 'http://upstream/api/product/1';

/** A fetch that, like Next.js's patched one, starts its AppRender.fetch span, then fetches. */
function nextLikeFetch(processor, spans) {
  return async (input) => {
    const span = new FakeSpan({ 'next.span_type': 'AppRender.fetch', 'http.url': String(input) });
    processor.onStart(span);
    spans.push(span);
    return 'response';
  };
}

test("a fetch's tags reach Next's fetch span when the wrapper is outside Next's fetch", async (t) => {
  const spans = [];
  const global = {};
  const processor = new NextraceSpanProcessor({ global: {} });
  global.fetch = nextLikeFetch(processor, spans);
  processor._wrapFetch(global); // installed after Next's patch: the outer one
  t.after(() => processor.shutdown());
  assert.equal(await global.fetch(URL_1, { next: { tags: ['product-1', 'products'] } }), 'response');
  assert.equal(await global.fetch(URL_1, {}), 'response');
  assert.deepEqual(spans[0].attributes['next.fetch.tags'], ['product-1', 'products']);
  assert.equal(spans[1].attributes['next.fetch.tags'], undefined);
});

test("a fetch's tags reach Next's fetch span when Next's fetch calls the wrapper", async (t) => {
  const calls = [];
  const global = { fetch: async (input, init) => calls.push([input, init]) };
  const processor = new NextraceSpanProcessor({ global });
  t.after(() => processor.shutdown());
  const spans = [];
  const server = await serve(async (req, res) => {
    // Next's fetch starts its span, misses its cache, and calls the fetch it wrapped: ours.
    const span = new FakeSpan({ 'next.span_type': 'AppRender.fetch', 'http.url': URL_1 });
    processor.onStart(span);
    spans.push(span);
    await global.fetch(URL_1, { next: { tags: ['product-1'], fetchType: 'origin' } });
    res.end('ok');
  });
  t.after(() => server.close());
  await get(server, {});
  assert.deepEqual(spans[0].attributes['next.fetch.tags'], ['product-1']);
  assert.equal(calls.length, 1); // the real fetch ran, with what it was given
  assert.deepEqual(calls[0][1].next.tags, ['product-1']);
});

test('a fetch whose options cannot be read still runs, and the failure is counted', async (t) => {
  t.mock.method(console, 'warn', () => {});
  const original = async () => 'response';
  const global = { fetch: original };
  const processor = new NextraceSpanProcessor({ global });
  assert.notEqual(global.fetch, original); // wrapped
  const broken = {
    get next() {
      throw new Error('a getter that throws');
    },
  };
  assert.equal(await global.fetch(URL_1, broken), 'response');
  assert.equal(processor.errors, 1);
  await processor.shutdown();
  assert.equal(global.fetch, original); // the original is back
});

test('request spans get the size of the body written while they are open', async (t) => {
  const processor = new NextraceSpanProcessor({ fetchTags: false });
  t.after(() => processor.shutdown());
  const spans = [];
  const server = await serve((req, res) => {
    const span = new FakeSpan(REQUEST_SPAN);
    processor.onStart(span);
    spans.push(span);
    res.write('héllo '); // 7 bytes in UTF-8
    res.write(Buffer.from([1, 2, 3]));
    res.end('end');
  });
  t.after(() => server.close());
  const res = await get(server, {});
  assert.equal(res.statusCode, 200);
  assert.equal(spans[0].attributes['http.response.body.size'], 13);
});
