/** The parts of an OpenTelemetry SDK span the processor reads and writes. */
export interface RecordingSpan {
  readonly attributes?: Readonly<Record<string, unknown>>;
  setAttribute(key: string, value: string | string[]): unknown;
  isRecording(): boolean;
}

/** How a request asked for its page: `segment`, `auto` (a prefetch) or `none`. */
export type PrefetchKind = 'segment' | 'auto' | 'none';

/** The prefetch kind of a request, from its lower-case request headers. */
export function prefetchKind(headers: Readonly<Record<string, string | string[] | undefined>>): PrefetchKind;

/** The build serving this process: `NEXT_DEPLOYMENT_ID`, else the id in `<appDir>/.next/BUILD_ID`, else ''. */
export function currentBuildId(env?: Readonly<Record<string, string | undefined>>, appDir?: string): string;

export interface NextraceOptions {
  /** The build (deployment) id to record on request spans; default: {@link currentBuildId}. */
  buildId?: string;
  /** Record `next.fetch.tags` on Next.js's fetch spans by wrapping `fetch`; default true. */
  fetchTags?: boolean;
  /** Where `fetch` lives; default `globalThis` (tests pass their own). */
  global?: { fetch?: unknown };
}

/** The tags a fetch was given (`init.next.tags`), as strings; [] when none. */
export function fetchTags(init?: { next?: { tags?: unknown } }): string[];

/**
 * A span processor for `@vercel/otel`'s `registerOTel({ spanProcessors: ['auto', new
 * NextraceSpanProcessor()] })` (Node.js runtime). It records `next.prefetch` and
 * `http.response.header.x-nextjs-cache` and `nextrace.build_id` on Next.js's
 * `BaseServer.handleRequest` spans, and `next.fetch.tags` on its `AppRender.fetch` spans. Its
 * hooks never throw into a request: `errors` counts the ones that failed.
 */
export class NextraceSpanProcessor {
  constructor(options?: NextraceOptions);
  readonly errors: number;
  readonly buildId: string;
  onStart(span: RecordingSpan, parentContext?: unknown): void;
  onEnd(span: unknown): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}
