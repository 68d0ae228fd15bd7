import { cookies } from 'next/headers';
import { API } from '../../../lib/api';
export async function generateMetadata({ params }) {
  const { slug } = await params;
  const meta = await fetch(`${API}/meta/${slug}`, { next: { revalidate: 60 } }).then((r) => r.json());
  return { title: meta.title };
}
export default async function Shop({ params }) {
  const { slug } = await params;
  const jar = await cookies();
  const item = await fetch(`${API}/shop/${slug}`, { next: { revalidate: 30, tags: ['shop'] } }).then((r) => r.json());
  const stock = await fetch(`${API}/stock/${item.sku}`, { next: { revalidate: 30, tags: ['shop', 'stock'] } }).then((r) => r.json());
  return <article><h1>{item.title}</h1><p>sku {item.sku}, stock {stock.stock}</p><p>visitor {jar.get('v')?.value ?? 'anon'}</p></article>;
}
