import { NextResponse } from 'next/server';

import { warmNextProduct } from './lib/predictive.js';

// Next.js 15's middleware: the same as proxy.js (Next 16's name for it), on the Node.js
// runtime, which @nextrace/next's warm-up queue needs. `node use-next.mjs 15` copies it to
// middleware.js.
export function middleware(request) {
  const response = NextResponse.next();
  response.headers.set('x-example-proxy', '1');
  warmNextProduct(request, response);
  return response;
}

export const config = {
  matcher: ['/((?!_next/static|_next/image|favicon.ico).*)'],
  runtime: 'nodejs',
};
