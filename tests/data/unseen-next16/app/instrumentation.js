import { registerOTel } from '@vercel/otel';

export async function register() {
  const spanProcessors = ['auto'];
  if (process.env.NEXT_RUNTIME === 'nodejs') {
    const { NextraceSpanProcessor } = await import('@nextrace/next');
    spanProcessors.push(new NextraceSpanProcessor());
  }
  registerOTel({
    serviceName: 'unseen-shop',
    spanProcessors,
    // not from nextrace's docs: needed so the upstream sees a traceparent (the truth join)
    instrumentationConfig: { fetch: { propagateContextUrls: [/127\.0\.0\.1:4100/] } },
  });
  // Keep Next.js's own fetch span: it is the one that says whether the data cache hit.
  process.env.NEXT_OTEL_FETCH_DISABLED = '0';
}
