import { fetchProduct } from '../../../../lib/products.js';

// GET /api/warm/2 stores product 2's data in the data cache (lib/warmups.js calls it).
export async function GET(request, { params }) {
  const { id } = await params;
  const response = await fetchProduct(id);
  await response.arrayBuffer();
  return Response.json({ warmed: id });
}
