"""The reference server: a Starlette app that models the Next.js request lifecycle.

CDN, middleware, routing, render with the four cache layers, streaming, prefetches,
warm-ups, revalidation and deploys, each phase in its own module and each with a span,
exported over OTLP only. :mod:`instrumented_server.server` reads as the life of a request;
:mod:`instrumented_server.app` builds the ASGI app; :mod:`contract.semconv` is
the span contract the dashboards read. Its clients (virtual browsers, scenarios) live in
:mod:`traffic`.
"""
