// Prints, one JSON line each, what @nextrace/next/client sends to the collector's browser
// endpoint for a page whose links are prefetched as Next.js 15 and 16 prefetch them, from a
// server that answers as examples/nextjs does (its answers, abridged): a static page from its
// prerendered output, a page rendered on demand with a loading.js boundary, and one without.
// Run by tests/js/test_client_prefetches.py, which sends them to a real collector.
import { ClientTracer } from '../../js/next/client.js';

const ENDPOINT = 'https://collector.example.com/v1/browser/traces';
const PRERENDERED = { 'x-nextjs-prerender': '1', 'x-nextjs-cache': 'HIT' };
const ANSWERS = {
  // Next.js 15: one request a prefetch.
  15: {
    '/about': ['0:{"b":"kbh","f":[]}\n', { 'x-nextjs-prerender': '1, 1', 'x-nextjs-cache': 'HIT' }],
    '/products/1': ['0:{"b":"kbh","f":[["children","products",["products",{}],["products",null,'
      + '{"children":[["id","1","d"],null,{"children":null},[["$","p","l",{"children":"Loading product…"}],'
      + '[],[]],false]},null,false],null,false]],"S":false}\n'],
    '/profile': ['0:{"b":"kbh","f":[["children","profile",["profile",{"children":["__PAGE__",{}]}],'
      + 'null,[null,null],true]],"S":false}\n'],
  },
  // Next.js 16: the route tree, then the page's segments or what it shows first.
  16: {
    '/about': ['2:[["children",{"s":"__PAGE__"}]]\n0:{"b":"fM-","t":{}}\n', PRERENDERED],
    '/products/2': ['7:[["children",{"s":{"n":"id","t":"d","k":"2"},"h":4,"d":{"r":["$","$L9",null,'
      + '{"loading":[["$","p","l",{"children":"Loading product…"}],[],null]}]}}]]\n'],
    '/profile': ['1:[["children",{"s":"profile"}]]\n7:[["$","meta","0",{"charSet":"utf-8"}]]\n'],
    '/blog': ['0:{"b":"fM-","t":{}}\n', PRERENDERED],
  },
};
const TREE = '0:{"q":"","i":false,"S":false,"b":"fM-","t":{"t":{"s":"","h":16}}}\n';

function page(version, sent) {
  let now = 0;
  let ids = 0;
  const timers = new Map();
  const env = {
    location: new URL('https://shop.example.com/'),
    performance: { timeOrigin: Date.now(), now: () => (now += 5) },
    crypto: globalThis.crypto,
    Headers,
    Request,
    TextDecoder,
    fetch: async (input, init) => {
      const url = new URL(String(input), 'https://shop.example.com/');
      if (url.href.startsWith(ENDPOINT)) {
        sent.push(init.body);
        return new Response('{}');
      }
      const headers = new Headers(init.headers);
      const tree = headers.get('next-router-segment-prefetch') === '/_tree';
      const [body, answerHeaders = {}] = ANSWERS[version][url.pathname];
      const prerendered = answerHeaders['x-nextjs-prerender'] ? answerHeaders : {};
      return tree ? new Response(TREE, { headers: prerendered }) : new Response(body, { headers: answerHeaders });
    },
    setTimeout: (callback) => { ids += 1; timers.set(ids, callback); return ids; },
    clearTimeout: (id) => timers.delete(id),
    setInterval: () => 0,
    clearInterval: () => {},
    document: {
      querySelectorAll: () => Object.keys(ANSWERS[version]).map((path) => ({ href: `https://shop.example.com${path}` })),
    },
  };
  const stream = async () => {
    for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
  };
  const settle = async () => {
    await stream();
    const due = [...timers.values()];
    timers.clear();
    due.forEach((callback) => callback());
  };
  return { env, stream, settle };
}

const sent = [];
for (const version of [15, 16]) {
  const { env, stream, settle } = page(version, sent);
  const tracer = new ClientTracer({
    endpoint: ENDPOINT,
    serviceName: 'shop-browser',
    routeOf: (pathname) => pathname.replace(/^\/products\/[^/]+$/, '/products/[id]'),
  }, env);
  tracer.install();
  const paths = Object.keys(ANSWERS[version]);
  const prefetch = { RSC: '1', 'Next-Router-Prefetch': '1' };
  if (version === 15) {
    await Promise.all(paths.map((path) => env.fetch(`${path}?_rsc=a`, { headers: prefetch })));
  } else {
    const tree = { ...prefetch, 'Next-Router-Segment-Prefetch': '/_tree' };
    await Promise.all(paths.map((path) => env.fetch(`${path}?_rsc=t`, { headers: tree })));
    await stream(); // the trees are answered; each prefetch waits for what follows
    await env.fetch('/about?_rsc=s', { headers: { ...prefetch, 'Next-Router-Segment-Prefetch': '/about/__PAGE__' } });
    await env.fetch('/products/2?_rsc=d', { headers: { ...prefetch, 'Next-Router-State-Tree': '%5B%5D' } });
    await env.fetch('/profile?_rsc=d', { headers: { ...prefetch, 'Next-Router-State-Tree': '%5B%5D' } });
    // /blog: only its tree (its segments were cached): it says nothing of a payload.
  }
  await settle();
  tracer.shutdown();
  if (tracer.errors) throw new Error(`the client failed ${tracer.errors} times`);
}
await new Promise((resolve) => setImmediate(resolve));
for (const body of sent) console.log(body);
