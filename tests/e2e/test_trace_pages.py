"""The trace view's pages in Chromium, served by a running `nextrace collect` that holds a
recorded real Next.js 16 run: each page says what `nextrace trace` and `nextrace slow` print
(slow)."""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def test_the_pages_say_what_the_commands_say(tmp_path: Path):
    if not shutil.which("chromium"):
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    store, port = tmp_path / "store", free_port()
    collector = start(store, port, tmp_path / "collector.log", "--nextjs-wait", "0.5")
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            post_capture(client, RUN)
        requests, _ = load(RUN)
        wanted = {r["trace_id"] for r in requests if "use_cache" in r["expect"]}
        dsn = f"--dsn=chdb:{store}"

        def listed() -> set[str]:
            text = command("slow", dsn, "--route", "/products/[id]", "--limit", "100")
            return {line.rsplit(" ", 1)[-1] for line in text.splitlines() if " trace " in line}

        wait_until(lambda: wanted <= listed(), "every product page is stored and diagnosed")
        page = next(r for r in requests if r["label"] == "build 1: GET /products/1 on b")
        trace_id = page["trace_id"]
        slow_text = command("slow", dsn, "--route", "/products/[id]", "--limit", "5")
        with Chromium(tmp_path) as browser:
            browser.goto(f"{base}/trace/{trace_id}")
            assert browser.evaluate(TEXT) == command("trace", trace_id, dsn)
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
