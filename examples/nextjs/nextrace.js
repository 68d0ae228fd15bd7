// Optional: records on Next.js's own request spans what its spans leave out, so that nextrace
// need not infer it. Node.js runtime only; add it in instrumentation.js (see README.md).
//
// - `next.prefetch`: none, auto (Next-Router-Prefetch or Purpose: prefetch) or segment
//   (Next-Router-Segment-Prefetch). A proxy (middleware) cannot record this: Next.js removes
//   these headers from the request it hands to the proxy (vercel/next.js#63728).
// - `http.response.header.x-nextjs-cache`: the full route cache's answer (HIT, STALE, MISS,
//   REVALIDATED), named as OpenTelemetry names captured response headers.
//
// It reads the raw request through Node's `http.server.request.start` diagnostics channel,
// keeps it for the rest of that request with AsyncLocalStorage, and sets the attributes on
// each `BaseServer.handleRequest` span of the request while the span is open.
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';

const REQUEST_SPAN = 'BaseServer.handleRequest';
const CACHE_HEADER = 'x-nextjs-cache';

/** What kind of prefetch a request is, from its headers. */
export function prefetchKind(headers) {
  if (headers['next-router-segment-prefetch']) return 'segment';
  if (headers['next-router-prefetch'] || headers.purpose === 'prefetch') return 'auto';
  return 'none';
}

export class NextraceSpanProcessor {
  constructor() {
    this.requests = new AsyncLocalStorage();
    subscribe('http.server.request.start', ({ request, response }) => {
      const facts = { prefetch: prefetchKind(request.headers), spans: [] };
      watchCacheHeader(response, facts);
      this.requests.enterWith(facts);
    });
  }

  onStart(span) {
    const facts = this.requests.getStore();
    if (!facts || span.attributes?.['next.span_type'] !== REQUEST_SPAN) return;
    span.setAttribute('next.prefetch', facts.prefetch);
    facts.spans.push(span);
    if (facts.cache) span.setAttribute(`http.response.header.${CACHE_HEADER}`, [facts.cache]);
  }

  onEnd() {}

  forceFlush() {
    return Promise.resolve();
  }

  shutdown() {
    return Promise.resolve();
  }
}

function watchCacheHeader(response, facts) {
  const setHeader = response.setHeader;
  response.setHeader = function (name, value) {
    if (String(name).toLowerCase() === CACHE_HEADER) {
      facts.cache = String(value);
      for (const span of facts.spans) {
        if (span.isRecording()) span.setAttribute(`http.response.header.${CACHE_HEADER}`, [facts.cache]);
      }
    }
    return setHeader.apply(this, arguments);
  };
}
