// The browser instrumentation on a simulated page: Next.js's router calls `fetch` with its RSC
// headers, the server answers as Next.js 15 and 16 do, the page draws frames and runs timers
// on demand, and the collector receives OTLP/JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ClientTracer, startClientTracing } from '../client.js';

const ENDPOINT = 'https://collector.example.com/v1/browser/traces';
const PLAIN = () => new Response('0:["chunk"]\n1:["more"]\n', { status: 200 }); // 23 bytes

/** A page at https://shop.example.com: a server that answers RSC requests (with `answer`,
 * given the path and request headers), frames drawn and timers run on demand, links, and the
 * collector's deliveries. */
function page({ links = [], answer = PLAIN } = {}) {
  const listeners = {};
  const frames = [];
  const timers = new Map();
  const sent = [];
  const requests = [];
  let now = 0;
  let timerIds = 0;
  const env = {
    location: new URL('https://shop.example.com/'),
    performance: { timeOrigin: 1_764_153_000_000, now: () => now },
    crypto: globalThis.crypto,
    Headers,
    Request,
    fetch: async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.startsWith(ENDPOINT)) {
        sent.push({
          url,
          body: JSON.parse(init.body),
          keepalive: init.keepalive,
          type: init.headers['content-type'],
        });
        return new Response('{}');
      }
      const headers = new Headers(init?.headers ?? input.headers);
      requests.push({ url, headers });
      return answer(new URL(url, 'https://shop.example.com/').pathname, headers);
    },
    requestAnimationFrame: (callback) => frames.push(callback),
    setTimeout: (callback) => {
      timerIds += 1;
      timers.set(timerIds, callback);
      return timerIds;
    },
    clearTimeout: (id) => timers.delete(id),
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
    timers,
    advance: (ms) => { now += ms; },
    go: (pathname) => { env.location = new URL(pathname, env.location); },
    async drawFrames() {
      for (let i = 0; i < 20; i += 1) {
        await new Promise((resolve) => setImmediate(resolve));
        const due = frames.splice(0, frames.length);
        due.forEach((callback) => callback());
      }
    },
    /** Let the responses stream, then run the timers that are due (all of them). */
    async elapse() {
      await this.drawFrames();
      const due = [...timers.values()];
      timers.clear();
      due.forEach((callback) => callback());
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
  assert.equal(p.sent[0].type, 'application/json');
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
  // …with no CORS preflight, which Chromium may send and then drop the request with the page.
  assert.equal(p.sent[0].type, 'text/plain;charset=UTF-8');

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
  await p.elapse(); // the route tree's prefetch waited for more of its segments
  tracer.flush();
  const roots = p.spans().filter((s) => s.parentSpanId === '');
  const summary = roots.map((s) => [
    s.name,
    attribute(s, 'nextrace.prefetch.mode'),
    attribute(s, 'nextrace.prefetch.trigger'),
    attribute(s, 'http.response.body.size'),
  ]);
  assert.deepEqual(summary, [
    ['prefetch /a', 'full', 'viewport', 23],
    ['prefetch /elsewhere', 'auto', 'explicit', 23],
    ['prefetch /b/[id]', 'segment', 'hover', 46],
  ]);
  assert.equal(attribute(roots[0], 'nextrace.prefetch.payload'), 'full'); // the whole page
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

test('built without its endpoint, it does nothing, warns once, and never throws', async (t) => {
  const warn = t.mock.method(console, 'warn', () => {});
  const p = page({ links: ['/b'] });
  const fetch = p.env.fetch;
  // As `next build` writes the README's snippet when NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT was
  // not set (undefined), or set empty; and again, as a page loaded twice in development.
  for (const endpoint of [undefined, '']) {
    const onRouterTransitionStart = startClientTracing({ endpoint, sampleRate: 1 }, p.env);
    assert.equal(typeof onRouterTransitionStart, 'function');
    onRouterTransitionStart('/b', 'push'); // a link click: Next.js goes on with its navigation
  }
  const tracer = new ClientTracer(undefined, p.env);
  tracer.install();
  tracer.transitionStart('/b', 'push');
  tracer.flush();
  tracer.shutdown();
  // The page's fetch, listeners and timers are its own; its navigation goes on untouched.
  assert.equal(p.env.fetch, fetch);
  assert.deepEqual(Object.keys(p.listeners), []);
  const response = await p.env.fetch('/b?_rsc=1', rsc());
  p.go('/b');
  await p.elapse();
  assert.equal(response.status, 200);
  assert.equal(p.requests[0].headers.get('traceparent'), null);
  assert.deepEqual(p.sent, []);
  assert.equal(warn.mock.callCount(), 1);
  const [message] = warn.mock.calls[0].arguments;
  assert.match(message, /no endpoint/);
  assert.match(message, /NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT/);
  assert.match(message, /next build/);
});

test('a page whose browser APIs fail keeps its navigations and its requests', async (t) => {
  const warn = t.mock.method(console, 'warn', () => {});
  const p = page();
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  // Random ids and frames fail from now on (a locked-down or old browser).
  p.env.crypto = { getRandomValues: () => { throw new Error('no randomness'); } };
  p.env.requestAnimationFrame = () => { throw new Error('no frames'); };
  tracer.transitionStart('/b', 'push');
  const answer = await p.env.fetch('/b?_rsc=1', rsc());
  assert.equal(answer.status, 200);
  assert.equal(await answer.text(), '0:["chunk"]\n1:["more"]\n'); // the app reads it whole
  assert.equal(p.requests[0].headers.get('traceparent'), null); // sent as it was given
  // The app's own failure reaches it as it was.
  const down = new Error('offline');
  p.env.fetch = tracer.fetch.bind(tracer, async () => { throw down; });
  await assert.rejects(p.env.fetch('/c?_rsc=2', rsc()), (error) => error === down);
  p.listeners.pagehide();
  assert.ok(tracer.errors >= 2);
  assert.equal(warn.mock.callCount(), 1); // the first failure, once
  assert.match(warn.mock.calls[0].arguments[0], /browser tracing failed and was skipped/);
});

test('a refused delivery is counted and logged once, never thrown', async (t) => {
  const warn = t.mock.method(console, 'warn', () => {});
  const p = page();
  const fetch = p.env.fetch;
  p.env.fetch = async (input, init) => (String(input).startsWith(ENDPOINT)
    ? new Response('origin not allowed', { status: 403 })
    : fetch(input, init));
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  for (const path of ['/a', '/b']) {
    await p.env.fetch(path, rsc({ 'Next-Router-Prefetch': '1' }));
    await p.elapse();
    tracer.flush();
  }
  await p.elapse();
  assert.equal(tracer.errors, 2);
  assert.equal(warn.mock.callCount(), 1);
  assert.match(warn.mock.calls[0].arguments[0], /collector answered 403/);
});

// What Next.js answers a prefetch with, as examples/nextjs's pages got it (abridged): its
// prerendered output of a static page; a page rendered on demand with a loading.js boundary;
// and one without (Next.js 16 then asks for its metadata only; 15 answers its route tree).
const PRERENDERED_15 = { 'x-nextjs-prerender': '1, 1', 'x-nextjs-cache': 'HIT', 'x-nextjs-stale-time': '300' };
const PRERENDERED_16 = { 'x-nextjs-prerender': '1', 'x-nextjs-postponed': '2', 'x-nextjs-cache': 'HIT' };
const LOADING_15 = '0:{"b":"kbh","f":[["children","products",["products",{"children":[["id","1","d"],'
  + '{"children":["__PAGE__",{}]}]}],["products",["$","$1","c",{"children":[null,["$","$L2",null,'
  + '{"parallelRouterKey":"children"}]]}],{"children":[["id","1","d"],["$","$1","c",{"children":'
  + '[null,["$","$L2",null,{"parallelRouterKey":"children"}]]}],{"children":null},[["$","p","l",'
  + '{"children":"Loading product…"}],[],[]],false]},null,false],null,false]],"S":false}\n';
const EMPTY_15 = '0:{"b":"kbh","f":[["children","profile",["profile",{"children":["__PAGE__",{}]}],'
  + 'null,[null,null],true]],"S":false}\n';
const TREE_16 = '2:[["children",{"s":{"n":"id","t":"d","k":"1","s":[]},"h":4,"c":"$Q3"}]]\n'
  + '0:{"q":"","i":false,"S":false,"b":"fM-","t":{"t":{"s":"","h":24,"c":"$Q1"},"h":{"r":[null,null],"p":true,"v":null}}}\n';
const LOADING_16 = '8:"LoadingBoundaryProvider"\n9:I[39756,["$3"],"$8"]\n'
  + '7:[["children",{"s":{"n":"id","t":"d","k":"1","s":[]},"h":4,"d":{"r":["$","$L9",null,'
  + '{"loading":[["$","p","l",{"children":"Loading product…"}],[],null],"children":["$","$2","c",'
  + '{"children":[null,["$","$L4",null,{"parallelRouterKey":"children"}]]}]}],"p":false,"v":"$6"},"c":"$Qa"}]]\n';
const METADATA_16 = '2:[["children",{"s":"__PAGE__"}]]\n1:[["children",{"s":"profile","c":"$Q2"}]]\n'
  + '0:{"q":"","i":false,"S":false,"b":"fM-","t":{"t":{"s":"","h":16,"c":"$Q1"},"h":{"r":["$","$3","h",'
  + '{"children":[null,["$","$L6","HLS",{"children":"$L7"}]]}],"p":false,"v":null}}}\n'
  + '7:[["$","meta","0",{"charSet":"utf-8"}],["$","meta","1",{"name":"viewport","content":"width=device-width"}]]\n';

/** An answer streamed in these chunks (a loading boundary may straddle two). */
function streamed(chunks, headers = {}) {
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      chunks.forEach((chunk) => controller.enqueue(encoder.encode(chunk)));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'text/x-component', ...headers } });
}

const payloads = (p) => Object.fromEntries(p.spans().filter((s) => s.parentSpanId === '').map((s) => [
  attribute(s, 'next.route'),
  [attribute(s, 'nextrace.prefetch.mode'), attribute(s, 'nextrace.prefetch.payload')],
]));

test('what each prefetch got back, from Next.js 15 answers', async () => {
  const split = LOADING_15.indexOf('"l",');
  const p = page({
    links: ['/about', '/products/1', '/profile'],
    answer: (path) => {
      if (path === '/about') return streamed(['0:{"b":"kbh","f":[]}\n'], PRERENDERED_15);
      if (path === '/products/1') return streamed([LOADING_15.slice(0, split), LOADING_15.slice(split)]);
      return streamed([EMPTY_15]);
    },
  });
  const tracer = new ClientTracer({
    endpoint: ENDPOINT,
    routeOf: (path) => path.replace(/^\/products\/[^/]+$/, '/products/[id]'),
  }, p.env);
  tracer.install();
  const prefetch = rsc({ 'Next-Router-Prefetch': '1', 'Next-Router-State-Tree': '%5B%22%22%5D' });
  await Promise.all(['/about', '/products/1', '/profile'].map((path) => p.env.fetch(`${path}?_rsc=x`, prefetch)));
  await p.elapse();
  tracer.flush();
  assert.deepEqual(payloads(p), {
    '/about': ['auto', 'full'],
    '/products/[id]': ['auto', 'loading'],
    '/profile': ['auto', 'empty'],
  });
});

test("Next.js 16: a page's route tree and what follows it are one prefetch", async () => {
  const tree = rsc({ 'Next-Router-Prefetch': '1', 'Next-Router-Segment-Prefetch': '/_tree' });
  const p = page({
    links: ['/about', '/products/1', '/profile', '/blog'],
    answer: (path, headers) => {
      if (path === '/about' || path === '/blog') return streamed([TREE_16], PRERENDERED_16);
      if (headers.get('next-router-segment-prefetch') === '/_tree') return streamed([TREE_16]);
      return streamed([path === '/profile' ? METADATA_16 : LOADING_16]);
    },
  });
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  // The trees of the links in view, then (after the others' trees) what each page needs: the
  // static page's segments, or a request for what a page rendered on demand shows first.
  await Promise.all(['/about', '/products/1', '/profile', '/blog'].map((path) => p.env.fetch(path, tree)));
  await p.drawFrames();
  p.advance(300);
  await p.env.fetch('/about', rsc({ 'Next-Router-Prefetch': '1', 'Next-Router-Segment-Prefetch': '/about/__PAGE__' }));
  for (const path of ['/products/1', '/profile']) {
    await p.env.fetch(path, rsc({ 'Next-Router-Prefetch': '1', 'Next-Router-State-Tree': '%5B%22%22%5D' }));
  }
  await p.drawFrames();
  tracer.flush();
  // Each prefetch waits, in case more of its segments come (its requests are sent).
  assert.deepEqual(p.spans().filter((s) => s.parentSpanId === ''), []);
  await p.elapse();
  tracer.flush();
  assert.deepEqual(payloads(p), {
    '/about': ['segment', 'full'],
    '/products/1': ['segment', 'loading'],
    '/profile': ['segment', 'empty'],
    '/blog': ['segment', undefined], // only its tree was asked for: it says nothing of a payload
  });
  const about = p.spans().find((s) => s.name === 'prefetch /about');
  const requests = p.spans().filter((s) => s.parentSpanId === about.spanId);
  assert.equal(requests.length, 2);
  assert.equal(attribute(about, 'http.response.body.size'), 2 * new TextEncoder().encode(TREE_16).length);
  // It ended when its last answer did, not when it was sent.
  assert.equal(about.endTimeUnixNano, requests.map((s) => s.endTimeUnixNano).sort().at(-1));
});

test('leaving the page sends the prefetches still waiting for their segments', async () => {
  const p = page({ links: ['/products/1'] });
  const tracer = new ClientTracer({ endpoint: ENDPOINT }, p.env);
  tracer.install();
  await p.env.fetch('/products/1', rsc({ 'Next-Router-Prefetch': '1', 'Next-Router-Segment-Prefetch': '/_tree' }));
  await p.drawFrames();
  p.listeners.pagehide();
  assert.deepEqual(p.spans().filter((s) => s.parentSpanId === '').map((s) => s.name), ['prefetch /products/1']);
  assert.equal(p.sent[0].keepalive, true);
  assert.equal(p.timers.size, 0);
});
