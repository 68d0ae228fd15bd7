"""Record the Next.js captures the tests read (tests/data/nextjs-captures) from examples/nextjs.

    python -m tests.examples.record_captures tests/data/nextjs-captures [15]

Builds the example app (Node 20 and npm) on Next.js 16, or 15 when asked (``NEXT15_RUNS``:
one export mode), runs ``next start`` once per export mode, sends
the same labelled requests each time, and writes what a plain OTLP/HTTP receiver got:

- ``<run>/raw/NNNNN_traces.pb`` or ``.json``: each POST body to ``/v1/traces``, exactly as
  received, and ``NNNNN_traces.meta.json`` with its content type and encoding;
- ``<run>/requests.jsonl``: each request sent, in order: its label, method, path, headers,
  start and end in Unix nanoseconds, status and response headers.

The traces of a request are the ones whose server span starts between its ``t_start_ns``
and ``t_end_ns``, or that carry its ``traceparent``. The optional helper and the example's
predictive warm-ups are off, so the captures are what any app with ``@vercel/otel`` exports,
one request at a time.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.examples.nextjs_app import ExampleApp, rsc_headers
from tests.nextrace.test_cli import free_port

RUNS: dict[str, dict[str, str]] = {
    "protobuf-default": {},
    "protobuf-verbose": {"NEXT_OTEL_VERBOSE": "1"},
    "json-verbose": {"NEXT_OTEL_VERBOSE": "1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
}
NEXT15_RUNS: dict[str, dict[str, str]] = {"next15-protobuf-default": {}}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

# label, method, path, RSC kind (None: a plain request), extra headers
REQUESTS: list[tuple[str, str, str, str | None, dict[str, str]]] = [
    ("html_home_static", "GET", "/", None, {}),
    ("html_about_static", "GET", "/about", None, {}),
    ("html_profile_dynamic", "GET", "/profile", None, {}),
    ("html_product1_first(data-cache miss)", "GET", "/products/1", None, {}),
    ("html_product1_second(data-cache hit)", "GET", "/products/1", None, {}),
    ("rsc_nav_about_static", "GET", "/about", "navigation", {}),
    ("rsc_nav_profile_dynamic", "GET", "/profile", "navigation", {}),
    ("rsc_nav_product2_first", "GET", "/products/2", "navigation", {}),
    ("rsc_nav_product1(data-cache hit)", "GET", "/products/1", "navigation", {}),
    ("prefetch_about_static", "GET", "/about", "prefetch", {}),
    ("prefetch_product3_dynamic", "GET", "/products/3", "prefetch", {}),
    ("prefetch_profile_dynamic", "GET", "/profile", "prefetch", {}),
    ("segment_prefetch_about_tree", "GET", "/about", "segment", {}),
    ("segment_prefetch_product3_tree", "GET", "/products/3", "segment", {}),
    ("revalidate_tag_product-1_max", "POST", "/api/revalidate?tag=product-1", None, {}),
    ("html_product1_after_revalidate_max(stale+bg refresh?)", "GET", "/products/1", None, {}),
    ("html_product1_after_revalidate_max_again", "GET", "/products/1", None, {}),
    (
        "revalidate_tag_product-1_expire0",
        "POST",
        "/api/revalidate?tag=product-1&expire=0",
        None,
        {},
    ),
    ("html_product1_after_revalidate_expire0(blocking miss?)", "GET", "/products/1", None, {}),
    ("html_404", "GET", "/does-not-exist", None, {}),
    ("static_asset_favicon", "GET", "/favicon.ico", None, {}),  # the app has none: its 404 page
    ("static_asset_next_chunk", "GET", "", None, {}),  # the path is read from the home page
    (
        "html_product2_with_incoming_traceparent",
        "GET",
        "/products/2",
        None,
        {"traceparent": TRACEPARENT},
    ),
]
QUIET_S = 3.0  # no body for this long after the last request: the exporter has flushed


class Receiver:
    """A plain OTLP/HTTP receiver that keeps every body as it arrived."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str, bytes]] = []  # content type, encoding, body
        self.last = time.monotonic()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.bodies.append(
                    (
                        self.headers.get("content-type", ""),
                        self.headers.get("content-encoding", ""),
                        body,
                    )
                )
                receiver.last = time.monotonic()
                json_reply = "json" in self.headers.get("content-type", "")
                reply = b"{}" if json_reply else b""
                self.send_response(200)
                self.send_header("content-type", self.headers.get("content-type", ""))
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()

    def wait_until_quiet(self) -> None:
        while time.monotonic() - self.last < QUIET_S:
            time.sleep(0.2)


def send_all(url: str) -> list[dict[str, Any]]:
    sent = []
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        home = client.get("/").text
        chunk = re.search(r'/_next/static/chunks/[^"]+\.js', home)
        assert chunk, "the home page names no script chunk"
        time.sleep(1)  # the home page's own trace leaves before the first labelled request
        for label, method, path, rsc, extra in REQUESTS:
            headers = dict(extra)
            path = path or chunk.group(0)
            if rsc is not None:
                rsc_only, param = rsc_headers(rsc)
                headers.update(rsc_only)
                path = f"{path}{'&' if '?' in path else '?'}_rsc={param}"
            start = time.time_ns()
            response = client.request(method, path, headers=headers)
            end = time.time_ns()
            sent.append(
                {
                    "label": label,
                    "method": method,
                    "path": path,
                    "req_headers": headers,
                    "t_start_ns": start,
                    "t_end_ns": end,
                    "status": str(response.status_code),
                    "resp_headers": {k: v for k, v in response.headers.items() if k != "date"},
                }
            )
            time.sleep(0.3)  # one request at a time, as the tests match them by time
    return sent


def record(out: Path, next_major: int = 16) -> None:
    # A fixed folder: Next.js's exception events carry file paths, and these stay neutral.
    work = Path(tempfile.gettempdir()) / "nextrace-example"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    app = ExampleApp(work, free_port(), next_major)
    app.env["NEXTRACE_PREDICTIVE_WARMUPS"] = "0"
    try:
        print(f"building examples/nextjs on Next.js {next_major} …", file=sys.stderr)
        app.build()
        for name, env in (RUNS if next_major == 16 else NEXT15_RUNS).items():
            shutil.rmtree(app.dir / ".next" / "cache" / "fetch-cache", ignore_errors=True)
            receiver = Receiver()
            app.env.update(env)
            with (
                receiver.running(),
                app.serve(free_port(), receiver.url, "nextjs-example", helper=False) as url,
            ):
                sent = send_all(url)
                receiver.wait_until_quiet()
            for key in env:
                del app.env[key]
            write_run(out / name, receiver.bodies, sent)
            print(f"{name}: {len(receiver.bodies)} exports", file=sys.stderr)
    finally:
        app.close()
        shutil.rmtree(work, ignore_errors=True)


def write_run(run: Path, bodies: list[tuple[str, str, bytes]], sent: list[dict[str, Any]]) -> None:
    shutil.rmtree(run, ignore_errors=True)
    (run / "raw").mkdir(parents=True)
    for seq, (content_type, encoding, body) in enumerate(bodies, 1):
        suffix = "json" if "json" in content_type else "pb"
        name = f"{seq:05d}_traces.{suffix}"
        (run / "raw" / name).write_bytes(body)
        meta = {"file": name, "content_type": content_type, "content_encoding": encoding}
        (run / "raw" / f"{seq:05d}_traces.meta.json").write_text(json.dumps(meta) + "\n")
    lines = "".join(json.dumps(request) + "\n" for request in sent)
    (run / "requests.jsonl").write_text(lines)


if __name__ == "__main__":
    record(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/data/nextjs-captures"),
        int(sys.argv[2]) if len(sys.argv) > 2 else 16,
    )
