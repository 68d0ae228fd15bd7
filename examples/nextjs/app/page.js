import Link from 'next/link';

export default function Home() {
  return (
    <>
      <h1>Home (static)</h1>
      {/* Below the fold: Next.js prefetches these links only once they are scrolled into view. */}
      <section style={{ marginTop: '150vh' }}>
        <h2>More products</h2>
        <Link href="/products/4">Product 4</Link> · <Link href="/products/5">Product 5</Link>
      </section>
    </>
  );
}
