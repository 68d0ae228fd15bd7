// A slow upstream API on loopback: 100–300 ms per call. GET /calls says how many calls it
// has had, and when it answered each, per path (ms since the epoch), so a test can
// tell a data-cache hit (no call) from a miss (a call answered before the page was) and a
// stale read (a call answered after: a background refresh), whatever warm-ups call meanwhile.
import { createServer } from 'node:http';

const port = Number(process.env.UPSTREAM_PORT ?? 8081);
let calls = 0;
const answered = {};

createServer((request, response) => {
  const url = new URL(request.url, 'http://upstream');
  const reply = (body) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  if (url.pathname === '/calls') {
    reply({ calls, answered });
    return;
  }
  calls += 1;
  const id = url.pathname.split('/').pop();
  setTimeout(() => {
    (answered[url.pathname] ??= []).push(Date.now());
    reply({ id, name: `Item ${id}`, at: new Date().toISOString() });
  }, 100 + Math.random() * 200);
}).listen(port, '127.0.0.1', () => console.log(`upstream listening on http://127.0.0.1:${port}`));
