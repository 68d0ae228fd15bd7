// Background warm-ups, traced by @nextrace/next: each is a trace of its own, linked to the
// request or webhook that queued it, and nextrace's cold-cache panels show which hits they
// served, how long before, and what the queue did.
import { warmupQueue } from '@nextrace/next/warmup';

import { productUrl } from './products.js';

// One queue per process (the proxy and the route handlers share it), at most 5 warm-ups a
// second, so that a webhook flood cannot overwhelm the upstream.
const warmups = warmupQueue({ ratePerS: 5, maxQueued: 20 });

/**
 * Queue a warm-up of product `id`'s data: a request to this app's own /api/warm/`id`, whose
 * fetch stores the entry in the data cache, as the product page's fetch would. Returns what
 * the queue did: queued, deduplicated or queue_full.
 */
export function warmProduct(origin, id, trigger) {
  return warmups.submit(
    `data:${productUrl(id)}`,
    async ({ headers }) => {
      const response = await fetch(`${origin}/api/warm/${id}`, { headers });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`warming product ${id}: HTTP ${response.status}`);
    },
    { trigger },
  );
}
