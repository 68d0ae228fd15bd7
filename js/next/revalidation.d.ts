import type { TracerProvider } from '@opentelemetry/api';

/** Next.js's revalidation functions, as `next/cache` exports them (any may be missing). */
export interface RevalidationFunctions {
  revalidateTag?: (tag: string, profile?: string | { expire?: number }) => void;
  revalidatePath?: (path: string, type?: 'layout' | 'page') => void;
  updateTag?: (tag: string) => void;
}

export interface RevalidationOptions {
  /** What calls these functions, recorded as `nextrace.revalidate.trigger`; default `webhook`. */
  trigger?: string;
  /** Where the spans go (scope `@nextrace/next`); default: the global provider `registerOTel` sets. */
  tracerProvider?: TracerProvider;
}

/** The wrapped functions (missing where Next.js has none), and the tracing errors counted. */
export interface TracedRevalidations extends RevalidationFunctions {
  readonly errors: number;
}

/** The profile a revalidation applies: `max`, `expire`, or a named cacheLife profile. */
export function profileName(call: string, profile?: unknown): string;

/**
 * Wrap Next.js's revalidation functions so that each call records a span with nextrace's
 * revalidation attributes. Tracing never throws into the app; Next.js's own errors reach the
 * caller unchanged.
 */
export function traceRevalidations(
  nextCache: RevalidationFunctions,
  options?: RevalidationOptions,
): TracedRevalidations;
