// A product's price through the fetch data cache (the incremental cache's FETCH entries),
// tagged with the product, so a revalidation of product-N reaches it too.
const UPSTREAM = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8081';

export async function GET(request, { params }) {
  const { id } = await params;
  const response = await fetch(`${UPSTREAM}/api/price/${id}`, {
    cache: 'force-cache',
    next: { revalidate: 3600, tags: [`product-${id}`] },
  });
  const price = await response.json();
  return Response.json({ id, call: price.call });
}
