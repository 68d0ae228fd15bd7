import Link from 'next/link';

export const metadata = { title: 'nextrace example' };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>
        <nav>
          <Link href="/">Home</Link> · <Link href="/about">About</Link> ·{' '}
          <Link href="/profile">Profile</Link> · <Link href="/blog">Blog</Link> ·{' '}
          <Link href="/products/1">Product 1</Link> · <Link href="/products/2">Product 2</Link> ·{' '}
          <Link href="/products/3">Product 3</Link>
        </nav>
        <main>{children}</main>
      </body>
    </html>
  );
}
