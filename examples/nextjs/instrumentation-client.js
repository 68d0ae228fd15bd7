// Traces navigations and prefetches in the browser (@nextrace/next/client), when the build
// was told where the collector's browser endpoint is: NEXT_PUBLIC_ variables are written into
// the client bundle by `next build`, so set it then, for example
// NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT=https://collector.example.com/v1/browser/traces.
// Built without it, the client does nothing (and says so once in the console).
import { startClientTracing } from '@nextrace/next/client';

export const onRouterTransitionStart = startClientTracing({
  endpoint: process.env.NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT,
  serviceName: 'nextjs-example-browser',
  flushIntervalMs: 1000, // a demo: show the spans at once (the default is 5 s)
  routeOf: (pathname) => pathname.replace(/^\/products\/[^/]+$/, '/products/[id]'),
});
