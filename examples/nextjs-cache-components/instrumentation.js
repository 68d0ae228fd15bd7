// Exports this app's traces to nextrace. The collector's address comes from the standard
// OpenTelemetry variables (OTEL_EXPORTER_OTLP_ENDPOINT), the instance's name from
// OTEL_RESOURCE_ATTRIBUTES (service.instance.id=a): nextrace tells a cache entry that another
// instance filled by it.
import { registerOTel } from '@vercel/otel';

export async function register() {
  const spanProcessors = ['auto'];
  if (process.env.NEXT_RUNTIME === 'nodejs') {
    const { NextraceSpanProcessor } = await import('@nextrace/next');
    spanProcessors.push(new NextraceSpanProcessor());
  }
  registerOTel({
    serviceName: process.env.OTEL_SERVICE_NAME ?? 'nextjs-cache-components',
    spanProcessors,
    // The upstream is this app's own API: its calls join the request's trace (traceparent).
    instrumentationConfig: {
      fetch: { propagateContextUrls: [process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8081'] },
    },
  });
}
