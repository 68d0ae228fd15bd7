"""The recorded runs of examples/nextjs (tests/data/nextjs-runs) hold what their README says,
and agree with themselves: every request's trace is in the exports, the truth (the upstream's
log) names enough blocking data-cache misses, each run has its deploy and revalidations."""

from __future__ import annotations

import re

import pytest

from tests.examples.runs import RUN_NAMES, RUNS_DIR, load_run

ROW = re.compile(r"^\|\s*`(?P<name>[\w-]+)`\s*\|(?P<cells>.*)\|\s*$")


def readme_counts() -> dict[str, dict[str, str]]:
    """The README's table of runs: run name -> column header -> cell."""
    lines = (RUNS_DIR / "README.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| run |"))
    names = [cell.strip() for cell in header.strip("|").split("|")][1:]
    table = {}
    for line in lines:
        if found := ROW.match(line):
            cells = [cell.strip() for cell in found["cells"].split("|")]
            table[found["name"]] = dict(zip(names, cells, strict=True))
    return table


@pytest.mark.parametrize("name", RUN_NAMES)
def test_every_request_names_a_trace_in_the_exports(name):
    run = load_run(name)
    traces = run.trace_ids()
    named = [r for r in run.requests if r.trace_id]
    missing = [r.label for r in named if r.trace_id not in traces]
    assert missing == []
    # Only requests sent without a traceparent and without an upstream call go unnamed.
    unnamed = [r for r in run.requests if not r.trace_id]
    assert all(not r.headers.get("traceparent") for r in unnamed)
    assert len(named) >= 0.8 * len(run.requests)


@pytest.mark.parametrize("name", RUN_NAMES)
def test_the_blocking_misses_are_the_readmes(name):
    run = load_run(name)
    misses = run.blocking_misses()
    row = readme_counts()[name]
    assert int(row["requests"]) == len(run.requests)
    assert int(row["blocking misses"]) == len(misses) == run.info["counts"]["blocking_misses"]
    # A cold start, revalidations and new products after the deploy: several products miss.
    assert len(misses) >= 10
    assert len({m.path for m in misses}) >= 5
    requests = {r.trace_id: r for r in run.requests}
    for trace_id, path, upstream_ns in misses:
        assert requests[trace_id].route_path == path
        assert 90e6 <= upstream_ns <= 5e9  # the upstream answers in 100-300 ms, at ms grain


@pytest.mark.parametrize("name", RUN_NAMES)
def test_each_run_has_a_deploy_and_revalidations(name):
    run = load_run(name)
    (start,) = [e for e in run.events if e.kind == "start"]
    (deploy,) = run.deploys()
    assert deploy.data["build"] != start.data["build"] == deploy.data["previous_build"]
    assert run.info["builds"] == [start.data["build"], deploy.data["build"]]
    before = [r for r in run.requests if start.t_ns < r.t_start_ns < deploy.t_ns]
    after = [r for r in run.requests if r.t_start_ns > deploy.t_ns]
    assert before
    assert after
    assert len(before) + len(after) == len(run.requests)
    tags = {(e.data["tag"], e.data["profile"]) for e in run.events if e.kind == "revalidate"}
    assert {("product-1", "max"), ("product-1", "expire=0")} <= tags
    # Every call the upstream received was answered.
    assert all(c.answered_ns is not None for c in run.upstream_calls)


def test_next15_middleware_is_a_trace_of_its_own():
    """Next.js 15 runs middleware apart from the render: for a request sent without a
    traceparent, the trace of the render (which the upstream's call names) holds no
    middleware span; another trace holds it."""
    run = load_run("next15-curl")
    untraced = [r for r in run.requests if r.trace_id_from == "upstream"]
    assert untraced
    for request in untraced:
        spans = [s for s in run.spans if s.trace_id == request.trace_id]
        assert spans
        assert not [s for s in spans if s.name.startswith("middleware")]
    middleware = [
        s
        for s in run.spans
        if s.attributes.get("next.span_type") == "Middleware.execute"
        and s.trace_id not in {r.trace_id for r in run.requests}
    ]
    assert middleware


def test_the_chromium_run_joins_browser_and_server():
    """Each RSC navigation Chromium made is one trace: the browser client's spans and the
    server's."""
    run = load_run("next16-chromium")
    browser = {s.trace_id for s in run.spans if s.browser}
    server = {s.trace_id for s in run.spans if not s.browser}
    navigations = [r for r in run.requests if r.kind == "navigation" and not r.failed]
    assert navigations
    assert all(r.trace_id in browser and r.trace_id in server for r in navigations)
    assert run.browser_bodies()
