"""The trace view and the slow list as web pages, for a browser: where a Grafana data link or an
alert's link leads.

- ``/trace/{id}``: ``nextrace trace``'s waterfall, critical path, parts and cause, with the
  waterfall drawn (the report's SVG) above the same text;
- ``/slow?route=&build=&service=&kind=&since=&limit=``: ``nextrace slow``'s list, each trace
  id a link to its page.

Each page is one self-contained document: no script, nothing to load from anywhere (its
``Content-Security-Policy`` forbids it), its links relative, so that a proxy may serve the
pages under any prefix. The text is the commands' own, so a page says what the command says.
Reads go through the store's read-only guard, as the commands' do (:mod:`investigate.reader`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping

from collector.admin.endpoints import Page
from collector.storage.store import ClickHouseStore
from contract.errors import NextraceError
from investigate import slow as slow_list
from investigate.diagnosis import diagnose_stored
from investigate.reader import Reader, StoreReader
from investigate.spans import TraceNotFound, check_trace_id
from investigate.waterfall import render_text

MAX_LIMIT = 50  # each listed trace is read and diagnosed, in the queue /sql reads wait in
_TRACE_IDS = re.compile(r"\b[0-9a-f]{32}\b")


class BadPageRequest(NextraceError):
    """A page was asked for with a parameter it cannot take (HTTP 400)."""


def trace_page(reader: Reader, trace_id: str) -> str:
    """The page of one trace; :class:`investigate.spans.TraceNotFound` if none is stored."""
    try:
        trace_id = check_trace_id(trace_id)
    except NextraceError as exc:
        raise BadPageRequest(str(exc)) from None
    diagnosis = diagnose_stored(reader, trace_id)
    from investigate.report_html import waterfall_svg  # Matplotlib: only once a page is asked

    root = diagnosis.trace.root
    text = render_text(diagnosis)
    own = diagnosis.trace.trace_id
    body = [
        f"<h1>{html.escape(root.name)}</h1>",
        f"<p class='cause'>cause: {html.escape(diagnosis.cause or '-')}</p>",
        f"<figure>{waterfall_svg(diagnosis)}<figcaption>Spans that last at least 1% of the "
        "trace, the critical path in red.</figcaption></figure>",
        f"<pre>{_linked(text, lambda t: '' if t == own else t)}</pre>",
    ]
    return _document(f"trace {own}", body)


def slow_page(reader: Reader, query: Mapping[str, str], now_ns: int | None = None) -> str:
    """The slow list the ``query``'s filters ask for (those of ``nextrace slow``)."""
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise BadPageRequest(f"limit {query['limit']!r}: give a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadPageRequest(f"limit {limit}: give 1 to {MAX_LIMIT}")
    since = query.get("since", "")
    filters = slow_list.Filters(
        route=query.get("route", ""),
        service=query.get("service", ""),
        build=query.get("build", ""),
        kind=query.get("kind", ""),
        since_ns=slow_list.since_ns(since, now_ns) if since else 0,
        limit=limit,
    )
    found = slow_list.slowest(reader, filters)
    asked = ", ".join(f"{k} {v}" for k, v in query.items() if v) or "all stored"
    body = [
        f"<h1>Slowest navigations ({html.escape(asked)})</h1>",
        f"<pre>{_linked(slow_list.render_text(found), lambda t: f'trace/{t}')}</pre>",
    ]
    return _document("slowest navigations", body)


def store_pages(store: ClickHouseStore) -> dict[str, Page]:
    """The pages of ``store``, read through its read-only guard: what ``nextrace collect``
    serves beside its store."""
    return pages_of(StoreReader(store))


def pages_of(reader: Reader) -> dict[str, Page]:
    """The pages, by route path, reading through ``reader``; a mistake in the request is a
    one-line page (400), a trace not stored one too (404)."""

    def answered(render: Callable[[], str]) -> tuple[int, str]:
        try:
            return 200, render()
        except TraceNotFound as exc:
            return 404, _document("not found", [f"<p>{html.escape(str(exc))}</p>"])
        except (BadPageRequest, slow_list.BadFilter) as exc:
            return 400, _document("bad request", [f"<p>{html.escape(str(exc))}</p>"])

    return {
        "/trace/{trace_id}": lambda path, _query: answered(
            lambda: trace_page(reader, path["trace_id"])
        ),
        "/slow": lambda _path, query: answered(lambda: slow_page(reader, query)),
    }


def _linked(text: str, href: Callable[[str], str]) -> str:
    """``text`` escaped, each trace id in it a link to ``href(id)`` (none where it is "")."""

    def link(match: re.Match[str]) -> str:
        target = href(match.group(0))
        return f"<a href='{target}'>{match.group(0)}</a>" if target else match.group(0)

    return _TRACE_IDS.sub(link, html.escape(text))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.3em; } .cause { font-size: 1.05em; }
figure { margin: 0 0 1.5em 0; } figcaption { color: #555; font-size: 0.9em; }
svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
"""


def _document(title: str, body: list[str]) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
