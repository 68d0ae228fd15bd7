"""The collector's own endpoints and self-reporting: /healthz, /metrics, /sql, and its counters
written to the store."""
