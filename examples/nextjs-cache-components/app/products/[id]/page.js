import { Suspense } from 'react';

import { getProduct, getStock } from '../../../lib/data.js';

// The product and its stock come from 'use cache' functions: the page's shell is static, the
// product is rendered per request, from the caches when they hold it. The page shows which
// upstream call each value came from.
async function Product({ params }) {
  const { id } = await params;
  const [product, stock] = await Promise.all([getProduct(id), getStock(id)]);
  return (
    <article>
      <h1>{product.name}</h1>
      <p id="product-call">(product: call {product.call})</p>
      <p id="stock-call">(stock: call {stock.call})</p>
    </article>
  );
}

export default function ProductPage({ params }) {
  return (
    <Suspense fallback={<p>Loading…</p>}>
      <Product params={params} />
    </Suspense>
  );
}
