"""nextrace's place in an organisation's notification policy tree: one child route.

Grafana has one policy tree per organisation, and both its provisioning API and its
provisioning files replace the whole tree. A shared Grafana's tree belongs to its
organisation, so nextrace never writes one of its own: ``nextrace dashboards provision``
reads the tree, puts nextrace's route first among the root's children (replacing the one an
earlier run put there) and writes it back, every other route and setting as it was; the
provisioning files carry no tree, and ``docs/runbook.md`` shows the route to paste.

The route matches the label every nextrace rule carries (``source=nextrace``) and sends to
nextrace's contact point, grouped by rule, service and build.
"""

from __future__ import annotations

import copy
from typing import Any

from dashboards.alerts import GROUP_BY

MATCHER = ["source", "=", "nextrace"]


def route(receiver: str) -> dict[str, Any]:
    """nextrace's child route, sending to ``receiver``, in the API's and the files' shape."""
    return {
        "receiver": receiver,
        "object_matchers": [list(MATCHER)],
        "group_by": list(GROUP_BY),
        "continue": False,
    }


def _is_nextrace(child: dict[str, Any]) -> bool:
    return [list(m) for m in child.get("object_matchers") or []] == [MATCHER]


def with_route(tree: dict[str, Any], receiver: str) -> dict[str, Any]:
    """A copy of ``tree`` with nextrace's route as the root's first child, and no other route
    of nextrace's; the rest of the tree is untouched. Applying it twice changes nothing."""
    updated = copy.deepcopy(tree)
    others = [child for child in updated.get("routes") or [] if not _is_nextrace(child)]
    updated["routes"] = [route(receiver), *others]
    return updated
