import Link from 'next/link';

export default function Home() {
  return (
    <main>
      <h1>Products</h1>
      <ul>
        {[1, 2, 3].map((id) => (
          <li key={id}>
            <Link href={`/products/${id}`}>Product {id}</Link>
          </li>
        ))}
      </ul>
    </main>
  );
}
