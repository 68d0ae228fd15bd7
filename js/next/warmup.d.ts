import type { Span, TracerProvider } from '@opentelemetry/api';

/** The header a warm-up's request to the app carries, with the warm-up's trigger. */
export const WARMUP_HEADER: 'x-nextrace-warmup';

/** What `submit` did with a job. */
export type SubmitOutcome = 'queued' | 'deduplicated' | 'queue_full';

/** What a job is given. */
export interface Warmup {
  /** Send these with the job's request to the app: the warm-up's trace, and that it is one. */
  readonly headers: Record<string, string>;
  /** The warm-up's span, undefined if tracing failed. */
  readonly span: Span | undefined;
  readonly target: string;
  readonly trigger: string;
}

export interface WarmupQueueOptions {
  /** The process's queue of this name is shared by every module that asks; default `default`. */
  name?: string;
  /** Job starts per second; default 5. */
  ratePerS?: number;
  /** Jobs waiting at most; beyond, `submit` answers `queue_full`; default 100. */
  maxQueued?: number;
  /** Jobs running at once; default 2. */
  concurrency?: number;
  /** The build id to record; default: the build serving this process. */
  buildId?: string;
  /** Where the warm-up spans go; default: the global provider `registerOTel` sets. */
  tracerProvider?: TracerProvider;
  /** Where time comes from; default `performance.now` and `setTimeout`. Tests pass their own. */
  clock?: WarmupClock;
}

/** A monotonic clock in milliseconds, and a timer on it. */
export interface WarmupClock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
}

export interface WarmupQueue {
  /**
   * Queue `job` to warm `target` (`data:<url>` for a fetch's entry, `route:<path>` for a
   * page), for `trigger` (default `middleware`). Returns at once. The job runs as its own
   * trace, linked to the span active here; its error is its outcome, never thrown.
   */
  submit(
    target: string,
    job: (warmup: Warmup) => unknown,
    options?: { trigger?: string },
  ): SubmitOutcome;
  /** Whether a job for `target` is waiting or running. */
  pending(target: string): boolean;
  /** Resolves once no job waits or runs. */
  drain(): Promise<void>;
  /** Jobs by outcome so far. */
  readonly counts: Readonly<Record<'ok' | 'error' | 'deduplicated' | 'queue_full', number>>;
  /** Tracing steps that failed and were skipped. */
  readonly errors: number;
}

/**
 * The process's warm-up queue named `options.name`, made on first use with the options.
 * Throws a RangeError, when it is made, if `ratePerS`, `maxQueued` or `concurrency` is not a
 * positive number.
 */
export function warmupQueue(options?: WarmupQueueOptions): WarmupQueue;

/** Whether a warm-up for `target` is queued or running in this process. */
export function warmupPending(target: string): boolean;

/** Whether a request is a warm-up's (it carries {@link WARMUP_HEADER}). */
export function isWarmupRequest(
  headers: { get(name: string): string | null } | Readonly<Record<string, string | string[] | undefined>>,
): boolean;
