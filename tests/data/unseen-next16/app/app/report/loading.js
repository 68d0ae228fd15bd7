export default function Loading() { return <p>Loading report…</p>; }
