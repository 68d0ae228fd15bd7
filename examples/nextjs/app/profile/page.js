import { headers } from 'next/headers';

import { UPSTREAM } from '../upstream.js';

/** GET `path` from the upstream, uncached: a profile is per visitor. */
async function get(path) {
  const response = await fetch(`${UPSTREAM}${path}`, { cache: 'no-store' });
  return response.json();
}

export default async function Profile() {
  const agent = (await headers()).get('user-agent') ?? 'unknown';
  // A waterfall, as many pages have one: the orders and the recommendations need the user's
  // id, so each waits for the user's fetch; they do not wait for each other.
  const user = await get('/api/user/7');
  const [orders, picks] = await Promise.all([
    get(`/api/orders/${user.id}`),
    get(`/api/recommendations/${user.id}`),
  ]);
  return (
    <h1>
      Profile (dynamic) of {user.name} for {agent}: {orders.name}, {picks.name}
    </h1>
  );
}
