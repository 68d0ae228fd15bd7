import { handle } from './lib/predictive.js';

// Next.js 15's middleware: the same as proxy.js (Next 16's name for it), on the Node.js
// runtime, which @nextrace/next's warm-up queue needs. `node use-next.mjs 15` copies it to
// middleware.js.
export function middleware(request) {
  return handle(request);
}

export const config = {
  matcher: ['/((?!_next/static|_next/image|favicon.ico).*)'],
  runtime: 'nodejs',
};
