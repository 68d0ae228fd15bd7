"""A collector with a token and TLS, used as an operator would (slow: real processes)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from tests.builders import make_request, make_span
from tests.nextrace.test_cli import free_port

pytestmark = pytest.mark.slow

TOKEN = "0123456789abcdef0123456789abcdef"
PB = {"Content-Type": "application/x-protobuf"}


def wait_until_up(client: httpx.Client, health_url: str, collector: subprocess.Popen[str]) -> None:
    """Until the collector answers (a 401 counts: it is up)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            client.get(health_url)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline
            assert collector.poll() is None
            time.sleep(0.2)


def test_a_collector_with_a_token_and_tls_admits_only_its_senders(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    env = {**os.environ, "NEXTRACE_TOKEN": TOKEN, "SSL_CERT_FILE": str(cert)}
    command = [sys.executable, "-m", "nextrace.cli", "collect", "--port", str(port)]
    collector = subprocess.Popen(
        [*command, "--tls-cert", str(cert), "--tls-key", str(key)],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"https://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(verify=ssl.create_default_context(cafile=cert), timeout=10) as client:
            wait_until_up(client, f"{url}/healthz", collector)
            body = make_request([make_span("secured")]).SerializeToString()
            assert client.post(f"{url}/v1/traces", content=body, headers=PB).status_code == 401
            sent = client.post(f"{url}/v1/traces", content=body, headers={**PB, **auth})
            assert sent.status_code == 200
        with pytest.raises(httpx.TransportError):  # no plain HTTP beside TLS
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)

        def sql(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "nextrace.cli", "sql", "SELECT 1", "--format", "TSV"],
                cwd=tmp_path,
                env=environment,
                capture_output=True,
                text=True,
                timeout=60,
            )

        # `nextrace sql` goes through the collector that holds the store, with the token.
        through = sql(env)
        assert (through.returncode, through.stdout) == (0, "1\n"), through.stderr
        without = sql({k: v for k, v in env.items() if k != "NEXTRACE_TOKEN"})
        assert without.returncode == 2
        assert "401" in without.stderr
        assert "Traceback" not in without.stderr
    finally:
        collector.send_signal(signal.SIGTERM)
        _, stderr = collector.communicate(timeout=60)
    assert collector.returncode == 0, stderr
    assert TOKEN not in stderr  # the token is never printed


def test_browsers_of_a_listed_origin_send_without_the_token(tmp_path):
    port = free_port()
    env = {**os.environ, "NEXTRACE_TOKEN": TOKEN, "NEXTRACE_BROWSER_KEY": "pk-shop"}
    collector = subprocess.Popen(
        [
            *(sys.executable, "-m", "nextrace.cli", "collect", "--port", str(port)),
            *("--browser-origin", "https://shop.example.com", "--batch-timeout", "0.2"),
        ],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    page = {**PB, "Origin": "https://shop.example.com"}
    body = make_request([make_span("navigation /")], scope="browser").SerializeToString()
    try:
        with httpx.Client(timeout=10) as client:
            wait_until_up(client, f"{url}/healthz", collector)
            browser = f"{url}/v1/browser/traces"
            assert client.post(browser, content=body, headers=page).status_code == 401  # no key
            evil = {**page, "Origin": "https://evil.example"}
            assert (
                client.post(f"{browser}?key=pk-shop", content=body, headers=evil).status_code == 403
            )
            sent = client.post(f"{browser}?key=pk-shop", content=body, headers=page)
            assert sent.status_code == 200
            assert sent.headers["access-control-allow-origin"] == "https://shop.example.com"
            # ...and the key opens nothing else.
            assert (
                client.post(f"{url}/v1/traces?key=pk-shop", content=body, headers=page).status_code
                == 401
            )
            deadline = time.monotonic() + 60
            while client.get(f"{url}/healthz", headers=auth).json()["spans_exported"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        collector.send_signal(signal.SIGTERM)
        _, stderr = collector.communicate(timeout=60)
    assert collector.returncode == 0, stderr
    assert "browser spans from https://shop.example.com on /v1/browser/traces" in stderr
    assert TOKEN not in stderr
