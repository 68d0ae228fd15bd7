import { cookies } from 'next/headers';
import { API } from '../../lib/api';
export default async function Report() {
  await cookies();
  const r = await fetch(`${API}/slow-report?min=200`, { next: { revalidate: 15 } }).then((x) => x.json());
  return <div><h1>Report</h1><p>generated {r.at}</p></div>;
}
