import { NextResponse } from 'next/server';
import { isWarmupRequest } from '@nextrace/next/warmup';

import { warmProduct } from './warmups.js';

/**
 * What the proxy (middleware) does on every page and API request: let it go on, and warm up
 * predictively, not awaited: a visitor of product N is likely to look at product N+1 next, so
 * its data is fetched in the background (never for a warm-up's own request). The `x-warmup`
 * header says what the queue did. NEXTRACE_PREDICTIVE_WARMUPS=0 turns the warm-ups off (the
 * capture recorder does, to keep one trace per request).
 */
export function handle(request) {
  const response = NextResponse.next();
  response.headers.set('x-example-proxy', '1');
  const product = /^\/products\/(\d+)$/.exec(request.nextUrl.pathname);
  if (product && !isWarmupRequest(request.headers) && process.env.NEXTRACE_PREDICTIVE_WARMUPS !== '0') {
    const next = Number(product[1]) + 1;
    response.headers.set('x-warmup', warmProduct(request.nextUrl.origin, next, 'middleware'));
  }
  return response;
}
