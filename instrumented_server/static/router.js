// The reference server's client router: what Next.js's App Router does in a browser, small
// enough to read (no framework). It is traced by @nextrace/next/client, the instrumentation
// real Next.js apps use, so a real browser sends the same navigation and prefetch spans.
//
// - Links entering the viewport are prefetched, and again on hover once what was prefetched
//   went stale, as their `data-prefetch` mode says: `auto` asks with `Next-Router-Prefetch: 1`
//   (the server answers a dynamic route's loading state only), `full` asks for the whole page
//   without it, `off` never prefetches.
// - The router cache keeps each payload for Next.js's stale times (the page's config: a full
//   payload of a dynamic page for `dynamic` seconds, anything else for `static`).
// - A click navigates without a page load: a fresh full payload renders at once (a hit); a
//   cached loading state renders first, then the page is requested (partial); otherwise the
//   page is requested with `RSC: 1` (a miss). Back and forward reuse whatever is cached.
// - A payload of another build means a new deployment: the page is loaded again in full.
import { startClientTracing } from './client.js';

const config = JSON.parse(document.getElementById('nextrace-router')?.textContent || '{}');
const stale = { dynamic: 0, static: 300, ...config.staleTimes };
const build = document.querySelector('meta[name="next-build"]')?.content ?? '';
const routes = (config.routes || []).map((template) => ({
  template,
  segments: template.split('/').filter(Boolean),
}));
const onTransition = config.endpoint
  ? startClientTracing({ endpoint: config.endpoint, serviceName: config.serviceName, routeOf })
  : () => {};
const cache = new Map(); // pathname -> { payload, kind, stored, staleS }
const inFlight = new Map(); // pathname -> the prefetch's promise
let observer = null;

// The route a path renders, named as Next.js names it (`/products/[id]`), so that spans name
// routes, not URLs: the server's templates, tried in its order.
function routeOf(pathname) {
  const parts = pathname.split('/').filter(Boolean);
  const matches = (segments) => {
    for (let i = 0; i < segments.length; i += 1) {
      const segment = segments[i];
      if (segment.startsWith('[[...')) return true;
      if (segment.startsWith('[...')) return parts.length > i;
      if (i >= parts.length) return false;
      if (!segment.startsWith('[') && segment !== parts[i]) return false;
    }
    return segments.length === parts.length;
  };
  return routes.find((route) => matches(route.segments))?.template ?? pathname;
}

function kindOf(tree) {
  if (Array.isArray(tree.loading)) return 'loading';
  if (tree.S === false) return 'empty';
  return 'full';
}

function parse(text) {
  const lines = text.split('\n').filter(Boolean).map((line) => JSON.parse(line.slice(line.indexOf(':') + 1)));
  return { tree: lines[0] ?? {}, boundaries: lines.slice(1) };
}

function fresh(entry) {
  return entry && performance.now() - entry.stored < entry.staleS * 1000;
}

function store(pathname, text, response) {
  const payload = parse(text);
  const kind = kindOf(payload.tree);
  const dynamic = (response.headers.get('cache-control') || '').includes('no-store');
  cache.set(pathname, {
    payload, kind, stored: performance.now(),
    staleS: kind === 'full' && dynamic ? stale.dynamic : stale.static,
  });
  return payload;
}

async function request(pathname, headers) {
  const response = await fetch(pathname, { headers: { RSC: '1', 'Next-Url': location.pathname, ...headers } });
  return { response, text: await response.text() };
}

function prefetch(link) {
  const pathname = new URL(link.href).pathname;
  const mode = link.dataset.prefetch || 'auto';
  if (mode === 'off' || fresh(cache.get(pathname)) || inFlight.has(pathname)) return;
  const headers = mode === 'auto' ? { 'Next-Router-Prefetch': '1' } : {};
  const done = request(pathname, headers).then(({ response, text }) => {
    // A prefetch marked `x-middleware-cache: no-cache` is not kept: Next.js asks again.
    if (response.ok && response.headers.get('x-middleware-cache') !== 'no-cache') {
      store(pathname, text, response);
    }
  }).catch(() => {}).finally(() => inFlight.delete(pathname));
  inFlight.set(pathname, done);
}

function element(tag, attributes, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function dataList(data) {
  const list = element('ul', {});
  for (const fetched of data || []) {
    list.append(element('li', { 'data-cache': fetched.cache }, `${fetched.upstream}${fetched.path}: ${fetched.cache}`));
  }
  return list;
}

function snapshot() {
  return { title: document.title, nav: document.querySelector('nav').innerHTML, main: document.querySelector('main').outerHTML };
}

function render(pathname, { tree, boundaries, page }) {
  if (page) { // a document this browser loaded: shown again as it was
    document.title = page.title;
    document.querySelector('nav').innerHTML = page.nav;
    document.querySelector('main').outerHTML = page.main;
    watchLinks();
    return;
  }
  const [template] = tree.f?.[0] ?? [pathname];
  document.title = pathname;
  document.querySelector('nav').replaceChildren(...(tree.nav || []).map(([, , , props]) => element('a', { href: props.href, 'data-prefetch': props.prefetch }, props.children)));
  const main = element('main', { 'data-route': template });
  main.append(element('h1', {}, pathname), dataList(tree.data));
  if (tree.loading && !boundaries.some((b) => b.boundary === 'page')) main.append(element('div', { class: 'loading' }, 'Loading…'));
  for (const boundary of boundaries) {
    const section = element('section', { 'data-boundary': boundary.boundary });
    section.append(element('h2', {}, boundary.boundary), dataList(boundary.data));
    main.append(section);
  }
  document.querySelector('main').replaceWith(main);
  watchLinks();
}

async function navigate(pathname, type) {
  onTransition(pathname, type === 'traverse' ? 'traverse' : 'push');
  const entry = cache.get(pathname);
  const usable = entry && entry.kind !== 'empty' && (type === 'traverse' || fresh(entry));
  if (type === 'push') history.pushState({}, '', pathname);
  if (usable) render(pathname, entry.payload); // a hit, or the loading state of a partial hit
  if (usable && entry.kind === 'full') return;
  const { response, text } = await request(pathname, {});
  const payload = parse(text);
  if (payload.tree.b && payload.tree.b !== build) {
    location.reload(); // a new deployment: Next.js falls back to a full page load
    return;
  }
  if (response.ok) store(pathname, text, response);
  if (location.pathname === pathname) render(pathname, payload);
}

function watchLinks() {
  observer?.disconnect();
  observer = new IntersectionObserver((entries) => {
    for (const entry of entries) if (entry.isIntersecting) prefetch(entry.target);
  });
  for (const link of document.querySelectorAll('nav a[href^="/"]')) observer.observe(link);
}

document.addEventListener('pointerover', (event) => {
  const link = event.target.closest?.('a[href^="/"]');
  if (link) prefetch(link); // stale or never prefetched: ask again
});
document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[href^="/"]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
  event.preventDefault();
  navigate(new URL(link.href).pathname, 'push');
});
addEventListener('popstate', () => navigate(location.pathname, 'traverse'));
// The page a browser lands on is in the router cache too, as a full payload.
cache.set(location.pathname, {
  payload: { page: snapshot() }, kind: 'full', stored: performance.now(),
  staleS: config.dynamic ? stale.dynamic : stale.static,
});
watchLinks();
