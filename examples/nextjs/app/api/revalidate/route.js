import { revalidateTag } from '../../../lib/cache.js';
import { warmProduct } from '../../../lib/warmups.js';

// POST /api/revalidate?tag=product-1 marks the tag stale (served stale, refreshed in the
// background); add &expire=0 to expire it at once (the next read waits for the upstream), and
// &warm=1 to queue a warm-up of the product behind the rate limiter (a CMS webhook's pattern).
export async function POST(request) {
  const url = new URL(request.url);
  const tag = url.searchParams.get('tag');
  if (!tag) {
    return Response.json({ error: 'give ?tag=' }, { status: 400 });
  }
  revalidateTag(tag, url.searchParams.get('expire') === '0' ? { expire: 0 } : 'max');
  const product = /^product-(\d+)$/.exec(tag);
  const warmup =
    product && url.searchParams.get('warm') === '1'
      ? warmProduct(url.origin, product[1], 'webhook')
      : null;
  return Response.json({ revalidated: tag, warmup });
}
