// What @nextrace/next/cache-handler costs a Next.js server per 'use cache' lookup: a handler
// over a Map is read and filled again and again (a miss and its fill, then hits, as a page
// reads a cached function), once bare and once wrapped by traceCacheHandler with the
// OpenTelemetry SDK's tracer and a batch processor whose exporter drops what it gets; the
// difference is the tracing's cost. For scale, the same SDK's cost of one bare span (started
// and ended, no attribute) is measured beside it. CPU time of this process, so a shared
// machine's other work does not count; 5 runs each, median and lowest-highest.
//
// Run: node bench/cache_handler_cost.mjs [--out FILE]  (after `npm install` in js/next)
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { traceCacheHandler } from '../js/next/cache-handler.js';

// The SDK the package's own tests use (a dev dependency of js/next).
const packageRequire = createRequire(new URL('../js/next/package.json', import.meta.url));
const { BasicTracerProvider, BatchSpanProcessor } = packageRequire('@opentelemetry/sdk-trace-base');

const LOOKUPS = 20_000; // per run: one miss and its fill in ten, the rest hits
const RUNS = 5;
const here = dirname(fileURLToPath(import.meta.url));
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : join(here, 'results', 'cache_handler_cost.json');

const dropping = { export: (spans, done) => done({ code: 0 }), shutdown: async () => {} };
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(dropping, { maxQueueSize: 65_536, maxExportBatchSize: 512 })],
});

function memoryHandler() {
  const entries = new Map();
  return {
    async get(key) {
      return entries.get(key);
    },
    async set(key, pending) {
      entries.set(key, await pending);
    },
    async refreshTags() {},
    async getExpiration() {
      return 0;
    },
    async updateTags() {},
  };
}

async function run(traced) {
  const bare = memoryHandler();
  const handler = traced ? traceCacheHandler(bare, { tracerProvider: provider, manifest: '/none' }) : bare;
  const started = process.cpuUsage();
  for (let i = 0; i < LOOKUPS; i += 1) {
    const key = JSON.stringify(['7f3a9c01', [String(i % (LOOKUPS / 10))], ['build-1']]);
    const entry = await handler.get(key, []);
    if (!entry) {
      await handler.set(key, Promise.resolve({
        value: 'v', tags: ['product-1'], stale: 30, timestamp: Date.now(), revalidate: 900, expire: 3600,
      }));
    }
  }
  await provider.forceFlush();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / LOOKUPS; // µs per lookup
}

function bareSpans() {
  const tracer = provider.getTracer('bench');
  const started = process.cpuUsage();
  for (let i = 0; i < LOOKUPS; i += 1) tracer.startSpan('span').end();
  const used = process.cpuUsage(started);
  return (used.user + used.system) / LOOKUPS;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value) => Math.round(value * 10) / 10;
const summary = (values) => ({ median: round(median(values)), spread: [round(Math.min(...values)), round(Math.max(...values))] });
await run(true); // warm up every path
await run(false);
bareSpans();
const plain = [];
const traced = [];
const spans = [];
for (let r = 0; r < RUNS; r += 1) {
  plain.push(await run(false));
  traced.push(await run(true));
  spans.push(bareSpans());
  await provider.forceFlush();
}
const added = traced.map((value, i) => value - plain[i]);
const result = {
  benchmark: 'cache_handler_cost',
  when: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  node: process.version,
  lookups_per_run: LOOKUPS,
  fills_per_run: LOOKUPS / 10,
  runs: RUNS,
  us_per_lookup_without: summary(plain),
  us_per_lookup_with: summary(traced),
  us_added_per_lookup: summary(added),
  us_per_bare_sdk_span: summary(spans),
};
console.log(
  `CPU per 'use cache' lookup (a tenth of them a miss and its fill): ${result.us_per_lookup_without.median} µs bare, `
  + `${result.us_per_lookup_with.median} µs traced: ${result.us_added_per_lookup.median} µs added `
  + `(${result.us_added_per_lookup.spread.join('-')} over ${RUNS} runs); a bare SDK span: ${result.us_per_bare_sdk_span.median} µs`,
);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`written to ${out}`);
