// Exports this app's traces to nextrace. The collector's address comes from the standard
// OpenTelemetry variables, for example OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
import { registerOTel } from '@vercel/otel';

import { UPSTREAM } from './app/upstream.js';

export async function register() {
  const spanProcessors = ['auto'];
  // Optional: record prefetch headers and x-nextjs-cache on Next's request spans (@nextrace/next).
  if (process.env.NEXT_RUNTIME === 'nodejs' && process.env.NEXTRACE_HELPER !== '0') {
    const { NextraceSpanProcessor } = await import('@nextrace/next');
    spanProcessors.push(new NextraceSpanProcessor());
  }
  registerOTel({
    serviceName: process.env.OTEL_SERVICE_NAME ?? 'nextjs-example',
    spanProcessors,
    // The upstream is this app's own API: its calls join the request's trace (traceparent).
    instrumentationConfig: { fetch: { propagateContextUrls: [UPSTREAM] } },
  });
  // @vercel/otel turns off Next.js's own fetch span (AppRender.fetch) in favour of its own;
  // Next's span is the one that says whether the data cache hit (next.fetch.cache_status).
  process.env.NEXT_OTEL_FETCH_DISABLED = '0';
}
