// A slow upstream API on loopback: 100–300 ms per call. GET /calls logs every call: its path,
// the traceparent it came with, and when it was received and answered (ms since the epoch).
// So a test can tell a data-cache hit (no call) from a miss (a call answered before the page
// was) and a stale read (a call answered after: a background refresh), whatever warm-ups call
// meanwhile, which trace filled an entry, and which calls waited for others. Each answer
// names its call (its place in the log), and the product page shows it: the call whose data a
// page was rendered with. For tests,
// POST /hold?path=P holds the next call for P unanswered until POST /release?path=P.
import { createServer } from 'node:http';

const port = Number(process.env.UPSTREAM_PORT ?? 8081);
const log = [];
const held = new Map(); // path -> the answer of its held call, or null until that call comes

createServer((request, response) => {
  const url = new URL(request.url, 'http://upstream');
  const reply = (body) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  if (url.pathname === '/calls') {
    reply({ calls: log.length, log });
    return;
  }
  const target = url.searchParams.get('path');
  if (request.method === 'POST' && url.pathname === '/hold') {
    held.set(target, null);
    reply({ held: target });
    return;
  }
  if (request.method === 'POST' && url.pathname === '/release') {
    const answer = held.get(target);
    held.delete(target);
    answer?.();
    reply({ released: target });
    return;
  }
  const call = {
    number: log.length,
    path: url.pathname,
    traceparent: request.headers.traceparent ?? '',
    received: Date.now(),
  };
  log.push(call);
  const id = url.pathname.split('/').pop();
  const answer = () => setTimeout(() => {
    call.answered = Date.now();
    reply({ id, name: `Item ${id}`, at: new Date().toISOString(), call: call.number });
  }, 100 + Math.random() * 200);
  if (held.get(url.pathname) === null) held.set(url.pathname, answer);
  else answer();
}).listen(port, '127.0.0.1', () => console.log(`upstream listening on http://127.0.0.1:${port}`));
