import { API } from '../../../../lib/api';
export async function GET(request, { params }) {
  const { id } = await params;
  const p = await fetch(`${API}/price/${id}`, { next: { revalidate: 10 } }).then((r) => r.json());
  return Response.json({ id, price: p.price });
}
