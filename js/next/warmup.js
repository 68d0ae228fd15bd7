// Traced background warm-ups: a bounded, deduplicating, rate-limited queue of jobs that fill
// caches before users ask, the two patterns the seeds describe: a predictive warm-up fired
// from a proxy (middleware) and not awaited, and a webhook that revalidates a tag and queues
// warm-ups of what it emptied. The reference server's warm-ups behave the same way and carry
// the same attributes, so the same panels read both.
//
// Each job is a trace of its own, linked to the span that submitted it (the request or
// webhook that triggered it): a root span `warmup <trigger>` with its target, outcome
// (ok, error, deduplicated, queue_full) and how long it waited in the queue. The job gets
// the headers to send with its request to the app (`traceparent`, and `x-nextrace-warmup`
// so that the app's spans of that request say it is a warm-up), so that the cache entries
// its request fills belong to the warm-up's trace, and nextrace can tell which hits a warm-up
// served and how long before.
//
// Every tracing step is fail-safe: an error in it is counted and logged once, never thrown
// into the app. A job's own error is its outcome, never thrown either.
import { context, propagation, trace } from '@opentelemetry/api';

import { currentBuildId } from './build-id.js';
import { failSafe } from './fail-safe.js';
import { packageTracer } from './tracer.js';

const PHASE = 'nextrace.phase';
const REQUEST_KIND = 'nextrace.request.kind';
const BUILD_ID = 'nextrace.build_id';
const TRIGGER = 'nextrace.warmup.trigger'; // middleware, webhook, deploy…
const TARGET = 'nextrace.warmup.target'; // data:<url> or route:<path>
const OUTCOME = 'nextrace.warmup.outcome';
const QUEUE_WAIT = 'nextrace.warmup.queue_wait_ms';
const RATE = 'nextrace.warmup.rate_per_s'; // the limit the report draws beside the busiest second
export const WARMUP_HEADER = 'x-nextrace-warmup';

// Next.js bundles a proxy, route handlers and instrumentation.js separately, each with its own
// copy of this module: queues live on the process, by name, so that they share one rate limit
// and the span processor sees every queued target.
const QUEUES = Symbol.for('nextrace.warmup.queues');
function queues() {
  globalThis[QUEUES] ??= new Map();
  return globalThis[QUEUES];
}

/** Whether a warm-up for `target` is queued or running in this process: its entries are not
 * filled yet, so a miss on them raced the warm-up. */
export function warmupPending(target) {
  for (const queue of queues().values()) {
    if (queue.pending(target)) return true;
  }
  return false;
}

/** Whether a request is a warm-up's (it carries `x-nextrace-warmup`), so that a proxy does not
 * warm up again for it. `headers`: a `Headers` object or lower-case plain headers. */
export function isWarmupRequest(headers) {
  const value = typeof headers?.get === 'function' ? headers.get(WARMUP_HEADER) : headers?.[WARMUP_HEADER];
  return Boolean(value);
}

const REAL_CLOCK = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
};

/**
 * The process's warm-up queue named `options.name` (default `default`), made on first use
 * with the options: `ratePerS` job starts per second (default 5), `maxQueued` jobs waiting
 * (default 100), `concurrency` jobs running at once (default 2), `buildId` (default: the
 * build serving this process), `tracerProvider` (default: the global one), `clock` (default:
 * `performance.now` and `setTimeout`; a test passes its own to keep time itself).
 */
export function warmupQueue(options = {}) {
  const name = options.name ?? 'default';
  const existing = queues().get(name);
  if (existing) return existing;
  const queue = new WarmupQueue(options);
  queues().set(name, queue);
  return queue;
}

class WarmupQueue {
  constructor(options) {
    for (const name of ['ratePerS', 'maxQueued', 'concurrency']) {
      const value = options[name];
      // A misconfiguration fails at startup, once, not in a request.
      if (value !== undefined && !(typeof value === 'number' && value > 0)) {
        throw new RangeError(`@nextrace/next: warmupQueue's ${name} must be a positive number, not ${value}`);
      }
    }
    this._safely = failSafe('a warm-up trace');
    this._clock = options.clock ?? REAL_CLOCK;
    this.tracer = this._safely(() => packageTracer(options.tracerProvider));
    this.ratePerS = options.ratePerS ?? 5;
    this.maxQueued = options.maxQueued ?? 100;
    this.concurrency = options.concurrency ?? 2;
    this.buildId = options.buildId ?? currentBuildId();
    this.counts = { ok: 0, error: 0, deduplicated: 0, queue_full: 0 };
    this._waiting = new Map(); // target -> its job, in submission order (one per target)
    this._running = new Map(); // target -> number of its jobs running
    this._nextStart = 0; // when the rate limit lets the next job start (ms, monotonic)
    this._timer = null;
    this._idle = [];
  }

  /**
   * Queue `job(warmup)` to warm `target` (`data:<url>` or `route:<path>`), for `trigger`
   * (default `middleware`). Returns at once: `queued`, `deduplicated` (the same target is
   * waiting already) or `queue_full`. `warmup.headers` go with the job's request to the app;
   * `warmup.span` is its span.
   */
  submit(target, job, { trigger = 'middleware' } = {}) {
    const link = this._safely(() => trace.getSpanContext(context.active()));
    if (this._waiting.has(target)) return this._refused(target, trigger, link, 'deduplicated');
    if (this._waiting.size >= this.maxQueued) {
      return this._refused(target, trigger, link, 'queue_full');
    }
    this._waiting.set(target, { target, job, trigger, link, submitted: this._clock.now() });
    this._schedule();
    return 'queued';
  }

  /** Whether a job for `target` is waiting or running. */
  pending(target) {
    return this._running.has(target) || this._waiting.has(target);
  }

  /** Resolves once no job waits or runs (for tests and graceful shutdown). */
  drain() {
    if (!this._waiting.size && !this._running.size) return Promise.resolve();
    return new Promise((resolve) => this._idle.push(resolve));
  }

  _schedule() {
    if (this._timer) return;
    while (this._waiting.size && this._runningCount() < this.concurrency) {
      const delay = this._nextStart - this._clock.now();
      if (delay > 0) {
        this._timer = this._clock.setTimeout(() => {
          this._timer = null;
          this._schedule();
        }, delay);
        return;
      }
      this._nextStart = Math.max(this._nextStart, this._clock.now()) + 1000 / this.ratePerS;
      const first = this._waiting.values().next().value;
      this._waiting.delete(first.target);
      this._start(first);
    }
    if (!this._waiting.size && !this._running.size) {
      for (const resolve of this._idle.splice(0)) resolve();
    }
  }

  _runningCount() {
    let count = 0;
    for (const n of this._running.values()) count += n;
    return count;
  }

  async _start(waiting) {
    const { target, job, trigger, link, submitted } = waiting;
    this._running.set(target, (this._running.get(target) ?? 0) + 1);
    const span = this._span(target, trigger, link, 'ok', this._clock.now() - submitted);
    let outcome = 'ok';
    try {
      const active = span ? trace.setSpan(context.active(), span) : context.active();
      const headers = { [WARMUP_HEADER]: trigger };
      this._safely(() => propagation.inject(active, headers));
      await context.with(active, () => job({ headers, span, target, trigger }));
    } catch (error) {
      outcome = 'error';
      this._safely(() => {
        span?.recordException(error);
        span?.setStatus({ code: 2, message: String(error?.message ?? error) }); // ERROR
      });
    } finally {
      this.counts[outcome] += 1;
      this._safely(() => {
        span?.setAttribute(OUTCOME, outcome);
        span?.end();
      });
      const left = this._running.get(target) - 1;
      if (left) this._running.set(target, left);
      else this._running.delete(target);
      this._schedule();
    }
  }

  _refused(target, trigger, link, outcome) {
    this.counts[outcome] += 1;
    this._safely(() => this._span(target, trigger, link, outcome, 0)?.end());
    return outcome;
  }

  _span(target, trigger, link, outcome, waitMs) {
    return this._safely(() =>
      this.tracer.startSpan(`warmup ${trigger}`, {
        root: true, // its own trace, linked to what triggered it
        links: link ? [{ context: link }] : [],
        attributes: {
          [PHASE]: 'warmup',
          [REQUEST_KIND]: 'warmup',
          [TRIGGER]: trigger,
          [TARGET]: target,
          [OUTCOME]: outcome,
          [QUEUE_WAIT]: Math.round(waitMs * 1000) / 1000,
          [RATE]: this.ratePerS,
          ...(this.buildId ? { [BUILD_ID]: this.buildId } : {}),
        },
      }),
    );
  }

  /** How many tracing steps failed (each was skipped). */
  get errors() {
    return this._safely.errors;
  }
}
