"""Traffic for the reference server: virtual browsers with a client router cache, and scenarios.

These are clients of the server, as real browsers are: they speak HTTP to it, read the link
graph from the same app definition, and export their own navigation and prefetch spans
over OTLP. Nothing in :mod:`instrumented_server` imports them.
"""
