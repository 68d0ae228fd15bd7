// The browser instrumentation on a simulated page: Next.js's router calls `fetch` with its RSC
// headers, the page draws frames, and the collector receives OTLP/JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ClientTracer, startClientTracing } from '../client.js';

const ENDPOINT = 'https://collector.example.com/v1/browser/traces';

/** A page at https://shop.example.com: a server that answers RSC requests, frames drawn on
 * demand, links, and the collector's deliveries. */
function page({ links = [] } = {}) {
  const listeners = {};
  const frames = [];
  const sent = [];
  const requests = [];
  let now = 0;
  const env = {
    location: new URL('https://shop.example.com/'),
    performance: { timeOrigin: 1_764_153_000_000, now: () => now },
    crypto: globalThis.crypto,
    Headers,
    Request,
    fetch: async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.startsWith(ENDPOINT)) {
        sent.push({ url, body: JSON.parse(init.body), keepalive: init.keepalive });
        return new Response('{}');
      }
      const headers = new Headers(init?.headers ?? input.headers);
      requests.push({ url, headers });
      return new Response('0:["chunk"]\n1:["more"]\n', { status: 200 });
    },
    requestAnimationFrame: (callback) => frames.push(callback),
    addEventListener: (type, callback) => { listeners[type] = callback; },
    setInterval: () => 1,
    clearInterval: () => {},
    document: {
      visibilityState: 'visible',
      addEventListener: (type, callback) => { listeners[type] = callback; },
      querySelectorAll: () => links.map((href) => ({ href: new URL(href, 'https://shop.example.com/').href })),
    },
  };
  return {
    env,
    sent,
    requests,
    listeners,
    advance: (ms) => { now += ms; },
    go: (pathname) => { env.location = new URL(pathname, env.location); },
    async drawFrames() {
      for (let i = 0; i < 20; i += 1) {
        await new Promise((resolve) => setImmediate(resolve));
        const due = frames.splice(0, frames.length);
        due.forEach((callback) => callback());
      }
    },
    spans() {
      return sent.flatMap((delivery) => delivery.body.resourceSpans[0].scopeSpans[0].spans);
    },
  };
}

const attribute = (span, key) => {
  const found = span.attributes.find((a) => a.key === key);
  return found && (found.value.stringValue ?? Number(found.value.intValue));
};
const rsc = (extra = {}) => ({ headers: { RSC: '1', ...extra } });

test('a prefetch, then a navigation it served from the router cache', async () => {
  const p = page({ links: ['/products/3'] });
  const tracer = new ClientTracer({ endpoint: ENDPOINT, key: 'pk-1' }, p.env);
  tracer.install();
  await p.env.fetch('/products/3?_rsc=a1', rsc({ 'Next-Router-Prefetch': '1' }));
  await p.drawFrames();
  tracer.transitionStart('/products/3', 'push');
  p.go('/products/3');
  await p.drawFrames();
  tracer.flush();

  const [prefetchRequest] = p.requests;
  const spans = p.spans();
  const prefetch = spans.find((s) => s.name === 'prefetch /products/3');
  const navigation = spans.find((s) => s.name === 'navigation /products/3');
  const lookup = spans.find((s) => s.name === 'router cache lookup');
  assert.equal(attribute(prefetch, 'nextrace.navigation.href'), '/products/3'); // no _rsc
  assert.equal(attribute(prefetch, 'nextrace.prefetch.mode'), 'auto');
  assert.equal(attribute(prefetch, 'nextrace.prefetch.trigger'), 'viewport');
  assert.equal(attribute(prefetch, 'http.response.body.size'), 23);
  // The server's trace joins the prefetch's.
  const [, traceId, parentId] = prefetchRequest.headers.get('traceparent').split('-');
  assert.equal(traceId, prefetch.traceId);
  assert.equal(parentId, spans.find((s) => s.parentSpanId === prefetch.spanId).spanId);
  assert.equal(attribute(navigation, 'nextrace.navigation.router_cache'), 'hit');
  assert.equal(attribute(lookup, 'cache.entry.source_trace_id'), prefetch.traceId);
  assert.equal(lookup.traceId, navigation.traceId);
  assert.equal(p.requests.length, 1); // the navigation asked the server nothing
  assert.equal(p.sent[0].url, `${ENDPOINT}?key=pk-1`);
  assert.equal(p.sent[0].keepalive, false);
});

test('a navigation that asked the server is one trace with its request, to the last chunk', async () => {
  const p = page();
  const onRouterTransitionStart = startClientTracing({ endpoint: ENDPOINT }, p.env);
  onRouterTransitionStart('/cart', 'push');
  const response = p.env.fetch('/cart?_rsc=b2', rsc());
  p.go('/cart');
  p.advance(40);
  await response;
  await p.drawFrames();
  p.listeners.pagehide();
  assert.equal(p.sent[0].keepalive, true); // the page is going: the request must outlive it

  const spans = p.spans();
  const navigation = spans.find((s) => s.name === 'navigation /cart');
  const request = spans.find((s) => s.name === 'GET /cart');
  assert.equal(attribute(navigation, 'nextrace.navigation.router_cache'), 'miss');
  assert.equal(request.parentSpanId, navigation.spanId);
  assert.equal(p.requests[0].headers.get('traceparent').split('-')[1], navigation.traceId);
  assert.ok(BigInt(navigation.endTimeUnixNano) >= BigInt(request.endTimeUnixNano));
  assert.equal(attribute(request, 'http.response.body.size'), 23);
});

test('a navigation to a page only partly prefetched is partial', async () => {
  const p = page();
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  await p.env.fetch('/p/7', rsc({ 'Next-Router-Prefetch': '1' }));
  tracer.transitionStart('/p/7', 'push');
  const response = p.env.fetch('/p/7', rsc());
  p.go('/p/7');
  await response;
  await p.drawFrames();
  tracer.flush();
  const navigation = p.spans().find((s) => s.name === 'navigation /p/7');
  assert.equal(attribute(navigation, 'nextrace.navigation.router_cache'), 'partial');
});

test('prefetch triggers, segment requests grouped, and a full prefetch told from a navigation', async () => {
  const p = page({ links: ['/a'] });
  const tracer = new ClientTracer({ endpoint: ENDPOINT, routeOf: (path) => path.replace(/\d+$/, '[id]') }, p.env);
  tracer.install();
  const link = { href: 'https://shop.example.com/b/1' };
  p.listeners.pointerover({ target: { closest: () => link } });
  await p.env.fetch('/b/1', rsc({ 'Next-Router-Segment-Prefetch': '/_tree' }));
  await p.env.fetch('/b/1', rsc({ 'Next-Router-Segment-Prefetch': '/__PAGE__' }));
  // No prefetch header, no navigation: a full prefetch. The router passes a URL object.
  await p.env.fetch(new URL('https://shop.example.com/a?_rsc=x'), rsc());
  await p.env.fetch('/elsewhere', rsc({ 'Next-Router-Prefetch': '1' }));
  await p.env.fetch('/not-rsc'); // not the router's: untouched
  await p.drawFrames();
  tracer.flush();
  const roots = p.spans().filter((s) => s.parentSpanId === '');
  const summary = roots.map((s) => [
    s.name,
    attribute(s, 'nextrace.prefetch.mode'),
    attribute(s, 'nextrace.prefetch.trigger'),
    attribute(s, 'http.response.body.size'),
  ]);
  assert.deepEqual(summary, [
    ['prefetch /b/[id]', 'segment', 'hover', 46],
    ['prefetch /a', 'full', 'viewport', 23],
    ['prefetch /elsewhere', 'auto', 'explicit', 23],
  ]);
  assert.equal(p.requests.at(-1).headers.get('traceparent'), null);
});

test('a hover that ended in a click does not make the next prefetch of that page a hover', async () => {
  const p = page({ links: ['/b'] });
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  p.listeners.pointerover({ target: { closest: () => ({ href: 'https://shop.example.com/b' }) } });
  tracer.transitionStart('/b', 'push'); // the click
  p.go('/b');
  await p.env.fetch('/b', rsc());
  await p.drawFrames();
  // On the new page, its own link to /b is in view and prefetched at once.
  await p.env.fetch('/b', rsc({ 'Next-Router-Prefetch': '1' }));
  await p.drawFrames();
  tracer.flush();
  const prefetch = p.spans().find((s) => s.name === 'prefetch /b');
  assert.equal(attribute(prefetch, 'nextrace.prefetch.trigger'), 'viewport');
});

test('unsampled traces send their traceparent and no spans', async () => {
  const p = page();
  const tracer = new ClientTracer({ endpoint: ENDPOINT, sampleRate: 0 }, p.env);
  tracer.install();
  await p.env.fetch('/x', rsc({ 'Next-Router-Prefetch': '1' }));
  await p.drawFrames();
  tracer.flush();
  assert.match(p.requests[0].headers.get('traceparent'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  assert.deepEqual(p.sent, []);
});

test('a failing collector or a broken hook never reaches the app', async () => {
  const p = page();
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  tracer.transitionStart('::not a url::', 'push'); // resolved against the page: fine
  tracer.transitionStart(null, 'push');
  const answer = await p.env.fetch('/ok', rsc({ 'Next-Router-Prefetch': '1' }));
  assert.equal(answer.status, 200);
  assert.throws(() => new ClientTracer({}, p.env), /endpoint is required/);
});

test('leaving the page ends and sends what is still open', async () => {
  const p = page();
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const fetch = p.env.fetch;
  p.env.fetch = tracer.fetch.bind(tracer, async (input, init) => {
    if (String(input).startsWith(ENDPOINT)) return fetch(input, init);
    await held; // the server never finishes this prefetch
    return new Response('');
  });
  p.env.fetch('/slow', rsc({ 'Next-Router-Prefetch': '1' }));
  await p.drawFrames();
  p.listeners.pagehide();
  assert.deepEqual(p.spans().map((s) => s.name), ['prefetch /slow']);
  release();
});
