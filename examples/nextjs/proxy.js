import { handle } from './lib/predictive.js';

// A proxy (Next 16's name for middleware) that runs on every page and API request, as most
// apps' do: nextrace shows how much of its work goes to prefetches. It also warms up
// predictively (lib/predictive.js). On Next.js 15, middleware.next15.js does the same
// (`node use-next.mjs 15`).
export default function proxy(request) {
  return handle(request);
}

// Next.js reads this where it is written: each of the two files has its own.
export const config = {
  matcher: ['/((?!_next/static|_next/image|favicon.ico).*)'],
};
