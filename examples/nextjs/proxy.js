import { NextResponse } from 'next/server';
import { isWarmupRequest } from '@nextrace/next/warmup';

import { warmProduct } from './lib/warmups.js';

// A proxy (Next 16's name for middleware) that runs on every page and API request, as most
// apps' do: nextrace shows how much of its work goes to prefetches. It also warms up
// predictively: a visitor of product N is likely to look at product N+1 next, so its data is
// fetched in the background, not awaited (not for a warm-up's own request).
export default function proxy(request) {
  const response = NextResponse.next();
  response.headers.set('x-example-proxy', '1');
  const product = /^\/products\/(\d+)$/.exec(request.nextUrl.pathname);
  if (product && !isWarmupRequest(request.headers)) {
    const next = Number(product[1]) + 1;
    response.headers.set('x-warmup', warmProduct(request.nextUrl.origin, next, 'middleware'));
  }
  return response;
}

export const config = {
  matcher: ['/((?!_next/static|_next/image|favicon.ico).*)'],
};
