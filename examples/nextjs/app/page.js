export default function Home() {
  return <h1>Home (static)</h1>;
}
