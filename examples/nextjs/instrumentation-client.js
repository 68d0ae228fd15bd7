// Traces navigations and prefetches in the browser (@nextrace/next/client), when the build
// was told where the collector's browser endpoint is: NEXT_PUBLIC_ variables are written into
// the client bundle by `next build`, for example
// NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT=https://collector.example.com/v1/browser/traces.
import { startClientTracing } from '@nextrace/next/client';

const endpoint = process.env.NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT;

export const onRouterTransitionStart = endpoint
  ? startClientTracing({
      endpoint,
      serviceName: 'nextjs-example-browser',
      flushIntervalMs: 1000, // a demo: show the spans at once (the default is 5 s)
      routeOf: (pathname) => pathname.replace(/^\/products\/[^/]+$/, '/products/[id]'),
    })
  : undefined;
