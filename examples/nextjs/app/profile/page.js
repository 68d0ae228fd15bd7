import { headers } from 'next/headers';

export default async function Profile() {
  const agent = (await headers()).get('user-agent') ?? 'unknown';
  return <h1>Profile (dynamic) for {agent}</h1>;
}
