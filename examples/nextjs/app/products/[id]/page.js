import { fetchProduct } from '../../../lib/products.js';

export default async function Product({ params }) {
  const { id } = await params;
  const product = await (await fetchProduct(id)).json();
  return (
    <h1>
      {product.name} (fetched {product.at})
    </h1>
  );
}
