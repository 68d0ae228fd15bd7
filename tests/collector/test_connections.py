"""Slow and surplus connections cannot lock other clients out (slow: a real collector)."""

from __future__ import annotations

import socket

import httpx
import pytest

from nextrace.listen import bind_socket
from tests.support.collector_process import start, stop
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def partial_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")  # and no more
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server ends the connection within 5 s (a close, a reset or an answer)."""
    sock.settimeout(5)
    try:
        sock.recv(1024)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def answered(url: str) -> bool:
    """Whether ``url`` answers 200 now. While the cap is full a request is refused, or answered
    503 ("Exceeded concurrency limit"): a client retries those."""
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_slow_and_surplus_connections_are_closed_and_others_get_through(tmp_path):
    port = free_port()
    process = start(
        tmp_path / "store",
        port,
        tmp_path / "log",
        "--max-connections",
        "20",
        "--read-timeout",
        "1",
    )
    try:
        slow = [partial_request(port) for _ in range(40)]
        # Surplus ones are closed at once, the others once their headers are overdue (1 s):
        # then a well-behaved client gets through.
        wait_until(lambda: answered(f"http://127.0.0.1:{port}/healthz"), "a client gets through")
        assert all(closed_by_server(sock) for sock in slow)
        # A body that stops arriving is answered 408.
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(
                b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0123456789"
            )
            assert sock.recv(1024).startswith(b"HTTP/1.1 408")
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=15).json()
        assert health["requests_rejected"]["timeout"] == 1
    finally:
        for sock in slow:
            sock.close()
        stop(process)
    log = (tmp_path / "log").read_text()
    assert log.count("closed a connection whose request headers") <= 2  # rate-limited


def test_the_caps_on_pending_connections_are_flags(tmp_path):
    # Not the defaults (256 pending, 64 from one address), and why: the flags are what this
    # tests, set low enough that a few idle connections reach them.
    port = free_port()
    caps = ("--max-pending-connections", "3", "--max-pending-per-address", "2")
    process = start(tmp_path / "store", port, tmp_path / "log", *caps)
    opened: list[socket.socket] = []

    def idle(source: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
        opened.append(sock)
        return sock

    def ended(sock: socket.socket) -> bool:
        try:
            return sock.recv(1024) == b""
        except ConnectionResetError:
            return True

    try:
        first, second, _ = idle("127.0.0.2"), idle("127.0.0.2"), idle("127.0.0.2")
        assert ended(first)  # a third from one address closed its oldest
        idle("127.0.0.3")
        idle("127.0.0.4")
        assert ended(second)  # a fourth pending one closed the oldest of all
    finally:
        for sock in opened:
            sock.close()
        stop(process)


def test_listening_sockets_are_tcp_so_keep_alive_answers_are_not_delayed():
    # asyncio sets TCP_NODELAY on accepted sockets only when the listening socket says it
    # is TCP; without it each keep-alive answer waited ~40 ms for a delayed ACK.
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


def test_running_out_of_descriptors_is_one_log_line_not_a_flood():
    import logging

    from collector.ingest.connections import RareAcceptErrors

    rare = RareAcceptErrors()
    accept = logging.LogRecord(
        "asyncio", 40, "", 0, "socket.accept() out of system resource", (), None
    )
    other = logging.LogRecord("asyncio", 40, "", 0, "something else", (), None)
    assert [rare.filter(accept) for _ in range(100)].count(True) == 1
    assert rare.filter(other)
