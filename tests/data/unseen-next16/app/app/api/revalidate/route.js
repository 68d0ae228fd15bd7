import { revalidateTag, revalidatePath } from '../../../lib/cache';
export async function POST(request) {
  const body = await request.json().catch(() => ({}));
  if (body.path) revalidatePath(body.path);
  else if (body.expire) revalidateTag(body.tag || 'shop', { expire: 0 });
  else revalidateTag(body.tag || 'shop', 'max');
  return Response.json({ ok: true, ...body });
}
