import { revalidateTag } from '../../../lib/cache.js';

// POST /api/revalidate?tag=product-1 marks the tag stale (served stale, refreshed in the
// background); add &expire=0 to expire it at once (the next read waits for the upstream).
export async function POST(request) {
  const url = new URL(request.url);
  const tag = url.searchParams.get('tag');
  if (!tag) {
    return Response.json({ error: 'give ?tag=' }, { status: 400 });
  }
  revalidateTag(tag, url.searchParams.get('expire') === '0' ? { expire: 0 } : 'max');
  return Response.json({ revalidated: tag });
}
