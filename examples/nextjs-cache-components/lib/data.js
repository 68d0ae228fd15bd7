// The app's cached data: a product from the upstream, cached per instance ('use cache', the
// default in-memory handler), and its stock, cached in Redis for every instance
// ('use cache: remote'). Both are tagged with the product, so a revalidation of product-N
// reaches both.
import { cacheLife, cacheTag } from 'next/cache';

const UPSTREAM = process.env.UPSTREAM_URL ?? 'http://127.0.0.1:8081';

async function upstream(path) {
  const response = await fetch(`${UPSTREAM}${path}`);
  return response.json();
}

export async function getProduct(id) {
  'use cache';
  cacheLife('product');
  cacheTag(`product-${id}`);
  return upstream(`/api/product/${id}`);
}

export async function getStock(id) {
  'use cache: remote';
  cacheLife('product');
  cacheTag(`product-${id}`);
  return upstream(`/api/stock/${id}`);
}
