export default function Home() { return <h1>Unseen shop v2</h1>; }
