"""@nextrace/next/client fills the "What prefetches got back" panel: the spans it sends for
prefetches answered as Next.js 15 and 16 answer them (tests/js/prefetch_spans.mjs, under Node)
go through a real collector's browser endpoint into real chDB, and the panel counts each."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.config import StoreConfig
from collector.service import Collector
from dashboards import prefetch
from tests.conftest import running_collector, stored
from tests.dashboards.panels import run_panel, stored_traffic

DRIVER = Path(__file__).resolve().parent / "prefetch_spans.mjs"
SHOP = "https://shop.example.com"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js 20 is needed")


@pytest.fixture
def browser_collector(store_config: StoreConfig) -> Iterator[Collector]:
    with running_collector(store_config, browser_origins=(SHOP,)) as instance:
        yield instance


def client_deliveries() -> list[str]:
    """The OTLP/JSON bodies the client sends, one per delivery."""
    done = subprocess.run(
        ["node", str(DRIVER)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_the_clients_prefetches_fill_what_prefetches_got_back(browser_collector):
    assert browser_collector.app is not None
    with TestClient(browser_collector.app, base_url="http://localhost:4318") as page:
        for body in client_deliveries():
            answer = page.post(
                "/v1/browser/traces",
                content=body,
                headers={"Content-Type": "application/json", "Origin": SHOP},
            )
            assert answer.status_code == 200, answer.text
    # 7 prefetches: 3 on Next.js 15, 4 on 16, of which /blog asked for its route tree only.
    roots = stored(
        browser_collector,
        "SELECT count() FROM otel_traces WHERE SpanAttributes['nextrace.phase'] = 'prefetch' "
        "AND ParentSpanId = ''",
    )
    assert roots == [(7,)]
    rows = run_panel(stored_traffic(browser_collector), prefetch, "What prefetches got back")
    assert rows == [
        ("/about", 2, 0, 0),
        ("/products/[id]", 0, 2, 0),
        ("/profile", 0, 0, 2),
    ]
