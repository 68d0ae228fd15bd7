// What the browser instrumentation (@nextrace/next/client) costs the main thread per
// navigation: a simulated page does, again and again, what a Next.js page does (a link's
// prefetch, then a navigation that asks the server for its RSC payload and reads it to the
// end), once without the instrumentation and once with it, in turn; the difference is its
// cost. The spans are serialized and handed to fetch as they would be sent (every 50 spans).
// CPU time of this process, so a shared machine's other work does not count; 5 runs each,
// median and lowest-highest. Not a browser: the figure is the instrumentation's own
// JavaScript, not layout or rendering, which it does not touch.
//
// Run: node bench/client_cost.mjs [--out FILE]
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ClientTracer } from '../js/next/client.js';

const NAVIGATIONS = 2000;
const RUNS = 5;
const PAYLOAD = 'x'.repeat(3000); // an RSC payload of a few kB
const here = dirname(fileURLToPath(import.meta.url));
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : join(here, 'results', 'client_cost.json');

function page() {
  const frames = [];
  let now = 0;
  const env = {
    location: new URL('https://shop.example.com/'),
    performance: { timeOrigin: 1_764_153_000_000, now: () => (now += 0.01) },
    crypto: globalThis.crypto,
    Headers,
    Request,
    fetch: async (input) => (String(input).includes('/v1/browser/traces')
      ? new Response('{}')
      : new Response(PAYLOAD)),
    requestAnimationFrame: (callback) => frames.push(callback),
    setInterval: () => 0,
    clearInterval: () => {},
    document: { querySelectorAll: () => [{ href: 'https://shop.example.com/products/1' }] },
  };
  const drawFrame = () => frames.splice(0, frames.length).forEach((callback) => callback());
  return { env, drawFrame };
}

async function navigate(env, drawFrame, tracer, i) {
  const path = `/products/${i % 50}`;
  const prefetch = await env.fetch(`${path}?_rsc=p`, { headers: { RSC: '1', 'Next-Router-Prefetch': '1' } });
  await prefetch.text();
  tracer?.transitionStart(path, 'push');
  const response = await env.fetch(`${path}?_rsc=n`, { headers: { RSC: '1' } });
  env.location = new URL(path, env.location);
  await response.text();
  await new Promise((resolve) => setImmediate(resolve)); // the copy the tracer reads
  drawFrame();
}

async function run(instrumented) {
  const { env, drawFrame } = page();
  const tracer = instrumented
    ? new ClientTracer({ endpoint: 'https://collector.example.com/v1/browser/traces', maxBatch: 50 }, env)
    : null;
  tracer?.install();
  const started = process.cpuUsage();
  for (let i = 0; i < NAVIGATIONS; i += 1) await navigate(env, drawFrame, tracer, i);
  tracer?.flush();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / NAVIGATIONS; // µs per navigation
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const plain = [];
const traced = [];
await run(true); // warm up both paths
await run(false);
for (let r = 0; r < RUNS; r += 1) {
  plain.push(await run(false));
  traced.push(await run(true));
}
const added = traced.map((value, i) => value - plain[i]);
const round = (value) => Math.round(value * 10) / 10;
const result = {
  benchmark: 'client_cost',
  when: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  node: process.version,
  navigations_per_run: NAVIGATIONS,
  runs: RUNS,
  us_per_navigation_without: { median: round(median(plain)), spread: [round(Math.min(...plain)), round(Math.max(...plain))] },
  us_per_navigation_with: { median: round(median(traced)), spread: [round(Math.min(...traced)), round(Math.max(...traced))] },
  us_added_per_navigation: { median: round(median(added)), spread: [round(Math.min(...added)), round(Math.max(...added))] },
};
console.log(
  `main-thread CPU per navigation (a prefetch and a navigation): ${result.us_per_navigation_without.median} µs without, `
  + `${result.us_per_navigation_with.median} µs with the instrumentation: ${result.us_added_per_navigation.median} µs added `
  + `(${result.us_added_per_navigation.spread.join('-')} over ${RUNS} runs)`,
);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`written to ${out}`);
