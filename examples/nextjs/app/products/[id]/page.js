import { fetchProduct } from '../../../lib/products.js';

export default async function Product({ params }) {
  const { id } = await params;
  const product = await (await fetchProduct(id)).json();
  // One text: the upstream call whose data the page shows, as the tests read it.
  return <h1>{`${product.name} (fetched ${product.at}, call ${product.call})`}</h1>;
}
