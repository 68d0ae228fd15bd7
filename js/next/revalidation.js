// Traces Next.js's cache revalidations (`revalidateTag`, `revalidatePath`, `updateTag`) as
// spans with nextrace's revalidation attributes, the ones the reference server records, so
// that the revalidation panels show real apps and a later cache miss can be tied to the
// revalidation that caused it. Each span is a child of the span active at the call (the
// route handler or server action that revalidated), so the trace shows what triggered it.
//
// The spans are the package's own (instrumentation scope `@nextrace/next`), from the global
// tracer provider that `registerOTel` sets, or `options.tracerProvider`.
//
// Every tracing step is fail-safe: an error in it is counted and logged once, never thrown
// into the app. Errors of Next.js's own functions reach the caller unchanged.
import { failSafe } from './fail-safe.js';
import { packageTracer } from './tracer.js';

const PHASE = 'nextrace.phase';
const KIND = 'nextrace.revalidate.kind'; // tag, path
const TARGET = 'nextrace.revalidate.target'; // the tag or the path
const TRIGGER = 'nextrace.revalidate.trigger'; // webhook, action…
const PROFILE = 'nextrace.revalidate.profile'; // max (stale while revalidating), expire, or a cacheLife profile
const OUTCOME = 'nextrace.revalidate.outcome'; // ok, error
const CALL = 'nextrace.revalidate.call'; // revalidateTag, revalidatePath, updateTag

/** The profile a revalidation applies: `max`, `expire`, or a named cacheLife profile. */
export function profileName(call, profile) {
  if (call !== 'revalidateTag') return 'expire'; // revalidatePath and updateTag expire at once
  if (profile === undefined) return 'expire'; // Next 15's one-argument form
  if (typeof profile === 'string') return profile;
  return profile && profile.expire === 0 ? 'expire' : 'custom';
}

/**
 * Wrap Next.js's revalidation functions (the `next/cache` module, or an object with the ones
 * to wrap) so that each call records a span. `options.trigger` names what calls them (default
 * `webhook`: a route handler another system calls); `options.tracerProvider` where the spans
 * go (default: the global provider).
 */
export function traceRevalidations(nextCache, options = {}) {
  const trigger = options.trigger ?? 'webhook';
  const safely = failSafe('a revalidation trace');
  const tracer = safely(() => packageTracer(options.tracerProvider));
  const wrap = (call, kind) => {
    const original = nextCache[call];
    if (typeof original !== 'function') return undefined; // not in this Next.js version
    return function traced(target, profile) {
      const span = safely(() =>
        tracer.startSpan(`${call} ${kind}`, {
          attributes: {
            [PHASE]: 'revalidate',
            [KIND]: kind,
            [TARGET]: String(target),
            [TRIGGER]: trigger,
            [PROFILE]: profileName(call, profile),
            [CALL]: call,
          },
        }),
      );
      let outcome = 'error';
      try {
        const result = original.apply(this, arguments);
        outcome = 'ok';
        return result;
      } finally {
        safely(() => {
          if (!span) return;
          span.setAttribute(OUTCOME, outcome);
          if (outcome === 'error') span.setStatus({ code: 2 }); // ERROR
          span.end();
        });
      }
    };
  };
  return {
    revalidateTag: wrap('revalidateTag', 'tag'),
    revalidatePath: wrap('revalidatePath', 'path'),
    updateTag: wrap('updateTag', 'tag'),
    get errors() {
      return safely.errors;
    },
  };
}
