import type { TracerProvider } from '@opentelemetry/api';

/** A `'use cache'` cache entry, as Next.js 16 hands it to and takes it from a handler. */
export interface CacheEntry {
  value: ReadableStream<Uint8Array>;
  tags: string[];
  /** For the client, in seconds. */
  stale: number;
  /** When the entry was made, in milliseconds since the epoch. */
  timestamp: number;
  /** How long the entry may be used at all, in seconds. */
  expire: number;
  /** How long until the entry is refreshed, in seconds; negative: refresh it now. */
  revalidate: number;
}

/** A `'use cache'` handler, as `cacheHandlers` in next.config names one. */
export interface CacheHandler {
  get(cacheKey: string, softTags: string[]): Promise<undefined | CacheEntry>;
  set(cacheKey: string, pendingEntry: Promise<CacheEntry>): Promise<void>;
  refreshTags(): Promise<void>;
  getExpiration(tags: string[]): Promise<number>;
  updateTags(tags: string[], durations?: { expire?: number }): Promise<void>;
}

export interface CacheHandlerTraceOptions {
  /** The handler's name in next.config's `cacheHandlers`; default `default`. */
  name?: string;
  /** Whether every instance of the app reads the same store; default: true but for `default`. */
  shared?: boolean;
  /** The build's server reference manifest; default `.next/server/server-reference-manifest.json`. */
  manifest?: string;
  /** Where the spans go (scope `@nextrace/next`); default: the global provider `registerOTel` sets. */
  tracerProvider?: TracerProvider;
  /** The clock, in milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

/** The wrapped handler, and the tracing errors counted. */
export interface TracedCacheHandler extends CacheHandler {
  readonly errors: number;
}

/** The cache layer of the handler named `name`: `use_cache`, `use_cache_remote`, `use_cache_<name>`. */
export function cacheLayer(name: string): string;

/** The build's `'use cache'` functions, `file#export` by id, from its server reference manifest. */
export function functionNames(manifestPath: string): Map<string, string>;

/**
 * What is recorded of a key: the function (its name in `names`, else its id) and 32 hex digits
 * of the SHA-256 of the function and the arguments (the build left out); a key of another shape
 * is digested whole.
 */
export function keyDigest(
  cacheKey: string,
  names?: Map<string, string>,
): { digest: string; functionId?: string };

/** What a lookup that found `entry` at `now` means to Next.js. */
export function lookupOutcome(
  entry: CacheEntry | undefined,
  now: number,
): { result: 'hit' | 'stale' | 'miss'; reason?: 'expired' | 'tag_invalidated'; ageMs?: number };

/**
 * Wrap a `'use cache'` handler so that each `get` and `set` records a cache span and each
 * `updateTags` a revalidation span. Tracing never throws into the app; the handler's results
 * and errors reach Next.js unchanged.
 */
export function traceCacheHandler(
  handler: CacheHandler,
  options?: CacheHandlerTraceOptions,
): TracedCacheHandler;

/** A lookup's context, as Next.js's IncrementalCache passes it to the handler. */
export interface IncrementalCacheContext {
  kind: string;
  revalidate?: number | false;
  tags?: string[];
  softTags?: string[];
  cacheControl?: { revalidate?: number | false; expire?: number };
}

/** What an incremental lookup found at `now` (ms since the epoch), as the IncrementalCache reads it. */
export function incrementalOutcome(
  found: { lastModified?: number; value?: unknown; cacheControl?: { revalidate?: number | false } } | null,
  ctx: IncrementalCacheContext | undefined,
  now: number,
): { result: 'hit' | 'stale' | 'miss'; revalidate?: number | false; ageMs?: number };

/**
 * The class of an incremental cache handler (next.config's `cacheHandler`), traced: each `get`
 * and `set` records a span of layer `incremental`, each `revalidateTag` a revalidation. `shared`
 * defaults to true.
 */
export function traceIncrementalCacheHandler<T extends new (...args: any[]) => object>(
  Handler: T,
  options?: Omit<CacheHandlerTraceOptions, 'manifest'>,
): T & { readonly tracingErrors: number };
