import { UPSTREAM } from '../app/upstream.js';

/** The upstream address of product `id`'s data: the data cache's key for it. */
export function productUrl(id) {
  return `${UPSTREAM}/api/product/${id}`;
}

/** Product `id`'s data, through Next.js's data cache (tagged, fresh for 60 s). */
export function fetchProduct(id) {
  return fetch(productUrl(id), { next: { tags: ['products', `product-${id}`], revalidate: 60 } });
}
