"""Receiving: the OTLP, browser and CDN endpoints, and what guards them before a body is read
(hosts, authentication, connections, decoding)."""
