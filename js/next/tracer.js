// The package's spans carry its own instrumentation scope, as OpenTelemetry instrumentations'
// do: nextrace's collector knows a Next.js app's trace by it even when the package's span is
// the first of the trace to arrive (a revalidation ends before its route handler does).
import { trace } from '@opentelemetry/api';

export const SCOPE = '@nextrace/next';

/** The package's tracer, from `tracerProvider` (default: the global one `registerOTel` sets). */
export function packageTracer(tracerProvider) {
  return (tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
}
