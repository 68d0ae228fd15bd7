import Link from 'next/link';
import { API } from '../lib/api';
export default async function RootLayout({ children }) {
  const nav = await fetch(`${API}/api/nav`, { cache: 'force-cache' }).then((r) => r.json());
  return (
    <html lang="en"><body>
      <nav>{nav.links.map((l) => <Link key={l} href={l} style={{ marginRight: 8 }}>{l}</Link>)}</nav>
      <main>{children}</main>
    </body></html>
  );
}
