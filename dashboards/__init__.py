"""Grafana dashboards and alert rules kept as code (not built yet)."""
