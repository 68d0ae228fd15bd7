"""examples/nextjs, built and run for real, exporting to `nextrace collect` (slow).

Each pass drives the app the way its users would: a cold read, a warm read, prefetches and
a segment prefetch, an RSC navigation, revalidations and a webhook flood, while the app's
proxy warms up the next product predictively and its webhook queues warm-ups behind a rate
limiter (@nextrace/next's warmupQueue). It then checks what the dashboards' cache, warm-up
and prefetch panels say against what happened. What happened is known independently: the
upstream logs its calls, each with the traceparent the driver's request (or a warm-up) sent
on (no call: a data-cache hit; a call the request waited for: a miss; a call it did not wait
for: a stale read refreshed in the background; tests/examples/truth.py), Next.js's responses
carry x-nextjs-cache, and the app answers what its warm-up queue did with each submission (the
proxy's x-warmup header, the webhook's JSON). The upstream can hold a call, so a page races a
queued warm-up of its entry for certain. One pass uses the optional helper (@nextrace/next,
js/next), one does not, and the helper's pass is served again after a deploy. With Debian's
Chromium, driven over the DevTools protocol (traffic/chromium.py), a real browser
prefetches a page's links, navigates and goes back, and its own spans (@nextrace/next/client)
are checked against its network log and the server's traces.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from collector.config import StoreConfig
from collector.storage.store import open_store
from dashboards import cache_health, cold_cache, prefetch, slow_navigations
from dashboards.clickhouse import load_sql
from dashboards.frontend import Values, interpolate
from dashboards.macros import QueryContext, expand
from tests.dashboards.panels import panel_json
from tests.examples.nextjs_app import Call, ExampleApp, rsc_headers
from tests.examples.truth import PassTruth, Sent, product_key
from tests.support.processes import free_port, start_collector
from tests.support.waiting import wait_until
from traffic.chromium import Chromium, LoggedRequest, logged_requests

pytestmark = pytest.mark.slow


# method, path, RSC request kind (None: a plain request)
STEPS: list[tuple[str, str, str | None]] = [
    ("GET", "/", None),
    ("GET", "/profile", None),  # dynamic, with a waterfall of uncached fetches
    ("GET", "/products/1", None),  # cold
    ("GET", "/products/1", None),  # warm
    ("GET", "/products/3", "prefetch"),  # dynamic, with a loading state
    ("GET", "/about", "prefetch"),  # static
    ("GET", "/about", "segment"),
    ("GET", "/products/2", "navigation"),
    ("POST", "/api/revalidate?tag=product-1", None),  # stale from now on
    ("GET", "/products/1", None),
    ("POST", "/api/revalidate?tag=product-1&expire=0", None),  # gone from now on
    ("GET", "/products/1", None),
    ("GET", "/blog", None),  # ISR
]
# Then a CMS's webhook flood, all at once: each revalidates product-2 and queues a warm-up.
FLOOD = ("POST", "/api/revalidate?tag=product-2&warm=1", None)
FLOOD_SIZE = 6
# After a deploy (a second `next build`), the first pass's service again.
AFTER_DEPLOY: list[tuple[str, str, str | None]] = [
    ("GET", "/products/1", None),
    ("GET", "/products/2", None),
]
KINDS = {None: "document", "prefetch": "rsc_prefetch", "segment": "rsc_prefetch"}
BROWSER_COLLECTOR_PORT = free_port()
SHOWN_CALL = re.compile(r"\(fetched [^,]+, call (\d+)\)")  # a product page's upstream call
BROWSER_SCOPE = "@nextrace/next/browser"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleApp]:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("Node.js 20 and npm are needed to build the example Next.js app")
    # The real browser's pages send their spans to the collector of that test, on this port.
    endpoint = f"http://127.0.0.1:{BROWSER_COLLECTOR_PORT}/v1/browser/traces"
    app = ExampleApp(tmp_path_factory.mktemp("example"), free_port(), browser_endpoint=endpoint)
    try:
        app.build()
        yield app
    finally:
        app.close()


def drive(app: ExampleApp, url: str, race: int, collector_url: str, service: str) -> list[Sent]:
    """Send ``STEPS`` one by one, each once the previous one has settled, then a race on
    product ``race``, then the ``FLOOD`` at once; what each request was and got."""
    sent: list[Sent] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for step in STEPS:
            sent.append(send(app, client, *step))
            settle(app, collector_url, service, sent)
        sent += send_race(app, client, race)
        settle(app, collector_url, service, sent)
        with ThreadPoolExecutor(FLOOD_SIZE) as pool:
            flood = [pool.submit(send, app, client, *FLOOD) for _ in range(FLOOD_SIZE)]
            sent.extend(f.result() for f in flood)
        settle(app, collector_url, service, sent)
    return sent


def send_race(app: ExampleApp, client: httpx.Client, product: int) -> list[Sent]:
    """A prefetch of product N - 1 has the proxy queue a warm-up of product N, whose call the
    upstream holds; product N's page is opened meanwhile, so it looks up its entry before the
    warm-up has filled it. (Settled by the caller: the held call is answered once the block
    ends.)"""
    key = product_key(str(product))
    with app.holding(key):
        prefetch = send(app, client, "GET", f"/products/{product - 1}", "prefetch")
        assert prefetch.warmup == ("middleware", "queued")
        app.wait_for_call(key, after=prefetch.at)
        page = send(app, client, "GET", f"/products/{product}", None)
    return [prefetch, page]


def settle(
    app: ExampleApp, collector_url: str, service: str, sent: list[Sent], warmups_before: int = 0
) -> None:
    """Until what ``sent`` set going is over, then tell each product page's data cache.

    Over means: each request of ``sent`` is stored (its whole answer was sent, so a background
    refresh it started has begun), every warm-up it queued has run and is stored (its fetch
    filled its entry: a later page finds it), beyond the ``warmups_before`` the service stored
    earlier, and every call the upstream received is answered (a background refresh too).
    """
    traces = ", ".join(f"'{s.trace_id}'" for s in sent)
    stored = (
        f"SELECT uniqExact(TraceId) FROM requests WHERE ServiceName = '{service}' "
        f"AND TraceId IN ({traces})"
    )
    warmed = f"SELECT count() FROM requests WHERE ServiceName = '{service}' AND Kind = 'warmup'"
    expected = warmups_before + ran(sent)

    def over() -> bool:
        return (
            int(query(collector_url, stored)[0][0]) >= len(sent)
            and int(query(collector_url, warmed)[0][0]) >= expected
            and all(c.answered is not None for c in app.upstream_log())
        )

    wait_until(
        over,
        f"{service}: {len(sent)} requests and {expected} warm-ups stored, every call answered",
        timeout_s=60,
        detail=lambda: (
            f"stored: {query(collector_url, stored)}, warm-ups: "
            f"{query(collector_url, warmed)}, unanswered: "
            f"{[c for c in app.upstream_log() if c.answered is None]}"
        ),
    )
    calls = app.upstream_log()
    for s in sent:
        if s.product and s.kind in ("document", "rsc_navigation") and s.data_cache is None:
            s.data_cache = data_cache(s, calls)


def data_cache(page: Sent, calls: list[Call]) -> str:
    """What the data cache did for ``page``, from the upstream calls of its own trace: none, a
    hit; one whose data the page shows (it waited for it), a miss; only others, a stale read
    refreshed in the background. (A warm-up's call is of another trace.) The page names the
    call it shows, so no clock decides: a refresh answered before a slow page's last byte was
    once taken for a miss."""
    key = product_key(page.product)
    own = [c for c in calls if c.trace_id == page.trace_id and c.path == key]
    if not own:
        return "hit"
    assert page.shown_call is not None, f"{page.target} names no upstream call"
    return "miss" if any(c.number == page.shown_call for c in own) else "stale"


def send(
    app: ExampleApp,
    client: httpx.Client,
    method: str,
    path: str,
    rsc: str | None,
) -> Sent:
    """One request, with a traceparent of its own; its data cache is told once it has
    settled (``settle``)."""
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    if rsc is not None:
        rsc_only, param = rsc_headers(rsc)
        headers |= rsc_only
        path_with_query = f"{path}{'&' if '?' in path else '?'}_rsc={param}"
    else:
        path_with_query = path
    at = time.time()
    response = client.request(method, path_with_query, headers=headers)
    received = time.time()
    assert response.status_code == 200, (path, response.text[:300])
    warmup = None
    if "x-warmup" in response.headers:
        warmup = ("middleware", response.headers["x-warmup"])
    elif method == "POST" and response.json().get("warmup"):
        warmup = ("webhook", response.json()["warmup"])
    shown = SHOWN_CALL.search(response.text) if method == "GET" else None
    return Sent(
        target=path,
        path=path.split("?")[0],
        kind="api" if method == "POST" else KINDS.get(rsc, "rsc_navigation"),
        data_cache=None,
        shown_call=int(shown.group(1)) if shown else None,
        nextjs_cache=response.headers.get("x-nextjs-cache"),
        body_bytes=response.num_bytes_downloaded,
        warmup=warmup,
        at=at,
        received=received,
        trace_id=trace_id,
    )


def ran(sent: list[Sent]) -> int:
    """How many warm-ups the app queued for ``sent``: each ran as a request of its own."""
    return sum(n for (_, outcome), n in warmups(sent).items() if outcome == "ok")


def wait_for_all(collector_url: str, service: str, sent: list[Sent]) -> None:
    """Until the requests of ``sent``, and of the warm-ups they queued, are normalized, and all
    of each one's Next.js spans are stored: its row is stored once its outermost span is, but
    that span (the proxy's pass) ends before the request span Next.js nests in it, which ends
    after the request's route, render and fetch spans. So once both request spans of each
    request are stored, the spans that ended before them are too (the span processor exports
    in the order spans end); the app may be stopped then without losing any."""
    requests = len(sent) + ran(sent)
    wait_for_requests(collector_url, service, requests)
    spans = (
        "SELECT countIf(NextSpanType = 'BaseServer.handleRequest'), "
        "countIf(Phase = 'middleware' OR (Phase = '' AND NextSpanType = 'Middleware.execute')), "
        "countIf(Phase = 'route' OR (Phase = '' AND NextSpanType = "
        "'NextNodeServer.findPageComponents')) FROM otel_traces "
        f"WHERE ServiceName = '{service}' AND TraceId IN "
        f"(SELECT TraceId FROM requests WHERE ServiceName = '{service}')"
    )

    def stored() -> bool:
        handled, proxied, routed = map(int, query(collector_url, spans)[0])
        # Two request spans each: every request passes the proxy (its matcher takes all).
        return handled >= 2 * requests and min(proxied, routed) >= requests

    wait_until(
        stored,
        f"{service}: the Next.js spans of {requests} requests are stored",
        timeout_s=60,
        detail=lambda: f"(request, proxy, route) spans: {query(collector_url, spans)}",
    )


def warmups(sent: list[Sent]) -> Counter[tuple[str, str]]:
    """The warm-ups the app said it queued, deduplicated or refused, by trigger and outcome
    (a queued job that ran is ``ok``)."""
    return Counter(
        (s.warmup[0], "ok" if s.warmup[1] == "queued" else s.warmup[1]) for s in sent if s.warmup
    )


def query(collector_url: str, sql: str) -> list[list[Any]]:
    response = httpx.post(
        f"{collector_url}/sql", json={"query": sql, "format": "JSONCompact"}, timeout=30
    )
    response.raise_for_status()
    rows: list[list[Any]] = response.json()["data"]
    return rows


def wait_for_requests(
    collector_url: str, service: str, count: int, kinds: str = "", sent: object = None
) -> None:
    """Until ``count`` requests of ``service`` (of ``kinds``, an SQL list, if given) are
    normalized (Next.js exports in batches); the failure shows those stored, and ``sent``."""
    where = f"ServiceName = '{service}'" + (f" AND Kind IN {kinds}" if kinds else "")
    seen = (
        "SELECT Kind, KindSource, Prefetch, Path, count() FROM requests "
        f"WHERE ServiceName = '{service}' GROUP BY ALL ORDER BY ALL"
    )
    wait_until(
        lambda: (
            int(query(collector_url, f"SELECT count() FROM requests WHERE {where}")[0][0]) >= count
        ),
        f"{service}: {count} requests arrived",
        timeout_s=60,
        detail=lambda: f"{query(collector_url, seen)}; sent: {sent}",
    )


class Dashboards:
    """Panels of the dashboards, as Grafana would run them on the run's store."""

    def __init__(self, store_dir: Path, started: dt.datetime) -> None:
        self.store = open_store(StoreConfig.from_dsn(f"chdb:{store_dir}"), migrate=False)
        # One time bucket for the whole run, so each panel's ratio covers it all, whatever the
        # time of day: buckets are aligned to the epoch, and the one of 50 years that holds
        # today runs from 2020 to 2070 (a day-long one splits a run that crosses midnight).
        self.context = QueryContext(
            started - dt.timedelta(minutes=1),
            dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
            dt.timedelta(days=365 * 50),
        )

    def panel(
        self,
        module: Any,
        title: str,
        service: str,
        route: str | None = None,
        build: str | None = None,
    ) -> list[Any]:
        values: dict[str, Values] = {name: None for name in module.VARIABLES}
        values["service"] = [service]
        if route is not None:
            values["route"] = [route]
        if build is not None:
            values["build"] = [build]
        sql = interpolate(panel_json(module, title)["targets"][0]["rawSql"], values)
        return self.run(sql)

    def run(self, sql: str) -> list[Any]:
        """``sql`` with Grafana's macros expanded for the run's time range."""
        return list(self.store.client.query(expand(sql, self.context)).result_rows)


class RunCollector:
    """``nextrace collect`` for the ``with`` body's traffic, stopped (flushed) at its end."""

    def __init__(self, workdir: Path, port: int = 0, *extra: str) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra = extra
        self.started = dt.datetime.now(dt.UTC)
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        self._process = start_collector(self.workdir, self.port, "--nextjs-wait", "1", *self.extra)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        assert self._process.wait(60) == 0

    def dashboards(self) -> Dashboards:
        return Dashboards(self.workdir / ".nextrace" / "store", self.started)


def test_the_example_app_reaches_the_dashboards(example, tmp_path):
    passes: dict[str, list[Sent]] = {}
    windows: dict[str, tuple[float, float]] = {}  # when each pass began and ended
    collector = RunCollector(tmp_path)
    with collector as collector_url:
        # Each pass races on a product the other has not read, so the race is a miss in both.
        for service, helper, race in (("shop-helper", True, 6), ("shop-plain", False, 9)):
            began = time.time()
            with example.serve(free_port(), collector_url, service, helper) as url:
                passes[service] = drive(example, url, race, collector_url, service)
                wait_for_all(collector_url, service, passes[service])
            windows[service] = (began, time.time())
        first_build = example.build_id()
        example.rebuild()  # a deploy: the same app, built again, served after the first
        deployed = time.time()
        with (
            example.serve(free_port(), collector_url, "shop-helper", True) as url,
            httpx.Client(base_url=url, timeout=30) as client,
        ):
            after: list[Sent] = []
            for step in AFTER_DEPLOY:
                after.append(send(example, client, *step))
                settle(example, collector_url, "shop-helper", after, ran(passes["shop-helper"]))
            passes["shop-helper"] += after
            wait_for_all(collector_url, "shop-helper", passes["shop-helper"])
    board = collector.dashboards()
    calls = example.upstream_log()
    try:
        for service, sent in passes.items():
            check_pass(board.panel, service, sent, helper=service == "shop-helper")
        # The first build's data cache and phases, against the upstream's log of its calls.
        # (The helper's pass is filtered to it: a deploy's reads are checked below.)
        for service, build in (("shop-helper", first_build), ("shop-plain", None)):
            began, ended = windows[service]
            truth = PassTruth(
                sent=passes[service][: len(passes[service]) - (len(after) if build else 0)],
                calls=[c for c in calls if began <= c.received <= ended],
                upstream_url=example.upstream_url,
                helper=build is not None,
            )
            check_first_build(board.panel, service, truth, build)
        # Every request the driver sent is a trace of its own, under the traceparent it sent.
        traced = board.store.client.query("SELECT TraceId FROM requests").result_rows
        assert {s.trace_id for sent in passes.values() for s in sent} <= {t for (t,) in traced}
        # With the helper, every request names the build that served it (next build's id),
        # and the first request of the second build is drawn as its deploy.
        second_build = example.build_id()
        # The rows as they stand: a trace whose spans came late was derived again, and its
        # first rows cancelled (Sign -1), as the panels count them.
        builds = board.store.client.query(
            "SELECT ServiceName, arraySort(groupUniqArrayIf(BuildId, rows > 0)) FROM ("
            "SELECT ServiceName, BuildId, sum(Sign) AS rows FROM requests GROUP BY 1, 2"
            ") GROUP BY 1 ORDER BY 1"
        ).result_rows
        unnamed = board.store.client.query(
            "SELECT Kind, Path, TraceId, sum(Sign) FROM requests "
            "WHERE ServiceName = 'shop-helper' AND BuildId = '' GROUP BY 1, 2, 3"
        ).result_rows
        expected_builds = sorted([first_build, second_build])
        assert builds == [("shop-helper", expected_builds), ("shop-plain", [""])], unnamed
        annotations = board.run(load_sql("common", "deploys"))
        ((at, text, _),) = annotations
        assert text == f"deploy {second_build} (shop-helper)"
        assert deployed <= at.timestamp() <= after[0].at + 5
        # The build filter keeps the second build's requests only: the driver's, and the
        # warm-ups its proxy ran.
        title = "Request latency and TTFB per route"
        latency = board.panel(slow_navigations, title, "shop-helper", build=second_build)
        assert {(r[0], r[1]): r[2] for r in latency} == {
            ("/products/[id]", "document"): len(after),
            ("/api/warm/[id]", "warmup"): ran(after),
        }
        # Each revalidation the app made through @nextrace/next's traceRevalidations is a
        # span the blast-radius panel counts (Next.js does not tell how many entries it held).
        for service in passes:
            blast = board.panel(cold_cache, "Revalidation blast radius", service)
            revalidated = [("tag", "product-1", 2, 0), ("tag", "product-2", FLOOD_SIZE, 0)]
            assert sorted(blast) == revalidated, service
        # With the helper, a prefetch's row says how many bytes its answer weighed, as the
        # driver received them; except a dynamic page's, whose body Next.js streams after its
        # request span has ended.
        weighed = board.store.client.query(
            "SELECT ServiceName, ResponseBytes FROM requests WHERE Kind = 'rsc_prefetch' "
            "ORDER BY ServiceName, Timestamp"
        ).result_rows
        expected = [
            (service, s.body_bytes if helper and not s.path.startswith("/products/") else None)
            for service, helper in (("shop-helper", True), ("shop-plain", False))
            for s in passes[service]
            if s.kind == "rsc_prefetch"
        ]
        assert weighed == expected
        # With the helper, the fetches carry their tags, so the misses and stale hits that
        # follow a revalidateTag of product-1 say so; without it, Next.js cannot tell.
        reasons = board.store.client.query(
            "SELECT ServiceName, Result, Reason FROM cache_events "
            "WHERE Layer = 'data' AND Result != 'hit' AND Key LIKE '%/product/1' "
            "ORDER BY ServiceName, Timestamp"
        ).result_rows
        # After the deploy, the new build's first read of product 1 is a miss only if Next.js
        # emptied its data cache; if it was, the collector knows the old build had the entry.
        redeployed = [("shop-helper", after[0].data_cache, "deploy")]
        assert reasons == [
            ("shop-helper", "miss", "unknown"),  # the collector did not see the build start
            ("shop-helper", "stale", "tag_invalidated"),  # revalidateTag(product-1, 'max')
            ("shop-helper", "miss", "tag_invalidated"),  # revalidateTag(product-1, {expire: 0})
            *(redeployed if after[0].data_cache != "hit" else []),
            ("shop-plain", "stale", "unknown"),
            ("shop-plain", "miss", "unknown"),
        ], reasons
        # The slowest request of both passes heads the slowest-traces table.
        slowest = board.store.client.query("SELECT max(Duration) / 1e6 FROM requests")
        top = board.panel(slow_navigations, "Slowest traces", "shop-helper")[0]
        assert top[3] == pytest.approx(slowest.result_rows[0][0], abs=0.1)
    finally:
        board.store.close()


def browser_run(tmp_path: Path) -> tuple[RunCollector, int]:
    """The collector the example's pages send their spans to, taking them from the app's
    origin, and the port the app is to serve on."""
    app_port = free_port()
    origin = f"--browser-origin=http://127.0.0.1:{app_port}"
    return RunCollector(tmp_path, BROWSER_COLLECTOR_PORT, origin), app_port


def test_a_real_browser_prefetches_are_counted(example, tmp_path):
    if not shutil.which("chromium"):
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    collector, app_port = browser_run(tmp_path)
    with (
        collector as collector_url,
        example.serve(app_port, collector_url, "shop-browser", True) as url,
    ):
        with Chromium(tmp_path) as chromium:
            chromium.goto(url + "/")
            # Every link in view prefetched in full, and nothing left in flight: leaving the
            # page then cuts off no request (a quiet spell of the network would prove neither).
            wait_until(
                lambda: pages_prefetched(chromium, NAV_LINKS) and not chromium.in_flight(),
                "the links in view are prefetched and no request is in flight",
                timeout_s=60,
                detail=lambda: f"in flight: {chromium.in_flight()}",
            )
            chromium.goto("about:blank")  # the page is left: what is queued is sent
        # Only requests answered in full: the app may never finish one cut off (Next.js then
        # ends the proxy's span but not the request's).
        net_log = logged_requests(tmp_path / "net-log.json")
        urls = sorted({r.url for r in net_log if "_rsc=" in r.url})
        browser_prefetches = len(urls)
        # The page, and its prefetches (the proxy's warm-ups are requests too: not counted).
        kinds = "('document', 'rsc_prefetch')"
        wait_for_requests(collector_url, "shop-browser", 1 + browser_prefetches, kinds, urls)
        # The pages' own spans (@nextrace/next/client): a request span for each prefetch
        # request Chromium's log shows, in the trace the server's request joined.
        requested = wait_for_rows(collector_url, BROWSER_REQUESTS, browser_prefetches)
        served = query(
            collector_url,
            "SELECT TraceId FROM requests "
            "WHERE ServiceName = 'shop-browser' AND Kind = 'rsc_prefetch'",
        )
    board = collector.dashboards()
    try:
        assert browser_prefetches > 0  # the page has links in view
        rows = board.panel(prefetch, "Prefetches and navigations", "shop-browser")
        assert sum(r[1] for r in rows) == browser_prefetches
        assert sum(r[2] for r in rows) == 1  # the page load itself
        assert sorted(trace for trace, _ in requested) == sorted(trace for (trace,) in served)
        triggers = board.run(
            "SELECT SpanAttributes['nextrace.prefetch.trigger'], count() FROM otel_traces "
            f"WHERE ScopeName = '{BROWSER_SCOPE}' AND SpanAttributes['nextrace.phase'] = "
            "'prefetch' GROUP BY ALL"
        )
        assert dict(triggers).keys() == {"viewport"}  # the links are in view; nothing hovered
    finally:
        board.store.close()


# The 7 links of the example's navigation bar, in view at the top of every page.
NAV_LINKS = ("/", "/about", "/profile", "/blog", "/products/1", "/products/2", "/products/3")
# Their route trees answered (Next.js 16 asks for a page's tree before the page itself).
LINKS_PREFETCHED = (
    "new Set(performance.getEntriesByType('resource').filter((e) => "
    "e.name.includes('_rsc=')).map((e) => new URL(e.name).pathname)).size >= 7"
)
BROWSER_REQUESTS = (  # the RSC requests of the pages' own spans: (trace id, path) of each
    "SELECT TraceId, SpanAttributes['url.path'] FROM otel_traces "
    f"WHERE ScopeName = '{BROWSER_SCOPE}' AND SpanName LIKE 'GET %'"
)
PREFETCH_ROOTS = (  # the browsers' prefetches: the href of each
    "SELECT SpanAttributes['nextrace.navigation.href'] FROM otel_traces "
    f"WHERE ScopeName = '{BROWSER_SCOPE}' AND SpanAttributes['nextrace.phase'] = 'prefetch' "
    "AND ParentSpanId = ''"
)
USED_PREFETCHES = (  # the pages of the prefetches a navigation's router-cache lookup used
    "SELECT DISTINCT SpanAttributes['nextrace.navigation.href'] FROM otel_traces "
    f"WHERE ScopeName = '{BROWSER_SCOPE}' AND SpanAttributes['nextrace.phase'] = 'prefetch' "
    "AND ParentSpanId = '' AND TraceId IN (SELECT SpanAttributes['cache.entry.source_trace_id'] "
    f"FROM otel_traces WHERE ScopeName = '{BROWSER_SCOPE}' AND SpanName = 'router cache lookup')"
)
NAVIGATION_SPANS = (
    "SELECT SpanAttributes['nextrace.navigation.href'], "
    "SpanAttributes['nextrace.navigation.type'], "
    "SpanAttributes['nextrace.navigation.router_cache'], TraceId FROM otel_traces "
    f"WHERE ScopeName = '{BROWSER_SCOPE}' AND SpanAttributes['nextrace.phase'] = 'navigation' "
    "ORDER BY Timestamp"
)


def test_a_real_browsers_navigations_are_one_trace_each(example, tmp_path):
    """Chromium loads the home page, clicks a prefetched static page, a dynamic one, goes back,
    then loads the home page again and scrolls its lower links into view: the browser's spans,
    its network log and the server's trace agree."""
    if not shutil.which("chromium"):
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    collector, app_port = browser_run(tmp_path)
    with (
        collector as collector_url,
        example.serve(app_port, collector_url, "shop-navigations", True) as url,
        Chromium(tmp_path) as chromium,
    ):
        chromium.goto(url + "/")
        chromium.wait_until(LINKS_PREFETCHED, "the links in view are prefetched")
        # Static, prefetched whole: the router cache has it once its page, not only its route
        # tree, has come (clicked before, the navigation asks the server: a partial hit).
        wait_until(lambda: pages_prefetched(chromium, ["/about"]), "/about is prefetched", 60)
        chromium.click('a[href="/about"]')
        chromium.wait_until(shows("/about", "About (static)"), "/about shows")
        chromium.click('a[href="/products/3"]')  # dynamic: only its loading state prefetched
        chromium.wait_until(shows("/products/3", "Item 3 (fetched"), "/products/3 shows its data")
        # Its navigation's request answered in full (Chromium's log then shows it), before
        # the browser goes back to /about (history: /, /about, /products/3).
        wait_until(
            lambda: any(
                urlparse(r.url).path == "/products/3" and navigation_request(r)
                for r in chromium.answered()
            ),
            "the navigation to /products/3 is answered",
            timeout_s=60,
        )
        chromium.evaluate("history.back()")
        chromium.wait_until(shows("/about", "About (static)"), "the browser went back to /about")
        # Loaded again, the home page's links below the fold are prefetched once scrolled into
        # view, not before.
        chromium.goto(url + "/")
        below = "['/products/4', '/products/5'].every((path) => performance"
        below += ".getEntriesByType('resource').some((e) => new URL(e.name).pathname === path))"
        chromium.wait_until("!!document.querySelector('main h1')", "the home page shows")
        assert not chromium.evaluate(below)
        chromium.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        chromium.wait_until(below, "the links scrolled into view are prefetched")
        chromium.goto("about:blank")  # the page is left: what is queued, or open, is sent
        # What the checks below read, stored: the navigations, the server's requests of those
        # that asked it, the prefetches their lookups used, and the home pages' prefetches.
        navigations = wait_for_rows(collector_url, NAVIGATION_SPANS, 3)
        asking = [trace for _, _, cache, trace in navigations if cache != "hit"]
        wait_for_rows(
            collector_url,
            "SELECT TraceId FROM requests WHERE ServiceName = 'shop-navigations' "
            f"AND TraceId IN ({', '.join(repr(t) for t in asking) or repr('')})",
            len(asking),
        )
        prefetched_first = {href for href, _, cache, _ in navigations if cache != "miss"}
        wait_for_rows(collector_url, USED_PREFETCHES, len(prefetched_first))
        wait_for_rows(collector_url, PREFETCH_ROOTS, len(NAV_LINKS))
        prefetched = wait_for_rows(
            collector_url,
            "SELECT DISTINCT SpanAttributes['nextrace.navigation.href'], "
            "SpanAttributes['nextrace.prefetch.trigger'] FROM otel_traces "
            f"WHERE ScopeName = '{BROWSER_SCOPE}' AND SpanAttributes['nextrace.phase'] = "
            "'prefetch' AND SpanAttributes['nextrace.navigation.href'] IN "
            "('/products/4', '/products/5')",
            2,
        )
    board = collector.dashboards()
    try:
        assert [(href, kind) for href, kind, _, _ in navigations] == [
            ("/about", "soft"),
            ("/products/3", "soft"),
            ("/about", "traverse"),
        ]
        assert sorted(map(tuple, prefetched)) == [
            ("/products/4", "viewport"),
            ("/products/5", "viewport"),
        ]
        # What the router cache served, against what Chromium asked the server for: a
        # navigation's own RSC request carries no prefetch header.
        asked = Counter(
            urlparse(r.url).path
            for r in logged_requests(tmp_path / "net-log.json")
            if navigation_request(r)
        )
        requested = Counter(href for href, _, cache, _ in navigations if cache != "hit")
        assert requested == asked
        assert [cache for _, _, cache, _ in navigations] == ["hit", "partial", "hit"]
        # The navigation that asked the server is one trace with the server's request.
        [(_, _, _, trace)] = [n for n in navigations if n[2] != "hit"]
        served = board.run(
            "SELECT Kind, Path FROM requests "
            f"WHERE ServiceName = 'shop-navigations' AND TraceId = '{trace}'"
        )
        assert served == [("rsc_navigation", "/products/3")]
        router = board.panel(prefetch, "Router cache of navigations", "shop-navigations")
        assert dict(router) == {"hit": 2, "partial": 1}
        latency = board.panel(slow_navigations, "Navigation latency per route", "x")
        routes = Counter(re.sub(r"^/products/[^/]+$", "/products/[id]", h) for h, *_ in navigations)
        assert {route: count for route, count, *_ in latency} == routes
        [(prefetches, used, _, _)] = board.panel(prefetch, "Prefetch conversion", "x")
        # Every page navigated to was prefetched first (they are all in the navigation bar):
        # one prefetch used per page, whatever the number of visits.
        assert used == len(prefetched_first)
        assert prefetches >= 7
    finally:
        board.store.close()


def shows(path: str, heading: str) -> str:
    """A page expression: the browser is on ``path`` and its heading starts with ``heading``
    (a product page's once its data has come, not its loading state)."""
    # Parenthesized: `??` binds more loosely than a method call or `===`.
    text = "(document.querySelector('main h1')?.textContent ?? '')"
    return f"location.pathname === {json.dumps(path)} && {text}.startsWith({json.dumps(heading)})"


def navigation_request(request: LoggedRequest) -> bool:
    """An RSC request of a navigation: one without a prefetch header."""
    headers = request.headers
    return (
        headers.get("rsc") == "1"
        and "next-router-prefetch" not in headers
        and "next-router-segment-prefetch" not in headers
    )


def pages_prefetched(chromium: Chromium, paths: Iterable[str]) -> bool:
    """Whether a prefetch of each page of ``paths`` beyond its route tree has been answered
    in full: Next.js 16 asks for a page's route tree first, then for its segments or, for a
    page rendered on demand, for what it shows before its data."""
    answered = {
        urlparse(r.url).path
        for r in chromium.answered()
        if r.headers.get("next-router-prefetch") == "1"
        and r.headers.get("next-router-segment-prefetch") != "/_tree"
    }
    return set(paths) <= answered


def wait_for_rows(collector_url: str, sql: str, count: int) -> list[list[Any]]:
    """Until ``sql`` returns ``count`` rows (the browser sends in batches)."""
    rows: list[list[Any]] = []

    def enough() -> bool:
        rows[:] = query(collector_url, sql)
        return len(rows) >= count

    wait_until(enough, f"{count} rows", detail=lambda: f"{len(rows)} rows: {rows}")
    return rows


def check_pass(panel: Any, service: str, sent: list[Sent], *, helper: bool) -> None:
    # Prefetch dashboard: every prefetch and navigation sent, counted as such.
    rows = panel(prefetch, "Prefetches and navigations", service)
    navigations = sum(s.kind in ("document", "rsc_navigation") for s in sent)
    assert (sum(r[1] for r in rows), sum(r[2] for r in rows)) == (
        sum(s.kind == "rsc_prefetch" for s in sent),
        navigations,
    ), service
    prefetches = sum(s.kind == "rsc_prefetch" for s in sent)
    ((_, per_navigation),) = panel(prefetch, "Prefetches per navigation", service)
    assert per_navigation == pytest.approx(prefetches / navigations, abs=1e-3), service
    # What prefetch answers weighed, as the driver received them, with the helper's sizes
    # (a dynamic page's body is streamed after its request span has ended: it has none).
    expected_sizes: dict[str, tuple[int, int]] = {}
    for s in sent:
        if helper and s.kind == "rsc_prefetch" and not s.product:
            count, total = expected_sizes.get(s.path, (0, 0))
            expected_sizes[s.path] = (count + 1, total + s.body_bytes)
    sizes = {r[0]: (r[1], r[4]) for r in panel(prefetch, "Prefetch payload sizes", service)}
    assert sizes == expected_sizes, service

    # Slow navigations: one latency row per route and kind, with the right counts; a warm-up's
    # request to the app is a warm-up, not a user's request.
    latency = panel(slow_navigations, "Request latency and TTFB per route", service)
    expected = Counter(
        (
            "/products/[id]" if s.path.startswith("/products/") else s.path,
            s.kind,
        )
        for s in sent
    )
    expected["/api/warm/[id]", "warmup"] = ran(sent)
    assert {(r[0], r[1]): r[2] for r in latency} == dict(expected), service

    check_warmups(panel, service, sent, started_cold=helper)

    # Load from prefetches: every request passed the proxy (its matcher takes all but static
    # files), the warm-ups' requests too; the prefetches' share of both is what was sent.
    requests = len(sent) + ran(sent)
    load = {r[0]: (r[1], r[2]) for r in panel(prefetch, "Load from prefetches", service)}
    share = pytest.approx(prefetches / requests, abs=1e-4)
    assert load == {"request": (requests, share), "middleware": (requests, share)}, service

    # Top routes by misses: the product pages missed as often as the upstream says.
    top = {r[0]: r[1] for r in panel(cache_health, "Top routes by misses", service)}
    assert top["/products/[id]"] == sum(s.data_cache == "miss" for s in sent), service

    # Cache health: the data layer's hit ratio is what the upstream's call counts say, for the
    # product pages the driver tells (the ISR blog page may regenerate in the background).
    data = [s.data_cache for s in sent if s.data_cache]
    assert "miss" in data or service != "shop-helper"  # the first pass starts cold
    rows = panel(cache_health, "Hit ratio per layer", service, "/products/[id]")
    products = {layer: value for _, layer, value in rows}
    assert products["data"] == pytest.approx(sum(d in ("hit", "stale") for d in data) / len(data))
    rows = panel(cache_health, "Hit ratio per layer", service)
    ratio = {layer: value for _, layer, value in rows}
    # The full route layer is known only through the helper (x-nextjs-cache).
    if helper:
        cached = [s.nextjs_cache for s in sent if s.kind != "api"]
        served = sum(c in ("HIT", "STALE") for c in cached)
        looked_up = sum(c is not None for c in cached)
        assert ratio["full_route"] == pytest.approx(served / looked_up)
    else:
        assert "full_route" not in ratio


def check_first_build(panel: Any, service: str, truth: PassTruth, build: str | None) -> None:
    """The product pages' data-cache panels, the waterfalls and the time per phase of one
    pass, against what the driver and the upstream saw."""
    products = {"route": "/products/[id]", "build": build}
    rows = panel(cache_health, "Hits by entry source", service, **products)
    assert Counter({s: n for layer, s, n in rows if layer == "data"}) == truth.entry_sources()
    reasons: Counter[str] = Counter()
    for _, reason, n in panel(cache_health, "Misses by reason", service, **products):
        reasons[reason] += n
    assert reasons == truth.miss_reasons(), service
    (despite,) = panel(cold_cache, "Misses despite warm-ups", service, **products)
    assert tuple(despite) == truth.misses_despite_warmups(), service
    assert any(truth.raced(s) for s in truth.sent)  # the driver's race was one

    title = "Sequential-fetch waterfalls"
    waterfalls = panel(slow_navigations, title, service, route="/profile", build=build)
    assert Counter({(r[0], r[1]): r[2] for r in waterfalls}) == truth.waterfalls(), service
    assert truth.waterfalls()  # the profile page's, its only page with more than one fetch
    assert panel(slow_navigations, title, service, "/products/[id]", build) == []
    phases = {r[0]: r[1:] for r in panel(slow_navigations, "Time per phase", service, build=build)}
    requests = len(truth.sent) + ran(truth.sent)
    # Every counted request went through the proxy and the router. Against the driver's count
    # (its requests and the warm-ups they ran) the panel has been one short in about one suite
    # run in two, never alone: a request whose proxy and route spans are missing from the
    # build's window, cause not found yet. So the driver's requests are a floor, not an equal.
    assert phases["middleware"][0] == phases["route"][0], (service, phases)
    assert len(truth.sent) <= phases["route"][0] <= requests, (service, phases, requests)
    # A fetch's span lasts at least as long as its upstream call (start times are rounded to
    # the millisecond); the profile page's render, at least as long as its waterfall.
    assert phases["fetch"][1] >= truth.waited_ms() - phases["fetch"][0], (service, phases)
    assert phases["render"][1] >= truth.slowest_waterfall_ms() - 1, (service, phases)


def check_warmups(panel: Any, service: str, sent: list[Sent], *, started_cold: bool) -> None:
    # The warm-up queue: every submission the app answered, by trigger and outcome; and the
    # same totals beside the cold misses.
    queue = panel(cold_cache, "Warm-up queue", service)
    assert {(r[0], r[1]): r[2] for r in queue} == dict(warmups(sent)), service
    rows = panel(cold_cache, "Cold misses and warm-ups", service)
    by_outcome: Counter[str] = Counter()
    for (_, outcome), n in warmups(sent).items():
        by_outcome[outcome] += n
    totals = [sum(r[i] for r in rows) for i in (2, 3, 4, 5)]
    outcomes = ("ok", "error", "queue_full", "deduplicated")
    assert totals == [by_outcome[o] for o in outcomes], (service, rows)
    assert warmups(sent)["webhook", "deduplicated"] > 0  # the flood came faster than 5/s

    # GET /products/1 had the proxy warm product 2; the navigation to it later found the
    # entry (no upstream call), and nextrace says a warm-up stored it, and how long before.
    # (The second pass finds the entries the first one stored: Next.js keeps its data cache.)
    if not started_cold:
        return
    first = next(s for s in sent if s.path == "/products/1")
    navigation = next(s for s in sent if s.path == "/products/2" and s.kind == "rsc_navigation")
    assert navigation.data_cache == "hit"
    hits = panel(cold_cache, "Warm-up lead time", service, "/products/[id]")
    lead_ms = {"/api/" + key.split("/api/", 1)[1]: (ms, n) for key, ms, n in hits}
    ms, _ = lead_ms["/api/product/2"]
    # The warm-up stored the entry after GET /products/1 was sent, and the navigation found it
    # before its answer came back: the driver's clock bounds the lead from both sides (the
    # navigation's send time does not: under load the app looked it up 0.2 s after it).
    assert 0 < ms < (navigation.received - first.at) * 1000, (service, hits)
    coverage = panel(cold_cache, "Warm-up coverage of data-cache hits", service, "/products/[id]")
    ((warmed, data_hits, _),) = coverage
    assert 1 <= warmed <= data_hits, (service, coverage)
