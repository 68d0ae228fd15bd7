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
//   `explicit`: none is, `router.prefetch`), bytes and status. Requests of one link's
//   segments, made together, are one prefetch.
//
// The spans follow nextrace's conventions for browsers (docs/semantic-conventions.md), under
// the scope `@nextrace/next/browser`, and go to the collector's browser endpoint in batches:
// every `flushIntervalMs`, at `maxBatch` spans, and when the page is hidden or left (then
// with `keepalive`, which outlives the page). A root span is sampled with
// `sampleRate`; an unsampled one sends its `traceparent` with the sampled flag off. Nothing
// here throws into the app: a failure is counted in `errors` and the span is dropped.

const SCOPE = '@nextrace/next/browser';
const CLIENT = 3; // SpanKind CLIENT
const HOVER_MS = 500; // a prefetch this soon after the pointer reached a link is the hover's
const SEGMENT_GROUP_MS = 100; // segment requests of one link made within this are one prefetch

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
 * if the collector asks for one, its public browser key.
 */
export function startClientTracing(options, env = globalThis) {
  const tracer = new ClientTracer(options, env);
  tracer.install();
  return (url, navigationType) => tracer.transitionStart(url, navigationType);
}

export class ClientTracer {
  constructor(options, env = globalThis) {
    if (!options?.endpoint) throw new Error('@nextrace/next/client: endpoint is required');
    this.options = { ...DEFAULTS, ...options };
    this.env = env;
    this.browserId = hex(8, env);
    this.queue = [];
    this.dropped = 0; // spans beyond maxQueue
    this.errors = 0;
    this.navigation = null; // the navigation in progress
    this.prefetches = new Map(); // pathname -> the latest prefetch of it
    this.open = new Set(); // prefetches with requests still in flight
    this.hovered = new Map(); // pathname -> when the pointer last reached a link to it
    this.timer = null;
  }

  install() {
    const env = this.env;
    const original = env.fetch.bind(env);
    env.fetch = (input, init) => this.fetch(original, input, init);
    env.addEventListener?.('pointerover', (event) => this.guard(() => this.pointerOver(event)));
    // A hidden page draws no frames, so a navigation still open is ended where it stands.
    const leave = () => this.guard(() => { this.endOpen(); this.flush(true); });
    env.addEventListener?.('pagehide', leave);
    env.document?.addEventListener?.('visibilitychange', () => {
      if (env.document.visibilityState === 'hidden') leave();
    });
    this.timer = env.setInterval?.(() => this.flush(), this.options.flushIntervalMs);
  }

  guard(work) {
    try {
      return work();
    } catch {
      this.errors += 1;
      return undefined;
    }
  }

  transitionStart(url, navigationType) {
    this.guard(() => {
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
    const check = () => {
      if (this.navigation !== navigation) return;
      if (this.env.location.pathname === navigation.pathname && navigation.requests === 0) {
        this.endNavigation();
      } else {
        this.env.requestAnimationFrame(check);
      }
    };
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
    for (const prefetch of this.open) this.end(prefetch.span);
    this.open.clear();
  }

  pointerOver(event) {
    const link = event.target?.closest?.('a[href]');
    if (!link) return;
    const target = new URL(link.href, this.env.location.href);
    if (target.origin === this.env.location.origin) {
      this.hovered.set(target.pathname, this.env.performance.now());
    }
  }

  fetch(original, input, init) {
    const headers = new this.env.Headers(
      init?.headers ?? (input instanceof this.env.Request ? input.headers : undefined),
    );
    const span = headers.get('rsc') === '1' ? this.guard(() => this.rscSpan(input, headers)) : null;
    if (!span) return original(input, init);
    headers.set('traceparent', traceparent(span));
    const sent = input instanceof this.env.Request
      ? original(new this.env.Request(input, { headers }))
      : original(input, { ...init, headers });
    return sent.then(
      (response) => {
        this.guard(() => this.measure(span, response));
        return response;
      },
      (error) => {
        this.end(span);
        throw error;
      },
    );
  }

  /** The span an RSC request gets: a child of its navigation, or (part of) a prefetch. */
  rscSpan(input, headers) {
    // Next.js's router passes a URL object; others a string or a Request.
    const address = input instanceof this.env.Request ? input.url : String(input);
    const url = new URL(address, this.env.location.href);
    const name = `GET ${this.options.routeOf(url.pathname)}`;
    const navigation = this.navigation;
    const prefetching = headers.has('next-router-prefetch')
      || headers.has('next-router-segment-prefetch');
    if (navigation && !prefetching && navigation.pathname === url.pathname) {
      navigation.requested = true;
      navigation.requests += 1;
      const span = this.child(navigation.span, name, { 'url.path': url.pathname });
      span.onEnd = () => { navigation.requests -= 1; };
      return span;
    }
    return this.prefetchSpan(url, headers, name);
  }

  prefetchSpan(url, headers, name) {
    const now = this.env.performance.now();
    const mode = headers.has('next-router-segment-prefetch')
      ? 'segment'
      : headers.has('next-router-prefetch') ? 'auto' : 'full';
    let prefetch = this.prefetches.get(url.pathname);
    if (!(prefetch && mode === 'segment' && now - prefetch.lastRequest < SEGMENT_GROUP_MS)) {
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
        open: 0,
        bytes: 0,
      };
      this.prefetches.set(url.pathname, prefetch);
      this.open.add(prefetch);
    }
    prefetch.lastRequest = now;
    prefetch.open += 1;
    const span = this.child(prefetch.span, name, { 'url.path': url.pathname });
    span.onEnd = () => {
      prefetch.open -= 1;
      prefetch.bytes += span.attributes['http.response.body.size'] ?? 0;
      prefetch.span.attributes['http.response.body.size'] = prefetch.bytes;
      prefetch.span.attributes['http.response.status_code'] = span.attributes['http.response.status_code'];
      if (prefetch.open === 0) {
        this.open.delete(prefetch);
        this.end(prefetch.span);
      }
    };
    return span;
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
    let finished = false;
    const finish = (bytes) => {
      if (finished) return;
      finished = true;
      span.attributes['http.response.body.size'] = bytes;
      this.end(span);
    };
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

  /** End ``span`` once: run its ``onEnd`` (what its parent keeps count of), queue it if
   * sampled. */
  end(span) {
    if (span.ended) return;
    span.ended = true;
    span.onEnd?.();
    if (!span.sampled) return;
    span.end = this.nowNs();
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
   * it (``keepalive``, which some browsers refuse to combine with a CORS preflight, so it is
   * kept for that moment). */
  flush(leaving = false) {
    if (!this.queue.length) return;
    const spans = this.queue.splice(0, this.queue.length);
    const { endpoint, key } = this.options;
    const url = key ? `${endpoint}${endpoint.includes('?') ? '&' : '?'}key=${encodeURIComponent(key)}` : endpoint;
    this.guard(() => {
      this.env.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(this.export(spans)),
        keepalive: leaving,
      }).catch(() => { this.errors += 1; });
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
    this.endOpen();
    this.env.clearInterval?.(this.timer);
    this.flush();
  }
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
