"""Record the Next.js captures (tests/data/nextjs-captures) and runs (tests/data/nextjs-runs)
the tests read, from examples/nextjs.

    python -m tests.examples.record_captures tests/data/nextjs-captures [15]
    python -m tests.examples.record_captures runs tests/data/nextjs-runs [RUN ...]

The runs (``runs``: next16-curl, next15-curl, next16-chromium; all by default, one after the
other, as each builds the app twice) are described at ``record_curl_run`` and
``record_chromium_run``, their files in tests/data/nextjs-runs/README.md; the captures below.

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

import itertools
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.sync.client import ClientConnection

from tests.examples.nextjs_app import ExampleApp, rsc_headers
from tests.examples.runs import RUN_NAMES, RUNS_DIR, Run
from tests.support.processes import free_port
from traffic.chromium import Chromium, ChromiumError

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
BROWSER_TRACES = "/v1/browser/traces"


@dataclass(frozen=True)
class Received:
    """A POST body as it arrived, with the endpoint it was sent to and its page's origin."""

    endpoint: str
    content_type: str
    encoding: str
    origin: str
    body: bytes


class Receiver:
    """A plain OTLP/HTTP receiver that keeps every body as it arrived; it takes the pages'
    browser spans (``/v1/browser/traces``) from any origin, answering CORS as a collector does."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str, bytes]] = []  # content type, encoding, body
        self.received: list[Received] = []  # every POST, server's and pages', in order
        self.last = time.monotonic()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_OPTIONS(self) -> None:  # a page's CORS preflight
                self.send_response(204)
                self._cors()
                self.send_header("access-control-allow-methods", "POST")
                self.send_header("access-control-allow-headers", "content-type")
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                content_type = self.headers.get("content-type", "")
                encoding = self.headers.get("content-encoding", "")
                endpoint = urlsplit(self.path).path
                origin = self.headers.get("origin", "")
                receiver.received.append(Received(endpoint, content_type, encoding, origin, body))
                if endpoint != BROWSER_TRACES:
                    receiver.bodies.append((content_type, encoding, body))
                receiver.last = time.monotonic()
                json_reply = "json" in self.headers.get("content-type", "")
                reply = b"{}" if json_reply else b""
                self.send_response(200)
                self._cors()
                self.send_header("content-type", self.headers.get("content-type", ""))
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _cors(self) -> None:
                if origin := self.headers.get("origin"):
                    self.send_header("access-control-allow-origin", origin)

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


# --- The recorded runs (tests/data/nextjs-runs): a cold start, a revalidation and a deploy,
# with the upstream's own log of its calls as the truth (tests/examples/runs.py reads them).

SERVICE = "nextjs-example"
RUN_WORKDIR = "nextrace-example"  # under the temporary folder: the paths spans carry stay neutral
RSC_KINDS = {"navigation": "navigation", "prefetch": "prefetch", "segment_prefetch": "segment"}
SHORT_PAUSE_S = 0.3  # between the driver's requests: one at a time, as the truth assumes


@dataclass(frozen=True)
class Step:
    """A request of the curl-like driver: ``kind`` is document, navigation, prefetch,
    segment_prefetch (RSC headers as a browser sends them) or api (a POST); ``traceparent``
    False sends none, as browsers send documents (then Next.js 15's middleware is a trace of
    its own, and the request's trace is known from its upstream call, if it made one)."""

    kind: str
    path: str
    traceparent: bool = True


def _doc(path: str, traceparent: bool = True) -> Step:
    return Step("document", path, traceparent)


def _nav(path: str) -> Step:
    return Step("navigation", path)


def _prefetch(path: str) -> Step:
    return Step("prefetch", path)


def _segment(path: str) -> Step:
    return Step("segment_prefetch", path)


def _post(path: str) -> Step:
    return Step("api", path)


# The first build, from a cold data cache: the first read of each product waits on the
# upstream (a blocking miss); then hits, RSC navigations and prefetches.
COLD: list[Step] = [
    _doc("/"),
    _doc("/products/1"),
    _doc("/products/1"),
    _prefetch("/products/2"),
    _nav("/products/2"),
    _segment("/products/3"),
    _nav("/products/3"),
    _doc("/profile"),
    _nav("/profile"),
    _prefetch("/about"),
    _segment("/about"),
    _nav("/about"),
    _doc("/blog"),
    _doc("/products/4", traceparent=False),
    _nav("/products/4"),
    _prefetch("/products/5"),
    _doc("/products/5"),
    _nav("/products/1"),
    _doc("/about", traceparent=False),
    _doc("/products/2"),
]
# Revalidations, then the pages that read the tags: product-1 marked stale ('max'), then
# expired at once (expire=0), then every product (`products`) expired.
REVALIDATE: list[Step] = [
    _post("/api/revalidate?tag=product-1"),
    _doc("/products/1"),
    _doc("/products/1"),
    _post("/api/revalidate?tag=product-1&expire=0"),
    _doc("/products/1"),
    _nav("/products/1"),
    _post("/api/revalidate?tag=products&expire=0"),
    _nav("/products/2"),
    _doc("/products/3", traceparent=False),
    _prefetch("/products/4"),
    _nav("/products/4"),
    _doc("/products/6"),
    _doc("/"),
]
# After the deploy (next build, next start on the new build): products read before, new ones.
AFTER_DEPLOY: list[Step] = [
    _doc("/"),
    _doc("/products/1"),
    _nav("/products/2"),
    _prefetch("/products/3"),
    _doc("/products/3"),
    _doc("/products/5"),
    _doc("/products/7"),
    _nav("/products/7"),
    _doc("/profile", traceparent=False),
    _segment("/products/8"),
    _prefetch("/products/8"),
    _nav("/products/8"),
    _doc("/blog"),
    _post("/api/revalidate?tag=product-2&expire=0"),
    _nav("/products/2"),
    _doc("/products/9", traceparent=False),
    _doc("/does-not-exist"),
    _nav("/about"),
    _doc("/products/1"),
]


def new_traceparent() -> str:
    """A sampled traceparent of a new trace, as a tracing client would send."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class Recording:
    """What a run's driver sent and marked, in the contract's line formats."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> None:
        self.events.append({"kind": kind, "t_ns": time.time_ns(), **fields})

    def send(self, client: httpx.Client, step: Step, phase: str) -> None:
        """Send ``step``, one request at a time, and keep what it was and got."""
        headers: dict[str, str] = {}
        path = step.path
        if step.kind in RSC_KINDS:
            rsc_only, param = rsc_headers(RSC_KINDS[step.kind])
            headers.update(rsc_only)
            path = f"{path}{'&' if '?' in path else '?'}_rsc={param}"
        if step.traceparent:
            headers["traceparent"] = new_traceparent()
        method = "POST" if step.kind == "api" else "GET"
        start = time.time_ns()
        response = client.request(method, path, headers=headers)
        end = time.time_ns()
        trace_id = headers.get("traceparent", "")[3:35]
        self.requests.append(
            {
                "label": f"{phase}: {step.kind} {step.path}"
                + ("" if step.traceparent else " (no traceparent)"),
                "method": method,
                "path": path,
                "req_headers": headers,
                "t_start_ns": start,
                "t_end_ns": end,
                "status": str(response.status_code),
                "resp_headers": {k: v for k, v in response.headers.items() if k != "date"},
                "kind": step.kind,
                "step": phase,
                "trace_id": trace_id,
                "trace_id_from": "traceparent" if trace_id else "",
            }
        )
        if step.kind == "api" and "/api/revalidate" in step.path:
            query = parse_qs(urlsplit(step.path).query)
            self.event(
                "revalidate",
                tag=query["tag"][0],
                profile="expire=0" if query.get("expire") == ["0"] else "max",
                trace_id=trace_id,
                request_start_ns=start,
                request_end_ns=end,
            )
        time.sleep(SHORT_PAUSE_S)

    def name_untraced(self, calls: list[dict[str, Any]]) -> None:
        """A request sent without a traceparent is of the trace its upstream calls name, when
        the calls received while it was open (the driver sends one at a time) name one trace
        that no other request was sent with."""
        sent = {r["trace_id"] for r in self.requests if r["trace_id"]}
        for request in self.requests:
            if request["trace_id"]:
                continue
            traces = {
                c["trace_id"]
                for c in calls
                if request["t_start_ns"] <= c["received_ns"] <= request["t_end_ns"]
                and c["trace_id"]
                and c["trace_id"] not in sent
            }
            if len(traces) == 1:
                request["trace_id"] = traces.pop()
                request["trace_id_from"] = "upstream"


@contextmanager
def serving(
    app: ExampleApp,
    port: int,
    receiver: Receiver,
    recording: Recording,
    kind: str,
    helper: bool,
    **fields: Any,
) -> Iterator[str]:
    """``next start`` on the current build; ``kind`` (start or deploy, with ``fields``) is
    marked when it listens, ``stop`` when it has exported everything and stopped."""
    build = app.build_id()
    with app.serve(port, receiver.url, SERVICE, helper) as url:
        previous = [e["build"] for e in recording.events if e["kind"] in ("start", "deploy")]
        if previous:
            fields["previous_build"] = previous[-1]
        recording.event(kind, build=build, **fields)
        yield url
        receiver.wait_until_quiet()
    recording.event("stop", build=build)


def upstream_calls(app: ExampleApp) -> list[dict[str, Any]]:
    """The upstream's log (GET /calls), one call a line in the contract's format."""
    log = httpx.get(f"{app.upstream_url}/calls", timeout=30).json()["log"]
    return [
        {
            "path": call["path"],
            "trace_id": call["traceparent"][3:35],
            "traceparent": call["traceparent"],
            "received_ns": int(call["received"]) * 1_000_000,
            "answered_ns": int(call["answered"]) * 1_000_000 if "answered" in call else None,
        }
        for call in log
    ]


def installed_version(app: ExampleApp, package: str) -> str:
    manifest = app.dir / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def fresh_workdir() -> Path:
    work = Path(tempfile.gettempdir()) / RUN_WORKDIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def record_curl_run(out: Path, name: str, next_major: int) -> None:
    """A run driven by plain HTTP requests (``COLD``, ``REVALIDATE``, a deploy, then
    ``AFTER_DEPLOY``) on Next.js ``next_major``, without the optional helper."""
    work = fresh_workdir()
    receiver = Receiver()
    recording = Recording()
    app = ExampleApp(work, free_port(), next_major)
    app.env["NEXTRACE_PREDICTIVE_WARMUPS"] = "0"  # one trace per request: no warm-ups
    port = free_port()
    try:
        with receiver.running():
            print(f"{name}: building examples/nextjs on Next.js {next_major} …", file=sys.stderr)
            app.build()
            with (
                serving(app, port, receiver, recording, "start", helper=False) as url,
                httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client,
            ):
                for step in COLD:
                    recording.send(client, step, "cold")
                for step in REVALIDATE:
                    recording.send(client, step, "revalidate")
            print(f"{name}: deploying (next build) …", file=sys.stderr)
            app.rebuild()  # in place: .next/cache, and the data cache in it, stay
            with (
                serving(app, port, receiver, recording, "deploy", False, clean_build=False) as url,
                httpx.Client(base_url=url, timeout=60, follow_redirects=False) as client,
            ):
                for step in AFTER_DEPLOY:
                    recording.send(client, step, "after deploy")
            calls = upstream_calls(app)
        recording.name_untraced(calls)
        info = {
            "driver": "curl",
            "command": f"python -m tests.examples.record_captures runs {out} {name}",
            "helper": False,
            "browser_client": False,
            "app_origin": f"http://127.0.0.1:{port}",
            **versions(app),
        }
        write_recorded_run(out / name, receiver.received, recording, calls, info)
    finally:
        app.close()
        shutil.rmtree(work, ignore_errors=True)


def versions(app: ExampleApp) -> dict[str, Any]:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return {
        "service": SERVICE,
        "next_major": app.next_major,
        "next": installed_version(app, "next"),
        "react": installed_version(app, "react"),
        "vercel_otel": installed_version(app, "@vercel/otel"),
        "nextrace_next": installed_version(app, "@nextrace/next"),  # js/next, packed
        "node": node.stdout.strip(),
        "predictive_warmups": False,
    }


def write_recorded_run(
    run: Path,
    received: list[Received],
    recording: Recording,
    calls: list[dict[str, Any]],
    info: dict[str, Any],
) -> None:
    """The run's folder, in the layout tests/examples/runs.py reads; its counts go into
    ``run.json`` as the loader computes them."""
    shutil.rmtree(run, ignore_errors=True)
    (run / "raw").mkdir(parents=True)
    for seq, export in enumerate(received, 1):
        browser = export.endpoint == BROWSER_TRACES
        suffix = "json" if "json" in export.content_type else "pb"
        name = f"{seq:05d}_{'browser' if browser else 'traces'}.{suffix}"
        (run / "raw" / name).write_bytes(export.body)
        meta = {
            "file": name,
            "endpoint": export.endpoint,
            "content_type": export.content_type,
            "content_encoding": export.encoding,
            **({"origin": export.origin} if export.origin else {}),
        }
        meta_name = f"{seq:05d}_{'browser' if browser else 'traces'}.meta.json"
        (run / "raw" / meta_name).write_text(json.dumps(meta) + "\n")

    def lines(rows: list[dict[str, Any]]) -> str:
        return "".join(json.dumps(row) + "\n" for row in rows)

    requests = sorted(recording.requests, key=lambda r: int(r["t_start_ns"]))
    (run / "requests.jsonl").write_text(lines(requests))
    (run / "upstream_calls.jsonl").write_text(lines(calls))
    (run / "events.jsonl").write_text(lines(recording.events))
    builds = [e["build"] for e in recording.events if e["kind"] in ("start", "deploy")]
    info = {"name": run.name, **info, "builds": builds}
    (run / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    loaded = Run(run)
    misses = loaded.blocking_misses()
    info["counts"] = {
        "requests": len(loaded.requests),
        "requests_without_traceparent": sum(
            not r.headers.get("traceparent") for r in loaded.requests
        ),
        "blocking_misses": len(misses),
        "products_missed": len({m.path for m in misses}),
        "uncached_waits": len(loaded.uncached_waits()),
        "upstream_calls": len(loaded.upstream_calls),
        "exports": len(loaded.bodies()),
        "browser_exports": len(loaded.browser_bodies()),
        "spans": len(loaded.spans),
    }
    (run / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"{run.name}: {json.dumps(info['counts'])}", file=sys.stderr)


# The Chromium run: Debian's Chromium clicks through the app built with the browser client
# (@nextrace/next/client), which sends its spans to the receiver's /v1/browser/traces and a
# traceparent with each RSC request; the driver adds one to each document request (the
# DevTools Fetch domain), so that every request the truth needs names its trace.

OWN_IDS = 1_000_000_000  # DevTools command ids of the tap's own, above the driver's
SETTLE_S = 10.0
HEADING = "(document.querySelector('main h1')?.textContent ?? '')"
SHOWS = {
    "/": "Home (static)",
    "/about": "About (static)",
    "/profile": "Profile (dynamic)",
    "/blog": "Blog (ISR)",
}
BELOW_THE_FOLD = ("/products/4", "/products/5")


def shows(path: str) -> str:
    """A page expression: the browser is on ``path`` and shows its content (a product page
    its fetched data, not its loading state)."""
    product = path.removeprefix("/products/") if path.startswith("/products/") else ""
    text = f"Item {product} (fetched" if product else SHOWS[path]
    return (
        f"location.pathname === {json.dumps(path)} && document.readyState === 'complete' && "
        f"{HEADING}.startsWith({json.dumps(text)})"
    )


class _Tap:
    """The page's DevTools connection, read by the recorder before the driver: it answers
    the paused document requests (adding a traceparent) and keeps the network events."""

    def __init__(self, page: ClientConnection, browser: RecordingChromium) -> None:
        self.page = page
        self.browser = browser

    def send(self, message: str) -> None:
        self.page.send(message)

    def recv(self, timeout: float | None = None) -> str | bytes:
        while True:
            raw = self.page.recv(timeout=timeout)
            message = json.loads(raw)
            if message.get("id", 0) >= OWN_IDS:
                continue  # the answer to a command of the tap's own
            if message.get("method") == "Fetch.requestPaused":
                self.browser.paused(message["params"])
                continue
            self.browser.observe(message.get("method", ""), message.get("params", {}))
            return raw

    def close(self) -> None:
        self.page.close()


class RecordingChromium(Chromium):
    """Chromium (traffic/chromium.py) whose requests to ``origin`` are recorded from its
    network events: each with the driver's step it happened in (``step``)."""

    def __init__(self, workdir: Path, origin: str) -> None:
        super().__init__(workdir)
        self.origin = origin
        self.step = ""
        self._own = itertools.count(OWN_IDS)
        self._open: dict[str, dict[str, Any]] = {}
        self._injected: dict[str, str] = {}  # network request id -> the traceparent added
        self.finished: list[dict[str, Any]] = []
        self.left_open: list[str] = []  # what was still in flight when the driver went on

    def __enter__(self) -> RecordingChromium:
        super().__enter__()
        if self._page is None:
            raise ChromiumError("Chromium started without a page")
        # The tap has the connection's send, recv and close: all that Chromium uses of it.
        self._page = cast(ClientConnection, _Tap(self._page, self))
        pattern = {"urlPattern": f"{self.origin}/*", "resourceType": "Document"}
        self.send("Fetch.enable", patterns=[{**pattern, "requestStage": "Request"}])
        return self

    def paused(self, params: dict[str, Any]) -> None:
        """A document request of the app, paused: sent on with a traceparent of its own."""
        headers = dict(params["request"].get("headers", {}))
        if not any(name.lower() == "traceparent" for name in headers):
            headers["traceparent"] = new_traceparent()
            self._injected[params.get("networkId", "")] = headers["traceparent"]
        command = {
            "id": next(self._own),
            "method": "Fetch.continueRequest",
            "params": {
                "requestId": params["requestId"],
                "headers": [{"name": k, "value": v} for k, v in headers.items()],
            },
        }
        if self._page is not None:
            self._page.send(json.dumps(command))

    def observe(self, event: str, params: dict[str, Any]) -> None:
        """Keep the app's requests from the page's network events."""
        request_id = params.get("requestId", "")
        if event == "Network.requestWillBeSent":
            if request_id in self._open and params.get("redirectResponse"):
                redirect = params["redirectResponse"]
                self._finish(request_id, params["timestamp"], str(redirect.get("status")))
            if not params["request"]["url"].startswith(self.origin + "/"):
                return
            self._open[request_id] = {
                "url": params["request"]["url"],
                "method": params["request"]["method"],
                "headers": {k.lower(): v for k, v in params["request"]["headers"].items()},
                "wall": params["wallTime"],
                "ts": params["timestamp"],
                "type": params.get("type", ""),
                "loader": params.get("loaderId", ""),
                "step": self.step,
                "status": "",
                "resp_headers": {},
                "from_cache": False,
            }
        elif event == "Network.responseReceived" and params.get("type") == "Document":
            # A new document replaces the page: Chromium reports nothing more of the old
            # one's requests still open, which the new document has cut off.
            for other in [i for i, r in self._open.items() if r["loader"] != params["loaderId"]]:
                self._finish(other, params["timestamp"], "failed: cut off by a new document")
            self._in_flight = {k: v for k, v in self._in_flight.items() if k == request_id}
        if event == "Network.responseReceived" and request_id in self._open:
            response = params["response"]
            self._open[request_id]["status"] = str(response["status"])
            # Answered by the browser's own caches: the server never saw it.
            self._open[request_id]["from_cache"] = bool(
                response.get("fromDiskCache")
                or response.get("fromPrefetchCache")
                or response.get("fromServiceWorker")
            )
            self._open[request_id]["resp_headers"] = {
                k.lower(): v for k, v in response.get("headers", {}).items()
            }
        elif event == "Network.loadingFinished" and request_id in self._open:
            self._finish(request_id, params["timestamp"], None)
        elif event == "Network.loadingFailed" and request_id in self._open:
            self._finish(request_id, params["timestamp"], f"failed: {params.get('errorText')}")

    def _finish(self, request_id: str, timestamp: float, status: str | None) -> None:
        record = self._open.pop(request_id)
        injected = self._injected.pop(request_id, "")
        if injected:
            record["headers"]["traceparent"] = injected
        if status is not None:
            record["status"] = status
        record["end_ts"] = timestamp
        self.finished.append(record)

    def requests(self) -> tuple[list[dict[str, Any]], int]:
        """The app's requests that carried a traceparent, in the contract's format, and how
        many others it made (its scripts and styles, which Next.js does not trace)."""
        found = []
        for record in self.finished:
            traceparent = record["headers"].get("traceparent", "")
            if not traceparent:
                continue
            start = int(record["wall"] * 1e9)
            url = urlsplit(record["url"])
            path = url.path + (f"?{url.query}" if url.query else "")
            kind = browser_kind(record["type"], record["headers"])
            found.append(
                {
                    "label": f"{record['step']}: {kind} {url.path}",
                    "method": record["method"],
                    "path": path,
                    "req_headers": record["headers"],
                    "t_start_ns": start,
                    "t_end_ns": start + int((record["end_ts"] - record["ts"]) * 1e9),
                    "status": record["status"],
                    "resp_headers": record["resp_headers"],
                    "kind": kind,
                    "step": record["step"],
                    "trace_id": traceparent[3:35],
                    "trace_id_from": "traceparent",
                    "from_cache": record["from_cache"],
                }
            )
        return found, len(self.finished) - len(found)

    def settle(self) -> None:
        """Until no request of the page is in flight, for at most ``SETTLE_S``: Next.js 16
        sometimes leaves a segment prefetch's answer open (seen on the ISR page, 8-27 s,
        until the page is left); the driver goes on, and the request ends as it ends."""
        try:
            self.wait_for_network_idle(timeout_s=SETTLE_S)
        except ChromiumError as exc:
            self.left_open.append(f"{self.step}: {exc}")

    def go(self, step: str, url: str, path: str) -> None:
        """Load ``url`` as a new document (the address bar), until it shows ``path``."""
        self.step = step
        self.goto(url)
        self.wait_until(shows(path), f"{path} shows")
        self.settle()

    def click_to(self, step: str, path: str, then: str = "") -> None:
        """Click the link to ``path`` (scrolled into view first) and wait until ``then``
        (default ``path``) shows."""
        self.step = step
        selector = f'a[href="{path}"]'
        self.evaluate(
            f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})"
        )
        self.click(selector)
        self.wait_until(shows(then or path), f"{then or path} shows", timeout_s=60)
        self.settle()


def browser_kind(resource_type: str, headers: dict[str, str]) -> str:
    if resource_type == "Document":
        return "document"
    if headers.get("rsc") == "1":
        if "next-router-segment-prefetch" in headers:
            return "segment_prefetch"
        return "prefetch" if "next-router-prefetch" in headers else "navigation"
    return "api" if resource_type in ("Fetch", "XHR") else resource_type.lower()


def browse_first_build(chromium: RecordingChromium, url: str) -> None:
    """A visitor on a cold app: the home page (its links prefetched in view), product pages,
    the profile, a static page, back, a product loaded as a document, the links below the
    fold scrolled into view."""
    chromium.go("load /", url + "/", "/")
    chromium.wait_until(LINKS_PREFETCHED, "the links in view are prefetched")
    chromium.settle()
    for path in ("/products/1", "/products/2", "/profile", "/products/3", "/about"):
        chromium.click_to(f"click {path}", path)
    chromium.step = "back"
    chromium.evaluate("history.back()")
    chromium.wait_until(shows("/products/3"), "the browser went back to /products/3")
    chromium.settle()
    chromium.go("load /products/4", url + "/products/4", "/products/4")
    below_the_fold(chromium, "", "/products/5")
    chromium.click_to("click /products/1", "/products/1")
    chromium.click_to("click /products/2", "/products/2")


def below_the_fold(chromium: RecordingChromium, phase: str, path: str) -> None:
    """To the home page, scrolled down until its lower links are prefetched, then to
    ``path``, one of them."""
    chromium.click_to(f"{phase}click /", "/")
    chromium.step = f"{phase}scroll down /"
    chromium.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    chromium.wait_until(PREFETCHED_BELOW, "the links below the fold are prefetched")
    chromium.settle()
    chromium.click_to(f"{phase}click {path}", path)


def browse_revalidations(
    chromium: RecordingChromium, client: httpx.Client, recording: Recording
) -> None:
    """The app's revalidation webhook (sent by the driver), then the pages that read the tag."""
    recording.send(client, _post("/api/revalidate?tag=product-1"), "revalidate")
    chromium.click_to("revalidate: click /products/1", "/products/1")
    chromium.click_to("revalidate: click /about", "/about")
    recording.send(client, _post("/api/revalidate?tag=product-1&expire=0"), "revalidate")
    chromium.click_to("revalidate: click /products/1", "/products/1")
    recording.send(client, _post("/api/revalidate?tag=products&expire=0"), "revalidate")
    chromium.click_to("revalidate: click /products/2", "/products/2")
    chromium.click_to("revalidate: click /products/3", "/products/3")


def browse_after_deploy(chromium: RecordingChromium) -> None:
    """The page of the old build, still open, navigates on the new build (which Next.js
    answers by loading the page anew), then on."""
    phase = "after deploy: "
    for path in ("/products/1", "/profile", "/products/2", "/products/3"):
        chromium.click_to(f"{phase}click {path}", path)
    below_the_fold(chromium, phase, "/products/4")
    below_the_fold(chromium, phase, "/products/5")
    chromium.click_to(f"{phase}click /about", "/about")
    chromium.step = "leave"
    chromium.goto("about:blank")  # the page is left: the browser client sends what it holds


# The 7 links of the navigation bar, and the two below the home page's fold, prefetched.
LINKS_PREFETCHED = (
    "new Set(performance.getEntriesByType('resource').filter((e) => "
    "e.name.includes('_rsc=')).map((e) => new URL(e.name).pathname)).size >= 7"
)
PREFETCHED_BELOW = (
    f"{json.dumps(list(BELOW_THE_FOLD))}.every((path) => performance"
    ".getEntriesByType('resource').some((e) => new URL(e.name).pathname === path))"
)


def record_chromium_run(out: Path, name: str) -> None:
    """Chromium clicking through the app on Next.js 16, with the helper and the browser
    client on: a cold start, revalidations, a deploy under the open page."""
    if not shutil.which("chromium"):
        raise SystemExit("Debian's Chromium is needed: apt-get install chromium")
    work = fresh_workdir()
    receiver = Receiver()
    recording = Recording()
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    app = ExampleApp(work, free_port(), 16, browser_endpoint=receiver.url + BROWSER_TRACES)
    app.env["NEXTRACE_PREDICTIVE_WARMUPS"] = "0"
    try:
        with receiver.running():
            print(f"{name}: building examples/nextjs on Next.js 16 …", file=sys.stderr)
            app.build()
            with (
                RecordingChromium(work / "chromium", origin) as chromium,
                httpx.Client(base_url=origin, timeout=60) as client,
            ):
                with serving(app, port, receiver, recording, "start", helper=True) as url:
                    browse_first_build(chromium, url)
                    browse_revalidations(chromium, client, recording)
                print(f"{name}: deploying (next build) …", file=sys.stderr)
                chromium.step = "deploy"
                # A clean build, as in a fresh container: the data cache starts empty.
                shutil.rmtree(app.dir / ".next")
                app.rebuild()
                with serving(app, port, receiver, recording, "deploy", True, clean_build=True):
                    browse_after_deploy(chromium)
                browsed, untraced = chromium.requests()
                errors = list(chromium.console_errors)
                left_open = list(chromium.left_open)
            calls = upstream_calls(app)
        chromium_version = subprocess.run(
            ["chromium", "--version"], capture_output=True, text=True, check=True
        ).stdout.split(" built on ")[0]
        recording.requests.extend(browsed)
        info = {
            "driver": "chromium",
            "command": f"python -m tests.examples.record_captures runs {out} {name}",
            "helper": True,
            "browser_client": True,
            "browser_service": "nextjs-example-browser",
            "app_origin": origin,
            "chromium": chromium_version,
            "browser_requests_untraced": untraced,
            "console_errors": errors,
            "left_open": left_open,
            **versions(app),
        }
        write_recorded_run(out / name, receiver.received, recording, calls, info)
    finally:
        app.close()
        shutil.rmtree(work, ignore_errors=True)


def record_runs(out: Path, names: list[str]) -> None:
    """Record the runs ``names`` (default all) into ``out``, one after the other."""
    for name in names:
        if name == "next16-curl":
            record_curl_run(out, name, 16)
        elif name == "next15-curl":
            record_curl_run(out, name, 15)
        elif name == "next16-chromium":
            record_chromium_run(out, name)
        else:
            raise SystemExit(f"unknown run {name!r}: give some of {', '.join(RUN_NAMES)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["runs"]:
        record_runs(
            Path(sys.argv[2]) if len(sys.argv) > 2 else RUNS_DIR,
            sys.argv[3:] or list(RUN_NAMES),
        )
    else:
        record(
            Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/data/nextjs-captures"),
            int(sys.argv[2]) if len(sys.argv) > 2 else 16,
        )
