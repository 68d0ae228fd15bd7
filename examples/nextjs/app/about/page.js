export default function About() {
  return <h1>About (static)</h1>;
}
