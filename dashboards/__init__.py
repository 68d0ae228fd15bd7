"""Grafana dashboards and alert rules kept as code, built with grafana-foundation-sdk.

Every query is checked on real ClickHouse after the plugin's macros are expanded
(:mod:`dashboards.macros`), against data whose right answer the tests know.
"""

import warnings

# The SDK's classic dashboard builder warns at import that a v2 model exists; Grafana's
# file provisioning reads the classic model, which is what nextrace writes.
warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
