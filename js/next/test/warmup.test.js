// Node's test runner, on the real OpenTelemetry SDK (the package's devDependencies).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { test } from 'node:test';

import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

import { NextraceSpanProcessor } from '../index.js';
import { isWarmupRequest, warmupPending, warmupQueue } from '../warmup.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

let queues = 0;
function setUp(options = {}) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('app');
  queues += 1;
  const queue = warmupQueue({ name: `test-${queues}`, buildId: 'b1', tracerProvider: provider, ...options });
  const warmups = () => exporter.getFinishedSpans().filter((s) => s.name.startsWith('warmup '));
  return { tracer, queue, warmups };
}

/** A clock the test moves: time passes only when every timer due is fired, in order. */
function testClock() {
  let now = 0;
  const timers = [];
  return {
    now: () => now,
    setTimeout(callback, ms) {
      timers.push({ at: now + ms, callback });
    },
    /** Let the running jobs settle, then fire the next timer due; until no timer is left. */
    async runAll() {
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve));
        if (!timers.length) return;
        timers.sort((a, b) => a.at - b.at);
        const { at, callback } = timers.shift();
        now = Math.max(now, at);
        callback();
      }
    },
  };
}

/** Submit from inside a span, as a proxy or webhook does; the span's context. */
function submitFrom(tracer, submit) {
  const span = tracer.startSpan('POST /api/revalidate');
  const outcome = context.with(trace.setSpan(context.active(), span), submit);
  span.end();
  return { outcome, link: span.spanContext() };
}

test('a warm-up is its own trace, linked to the request that queued it, and its request carries the trace', async (t) => {
  const { tracer, queue, warmups } = setUp();
  const received = [];
  const app = createServer((req, res) => {
    received.push({ traceparent: req.headers.traceparent, warmup: isWarmupRequest(req.headers) });
    res.end('ok');
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.after(() => app.close());
  const url = `http://127.0.0.1:${app.address().port}/api/warm?id=2`;

  const { outcome, link } = submitFrom(tracer, () =>
    queue.submit('data:upstream/api/product/2', ({ headers }) => fetch(url, { headers }), { trigger: 'webhook' }),
  );
  assert.equal(outcome, 'queued');
  assert.equal(warmupPending('data:upstream/api/product/2'), true);
  await queue.drain();
  assert.equal(warmupPending('data:upstream/api/product/2'), false);

  const [span] = warmups();
  assert.equal(span.name, 'warmup webhook');
  assert.equal(span.instrumentationScope.name, '@nextrace/next');
  assert.notEqual(span.spanContext().traceId, link.traceId, 'a trace of its own');
  assert.equal(span.parentSpanContext, undefined);
  assert.deepEqual(span.links.map((l) => l.context.spanId), [link.spanId]);
  assert.equal(span.attributes['nextrace.phase'], 'warmup');
  assert.equal(span.attributes['nextrace.warmup.target'], 'data:upstream/api/product/2');
  assert.equal(span.attributes['nextrace.warmup.outcome'], 'ok');
  assert.equal(span.attributes['nextrace.build_id'], 'b1');
  assert.ok(span.attributes['nextrace.warmup.queue_wait_ms'] >= 0);
  assert.equal(span.attributes['nextrace.warmup.rate_per_s'], queue.ratePerS);
  // The app saw the warm-up's trace and knew the request for a warm-up.
  assert.deepEqual(received, [
    { traceparent: `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`, warmup: true },
  ]);
});

test('a flood is deduplicated, bounded and rate-limited, and every job is accounted for', async () => {
  const clock = testClock();
  const { tracer, queue, warmups } = setUp({ ratePerS: 20, maxQueued: 3, concurrency: 1, clock });
  const started = [];
  const job = async () => {
    started.push(clock.now());
  };
  const outcomes = [];
  for (const id of [1, 1, 2, 3, 4, 5]) {
    outcomes.push(submitFrom(tracer, () => queue.submit(`route:/products/${id}`, job)).outcome);
  }
  // The first starts at once (no longer waiting), so 1 again is queued, then 2 and 3 fill it.
  assert.deepEqual(outcomes, ['queued', 'queued', 'queued', 'queued', 'queue_full', 'queue_full']);
  assert.equal(
    submitFrom(tracer, () => queue.submit('route:/products/3', job)).outcome,
    'deduplicated',
  );
  await clock.runAll();
  await queue.drain();
  // At most 20 starts per second: one every 50 ms, the first at once.
  assert.deepEqual(started, [0, 50, 100, 150]);
  assert.deepEqual(queue.counts, { ok: 4, error: 0, deduplicated: 1, queue_full: 2 });
  const byOutcome = {};
  for (const span of warmups()) {
    const outcome = span.attributes['nextrace.warmup.outcome'];
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
  }
  assert.deepEqual(byOutcome, { ok: 4, deduplicated: 1, queue_full: 2 });
});

test('a failing job is recorded as an error and never thrown into the app', async () => {
  const { tracer, queue, warmups } = setUp();
  submitFrom(tracer, () =>
    queue.submit('route:/broken', async () => {
      throw new Error('upstream down');
    }),
  );
  await queue.drain();
  const [span] = warmups();
  assert.equal(span.attributes['nextrace.warmup.outcome'], 'error');
  assert.equal(span.status.code, 2);
  assert.equal(span.events[0].name, 'exception');
});

test('the same queue is shared by every copy of the module in a process, by name', () => {
  assert.equal(warmupQueue({ name: 'shared' }), warmupQueue({ name: 'shared' }));
});

test('a broken tracer costs the trace, not the warm-up', async () => {
  const broken = {
    startSpan() {
      throw new Error('tracer is broken');
    },
  };
  const queue = warmupQueue({ name: 'broken', tracerProvider: { getTracer: () => broken } });
  let ran = false;
  assert.equal(
    queue.submit('route:/', async () => {
      ran = true;
    }),
    'queued',
  );
  await queue.drain();
  assert.equal(ran, true);
  assert.equal(queue.errors, 1);
  assert.deepEqual(queue.counts, { ok: 1, error: 0, deduplicated: 0, queue_full: 0 });
});

test('the processor marks a warm-up request and a fetch that races a queued warm-up', async (t) => {
  const { tracer, queue } = setUp({ concurrency: 1 });
  let release;
  const blocked = new Promise((resolve) => {
    release = resolve;
  });
  queue.submit('data:http://upstream/a', () => blocked); // runs until released
  queue.submit('data:http://upstream/b', async () => {}); // waits behind it: pending
  const processor = new NextraceSpanProcessor({ fetchTags: false });
  t.after(() => processor.shutdown());
  const spans = [];
  const server = createServer((req, res) => {
    const request = tracer.startSpan('GET', { attributes: { 'next.span_type': 'BaseServer.handleRequest' } });
    processor.onStart(request);
    const fetched = tracer.startSpan('fetch', {
      attributes: { 'next.span_type': 'AppRender.fetch', 'http.url': 'http://upstream/b' },
    });
    processor.onStart(fetched);
    spans.push({ request, fetched });
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `http://127.0.0.1:${server.address().port}/products/2`;
  await (await fetch(url)).text();
  await (await fetch(url, { headers: { 'x-nextrace-warmup': 'middleware' } })).text();
  const [user, warm] = spans;
  assert.equal(user.fetched.attributes['nextrace.warmup.pending'], 'true');
  assert.equal(user.request.attributes['nextrace.warmup.trigger'], undefined);
  assert.equal(warm.request.attributes['nextrace.warmup.trigger'], 'middleware');
  assert.equal(warm.fetched.attributes['nextrace.warmup.pending'], undefined, "not the warm-up's own fetch");
  release();
  await queue.drain();
});

test('a queue that could never run a job is refused when it is made, in one line', () => {
  for (const options of [{ ratePerS: 0 }, { maxQueued: -1 }, { concurrency: '2' }]) {
    assert.throws(() => warmupQueue({ name: `bad-${Object.keys(options)[0]}`, ...options }), /must be a positive number/);
  }
});
