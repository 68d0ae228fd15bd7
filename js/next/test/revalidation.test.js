// Node's test runner: `npm test` here, or the repository's test command (tests/js/).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { profileName, traceRevalidations } from '../revalidation.js';
import { FakeTracer, provider } from '../testing/fake-tracer.js';

function nextCache(calls) {
  return {
    revalidateTag: (...args) => calls.push(['revalidateTag', ...args]),
    revalidatePath: (...args) => calls.push(['revalidatePath', ...args]),
    updateTag: () => {
      throw new Error('updateTag can only be called from a Server Action');
    },
  };
}

test('each revalidation calls Next.js and records one span with its target and profile', () => {
  const calls = [];
  const tracer = new FakeTracer();
  const traced = traceRevalidations(nextCache(calls), { tracerProvider: provider(tracer) });
  traced.revalidateTag('product-1', 'max');
  traced.revalidateTag('product-2', { expire: 0 });
  traced.revalidatePath('/products/1', 'page');
  assert.deepEqual(calls, [
    ['revalidateTag', 'product-1', 'max'],
    ['revalidateTag', 'product-2', { expire: 0 }],
    ['revalidatePath', '/products/1', 'page'],
  ]);
  assert.deepEqual(
    tracer.spans.map((s) => [s.name, s.attributes['nextrace.revalidate.target'], s.attributes['nextrace.revalidate.profile']]),
    [
      ['revalidateTag tag', 'product-1', 'max'],
      ['revalidateTag tag', 'product-2', 'expire'],
      ['revalidatePath path', '/products/1', 'expire'],
    ],
  );
  for (const span of tracer.spans) {
    assert.equal(span.ended, true);
    assert.equal(span.attributes['nextrace.phase'], 'revalidate');
    assert.equal(span.attributes['nextrace.revalidate.trigger'], 'webhook');
    assert.equal(span.attributes['nextrace.revalidate.outcome'], 'ok');
  }
});

test("Next.js's own error reaches the caller, and the span says it failed", () => {
  const tracer = new FakeTracer();
  const traced = traceRevalidations(nextCache([]), { tracerProvider: provider(tracer), trigger: 'action' });
  assert.throws(() => traced.updateTag('cart'), /Server Action/);
  const [span] = tracer.spans;
  assert.equal(span.attributes['nextrace.revalidate.outcome'], 'error');
  assert.equal(span.attributes['nextrace.revalidate.trigger'], 'action');
  assert.deepEqual(span.status, { code: 2 });
  assert.equal(span.ended, true);
});

test('a broken tracer never stops a revalidation, and is counted once per failure', (t) => {
  const warned = t.mock.method(console, 'warn', () => {});
  const calls = [];
  const traced = traceRevalidations(nextCache(calls), { tracerProvider: provider(new FakeTracer({ failing: true })) });
  traced.revalidateTag('product-1', 'max');
  traced.revalidatePath('/about');
  assert.equal(calls.length, 2);
  assert.equal(traced.errors, 2);
  assert.equal(warned.mock.callCount(), 1);
});

test("a function this Next.js version lacks stays missing, as in next/cache", () => {
  const traced = traceRevalidations({ revalidateTag() {} }, { tracerProvider: provider(new FakeTracer()) });
  assert.equal(typeof traced.revalidateTag, 'function');
  assert.equal(traced.updateTag, undefined);
  assert.equal(traced.revalidatePath, undefined);
});

test('profiles are named as the reference server names them', () => {
  assert.equal(profileName('revalidateTag', 'max'), 'max');
  assert.equal(profileName('revalidateTag', 'hours'), 'hours');
  assert.equal(profileName('revalidateTag', undefined), 'expire');
  assert.equal(profileName('revalidateTag', { expire: 0 }), 'expire');
  assert.equal(profileName('revalidateTag', { expire: 3600 }), 'custom');
  assert.equal(profileName('revalidatePath', 'page'), 'expire');
  assert.equal(profileName('updateTag', undefined), 'expire');
});
