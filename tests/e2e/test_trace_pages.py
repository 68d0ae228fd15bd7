"""The trace view's pages in Chromium, served by a running `nextrace collect` that holds a
recorded real Next.js 16 run: each page says what `nextrace trace` and `nextrace slow` print
(slow)."""

from __future__ import annotations

import html
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.examples.cache_components import load
from tests.support.captures import post_capture
from tests.support.collector_process import start, stop
from tests.support.processes import free_port
from tests.support.waiting import wait_until
from traffic.chromium import Chromium

pytestmark = pytest.mark.slow

RUN = Path(__file__).resolve().parents[1] / "data" / "cache-components-run"
TEXT = "document.querySelector('pre').textContent"


def command(*args: str) -> str:
    """What a nextrace command prints."""
    done = subprocess.run(
        [sys.executable, "-m", "nextrace.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Recorded:
    """A store holding the recorded run, every product page in it diagnosed, and no collector."""

    store: Path
    trace_id: str  # one product page's trace

    @property
    def dsn(self) -> str:
        return f"--dsn=chdb:{self.store}"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    folder = tmp_path_factory.mktemp("recorded")
    store, port = folder / "store", free_port()
    collector = start(store, port, folder / "collector.log", "--nextjs-wait", "0.5")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            post_capture(client, RUN)
        requests, _ = load(RUN)
        wanted = {r["trace_id"] for r in requests if "use_cache" in r["expect"]}
        dsn = f"--dsn=chdb:{store}"

        def listed() -> set[str]:
            text = command("slow", dsn, "--route", "/products/[id]", "--limit", "100")
            return {line.rsplit(" ", 1)[-1] for line in text.splitlines() if " trace " in line}

        wait_until(lambda: wanted <= listed(), "every product page is stored and diagnosed")
    finally:
        stop(collector)
    page = next(r for r in requests if r["label"] == "build 1: GET /products/1 on b")
    return Recorded(store, page["trace_id"])


def test_the_pages_say_what_the_commands_say(recorded: Recorded, tmp_path: Path):
    if not shutil.which("chromium"):
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    dsn, trace_id = recorded.dsn, recorded.trace_id
    slow_text = command("slow", dsn, "--route", "/products/[id]", "--limit", "5")
    trace_text = command("trace", trace_id, dsn)
    port = free_port()
    collector = start(recorded.store, port, tmp_path / "collector.log")
    base = f"http://127.0.0.1:{port}"
    try:
        with Chromium(tmp_path) as browser:
            browser.goto(f"{base}/trace/{trace_id}")
            assert browser.evaluate(TEXT) == trace_text
            assert "use_cache miss: other_instance" in browser.evaluate(
                "document.querySelector('.cause').textContent"
            )
            red = browser.evaluate(
                "[...document.querySelectorAll('svg path')]"
                ".filter(p => (p.getAttribute('style') || '').includes('#c0392b')).length"
            )
            assert red > 0  # the critical path, drawn
            browser.goto(f"{base}/slow?route={quote('/products/[id]', safe='')}&limit=5")
            assert browser.evaluate(TEXT) == slow_text
            first = browser.evaluate("document.querySelector('pre a').getAttribute('href')")
            browser.click("pre a")
            browser.wait_until(
                f"location.pathname === '/{first}' && document.readyState === 'complete'",
                "the first trace's page opened",
            )
            assert browser.evaluate("document.title") == f"trace {first.split('/')[-1]}"
            shot = browser.screenshot(tmp_path / "trace-page.png")
            assert browser.console_errors == [], browser.console_errors
        assert shot.stat().st_size > 20_000
    finally:
        stop(collector)


def pre_text(page: str) -> str:
    """The text of a page's ``<pre>``, as a browser shows it."""
    inner = page.split("<pre>", 1)[1].split("</pre>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", "", inner))


def test_serve_ui_serves_the_pages_of_a_store_without_ingesting(recorded: Recorded, tmp_path: Path):
    """`nextrace serve-ui`: the same pages, from a store no collector holds, and nothing taken
    in; the commands read the store through it while it holds it; it refuses a store a
    collector holds, naming where that collector serves the pages."""
    dsn, trace_id = recorded.dsn, recorded.trace_id
    slow_text = command("slow", dsn, "--route", "/products/[id]", "--limit", "5")
    trace_text = command("trace", trace_id, dsn)
    port, collector_port = free_port(), free_port()
    collector = start(recorded.store, collector_port, tmp_path / "collector.log")
    try:
        refused = subprocess.run(
            [sys.executable, "-m", "nextrace.cli", "serve-ui", dsn, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop(collector)
    assert refused.returncode != 0
    holder = f"http://127.0.0.1:{collector_port}"
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: the collector at {holder} holds the embedded"), line
    assert line.endswith(f"and serves its pages itself: open {holder}/slow"), line
    with open(tmp_path / "serve-ui.log", "wb") as out:
        ui = subprocess.Popen(
            [sys.executable, "-m", "nextrace.cli", "serve-ui", dsn, "--port", str(port)],
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(ui, f"{base}/healthz"), "serve-ui answers /healthz")
        with httpx.Client(base_url=base, timeout=60) as client:
            page = client.get("/slow", params={"route": "/products/[id]", "limit": "5"})
            assert page.status_code == 200
            assert pre_text(page.text) == slow_text
            listed = re.findall(r"\b[0-9a-f]{32}\b", slow_text)
            assert listed
            assert all(f"href='trace/{t}'" in page.text for t in listed)
            page = client.get(f"/trace/{trace_id}")
            assert page.status_code == 200
            assert pre_text(page.text) == trace_text
            assert client.get("/trace/" + "0" * 32).status_code == 404
            assert client.post("/v1/traces", content=b"").status_code == 404  # no ingest
            assert client.get("/healthz").json()["ingest"] is False
        # The commands read the store it holds through its /sql.
        assert command("trace", trace_id, dsn) == trace_text
    finally:
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(60) == 0, (tmp_path / "serve-ui.log").read_text()
    assert not (recorded.store / "nextrace-collector.json").exists()


def _healthy(process: subprocess.Popen[bytes], url: str) -> bool:
    assert process.poll() is None, "serve-ui exited"
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
