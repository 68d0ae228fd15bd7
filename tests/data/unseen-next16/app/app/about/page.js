export const dynamic = 'force-static';
export default function About() { return <p>About this static page.</p>; }
