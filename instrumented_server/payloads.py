"""What a render sends: an HTML document for a browser, or an RSC payload for the client router.

Both carry the same page: its title, its links (``<a href>`` in HTML; host elements,
``["$", "a", null, props]``, in the RSC payload, as React Server Components serialize them)
with their prefetch mode, and the data each fetch returned, with the data cache's answer, so
that a hit and a miss are visible in the page. HTML streams as Next.js's does: the shell
(``<main data-route>``, the links, the shell's data, a ``loading`` fallback where the route
has one), then one ``<section data-boundary>`` per Suspense boundary as its data arrives (the
page's own, with a ``loading`` fallback, hides the fallback: no script is needed to read it). The
RSC form is line-delimited JSON: line ``0`` is the tree, then one line per boundary.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from instrumented_server.definition import Link
from instrumented_server.stale_times import DEFAULT_NEXT_VERSION, STALE_TIMES, StaleTimes

ROUTER_SCRIPT = "/_nextrace/router.js"
BROWSER_SERVICE = "browser"  # the virtual browsers' service name too (investigate.report)


@dataclass(frozen=True)
class Fetched:
    """What a fetch gave the render: the upstream's answer, and the data cache's
    (``hit``, ``stale``, ``miss``, ``bypass``)."""

    value: object
    cache: str

    def describe(self) -> dict[str, object]:
        """The answer's fields that a page shows."""
        value = self.value if isinstance(self.value, dict) else {"value": self.value}
        return {**value, "cache": self.cache}


def _answered_at(fields: dict[str, object]) -> str:
    at = fields.get("at")
    if not isinstance(at, int | float):
        return ""
    when = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")
    return f' <time datetime="{when}">{when[11:23]}</time>'


def _fetched_html(fetched: Sequence[Fetched]) -> str:
    items = []
    for one in fetched:
        fields = one.describe()
        name = f"{fields.get('upstream', '')}{fields.get('path', '')}"
        items.append(
            f'<li data-cache="{escape(one.cache)}">{escape(name)}: {escape(one.cache)}'
            f"{_answered_at(fields)}</li>"
        )
    return f"<ul>{''.join(items)}</ul>" if items else ""


class Payloads:
    """The text of every payload the server sends, for one build (``build_id``). Documents
    load the client router (``static/router.js``), which names pages by ``routes`` (the app's
    route templates, in matching order), keeps payloads for ``stale_times`` (those of the
    Next.js version the server plays) and sends its spans to ``browser_endpoint`` (a
    collector's ``/v1/browser/traces``), if any."""

    def __init__(
        self,
        build_id: Callable[[], str],
        browser_endpoint: str | None = None,
        routes: Sequence[str] = (),
        stale_times: StaleTimes = STALE_TIMES[DEFAULT_NEXT_VERSION],
    ) -> None:
        self._build_id = build_id
        self._browser_endpoint = browser_endpoint
        self._routes = list(routes)  # route templates, in the order a path is matched
        self._stale_times = stale_times

    def _router(self, dynamic: bool) -> str:
        config: dict[str, object] = {
            "serviceName": BROWSER_SERVICE,
            "dynamic": dynamic,
            "routes": self._routes,
            "staleTimes": {
                "dynamic": self._stale_times.dynamic_s,
                "static": self._stale_times.static_s,
            },
        }
        if self._browser_endpoint:
            config["endpoint"] = self._browser_endpoint
        text = json.dumps(config).replace("</", "<\\/")
        return (
            f'<script type="application/json" id="nextrace-router">{text}</script>'
            f'<script type="module" src="{ROUTER_SCRIPT}"></script>'
        )

    def shell(
        self,
        variant: str,
        template: str,
        path: str,
        *,
        loading: bool,
        links: Sequence[Link] = (),
        fetched: Sequence[Fetched] = (),
        dynamic: bool = False,
    ) -> bytes:
        """The first chunk: the page's frame, its links and the data its shell waited for."""
        if variant == "rsc":
            tree = {
                "b": self._build_id(),
                "f": [[template, path]],
                "loading": loading,
                "nav": [
                    [
                        "$",
                        "a",
                        None,
                        {"href": link.href, "prefetch": link.prefetch, "children": link.href},
                    ]
                    for link in links
                ],
                "data": [one.describe() for one in fetched],
            }
            return (f"0:{json.dumps(tree, default=str)}\n").encode()
        fallback = '<div class="loading">Loading…</div>' if loading else ""
        nav = "".join(
            f'<a href="{escape(link.href)}" data-prefetch="{link.prefetch}">{escape(link.href)}</a>'
            for link in links
        )
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(path)}</title>"
            f'<meta name="next-build" content="{escape(self._build_id())}">'
            f"{self._router(dynamic)}</head><body><nav>{nav}</nav>"
            f'<main data-route="{escape(template)}"><h1>{escape(path)}</h1>'
            f"{_fetched_html(fetched)}{fallback}"
        ).encode()

    def boundary(self, variant: str, index: int, name: str, fetched: Sequence[Fetched]) -> bytes:
        """A Suspense boundary's chunk, once its data has arrived."""
        if variant == "rsc":
            body = json.dumps(
                {"boundary": name, "data": [one.describe() for one in fetched]}, default=str
            )
            return f"{index}:{body}\n".encode()
        # The page's own data replaces its loading fallback, as the client router would.
        hide = "<style>main > .loading{display:none}</style>" if name == "page" else ""
        return (
            f'{hide}<section data-boundary="{escape(name)}"><h2>{escape(name)}</h2>'
            f"{_fetched_html(fetched)}</section>"
        ).encode()

    def tail(self, variant: str) -> bytes:
        return b"" if variant == "rsc" else b"</main></body></html>"

    def loading_only(self, template: str, path: str) -> bytes:
        tree = {"b": self._build_id(), "f": [[template, path]], "loading": [["$", "div", "l"]]}
        return (f"0:{json.dumps(tree)}\n").encode()

    def empty(self, template: str, path: str) -> bytes:
        tree = {
            "b": self._build_id(),
            "f": [[template, path, None, [None, None], True]],
            "S": False,
        }
        return (f"0:{json.dumps(tree)}\n").encode()
