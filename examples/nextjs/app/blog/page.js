import { UPSTREAM } from '../upstream.js';

export const revalidate = 30; // ISR: regenerated in the background at most every 30 s

export default async function Blog() {
  const response = await fetch(`${UPSTREAM}/api/post/latest`, { cache: 'force-cache', next: { tags: ['posts'] } });
  const post = await response.json();
  return <h1>Blog (ISR), latest post fetched {post.at}</h1>;
}
