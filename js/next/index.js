// Records on Next.js's own request spans what its spans leave out, so that nextrace need not
// infer it. Node.js runtime only; register it in instrumentation.js (see README.md).
//
// - `next.prefetch`: none, auto (Next-Router-Prefetch or Purpose: prefetch) or segment
//   (Next-Router-Segment-Prefetch). A proxy (middleware) cannot record this: Next.js removes
//   these headers from the request it hands to the proxy (vercel/next.js#63728).
// - `http.response.header.x-nextjs-cache`: the full route cache's answer (HIT, STALE, MISS,
//   REVALIDATED), named as OpenTelemetry names captured response headers.
// - `nextrace.build_id`: which build served the request (the `buildId` option,
//   NEXT_DEPLOYMENT_ID, or the build's own id in `.next/BUILD_ID`), so that nextrace can tell
//   builds apart and filter by build.
// - `http.response.body.size`: the bytes of the response body written so far (after any
//   compression), kept current on the request spans while they are open, for prefetch
//   payload sizes.
// - `nextrace.warmup.trigger` on the request spans of a warm-up's request (see warmup.js), and
//   `nextrace.warmup.pending` on a fetch span whose entry a queued warm-up has not filled yet.
// - `next.fetch.tags` on Next.js's `AppRender.fetch` spans: the tags the app gave the fetch
//   (`fetch(url, { next: { tags } })`), so that a miss can be tied to the `revalidateTag` that
//   emptied its entry. Read from a wrapper of `globalThis.fetch`, whichever of it and Next.js's
//   own patch of `fetch` is outside the other.
//
// It reads the raw request through Node's `http.server.request.start` diagnostics channel,
// keeps it for the rest of that request with AsyncLocalStorage, and sets the attributes on
// each `BaseServer.handleRequest` span of the request while the span is open.
//
// Every hook is fail-safe: an error inside it is counted and logged once, never thrown into
// the request that Next.js is serving.
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';

import { currentBuildId } from './build-id.js';
import { failSafe } from './fail-safe.js';
import { WARMUP_HEADER, warmupPending } from './warmup.js';

export { currentBuildId };

const REQUEST_SPAN = 'BaseServer.handleRequest';
const FETCH_SPAN = 'AppRender.fetch';
const FETCH_TAGS = 'next.fetch.tags';
const WRAPPED = Symbol.for('nextrace.fetch');
const CACHE_HEADER = 'x-nextjs-cache';
const CACHE_ATTRIBUTE = `http.response.header.${CACHE_HEADER}`;
const REQUEST_START = 'http.server.request.start';
const BUILD_ID = 'nextrace.build_id';
const BODY_SIZE = 'http.response.body.size';
const WARMUP_TRIGGER = 'nextrace.warmup.trigger';
const WARMUP_PENDING = 'nextrace.warmup.pending';

/** The tags a fetch was given (`init.next.tags`), as strings; [] when none. */
export function fetchTags(init) {
  const tags = init?.next?.tags;
  return Array.isArray(tags) ? tags.map(String) : [];
}

/** What kind of prefetch a request is, from its (lower-case) headers. */
export function prefetchKind(headers) {
  if (headers['next-router-segment-prefetch']) return 'segment';
  if (headers['next-router-prefetch'] || headers.purpose === 'prefetch') return 'auto';
  return 'none';
}

export class NextraceSpanProcessor {
  constructor(options = {}) {
    this.requests = new AsyncLocalStorage();
    this.fetches = new AsyncLocalStorage(); // the tags of the fetch being called, outside Next's
    this._safely = failSafe('a tracing hook');
    this.buildId = '';
    this._safely(() => {
      this.buildId = options.buildId ?? currentBuildId();
    });
    this._onRequest = (message) => this._safely(() => this._start(message));
    subscribe(REQUEST_START, this._onRequest);
    if (options.fetchTags !== false) this._safely(() => this._wrapFetch(options.global ?? globalThis));
  }

  onStart(span) {
    this._safely(() => {
      const type = span.attributes?.['next.span_type'];
      if (type === FETCH_SPAN) return this._startFetch(span);
      if (type !== REQUEST_SPAN) return;
      // The build is the process's: named even on a request whose start the processor did not
      // see (one that came while instrumentation was still registering, under load).
      if (this.buildId) span.setAttribute(BUILD_ID, this.buildId);
      const facts = this.requests.getStore();
      if (!facts) return;
      span.setAttribute('next.prefetch', facts.prefetch);
      if (facts.warmup) span.setAttribute(WARMUP_TRIGGER, facts.warmup);
      facts.spans.push(span);
      if (facts.cache) span.setAttribute(CACHE_ATTRIBUTE, [facts.cache]);
      if (facts.bytes) span.setAttribute(BODY_SIZE, facts.bytes);
    });
  }

  _startFetch(span) {
    // Our wrapper is outside Next's fetch: the tags are known before Next starts its span.
    const tags = this.fetches.getStore();
    if (tags?.length) span.setAttribute(FETCH_TAGS, tags);
    // Or inside it: Next calls the wrapper for the origin, after starting its span.
    const request = this.requests.getStore();
    request?.fetchSpans.push(span);
    // A fetch whose entry a queued warm-up has not filled yet (not the warm-up's own fetch).
    const url = span.attributes?.['http.url'];
    if (url && !request?.warmup && warmupPending(`data:${url}`)) {
      span.setAttribute(WARMUP_PENDING, 'true');
    }
  }

  _wrapFetch(global) {
    const original = global.fetch;
    if (typeof original !== 'function' || original[WRAPPED]) return;
    this._unwrapFetch = () => {
      if (global.fetch === wrapped) global.fetch = original;
    };
    const processor = this;
    const wrapped = function fetch(input, init) {
      const tags = processor._safely(() => fetchTags(init)) ?? [];
      if (tags.length) processor._safely(() => processor._tagFetchSpan(input, tags));
      return processor.fetches.run(tags, () => original.apply(this, arguments));
    };
    wrapped[WRAPPED] = true;
    global.fetch = wrapped;
  }

  _tagFetchSpan(input, tags) {
    const url = String(input?.url ?? input);
    const spans = this.requests.getStore()?.fetchSpans ?? [];
    for (let i = spans.length - 1; i >= 0; i -= 1) {
      const span = spans[i];
      if (span.isRecording() && span.attributes?.['http.url'] === url) {
        span.setAttribute(FETCH_TAGS, tags);
        return;
      }
    }
  }

  onEnd() {}

  forceFlush() {
    return Promise.resolve();
  }

  shutdown() {
    this._safely(() => unsubscribe(REQUEST_START, this._onRequest));
    this._safely(() => this._unwrapFetch?.());
    return Promise.resolve();
  }

  _start({ request, response }) {
    const facts = {
      prefetch: prefetchKind(request.headers),
      warmup: String(request.headers[WARMUP_HEADER] ?? ''),
      spans: [],
      fetchSpans: [],
      bytes: 0,
    };
    this._watchCacheHeader(response, facts);
    this._countBody(response, facts);
    this.requests.enterWith(facts);
  }

  _watchCacheHeader(response, facts) {
    const processor = this;
    const setHeader = response.setHeader;
    response.setHeader = function (name, value) {
      processor._safely(() => {
        if (String(name).toLowerCase() !== CACHE_HEADER) return;
        facts.cache = String(value);
        for (const span of facts.spans) {
          if (span.isRecording()) span.setAttribute(CACHE_ATTRIBUTE, [facts.cache]);
        }
      });
      return setHeader.apply(this, arguments);
    };
  }

  _countBody(response, facts) {
    const processor = this;
    for (const method of ['write', 'end']) {
      const original = response[method];
      response[method] = function (chunk, encoding) {
        processor._safely(() => {
          if (chunk == null || typeof chunk === 'function') return;
          facts.bytes +=
            typeof chunk === 'string'
              ? Buffer.byteLength(chunk, typeof encoding === 'string' ? encoding : 'utf8')
              : (chunk.byteLength ?? 0);
          for (const span of facts.spans) {
            if (span.isRecording()) span.setAttribute(BODY_SIZE, facts.bytes);
          }
        });
        return original.apply(this, arguments);
      };
    }
  }

  /** How many tracing hooks failed (each was skipped). */
  get errors() {
    return this._safely.errors;
  }
}
