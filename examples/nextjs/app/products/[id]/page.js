import { UPSTREAM } from '../../upstream.js';

export default async function Product({ params }) {
  const { id } = await params;
  const response = await fetch(`${UPSTREAM}/api/product/${id}`, {
    next: { tags: ['products', `product-${id}`], revalidate: 60 },
  });
  const product = await response.json();
  return (
    <h1>
      {product.name} (fetched {product.at})
    </h1>
  );
}
