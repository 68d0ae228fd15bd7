"""Pages a crawler and a real browser can follow: every page is HTML with the links its route
declares and the data its fetches returned; its RSC payload carries the same links; and each
link can be fetched as a document, a client navigation and a prefetch, each with its spans."""

from __future__ import annotations

import json
import re
from importlib import resources

from instrumented_server.definition import load_definition
from instrumented_server.payloads import Payloads
from instrumented_server.routing import RouteTable
from instrumented_server.stale_times import STALE_TIMES

LINK = re.compile(r'<a href="([^"]+)" data-prefetch="(auto|full|off)">')
KINDS = {
    "document": {},
    "rsc_navigation": {"RSC": "1"},
    "rsc_prefetch": {"RSC": "1", "Next-Router-Prefetch": "1"},
}


DEFAULT_APP = (resources.files("instrumented_server") / "default_app.toml").read_text()


def declared_from(start: str) -> set[str]:
    """Every page the app definition links to, from ``start`` on."""
    routes = RouteTable(load_definition())
    found, queue = set(), [start]
    while queue:
        path = queue.pop()
        if path not in found:
            found.add(path)
            match = routes.resolve(path)
            queue += [link.href for link in match.route.links] if match else []
    return found


def test_a_crawl_from_the_home_page_finds_every_declared_link(make_server):
    server = make_server(DEFAULT_APP)
    crawled: dict[str, str] = {}
    queue = ["/"]
    while queue:
        path = queue.pop()
        if path in crawled:
            continue
        response = server.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        crawled[path] = response.text
        queue += [href for href, _ in LINK.findall(response.text)]
    assert set(crawled) == declared_from("/")
    assert len(crawled) > 5

    for path in sorted(crawled):
        server.reset_spans()
        for kind, headers in KINDS.items():
            assert server.get(path, **headers).status_code == 200, (path, kind)
        server.settle()
        requests = server.spans(nextrace__phase="request")
        assert sorted(s.attributes["nextrace.request.kind"] for s in requests) == sorted(KINDS)
        assert {s.attributes["url.path"] for s in requests} == {path}
        prefetches = server.spans(nextrace__phase="prefetch")
        assert len(prefetches) == 1, path  # the prefetch is one, with its own span


def test_a_page_shows_its_data_and_whether_the_cache_served_it(server):
    first = server.get("/products/1").text
    again = server.get("/products/1").text
    cached = re.findall(r'<li data-cache="(\w+)">api/products/1', first + again)
    assert cached[0] == "miss"  # the first render fetched it
    assert "hit" in cached  # the second was served from the data cache
    assert re.search(r"<title>/products/1</title>", first)
    assert first.index("<nav>") < first.index('<main data-route="/products/[id]">')


def test_an_rsc_payload_carries_the_same_links_as_the_page(make_server):
    server = make_server(DEFAULT_APP)
    page = server.get("/products/1").text
    payload = server.get("/products/1", RSC="1").text
    tree = json.loads(payload.split("\n", 1)[0].split(":", 1)[1])
    links = [(props["href"], props["prefetch"]) for _, tag, _, props in tree["nav"]]
    assert {tag for _, tag, _, _ in tree["nav"]} == {"a"}
    assert links == LINK.findall(page)
    assert links  # the shop's product page links to others


def test_the_pages_router_keeps_the_stale_times_of_the_next_version_served():
    def config(version: str) -> dict[str, object]:
        payloads = Payloads(lambda: "b1", "http://c/v1/browser/traces", ["/"], STALE_TIMES[version])
        html = payloads.shell("html", "/", "/", loading=False).decode()
        found = re.search(
            r'<script type="application/json" id="nextrace-router">(.*?)</script>', html
        )
        assert found, html
        return dict(json.loads(found.group(1)))

    assert config("14")["staleTimes"] == {"dynamic": 30, "static": 300}
    assert config("15")["staleTimes"] == {"dynamic": 0, "static": 300}
    assert config("15")["endpoint"] == "http://c/v1/browser/traces"
