import { isWarmupRequest } from '@nextrace/next/warmup';

import { warmProduct } from './warmups.js';

/**
 * A predictive warm-up, fired from the proxy (middleware) and not awaited: a visitor of
 * product N is likely to look at product N+1 next, so its data is fetched in the background
 * (never for a warm-up's own request). Says what the queue did in the `x-warmup` header.
 * NEXTRACE_PREDICTIVE_WARMUPS=0 turns it off (the capture recorder does, to keep one trace
 * per request).
 */
export function warmNextProduct(request, response) {
  if (process.env.NEXTRACE_PREDICTIVE_WARMUPS === '0') return;
  const product = /^\/products\/(\d+)$/.exec(request.nextUrl.pathname);
  if (product && !isWarmupRequest(request.headers)) {
    const next = Number(product[1]) + 1;
    response.headers.set('x-warmup', warmProduct(request.nextUrl.origin, next, 'middleware'));
  }
}
