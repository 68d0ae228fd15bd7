import { unstable_cache } from 'next/cache';
import { cookies } from 'next/headers';
import { API } from '../../lib/api';
const getDeals = unstable_cache(
  async () => fetch(`${API}/deals`).then((r) => r.json()),
  ['deals-v1'],
  { revalidate: 20, tags: ['deals'] },
);
export default async function Deals() {
  await cookies();
  const [deals, ticker] = await Promise.all([
    getDeals(),
    fetch(`${API}/ticker`, { cache: 'no-store' }).then((r) => r.json()),
  ]);
  return <div><h1>Deals</h1><pre>{JSON.stringify(deals)}</pre><small>{ticker.at}</small></div>;
}
