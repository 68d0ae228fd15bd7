"""examples/nextjs-cache-components, run for real: two ``next start`` instances of one build,
a Redis server (Debian's ``redis-server``) for the ``'use cache: remote'`` handler, and
examples/nextjs's upstream, whose log of its calls is the truth. Then the scenario a test or a
recording drives through it (``STEPS``) and what each step's lookups must be.

    python -m tests.examples.cache_components tests/data/cache-components-run

records the scenario's exports (a plain OTLP/HTTP receiver's bodies, as received), the
driver's requests and the upstream's calls, in the layout of tests/data/nextjs-runs.

**The truth.** A product page reads two ``'use cache'`` functions: ``getProduct`` on the
``default`` handler (Next.js's in-memory one: each instance has its own) and ``getStock`` on the
``remote`` one (Redis, shared). Each runs, and calls the upstream (``/api/product/N``,
``/api/stock/N``) with the request's traceparent, exactly when its lookup did not hit; each
answer carries its call's number, and the page shows the number of the answer it was rendered
with. So a lookup with no call in its trace hit; one whose call's answer the page shows missed;
one whose page shows an older answer while its call refreshed the entry was served stale. Why a
lookup missed is what the step did: ``Step.expect`` says it, from the scenario alone.

**Next.js's own word.** The instances run with ``NEXT_PRIVATE_DEBUG_CACHE=1``: Next.js's
in-memory handler (``DefaultCacheHandler``) then logs each ``get`` with its verdict (``not
found``, ``expired``, ``had expired tag``, ``had stale tag``, ``found``…). Each request keeps
the verdicts its instance logged while it ran (``handler_says``), a truth from Next.js itself
for the ``use_cache`` lookup's result and reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.examples.nextjs_app import pack_helper, run, start, stop, wait_for
from tests.examples.record_captures import Receiver, Recording, new_traceparent, write_run
from tests.support.processes import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "nextjs-cache-components"
UPSTREAM = ROOT / "examples" / "nextjs" / "upstream.mjs"
SERVICE = "nextjs-cache-components"
INSTANCES = ("a", "b")
LAYERS = ("use_cache", "use_cache_remote", "incremental")
# (what a step reads, layer) -> the upstream path its misses call. A page also reads its route's
# shell (prerendered by Cache Components) from the incremental cache, which calls nothing: that
# lookup is checked against the scenario alone.
UPSTREAM_OF = {
    ("page", "use_cache"): "/api/product/",
    ("page", "use_cache_remote"): "/api/stock/",
    ("price", "incremental"): "/api/price/",
}
# The example's cacheLife('product') revalidate time (next.config.mjs): long enough that no
# entry of a live run ages past it unless a step waits for that.
REVALIDATE_S = 30
# What the product page shows of each value: `(stock: call 7)` (React marks the text's parts).
# The price route answers its call's number as JSON.
# Next.js's in-memory handler's debug line of a lookup: `DefaultCacheHandler: get KEY VERDICT`.
HANDLER_SAYS = re.compile(
    r"^DefaultCacheHandler: get \S+ (not found|expired|had expired tag|had stale tag|found"
    r"|evicted|pending)",
    re.MULTILINE,
)
SHOWN = {
    "use_cache": re.compile(r"\(product: call (?:<!-- -->)?(\d+)"),
    "use_cache_remote": re.compile(r"\(stock: call (?:<!-- -->)?(\d+)"),
    "incremental": re.compile(r'"call":(\d+)'),
}


@dataclass(frozen=True)
class Step:
    """A request of the scenario on ``instance``: a product's page (its two 'use cache'
    functions), its price (the fetch data cache, in the incremental cache), or a revalidation
    (``revalidate``: its query, ``tag=product-1`` or ``tag=product-2&expire=0``); and the
    (result, reason) each layer's lookup must have. ``wait_expiry``: first wait until the
    entry the step reads is older than its revalidate time."""

    instance: str
    product: int = 0
    revalidate: str = ""
    expect: dict[str, tuple[str, str]] = field(default_factory=dict)
    wait_expiry: bool = False
    price: bool = False

    @property
    def path(self) -> str:
        if self.revalidate:
            return f"/api/revalidate?{self.revalidate}"
        return f"/api/price/{self.product}" if self.price else f"/products/{self.product}"


def _page(
    instance: str,
    product: int,
    mine: tuple[str, str],
    shared: tuple[str, str],
    shell: tuple[str, str] = ("hit", ""),
    **options: Any,
) -> Step:
    expect = {"use_cache": mine, "use_cache_remote": shared, "incremental": shell}
    return Step(instance, product, expect=expect, **options)


def _price(instance: str, product: int, outcome: tuple[str, str], **options: Any) -> Step:
    return Step(instance, product, expect={"incremental": outcome}, price=True, **options)


HIT = ("hit", "")
# Build 1: each instance's own cache, the shared one, and two kinds of tag revalidation.
BUILD_1 = [
    # The first entries ever; the route's shell too (the build left it on disk, not in Redis).
    _page("a", 1, ("miss", "unknown"), ("miss", "unknown"), ("miss", "unknown")),
    _price("a", 1, ("miss", "unknown")),
    _page("a", 1, HIT, HIT),
    _page("b", 1, ("miss", "other_instance"), HIT),  # only a's memory has it; Redis has it
    _price("b", 1, HIT),  # the incremental cache is in Redis too
    _page("b", 2, ("miss", "unknown"), ("miss", "unknown")),
    _page("a", 2, ("miss", "other_instance"), HIT),
    Step("a", revalidate="tag=product-1"),  # 'max': stale, served once more while it refreshes
    _page("a", 1, ("stale", "tag_invalidated"), ("stale", "tag_invalidated")),
    _price("a", 1, ("miss", "tag_invalidated")),  # the example's handler drops it at once
    # b's memory keeps its own tag states: a's revalidation never reached it.
    _page("b", 1, HIT, HIT),
    Step("b", revalidate="tag=product-2&expire=0"),  # gone at once
    _page("b", 2, ("miss", "tag_invalidated"), ("miss", "tag_invalidated")),
    # The in-memory handler drops an entry past its revalidate time; Redis serves it stale.
    _page("a", 1, ("miss", "expired"), ("stale", "expired"), wait_expiry=True),
]
# Build 2, after a deploy: the same entries under a new build, and a product never read.
BUILD_2 = [
    _page("a", 1, ("miss", "deploy"), ("miss", "deploy"), ("miss", "deploy")),
    # The data cache outlives a deploy: its keys hold no build.
    _price("a", 1, HIT),
    _page("b", 1, ("miss", "other_instance"), HIT),
    _price("b", 2, ("miss", "cold")),
    _page("a", 3, ("miss", "cold"), ("miss", "cold")),
    _page("a", 3, HIT, HIT),
]


class CacheComponentsApp:
    """A built copy of the example, its upstream and its Redis server, and its instances."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "app"
        self.upstream_port = free_port()
        self.redis_port = free_port()
        self.upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        self.env = {
            **os.environ,
            "NEXT_TELEMETRY_DISABLED": "1",
            "UPSTREAM_URL": self.upstream_url,
            "UPSTREAM_PORT": str(self.upstream_port),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}",
        }
        self._services: list[subprocess.Popen[bytes]] = []

    def build(self) -> None:
        """Copy, install (the helper from its ``npm pack``), start Redis and the upstream,
        and ``next build``."""
        shutil.copytree(EXAMPLE, self.dir, ignore=shutil.ignore_patterns("node_modules", ".next"))
        tarball = pack_helper(self.dir.parent, self.env)
        manifest = json.loads((self.dir / "package.json").read_text())
        manifest["dependencies"]["@nextrace/next"] = f"file:{tarball}"
        (self.dir / "package.json").write_text(json.dumps(manifest, indent=2))
        run(["npm", "install", "--no-audit", "--no-fund"], self.dir, self.env, timeout=300)
        redis = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        redis += ["--save", "", "--appendonly", "no"]  # nothing written to disk
        for command, port, log in (
            (redis, self.redis_port, "redis.log"),
            (["node", str(UPSTREAM)], self.upstream_port, "upstream.log"),
        ):
            process = start(command, self.dir, self.env, self.dir / log)
            self._services.append(process)
            wait_for(port, process)
        self.rebuild()

    def rebuild(self) -> None:
        """``next build``: a new build id (stop the instances first)."""
        run(["npx", "next", "build"], self.dir, self.env, timeout=300)

    def build_id(self) -> str:
        return (self.dir / ".next" / "BUILD_ID").read_text().strip()

    @contextlib.contextmanager
    def serve(self, collector_url: str) -> Iterator[dict[str, str]]:
        """Both instances, exporting to ``collector_url``: their URLs by instance id; stopped
        (and flushed) on exit."""
        servers: list[subprocess.Popen[bytes]] = []
        urls: dict[str, str] = {}
        try:
            for instance in INSTANCES:
                port = free_port()
                env = {
                    **self.env,
                    "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
                    "OTEL_SERVICE_NAME": SERVICE,
                    "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}",
                    "OTEL_BSP_SCHEDULE_DELAY": "500",
                    "NEXT_PRIVATE_DEBUG_CACHE": "1",  # the in-memory handler's verdicts
                }
                command = ["npx", "next", "start", "--hostname", "127.0.0.1", "--port", str(port)]
                server = start(command, self.dir, env, self.dir / f"next-{instance}.log")
                servers.append(server)
                wait_for(port, server)
                urls[instance] = f"http://127.0.0.1:{port}"
            yield urls
        finally:
            for server in servers:
                stop(server)

    def handler_says(self, instance: str) -> list[str]:
        """What Next.js's in-memory handler of ``instance`` logged of its lookups so far, in
        order, since the instance started: one verdict each (see :data:`HANDLER_SAYS`)."""
        text = (self.dir / f"next-{instance}.log").read_text(errors="replace")
        return HANDLER_SAYS.findall(text)

    def upstream_calls(self) -> list[dict[str, Any]]:
        """The upstream's log, one call a line (as tests/data/nextjs-runs keeps it)."""
        log = httpx.get(f"{self.upstream_url}/calls", timeout=30).json()["log"]
        return [
            {
                "number": call["number"],
                "path": call["path"],
                "trace_id": call["traceparent"][3:35],
                "received_ns": int(call["received"]) * 1_000_000,
                "answered_ns": int(call["answered"]) * 1_000_000 if "answered" in call else None,
            }
            for call in log
        ]

    def close(self) -> None:
        for process in self._services:
            stop(process)


class Driver:
    """Sends the scenario's steps, one at a time, and keeps what each was (``Recording``'s
    line format, with the instance and the step's expectations)."""

    def __init__(self, app: CacheComponentsApp) -> None:
        self.app = app
        self.recording = Recording()
        # (price?, product) -> when the latest request that read its entries was answered (ns)
        self.filled: dict[tuple[bool, int], int] = {}

    def send(self, urls: dict[str, str], step: Step, phase: str) -> None:
        if step.wait_expiry:
            ready = self.filled[step.price, step.product] + int(REVALIDATE_S * 1e9)
            wait_until(lambda: time.time_ns() > ready, "the entry is past its revalidate time")
        said_before = len(self.app.handler_says(step.instance))
        traceparent = new_traceparent()
        method = "POST" if step.revalidate else "GET"
        started = time.time_ns()
        response = httpx.request(
            method,
            urls[step.instance] + step.path,
            headers={"traceparent": traceparent},
            timeout=60,
        )
        ended = time.time_ns()
        response.raise_for_status()
        if step.product:
            self.filled[step.price, step.product] = ended
        self.recording.requests.append(
            {
                "label": f"{phase}: {method} {step.path} on {step.instance}",
                "method": method,
                "path": step.path,
                "instance": step.instance,
                "step": phase,
                "trace_id": traceparent[3:35],
                "t_start_ns": started,
                "t_end_ns": ended,
                "status": str(response.status_code),
                "shown": {
                    layer: int(found.group(1))
                    for layer, shown in SHOWN.items()
                    if (found := shown.search(response.text))
                },
                "expect": {layer: list(outcome) for layer, outcome in step.expect.items()},
            }
        )
        if step.revalidate:
            self.recording.event("revalidate", query=step.revalidate, instance=step.instance)
        self.settle()
        said = self.app.handler_says(step.instance)[said_before:]
        self.recording.requests[-1]["handler_says"] = said

    def settle(self) -> None:
        """Until every upstream call is answered (a stale entry's refresh outlives its page)."""
        wait_until(
            lambda: all(c["answered_ns"] for c in self.app.upstream_calls()),
            "every upstream call is answered",
        )


def drive(
    app: CacheComponentsApp,
    collector_url: str,
    before_stop: Callable[[], None] | None = None,
    sent: list[dict[str, Any]] | None = None,
    expiry: bool = True,
) -> Driver:
    """The whole scenario: build 1's steps, a deploy (``next build``), build 2's steps.
    ``before_stop``: called after each build's steps, before its instances stop (until the
    receiver is quiet, say); ``sent``: the list the driver keeps its requests in; ``expiry``
    False leaves out the steps that wait for an entry to age past its revalidate time."""
    driver = Driver(app)
    if sent is not None:
        driver.recording.requests = sent
    for phase, steps in (("build 1", BUILD_1), ("build 2", BUILD_2)):
        if phase == "build 2":
            app.rebuild()
        with app.serve(collector_url) as urls:
            driver.recording.event("start", build=app.build_id(), instances=list(urls))
            for step in steps:
                if step.wait_expiry and not expiry:
                    continue
                driver.send(urls, step, phase)
            if before_stop is not None:
                before_stop()
        driver.recording.event("stop", build=app.build_id())
    return driver


def record(out: Path) -> None:
    """Record the scenario into ``out`` (see the module docstring)."""
    work = Path(tempfile.gettempdir()) / "nextrace-cache-components"  # neutral span paths
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    app = CacheComponentsApp(work)
    receiver = Receiver()
    try:
        sent: list[dict[str, Any]] = []

        def all_exported() -> None:
            """Until every request sent so far has had spans of its trace exported (a trace
            id is in a protobuf body as its 16 bytes), then until the exports are quiet."""
            wait_until(
                lambda: all(
                    any(bytes.fromhex(r["trace_id"]) in body for _, _, body in receiver.bodies)
                    for r in sent
                ),
                "every request's spans are exported",
            )
            receiver.wait_until_quiet()

        with receiver.running():
            app.build()
            driver = drive(app, receiver.url, all_exported, sent)
            calls = app.upstream_calls()
        write_run(out, receiver.bodies, driver.recording.requests)
        for name, rows in (("events", driver.recording.events), ("upstream_calls", calls)):
            (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{out}: {len(receiver.received)} exports, {len(calls)} calls", file=sys.stderr)
    finally:
        app.close()
        shutil.rmtree(work, ignore_errors=True)


def load(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A recorded run's requests and upstream calls."""

    def lines(name: str) -> list[dict[str, Any]]:
        text = (run_dir / f"{name}.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines() if line]

    return lines("requests"), lines("upstream_calls")


def computed(request: dict[str, Any], calls: list[dict[str, Any]]) -> dict[str, str]:
    """What the upstream says each lookup of ``request`` was, layer by layer, from its calls
    and what it answered alone: ``hit`` (no call in the request's trace), ``miss`` (the answer
    shows its call's number) or ``stale`` (the answer shows an older call's: the request's call
    refreshed the entry in the background). Nothing for a lookup that calls no upstream (a
    route's shell) nor for a revalidation."""
    product = request["path"].rsplit("/", 1)[-1]
    reads = "price" if request["path"].startswith("/api/price/") else "page"
    found: dict[str, str] = {}
    for layer in request["expect"]:
        upstream = UPSTREAM_OF.get((reads, layer))
        if upstream is None:
            continue
        mine = [
            c
            for c in calls
            if c["trace_id"] == request["trace_id"] and c["path"] == f"{upstream}{product}"
        ]
        shown = request["shown"][layer]
        if not mine:
            found[layer] = "hit"
        elif any(c["number"] == shown for c in mine):
            found[layer] = "miss"
        else:
            found[layer] = "stale"
    return found


if __name__ == "__main__":
    record(Path(sys.argv[1]))


Lookups = dict[tuple[str, str], dict[str, Any]]  # cache_events rows by (TraceId, Layer)


def mismatches(
    requests: list[dict[str, Any]], calls: list[dict[str, Any]], lookups: Lookups
) -> list[tuple[Any, ...]]:
    """Each lookup of the scenario whose row disagrees with the truth: its outcome with the
    upstream's log and the answer (``computed``; the step's, for a route's shell), its reason
    with the step, its instance with the instance the request went to; a lookup without a row
    is one."""
    wrong: list[tuple[Any, ...]] = []
    for request in requests:
        truth = computed(request, calls)
        for layer, (result, reason) in request["expect"].items():
            row = lookups.get((request["trace_id"], layer))
            expected = (truth.get(layer, result), reason, request["instance"])
            found = row and (row["Result"], row["Reason"], row["Instance"])
            if found != expected:
                wrong.append((request["label"], layer, expected, found))
    return wrong


# What Next.js's in-memory handler logs of a lookup against the use_cache rows it allows: "not
# found" is any miss the handler cannot explain itself.
NEXT_SAYS: dict[str, set[tuple[str, str]]] = {
    "found": {("hit", "")},
    "had stale tag": {("stale", "tag_invalidated")},
    "expired": {("miss", "expired")},
    "had expired tag": {("miss", "tag_invalidated")},
    "evicted": {("miss", "evicted")},
    "not found": {("miss", why) for why in ("cold", "unknown", "deploy", "other_instance")},
}


def verdict(request: dict[str, Any]) -> str:
    """What Next.js's in-memory handler logged of the page's one lookup (``handler_says``):
    "pending" only says it waited for a fill first; "had stale tag" is followed by "found"."""
    said = [v for v in request["handler_says"] if v != "pending"]
    if said == ["had stale tag", "found"]:  # served, to be run again
        said = ["had stale tag"]
    return said[0] if len(said) == 1 else f"unreadable: {request['handler_says']}"


def next_js_disagrees(requests: list[dict[str, Any]], lookups: Lookups) -> list[tuple[Any, ...]]:
    """Each page whose use_cache row disagrees with what Next.js's in-memory handler logged
    of its lookup (``NEXT_PRIVATE_DEBUG_CACHE``)."""
    wrong: list[tuple[Any, ...]] = []
    for request in requests:
        if "use_cache" not in request["expect"]:
            continue
        row = lookups.get((request["trace_id"], "use_cache"))
        found = row and (row["Result"], row["Reason"])
        if found not in NEXT_SAYS.get(verdict(request), set()):
            wrong.append((request["label"], request["handler_says"], found))
    return wrong
