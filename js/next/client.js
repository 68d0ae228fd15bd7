// Browser instrumentation for Next.js's App Router, for `instrumentation-client.js`: what the
// server never sees. No dependencies: it writes OTLP/JSON itself, which keeps it a few kB in
// the client bundle where the OpenTelemetry web SDK would take several times that.
//
// - `navigation <route>` for each client-side navigation, from `onRouterTransitionStart` to
//   the first frame after the new URL is in place and the RSC response, if any, has streamed
//   its last chunk. `nextrace.navigation.router_cache`: `hit` (the router cache answered, no
//   request), `partial` (a prefetch of the page came first, and it was still requested: the
//   prefetched loading state showed first) or `miss`. Its child `router cache lookup` names the
//   prefetch trace whose entry it used, and its RSC request is a child span whose
//   `traceparent` the server's trace joins: one navigation, one trace.
// - `prefetch <route>` for each prefetch (an RSC request outside a navigation), with its mode
//   (`auto`: `Next-Router-Prefetch`; `segment`: `Next-Router-Segment-Prefetch`; `full`: a
//   whole page, which Next.js asks for without the prefetch header), trigger (`hover`: the
//   pointer was on a link to it just before; `viewport`: a link to it is on the page;
//   `explicit`: none is, `router.prefetch`), bytes, status, and what it got back
//   (`nextrace.prefetch.payload`, see `payloadOf`). The requests of one prefetch are one span:
//   Next.js 16 asks for a page's route tree (`/_tree`), then for its segments or, for a page
//   rendered on demand, for what it can show before the page's data (its loading state).
//
// The spans follow nextrace's conventions for browsers (docs/semantic-conventions.md), under
// the scope `@nextrace/next/browser`, and go to the collector's browser endpoint in batches:
// every `flushIntervalMs`, at `maxBatch` spans, and when the page is hidden or left (then
// with `keepalive`, which outlives the page). A root span is sampled with
// `sampleRate`; an unsampled one sends its `traceparent` with the sampled flag off.
//
// Tracing must never break the page it traces: Next.js loads this module before it hydrates
// the page, so an exception here would leave every link a full page load. Without an
// endpoint it does nothing and says so once in the console; every step it takes runs through
// a fail-safe runner (fail-safe.js), which counts a failure in `errors`, logs the first, and
// drops the span.
import { failSafe } from './fail-safe.js';

const SCOPE = '@nextrace/next/browser';
const CLIENT = 3; // SpanKind CLIENT
const HOVER_MS = 500; // a prefetch this soon after the pointer reached a link is the hover's
const SEGMENT_GROUP_MS = 100; // segment requests of one link made within this are one prefetch
// Next.js 16 asks for a page's segments once its route tree has come, after the trees of the
// other links in view: the prefetch waits this long after its last answer for more of them.
const SETTLE_MS = 2000;
const TREE = '/_tree'; // Next.js 16's request for a page's route tree
const WRAPPED = Symbol.for('nextrace.browser.fetch');
// A React element keyed `l` in an RSC payload: Next.js 15 and 16 key a `loading.js` boundary's
// element so (`["$","p","l",{…}]`; the reference server writes it with spaces).
const LOADING_ELEMENT = /\["\$",\s*"[^"]*",\s*"l"\s*[,\]]/;
const NO_ENDPOINT = '@nextrace/next/client: no endpoint, so this page is not traced. Set it '
  + '(NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT in the README) when `next build` runs: '
  + 'NEXT_PUBLIC_ variables are written into the client bundle then.';
const warned = new WeakSet(); // the pages told that there is no endpoint

export const DEFAULTS = {
  serviceName: 'next-browser',
  sampleRate: 1,
  flushIntervalMs: 5000,
  maxBatch: 100,
  maxQueue: 2000,
  routeOf: (pathname) => pathname,
};

/**
 * Start tracing this page; returns the `onRouterTransitionStart` to export from
 * `instrumentation-client.js`. `endpoint` is the collector's `/v1/browser/traces` URL; `key`,
 * if the collector asks for one, its public browser key. Without `endpoint`, or if starting
 * fails, nothing is traced and the returned function does nothing; it never throws.
 */
export function startClientTracing(options, env = globalThis) {
  const tracer = failSafe('starting browser tracing')(() => {
    const started = new ClientTracer(options, env);
    started.install();
    return started;
  });
  if (!tracer?.enabled) return () => {};
  return (url, navigationType) => tracer.transitionStart(url, navigationType);
}

export class ClientTracer {
  constructor(options, env = globalThis) {
    this.options = { ...DEFAULTS, ...options };
    this.env = env;
    this.safely = failSafe('browser tracing');
    this.sending = failSafe('sending browser spans to the collector');
    const { endpoint } = this.options;
    this.enabled = typeof endpoint === 'string' && endpoint !== '';
    if (!this.enabled && !warned.has(env)) {
      warned.add(env);
      console.warn(NO_ENDPOINT);
    }
    this.browserId = this.enabled ? this.safely(() => hex(8, env)) : '';
    this.queue = [];
    this.dropped = 0; // spans beyond maxQueue
    this.navigation = null; // the navigation in progress
    this.prefetches = new Map(); // pathname -> the latest prefetch of it
    this.open = new Set(); // prefetches not ended: requests in flight, or settling
    this.hovered = new Map(); // pathname -> when the pointer last reached a link to it
    this.timer = null;
  }

  /** Failures inside the instrumentation and refused deliveries, each kept from the app. */
  get errors() {
    return this.safely.errors + this.sending.errors;
  }

  install() {
    if (!this.enabled) return;
    this.safely(() => {
      const env = this.env;
      if (typeof env.fetch === 'function' && !env.fetch[WRAPPED]) {
        const original = env.fetch.bind(env);
        const wrapped = (input, init) => this.fetch(original, input, init);
        wrapped[WRAPPED] = true;
        env.fetch = wrapped;
      }
      env.addEventListener?.('pointerover', (event) => this.safely(() => this.pointerOver(event)));
      // A hidden page draws no frames, so a navigation still open is ended where it stands.
      const leave = () => this.safely(() => { this.endOpen(); this.flush(true); });
      env.addEventListener?.('pagehide', leave);
      env.document?.addEventListener?.('visibilitychange', () => {
        if (env.document.visibilityState === 'hidden') leave();
      });
      this.timer = env.setInterval?.(() => this.flush(), this.options.flushIntervalMs);
    });
  }

  transitionStart(url, navigationType) {
    if (!this.enabled) return;
    this.safely(() => {
      this.endNavigation();
      const target = new URL(url, this.env.location.href);
      // The hover that led to this click is spent: a prefetch of the page after it is the
      // new page's own (its links in view), not the pointer's.
      this.hovered.delete(target.pathname);
      const prefetch = this.prefetches.get(target.pathname);
      this.navigation = {
        span: this.root(`navigation ${this.options.routeOf(target.pathname)}`, {
          'nextrace.phase': 'navigation',
          'nextrace.navigation.href': href(target),
          'nextrace.navigation.type': navigationType === 'traverse' ? 'traverse' : 'soft',
        }, target.pathname),
        pathname: target.pathname,
        prefetch,
        requests: 0, // RSC requests in flight
        requested: false,
      };
      this.waitForCommit(this.navigation);
    });
  }

  waitForCommit(navigation) {
    const check = () => this.safely(() => {
      if (this.navigation !== navigation) return;
      if (this.env.location.pathname === navigation.pathname && navigation.requests === 0) {
        this.endNavigation();
      } else {
        this.env.requestAnimationFrame(check);
      }
    });
    this.env.requestAnimationFrame(check);
  }

  endNavigation() {
    const navigation = this.navigation;
    if (!navigation) return;
    this.navigation = null;
    const { span, prefetch, requested } = navigation;
    let result = 'hit';
    if (requested) result = prefetch ? 'partial' : 'miss';
    span.attributes['nextrace.navigation.router_cache'] = result;
    const lookup = this.child(span, 'router cache lookup', {
      'nextrace.phase': 'cache',
      'cache.layer': 'router',
      'cache.result': result === 'hit' ? 'hit' : 'miss',
      'nextrace.router.result': result,
      'cache.key': span.attributes['nextrace.navigation.href'],
    });
    if (prefetch) {
      lookup.attributes['cache.entry.source'] = 'prefetch';
      lookup.attributes['cache.entry.source_trace_id'] = prefetch.span.traceId;
    }
    this.end(lookup);
    this.end(span);
  }

  /** End what is still open (the page is going: nothing will end it later), as it stands. */
  endOpen() {
    this.endNavigation();
    for (const prefetch of [...this.open]) this.endPrefetch(prefetch);
  }

  pointerOver(event) {
    const link = event.target?.closest?.('a[href]');
    if (!link) return;
    const target = new URL(link.href, this.env.location.href);
    if (target.origin === this.env.location.origin) {
      this.hovered.set(target.pathname, this.env.performance.now());
    }
  }

  /** `fetch`, traced when it is the router's (an RSC request). The app's own request and its
   * outcome are untouched: if tracing it fails, it is sent as it was given. */
  fetch(original, input, init) {
    const traced = this.safely(() => this.traced(input, init));
    if (!traced) return original(input, init);
    const { span, args } = traced;
    let sent;
    try {
      sent = original(...args);
    } catch (error) {
      this.safely(() => this.end(span));
      throw error;
    }
    return Promise.resolve(sent).then(
      (response) => {
        this.safely(() => this.measure(span, response));
        return response;
      },
      (error) => {
        this.safely(() => this.end(span));
        throw error;
      },
    );
  }

  /** The span of an RSC request and the arguments to send it with (its `traceparent` added);
   * undefined for other requests. */
  traced(input, init) {
    const { Headers, Request } = this.env;
    const isRequest = typeof Request === 'function' && input instanceof Request;
    const headers = new Headers(init?.headers ?? (isRequest ? input.headers : undefined));
    if (headers.get('rsc') !== '1') return undefined;
    const span = this.rscSpan(input, headers);
    try {
      headers.set('traceparent', traceparent(span));
      const args = isRequest
        ? [new Request(input, { ...init, headers })]
        : [input, { ...init, headers }];
      return { span, args };
    } catch (error) {
      this.end(span); // what counts it in its navigation or prefetch
      throw error;
    }
  }

  /** The span an RSC request gets: a child of its navigation, or (part of) a prefetch. */
  rscSpan(input, headers) {
    // Next.js's router passes a URL object; others a string or a Request.
    const address = typeof this.env.Request === 'function' && input instanceof this.env.Request
      ? input.url
      : String(input);
    const url = new URL(address, this.env.location.href);
    const name = `GET ${this.options.routeOf(url.pathname)}`;
    const navigation = this.navigation;
    const prefetching = headers.has('next-router-prefetch')
      || headers.has('next-router-segment-prefetch');
    if (navigation && !prefetching && navigation.pathname === url.pathname) {
      const span = this.child(navigation.span, name, { 'url.path': url.pathname });
      navigation.requested = true;
      navigation.requests += 1; // counted once the span exists, which ends it
      span.onEnd = () => { navigation.requests -= 1; };
      return span;
    }
    return this.prefetchSpan(url, headers, name);
  }

  prefetchSpan(url, headers, name) {
    const now = this.env.performance.now();
    const segment = headers.get('next-router-segment-prefetch');
    let mode = 'full';
    if (segment !== null) mode = 'segment';
    else if (headers.has('next-router-prefetch')) mode = 'auto';
    let prefetch = this.prefetches.get(url.pathname);
    const joins = prefetch && !prefetch.span.ended && segment !== TREE && (
      prefetch.tree || (mode === 'segment' && now - prefetch.lastRequest < SEGMENT_GROUP_MS)
    );
    if (!joins) {
      const hovered = this.hovered.get(url.pathname);
      let trigger = 'explicit';
      if (hovered !== undefined && now - hovered < HOVER_MS) trigger = 'hover';
      else if (this.linkedFromPage(url.pathname)) trigger = 'viewport';
      prefetch = {
        span: this.root(`prefetch ${this.options.routeOf(url.pathname)}`, {
          'nextrace.phase': 'prefetch',
          'nextrace.navigation.href': href(url),
          'nextrace.prefetch.mode': mode,
          'nextrace.prefetch.trigger': trigger,
        }, url.pathname),
        mode,
        tree: segment === TREE, // a Next.js 16 prefetch: its segments follow the tree
        open: 0,
        bytes: 0,
        page: false, // whether it asked for more than the route tree
        prerendered: false,
        postponed: false,
        loading: false,
      };
      this.prefetches.set(url.pathname, prefetch);
      this.open.add(prefetch);
    }
    const span = this.child(prefetch.span, name, { 'url.path': url.pathname });
    this.env.clearTimeout?.(prefetch.settling);
    prefetch.lastRequest = now;
    prefetch.open += 1; // counted once the span exists, which ends it
    // What the answer tells of the payload: only a page's answer is searched for a loading
    // state (see `payloadOf`), never a prerendered one, which can be large.
    span.prefetch = { page: segment !== TREE };
    span.onEnd = () => this.prefetchRequestEnded(prefetch, span);
    return span;
  }

  prefetchRequestEnded(prefetch, span) {
    prefetch.open -= 1;
    prefetch.bytes += span.attributes['http.response.body.size'] ?? 0;
    prefetch.span.attributes['http.response.body.size'] = prefetch.bytes;
    prefetch.span.attributes['http.response.status_code'] = span.attributes['http.response.status_code'];
    const answer = span.prefetch;
    if (answer.page && answer.ok) { // a failed request got nothing back: it says nothing
      prefetch.page = true;
      prefetch.prerendered ||= Boolean(answer.prerendered);
      prefetch.postponed ||= Boolean(answer.postponed);
      prefetch.loading ||= Boolean(answer.loading);
    }
    if (prefetch.open > 0) return;
    prefetch.endNs = this.nowNs();
    if (prefetch.tree && this.env.setTimeout) {
      prefetch.settling = this.env.setTimeout(
        () => this.safely(() => this.endPrefetch(prefetch)),
        SETTLE_MS,
      );
    } else {
      this.endPrefetch(prefetch);
    }
  }

  /** End ``prefetch``'s span, when its last answer came (or now, if one is still out), with
   * what it got back. */
  endPrefetch(prefetch) {
    this.open.delete(prefetch);
    this.env.clearTimeout?.(prefetch.settling);
    const payload = payloadOf(prefetch);
    if (payload) prefetch.span.attributes['nextrace.prefetch.payload'] = payload;
    this.end(prefetch.span, prefetch.open === 0 ? prefetch.endNs : undefined);
  }

  linkedFromPage(pathname) {
    const links = this.env.document?.querySelectorAll?.('a[href]') ?? [];
    for (const link of links) {
      if (new URL(link.href, this.env.location.href).pathname === pathname) return true;
    }
    return false;
  }

  /** Reads a copy of the response's body to its last chunk, then ends ``span``. */
  measure(span, response) {
    span.attributes['http.response.status_code'] = response.status;
    const answer = span.prefetch;
    let scan = null; // searches a page's prefetch answer rendered on demand for its loading state
    if (answer) {
      answer.ok = response.ok;
      answer.prerendered = response.headers.get('x-nextjs-prerender')?.startsWith('1');
      answer.postponed = response.headers.get('x-nextjs-postponed')?.startsWith('1');
      if (answer.page && !answer.prerendered) scan = loadingScanner(this.env, answer);
    }
    let finished = false;
    const finish = (bytes) => this.safely(() => {
      if (finished) return;
      finished = true;
      span.attributes['http.response.body.size'] = bytes;
      this.end(span);
    });
    const body = response.clone().body;
    if (!body) {
      finish(0);
      return;
    }
    const reader = body.getReader();
    let bytes = 0;
    const pump = () => reader.read().then(({ done, value }) => {
      if (done) return finish(bytes);
      bytes += value.byteLength;
      if (scan && !answer.loading) this.safely(() => scan(value));
      return pump();
    });
    pump().catch(() => finish(bytes));
  }

  root(name, attributes, pathname) {
    const span = this.span(hex(16, this.env), '', name, attributes);
    span.sampled = Math.random() < this.options.sampleRate;
    span.attributes['nextrace.browser.id'] = this.browserId;
    span.attributes['next.route'] = this.options.routeOf(pathname);
    return span;
  }

  child(parent, name, attributes) {
    const span = this.span(parent.traceId, parent.spanId, name, attributes);
    span.sampled = parent.sampled;
    return span;
  }

  span(traceId, parentSpanId, name, attributes) {
    return {
      traceId,
      spanId: hex(8, this.env),
      parentSpanId,
      name,
      start: this.nowNs(),
      attributes: { ...attributes },
    };
  }

  /** End ``span`` once, at ``endNs`` (default now): run its ``onEnd`` (what its parent keeps
   * count of), queue it if sampled. */
  end(span, endNs) {
    if (span.ended) return;
    span.ended = true;
    span.onEnd?.();
    if (!span.sampled) return;
    span.end = endNs ?? this.nowNs();
    if (this.queue.length >= this.options.maxQueue) {
      this.dropped += 1;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.options.maxBatch) this.flush();
  }

  nowNs() {
    const { performance } = this.env;
    return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
  }

  /** Send what is queued; ``leaving``: the page is going away, so the request must outlive
   * it (``keepalive``). A leaving page's request must also need no CORS preflight: Chromium
   * sent the preflight of a keepalive JSON request and then dropped the request itself with
   * the page (seen in its network log). So it goes as ``text/plain``, a type a page may send
   * across origins without one, which the collector's browser endpoint reads as OTLP/JSON.
   * A refused or failed delivery is counted, and the first logged. */
  flush(leaving = false) {
    this.safely(() => {
      if (!this.queue.length) return;
      const spans = this.queue.splice(0, this.queue.length);
      const { endpoint, key } = this.options;
      const url = key ? `${endpoint}${endpoint.includes('?') ? '&' : '?'}key=${encodeURIComponent(key)}` : endpoint;
      const refused = (error) => this.sending(() => { throw error; });
      Promise.resolve(this.env.fetch(url, {
        method: 'POST',
        headers: { 'content-type': leaving ? 'text/plain;charset=UTF-8' : 'application/json' },
        body: JSON.stringify(this.export(spans)),
        keepalive: leaving,
      })).then(
        (response) => {
          if (!response.ok) refused(new Error(`the collector answered ${response.status}`));
        },
        refused,
      );
    });
  }

  export(spans) {
    return {
      resourceSpans: [{
        resource: { attributes: attributes({ 'service.name': this.options.serviceName }) },
        scopeSpans: [{
          scope: { name: SCOPE },
          spans: spans.map((span) => ({
            traceId: span.traceId,
            spanId: span.spanId,
            parentSpanId: span.parentSpanId,
            name: span.name,
            kind: CLIENT,
            startTimeUnixNano: String(span.start),
            endTimeUnixNano: String(span.end),
            attributes: attributes(span.attributes),
          })),
        }],
      }],
    };
  }

  shutdown() {
    if (!this.enabled) return;
    this.safely(() => {
      this.endOpen();
      this.env.clearInterval?.(this.timer);
      this.flush();
    });
  }
}

/**
 * What a prefetch got back (`nextrace.prefetch.payload`), from its answers' headers and, for
 * a page rendered on demand, its RSC payload; undefined when it asked only for the route tree:
 *
 * - `full`: the whole page (a `full` prefetch), or Next.js's prerendered output of a static or
 *   ISR route (`x-nextjs-prerender: 1`);
 * - `loading`: a page rendered on demand whose answer carries its `loading.js` boundary, or a
 *   Partial Prerendering shell (`x-nextjs-postponed: 1`);
 * - `empty`: a page rendered on demand without a loading boundary: the route tree only.
 *
 * Next.js 16's segment prefetches of a Partial Prerendering route are served from its
 * prerendered segments, so they count as `full`.
 */
function payloadOf(prefetch) {
  if (prefetch.mode === 'full') return 'full';
  if (!prefetch.page) return undefined;
  if (prefetch.postponed) return 'loading';
  if (prefetch.prerendered) return 'full';
  return prefetch.loading ? 'loading' : 'empty';
}

/** Feeds the chunks of an RSC payload; sets ``answer.loading`` once it has seen a loading
 * boundary's element (one may be split across two chunks). */
function loadingScanner(env, answer) {
  const decoder = new (env.TextDecoder ?? globalThis.TextDecoder)();
  let tail = '';
  return (chunk) => {
    const text = tail + decoder.decode(chunk, { stream: true });
    if (LOADING_ELEMENT.test(text)) answer.loading = true;
    tail = text.slice(-64);
  };
}

/** The page a URL names: its path and query, without the router's `_rsc` cache-buster. */
function href(url) {
  const query = new URLSearchParams(url.search);
  query.delete('_rsc');
  const search = query.toString();
  return search ? `${url.pathname}?${search}` : url.pathname;
}

function traceparent(span) {
  return `00-${span.traceId}-${span.spanId}-${span.sampled ? '01' : '00'}`;
}

function hex(bytes, env) {
  const values = env.crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, '0')).join('');
}

function attributes(values) {
  return Object.entries(values)
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([key, value]) => ({
      key,
      value: typeof value === 'number'
        ? (Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value })
        : { stringValue: String(value) },
    }));
}
