"""The trace view's pages, served by the collector that owns the store: what they answer, and
whom (the same guard as /sql). Chromium renders them against the commands' own text in
tests/e2e/test_trace_pages.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.service import Collector
from investigate.pages import store_pages
from tests.conftest import LOCAL, collector_holding, loopback_client, running_collector
from tests.examples.cache_components import load

RUN = Path(__file__).resolve().parents[1] / "data" / "cache-components-run"


@pytest.fixture(scope="module")
def serving(chdb_path: Path) -> Iterator[Collector]:
    """A collector with the pages, holding the recorded Cache Components run."""
    with collector_holding(chdb_path, RUN, pages=store_pages) as collector:
        yield collector


def a_page_trace() -> str:
    requests, _ = load(RUN)
    return str(
        next(r for r in requests if r["label"] == "build 1: GET /products/1 on b")["trace_id"]
    )


def test_a_trace_page_is_one_document_that_loads_nothing(serving: Collector):
    trace_id = a_page_trace()
    with loopback_client(serving) as client:
        page = client.get(f"/trace/{trace_id}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["cache-control"] == "no-store"
    assert f"trace {trace_id}" in page.text
    assert "use_cache miss (other_instance)" in page.text  # the waterfall's notes
    assert "<svg" in page.text  # the waterfall, drawn
    assert not re.search(r"<script|(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page.text)


def test_the_slow_list_links_each_trace_to_its_page(serving: Collector):
    with loopback_client(serving) as client:
        page = client.get("/slow", params={"route": "/products/[id]", "limit": "5"})
        assert page.status_code == 200
        links = re.findall(r"href='trace/([0-9a-f]{32})'", page.text)
        assert 1 <= len(links) <= 5
        assert all(client.get(f"/trace/{t}").status_code == 200 for t in links)
        assert "route /products/[id]" in page.text
        assert client.get("/slow", params={"route": "/nowhere"}).text.count("trace/") == 0


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/trace/" + "0" * 32, 404, "no span of trace"),
        ("/trace/not-a-trace", 400, "not a trace id"),
        ("/slow?limit=1000", 400, "limit 1000: give 1 to 50"),
        ("/slow?since=99999999999d", 400, "give at most 3650d"),
        ("/slow?since=yesterday", 400, "give a duration such as 90s"),
    ],
)
def test_a_mistake_is_a_one_line_page(serving: Collector, path: str, status: int, says: str):
    with loopback_client(serving) as client:
        answer = client.get(path)
    assert answer.status_code == status
    assert says in answer.text


def test_the_pages_answer_whom_the_sql_endpoint_answers(serving: Collector):
    trace = f"/trace/{a_page_trace()}"
    assert serving.app is not None
    with TestClient(serving.app, base_url=LOCAL, client=("203.0.113.9", 4000)) as remote:
        assert remote.get(trace).status_code == 403  # without a token: loopback clients only
    with loopback_client(serving) as client:
        assert client.get(trace, headers={"Host": "evil.example:4318"}).status_code == 403
        assert client.get(trace, headers={"Origin": "https://evil.example"}).status_code == 403
        assert client.post(trace).status_code == 405  # read-only


def test_with_a_token_the_pages_want_it(store_config: StoreConfig):
    with running_collector(store_config, pages=store_pages, token="s3cret-token-123") as collector:
        assert collector.app is not None
        with TestClient(collector.app, base_url=LOCAL, client=("203.0.113.9", 4000)) as remote:
            assert remote.get("/slow").status_code == 401
            mine = remote.get("/slow", headers={"Authorization": "Bearer s3cret-token-123"})
            assert mine.status_code == 200
            assert "no navigation matches" in mine.text
