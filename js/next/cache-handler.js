// Traces the caches of Next.js 16's Cache Components: every `get` and `set` of a `'use cache'`
// handler (`cacheHandlers` in next.config: `default`, `remote`, or any the app declares) becomes
// a cache lookup or fill span, a child of the span active at the call (the request or render
// that read the cache), with nextrace's cache attributes. The collector stores lookups as rows
// of `cache_events`, a layer per handler (`use_cache`, `use_cache_remote`, `use_cache_<name>`).
// `updateTags` (what `revalidateTag` and `updateTag` reach) is traced as a revalidation.
// `traceIncrementalCacheHandler` does the same for the incremental cache handler
// (`cacheHandler`, singular: ISR pages, route handlers, the fetch data cache), layer
// `incremental`.
//
// The spans carry the layer as `nextrace.cache.kind`, not `cache.layer`: the collector reads a
// lookup with the request around it (its route, build and instance) and writes its row itself.
//
// A handler module wraps the handler it uses, built-in or its own:
//
//   import { createDefaultCacheHandler } from 'next/dist/server/lib/cache-handlers/default.js';
//   import { traceCacheHandler } from '@nextrace/next/cache-handler';
//   export default traceCacheHandler(createDefaultCacheHandler(50 * 1024 * 1024));
//
// What a lookup found is read from the entry the handler returns, as Next.js reads it
// (next/dist/server/lib/cache-handlers/types.d.ts): an entry older than its `expire` is a miss
// (`expired`); one older than its `revalidate` is served stale and refreshed; a negative
// `revalidate` marks an entry whose tag was revalidated (`tag_invalidated`). Keys are recorded
// as digests: a key holds the cached function's arguments. Next.js's key is the function's id,
// its arguments and the build (`[id, args, [buildId]]`, use-cache-wrapper.js), and the id
// changes with each build. The build's server reference manifest names the function by its file
// and its place there (`lib/data.js#$$RSC_SERVER_CACHE_0`), which a new build keeps: that name
// is recorded as the function, and the digest is of it and the arguments, so that a new build's
// first lookup of an entry is seen as the same entry, missed because of the deploy.
//
// Every tracing step is fail-safe: an error in it is counted and logged once, never thrown into
// the app. The handler's own results and errors reach Next.js unchanged.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { failSafe } from './fail-safe.js';
import { packageTracer } from './tracer.js';

const PHASE = 'nextrace.phase';
const KIND = 'nextrace.cache.kind'; // use_cache, use_cache_remote, use_cache_<name>
const SHARED = 'nextrace.cache.shared'; // whether every instance of the app reads the same store
const FUNCTION = 'nextrace.cache.function'; // file#export from the manifest, else Next's id
const ENTRY_KIND = 'nextrace.cache.entry_kind'; // an incremental entry's: FETCH, APP_PAGE…
const RESULT = 'cache.result'; // hit, stale, miss
const HIT = 'cache.hit'; // OpenTelemetry's and Sentry's boolean
const REASON = 'cache.miss_reason';
const KEY = 'cache.key';
const SCOPE = 'cache.scope';
const TAGS = 'cache.tags';
const AGE = 'cache.entry.age_ms';
const HANDLER = 'nextrace.cache.handler'; // the handler's name in next.config's cacheHandlers
const OPERATION = 'nextrace.cache.operation'; // get, set
const LIFE_REVALIDATE = 'nextrace.cache.life.revalidate_s';
const LIFE_EXPIRE = 'nextrace.cache.life.expire_s';
const LIFE_STALE = 'nextrace.cache.life.stale_s';
const REVALIDATE_KIND = 'nextrace.revalidate.kind';
const REVALIDATE_TARGET = 'nextrace.revalidate.target';
const REVALIDATE_PROFILE = 'nextrace.revalidate.profile';
const REVALIDATE_CALL = 'nextrace.revalidate.call';
const REVALIDATE_OUTCOME = 'nextrace.revalidate.outcome';
const ERROR = 2; // SpanStatusCode.ERROR
const CLIENT = 2; // SpanKind.CLIENT: a call to a store

/** The cache layer of the handler Next.js knows as `name` in `cacheHandlers`. */
export function cacheLayer(name) {
  return name === 'default' ? 'use_cache' : `use_cache_${name}`;
}

/**
 * The names of the build's `'use cache'` functions, by id, from its server reference manifest
 * (`.next/server/server-reference-manifest.json`): `file#export`. Empty when it cannot be read.
 */
export function functionNames(manifestPath) {
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const names = new Map();
    for (const [id, reference] of Object.entries(manifest.node ?? {})) {
      if (reference?.filename && reference?.exportedName) {
        names.set(id, `${reference.filename}#${reference.exportedName}`);
      }
    }
    return names;
  } catch {
    return new Map();
  }
}

/**
 * What nextrace records of a `'use cache'` key: `{ digest, functionId }`. Next.js's key is
 * `[id, args, implementation]`; the function is its name in `names` (see `functionNames`), else
 * its id, and the digest is 32 hex digits of the SHA-256 of the function and the arguments (the
 * build left out). A key of another shape is digested whole, with no function.
 */
export function keyDigest(cacheKey, names = new Map()) {
  const key = String(cacheKey);
  let identity = key;
  let functionId;
  try {
    const parts = JSON.parse(key);
    if (Array.isArray(parts) && parts.length === 3 && typeof parts[0] === 'string') {
      functionId = names.get(parts[0]) ?? parts[0];
      identity = JSON.stringify([functionId, parts[1]]);
    }
  } catch {
    // not JSON: a key of the handler's own making, digested whole
  }
  return { digest: createHash('sha256').update(identity).digest('hex').slice(0, 32), functionId };
}

/**
 * What a lookup that found `entry` (undefined: nothing) at `now` (ms since the epoch) means to
 * Next.js: `{ result, reason, ageMs }`.
 */
export function lookupOutcome(entry, now) {
  if (!entry) return { result: 'miss', reason: undefined, ageMs: undefined };
  const ageMs = Math.max(0, now - Number(entry.timestamp));
  if (ageMs > Number(entry.expire) * 1000) return { result: 'miss', reason: 'expired', ageMs };
  if (Number(entry.revalidate) < 0) return { result: 'stale', reason: 'tag_invalidated', ageMs };
  if (ageMs > Number(entry.revalidate) * 1000) return { result: 'stale', reason: 'expired', ageMs };
  return { result: 'hit', reason: undefined, ageMs };
}

/** The cacheLife of an entry, as span attributes (seconds). */
function lifeAttributes(entry) {
  const attributes = {};
  for (const [key, value] of [
    [LIFE_REVALIDATE, entry.revalidate],
    [LIFE_EXPIRE, entry.expire],
    [LIFE_STALE, entry.stale],
  ]) {
    // A negative revalidate is a handler's mark of a stale tag, not the entry's life.
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) attributes[key] = value;
  }
  if (Array.isArray(entry.tags) && entry.tags.length) attributes[TAGS] = entry.tags.map(String);
  return attributes;
}

/**
 * The span-making shared by the wrappers: a lookup or fill span of `layer` (attributes given by
 * the wrapper), a failed call's end, and a handler's tag revalidation. Every step fail-safe.
 */
function handlerSpans(options, { name, layer, shared }) {
  const safely = failSafe('a cache handler trace');
  const tracer = safely(() => packageTracer(options.tracerProvider));
  const start = (operation, attributes) =>
    safely(() =>
      tracer.startSpan(`cache ${operation} ${layer}`, {
        kind: CLIENT,
        attributes: {
          [PHASE]: 'cache',
          [KIND]: layer,
          [SHARED]: shared,
          [HANDLER]: name,
          [OPERATION]: operation,
          [SCOPE]: 'shared',
          ...attributes,
        },
      }),
    );
  const failed = (span, error) =>
    safely(() => {
      if (!span) return;
      span.recordException?.(error);
      span.setStatus({ code: ERROR, message: String(error?.message ?? error) });
      span.end();
    });
  /** `call()`'s result; if it throws, `span` ends as failed and the error goes on to Next.js. */
  const attempt = async (span, call) => {
    try {
      return await call();
    } catch (error) {
      failed(span, error);
      throw error;
    }
  };
  /** Run `call` (the handler's revalidation of `tags`) under a revalidation span. */
  const revalidation = async (callName, tags, durations, call) => {
    const targets = (Array.isArray(tags) ? tags : [tags]).filter((t) => t != null).map(String);
    const span = safely(() =>
      tracer.startSpan(`${callName} ${layer}`, {
        attributes: {
          [PHASE]: 'revalidate',
          [REVALIDATE_KIND]: 'tag',
          [REVALIDATE_TARGET]: targets.join(','),
          [REVALIDATE_PROFILE]: durations?.expire === 0 || !durations ? 'expire' : 'custom',
          [REVALIDATE_CALL]: callName,
          [HANDLER]: name,
          [KIND]: layer,
        },
      }),
    );
    try {
      await call();
    } catch (error) {
      safely(() => span?.setAttribute(REVALIDATE_OUTCOME, 'error'));
      failed(span, error);
      throw error;
    }
    safely(() => {
      if (!span) return;
      span.setAttribute(REVALIDATE_OUTCOME, 'ok');
      span.end();
    });
  };
  return { safely, start, attempt, revalidation };
}

/**
 * Wrap a `'use cache'` cache handler so that each `get` and `set` records a span, and each
 * `updateTags` a revalidation. `options.name` is the handler's name in next.config's
 * `cacheHandlers` (default `default`); `options.shared` whether its store is shared by every
 * instance of the app (default: true but for `default`, Next.js's in-memory handler);
 * `options.manifest` the build's server reference manifest, which names the cached functions
 * (default `.next/server/server-reference-manifest.json` under the working directory);
 * `options.tracerProvider` where the spans go (default: the global provider `registerOTel`
 * sets); `options.now` the clock (ms since the epoch).
 */
export function traceCacheHandler(handler, options = {}) {
  const name = options.name ?? 'default';
  const layer = cacheLayer(name);
  const shared = options.shared ?? name !== 'default';
  const manifest =
    options.manifest ?? join(process.cwd(), '.next', 'server', 'server-reference-manifest.json');
  let names; // read at the first lookup: the handler is made before the build may be read
  const now = options.now ?? Date.now;
  const { safely, start: startSpan, attempt, revalidation } = handlerSpans(options, {
    name,
    layer,
    shared,
  });
  const start = (operation, cacheKey) => {
    const key = safely(() => {
      names ??= functionNames(manifest);
      const { digest, functionId } = keyDigest(cacheKey, names);
      return { [KEY]: digest, ...(functionId ? { [FUNCTION]: functionId } : {}) };
    });
    return key && startSpan(operation, key);
  };

  const traced = {
    async get(cacheKey, softTags) {
      const span = start('get', cacheKey);
      const entry = await attempt(span, () => handler.get(cacheKey, softTags));
      safely(() => {
        if (!span) return;
        const { result, reason, ageMs } = lookupOutcome(entry, now());
        span.setAttribute(RESULT, result);
        span.setAttribute(HIT, result === 'hit');
        if (reason) span.setAttribute(REASON, reason);
        if (ageMs !== undefined) span.setAttribute(AGE, ageMs);
        if (entry) span.setAttributes(lifeAttributes(entry));
        span.end();
      });
      return entry;
    },

    async set(cacheKey, pendingEntry) {
      const span = start('set', cacheKey);
      // The entry's life and tags, once Next.js has them; the promise is not kept beyond set.
      Promise.resolve(pendingEntry).then(
        (entry) => safely(() => span && entry && span.setAttributes(lifeAttributes(entry))),
        () => undefined,
      );
      await attempt(span, () => handler.set(cacheKey, pendingEntry));
      // The handler consumed the entry before resolving, so its attributes are set by now.
      safely(() => span?.end());
    },

    refreshTags() {
      return handler.refreshTags();
    },

    getExpiration(tags) {
      return handler.getExpiration(tags);
    },

    updateTags(tags, durations) {
      return revalidation('updateTags', tags, durations, () =>
        handler.updateTags(tags, durations),
      );
    },
  };
  Object.defineProperty(traced, 'errors', { get: () => safely.errors });
  return traced;
}

/**
 * What a lookup of the incremental cache found (`found`: the handler's `{ lastModified, value }`
 * or null) at `now`, for a lookup whose context is `ctx`, read as Next.js's IncrementalCache
 * reads it: nothing is a `miss`; an entry older than its revalidate time (the fetch's, or the
 * entry's own) is `stale`.
 */
export function incrementalOutcome(found, ctx, now) {
  if (!found) return { result: 'miss', revalidate: ctx?.revalidate, ageMs: undefined };
  const ageMs = Math.max(0, now - Number(found.lastModified ?? 0));
  const revalidate =
    ctx?.revalidate || found.value?.revalidate || found.cacheControl?.revalidate || undefined;
  const stale = typeof revalidate === 'number' && revalidate > 0 && ageMs > revalidate * 1000;
  return { result: stale ? 'stale' : 'hit', revalidate, ageMs };
}

/**
 * Wrap the class of an incremental cache handler (next.config's `cacheHandler`: ISR pages,
 * route handlers and the fetch data cache), built in or the app's own: the class returned
 * records a span per `get` and `set` (layer `incremental`, with the entry's kind: `FETCH`,
 * `APP_PAGE`, `APP_ROUTE`…) and a revalidation per `revalidateTag`. `options.shared`: whether
 * every instance of the app reads the same store (default true: a custom handler is there to
 * share, Redis say); the rest as for `traceCacheHandler`.
 */
export function traceIncrementalCacheHandler(Handler, options = {}) {
  const name = options.name ?? 'incremental';
  const layer = 'incremental';
  const now = options.now ?? Date.now;
  const { safely, start: startSpan, attempt, revalidation } = handlerSpans(options, {
    name,
    layer,
    shared: options.shared ?? true,
  });
  // A lookup's context names its entry's kind; a fill's entry does (a fetch's fill context has
  // no kind).
  const start = (operation, cacheKey, ctx, data) => {
    const attributes = safely(() => {
      const tags = Array.isArray(ctx?.tags) ? ctx.tags.map(String) : [];
      return {
        [KEY]: keyDigest(cacheKey).digest,
        [ENTRY_KIND]: String(ctx?.kind ?? data?.kind ?? ''),
        ...(tags.length ? { [TAGS]: tags } : {}),
      };
    });
    return attributes && startSpan(operation, attributes);
  };

  return class TracedIncrementalCacheHandler extends Handler {
    async get(cacheKey, ctx) {
      const span = start('get', cacheKey, ctx);
      const found = await attempt(span, () => super.get(cacheKey, ctx));
      safely(() => {
        if (!span) return;
        const { result, revalidate, ageMs } = incrementalOutcome(found, ctx, now());
        span.setAttribute(RESULT, result);
        span.setAttribute(HIT, result === 'hit');
        if (result === 'stale') span.setAttribute(REASON, 'expired');
        if (ageMs !== undefined) span.setAttribute(AGE, ageMs);
        if (typeof revalidate === 'number') span.setAttribute(LIFE_REVALIDATE, revalidate);
        span.end();
      });
      return found;
    }

    async set(cacheKey, data, ctx) {
      const span = start('set', cacheKey, ctx, data);
      safely(() => {
        const revalidate = ctx?.revalidate ?? ctx?.cacheControl?.revalidate ?? data?.revalidate;
        const expire = ctx?.cacheControl?.expire;
        if (span && typeof revalidate === 'number') span.setAttribute(LIFE_REVALIDATE, revalidate);
        if (span && typeof expire === 'number') span.setAttribute(LIFE_EXPIRE, expire);
      });
      await attempt(span, () => super.set(cacheKey, data, ctx));
      safely(() => span?.end());
    }

    revalidateTag(tags, durations) {
      return revalidation('revalidateTag', tags, durations, () =>
        super.revalidateTag(tags, durations),
      );
    }

    static get tracingErrors() {
      return safely.errors;
    }
  };
}
