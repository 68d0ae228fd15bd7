export default function Loading() {
  return <p>Loading product…</p>;
}
