"""Streaming: the shell first, then one chunk per Suspense boundary, with their timings."""

from __future__ import annotations


def test_the_shell_streams_before_the_slow_boundary(server):
    response = server.get("/products/3")
    body = response.text
    assert body.index('<main data-route="/products/[id]">') < body.index('data-boundary="reviews"')
    assert body.endswith("</main></body></html>")
    (stream,) = server.spans(nextrace__phase="stream", next__span_type=None) or [
        s for s in server.spans(nextrace__phase="stream") if s.name == "stream"
    ]
    chunks = [dict(e.attributes) for e in stream.events]
    assert [c["nextrace.chunk.boundary"] for c in chunks] == ["shell", "page", "reviews"]
    offsets = [c["nextrace.chunk.offset_ms"] for c in chunks]
    assert offsets == sorted(offsets)
    assert offsets[2] - offsets[0] >= 50  # the slow reviews upstream (~60 ms) came later
    assert sum(c["nextrace.chunk.size"] for c in chunks) == len(response.content)
    (start,) = [s for s in server.spans(nextrace__phase="stream") if s.name == "start response"]
    assert start.attributes["next.span_type"] == "NextNodeServer.startResponse"
    (request,) = server.spans(nextrace__phase="request")
    assert request.attributes["nextrace.stream.ttfb_ms"] == offsets[0]
    assert request.attributes["http.response.body.size"] == len(response.content)


def test_rsc_requests_get_a_line_delimited_payload(server):
    response = server.get("/products/3", rsc="1")
    lines = response.text.strip().split("\n")
    assert [line.split(":", 1)[0] for line in lines] == ["0", "1", "2"]
    assert response.headers["content-type"] == "text/x-component"


def test_an_upstream_failure_before_the_shell_is_a_500_with_an_error_span(make_server):
    slow = 'name = "slow"\nlatency = { p50_ms = 60, p95_ms = 70 }'
    server = make_server(**{slow: slow + "\nerror_rate = 1.0"})
    response = server.get("/dashboard")  # its shell needs the failing "slow" upstream
    assert response.status_code == 500
    (request,) = server.spans(nextrace__phase="request")
    assert request.status.status_code.name == "ERROR"
    failed = [
        s for s in server.spans(nextrace__phase="fetch") if s.status.status_code.name == "ERROR"
    ]
    assert failed
