/** Options of the browser instrumentation (see README.md, "In the browser"). */
export interface ClientTracingOptions {
  /**
   * The collector's browser endpoint, `https://<collector>/v1/browser/traces`. Without it
   * (a `NEXT_PUBLIC_` variable not set when `next build` ran), nothing is traced and the
   * console says so once.
   */
  endpoint?: string | undefined;
  /** The collector's public browser key, if it asks for one (sent as `?key=`). */
  key?: string;
  /** `service.name` of the browser's spans (default `next-browser`). */
  serviceName?: string;
  /** The share of navigations and prefetches traced, 0 to 1 (default 1: all of them). */
  sampleRate?: number;
  /** How often queued spans are sent (default 5000 ms); also at `maxBatch` and when the page is hidden. */
  flushIntervalMs?: number;
  /** Spans sent at once at most (default 100). */
  maxBatch?: number;
  /** Spans kept waiting at most; beyond, they are counted in `dropped` (default 2000). */
  maxQueue?: number;
  /** The route a pathname belongs to, as the panels group them (default: the pathname). */
  routeOf?: (pathname: string) => string;
}

export type NavigationType = 'push' | 'replace' | 'traverse';

/**
 * Start tracing this page. Returns the `onRouterTransitionStart` to export from
 * `instrumentation-client.js`. Never throws: without `endpoint`, or if starting fails, the
 * function it returns does nothing.
 */
export function startClientTracing(
  options: ClientTracingOptions,
  env?: typeof globalThis,
): (url: string, navigationType: NavigationType) => void;

export declare const DEFAULTS: Required<Omit<ClientTracingOptions, 'endpoint' | 'key'>>;

export declare class ClientTracer {
  constructor(options: ClientTracingOptions, env?: typeof globalThis);
  /** Whether it traces: it has an endpoint. */
  readonly enabled: boolean;
  /** Spans dropped because the queue was full. */
  readonly dropped: number;
  /** Failures inside the instrumentation and refused deliveries, each kept from the app. */
  readonly errors: number;
  install(): void;
  transitionStart(url: string, navigationType: NavigationType): void;
  /** Send the queued spans now. */
  flush(): void;
  /** End the navigation and prefetches in progress, stop the timer and send what is queued. */
  shutdown(): void;
}
