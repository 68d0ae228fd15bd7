import { revalidateTag } from 'next/cache';

// POST /api/revalidate?tag=product-1: stale from now on ('max': served once more while it
// refreshes); &expire=0: gone at once (the next read waits for fresh data).
export async function POST(request) {
  const { searchParams } = new URL(request.url);
  const tag = searchParams.get('tag');
  if (!tag) return Response.json({ error: 'tag is required' }, { status: 400 });
  const expireNow = searchParams.get('expire') === '0';
  revalidateTag(tag, expireNow ? { expire: 0 } : 'max');
  return Response.json({ revalidated: tag, profile: expireNow ? 'expire=0' : 'max' });
}
