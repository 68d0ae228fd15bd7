"""Route resolution in Next.js's priority order, through real HTTP requests."""

from __future__ import annotations

import pytest

from instrumented_server.definition import parse_definition
from instrumented_server.routing import RouteTable
from tests.instrumented_server.conftest import TEST_APP


@pytest.mark.parametrize(
    ("path", "route", "params"),
    [
        ("/products/featured", "/products/featured", {}),  # static beats [id]
        ("/products/42", "/products/[id]", {"id": "42"}),
        ("/blog/a/b/c", "/blog/[...slug]", {"slug": ["a", "b", "c"]}),
        ("/docs", "/docs/[[...slug]]", {}),  # optional catch-all matches its parent
        ("/docs/x/y", "/docs/[[...slug]]", {"slug": ["x", "y"]}),
        ("/pricing", "/pricing", {}),  # route groups are not in URLs
        ("/photos/5", "/photos/[id]", {"id": "5"}),
    ],
)
def test_routes_resolve_by_specificity(path, route, params):
    match = RouteTable(parse_definition(TEST_APP)).resolve(path)
    assert match is not None
    assert (match.pattern.template, match.params) == (route, params)


def test_catch_all_needs_a_segment_and_unknown_paths_are_404():
    table = RouteTable(parse_definition(TEST_APP))
    assert table.resolve("/blog") is None
    assert table.resolve("/nothing/here") is None


def test_static_files_come_first_and_unknown_paths_get_404(server):
    response = server.get("/favicon.ico")
    assert response.status_code == 200
    assert server.spans(nextrace__request__kind="static_asset")
    assert not server.spans(nextrace__phase="route")
    missing = server.get("/nothing/here")
    assert missing.status_code == 404
    (request,) = server.spans(nextrace__phase="request", next__route="/_not-found")
    assert request.name == "GET /_not-found"


def test_an_intercepting_route_answers_soft_navigations_only(server):
    soft = server.get("/photos/3", rsc="1", **{"next-url": "/feed"})
    assert soft.status_code == 200
    document = server.get("/photos/3")
    assert document.status_code == 200
    soft_span, document_span = sorted(
        server.spans(nextrace__phase="request"), key=lambda s: s.start_time
    )
    assert soft_span.attributes["next.route"] == "/feed/(..)photos/[id]"
    assert soft_span.attributes["nextrace.route.intercepted"] is True
    assert soft_span.name == "RSC GET /feed/(..)photos/[id]"
    assert document_span.attributes["next.route"] == "/photos/[id]"
    assert document_span.attributes["nextrace.route.intercepted"] is False
