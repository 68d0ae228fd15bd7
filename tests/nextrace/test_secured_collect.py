"""A collector with a token and TLS, used as an operator would (slow: real processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys

import httpx
import pytest

from tests.builders import make_request, make_span
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

TOKEN = "0123456789abcdef0123456789abcdef"
PB = {"Content-Type": "application/x-protobuf"}


def wait_until_up(
    client: httpx.Client,
    health_url: str,
    collector: subprocess.Popen[str] | subprocess.Popen[bytes],
) -> None:
    """Until the collector answers (a 401 counts: it is up)."""

    def up() -> bool:
        assert collector.poll() is None, "the collector exited"
        try:
            client.get(health_url)
        except httpx.TransportError:
            return False
        return True

    wait_until(up, "the collector answers")


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
            wait_until(
                lambda: client.get(f"{url}/healthz", headers=auth).json()["spans_exported"] >= 1,
                "the browser's span is stored",
            )
    finally:
        collector.send_signal(signal.SIGTERM)
        _, stderr = collector.communicate(timeout=60)
    assert collector.returncode == 0, stderr
    assert "browser spans from https://shop.example.com on /v1/browser/traces" in stderr
    assert TOKEN not in stderr


def test_a_page_that_rebinds_its_name_to_the_collector_is_refused_on_every_path(tmp_path):
    # DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends the
    # collector requests for "evil.example". Without a token (the default, on loopback) it
    # could write spans and read /healthz (the store's path). A collector as users start it.
    port = free_port()
    with open(tmp_path / "log", "wb") as log:
        collector = subprocess.Popen(
            [sys.executable, "-m", "nextrace.cli", "collect", "--port", str(port)],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("NEXTRACE_")},
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    body = make_request([make_span("rebound")]).SerializeToString()
    rebound = {"Host": f"evil.example:{port}"}
    try:
        with httpx.Client(timeout=10) as client:
            wait_until_up(client, f"{url}/healthz", collector)
            answers = {
                "/v1/traces": client.post(
                    f"{url}/v1/traces", content=body, headers={**PB, **rebound}
                ),
                "/healthz": client.get(f"{url}/healthz", headers=rebound),
                "/metrics": client.get(f"{url}/metrics", headers=rebound),
                "/sql": client.post(f"{url}/sql", json={"query": "SELECT 1"}, headers=rebound),
            }
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", "127.0.0.1"):
                sent = client.post(f"{url}/v1/traces", content=body, headers={**PB, "Host": host})
                assert sent.status_code == 200, host
            health = client.get(f"{url}/healthz").json()
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.wait(60)
    refused = {path: answer.status_code for path, answer in answers.items()}
    assert refused == dict.fromkeys(answers, 403)
    assert all(answer.text.count("\n") == 1 for answer in answers.values())
    assert str(tmp_path) not in answers["/healthz"].text
    assert health["requests_rejected"]["wrong_host"] == 4
    assert health["spans_received"] == 3  # the rebound page's span never arrived


@pytest.mark.parametrize("how", ["--token-file", "NEXTRACE_TOKEN_FILE"])
def test_a_token_file_other_users_can_read_is_refused_in_one_line(tmp_path, how):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTRACE_")}
    command = [sys.executable, "-m", "nextrace.cli", "collect", "--port", str(port)]
    if how == "--token-file":
        command += ["--token-file", str(token_file)]
    else:
        env["NEXTRACE_TOKEN_FILE"] = str(token_file)
    collector = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)

    def started() -> bool:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return True
        return False

    try:
        wait_until(lambda: collector.poll() is not None or started(), "the collector decides")
    finally:
        if collector.poll() is None:
            collector.kill()
        _, stderr = collector.communicate(timeout=60)
    assert collector.returncode == 2, stderr
    assert stderr.strip().splitlines() == [
        f"error: the token file {token_file} is open to users outside its owner and group "
        f"(mode 0644): run chmod 600 {token_file}"
    ]
    assert TOKEN not in stderr


def test_a_browsers_kept_spans_survive_kill_9(tmp_path):
    # A browser request with one span under a server's scope: that span is dropped, and the
    # 30 others acknowledged. The write-ahead log must hold those 30, not an empty record.
    # The batch timeout is long so that the kill comes before they are stored: the log alone
    # holds them.
    port, store = free_port(), tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXTRACE_")}
    env["NEXTRACE_TOKEN"] = TOKEN
    command = [
        *(sys.executable, "-m", "nextrace.cli", "collect", "--dsn", f"chdb:{store}"),
        *("--port", str(port), "--browser-origin", "https://shop.example.com"),
    ]
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    request = make_request([make_span(f"click {i}") for i in range(30)], scope="browser")
    server = make_request([make_span("BaseServer.handleRequest")], scope="next.js")
    request.resource_spans.extend(server.resource_spans)
    log = tmp_path / "log"
    with open(log, "ab") as out:
        first = subprocess.Popen([*command, "--batch-timeout", "600"], env=env, stderr=out)
    try:
        with httpx.Client(timeout=10) as client:
            wait_until_up(client, f"{url}/healthz", first)
            sent = client.post(
                f"{url}/v1/browser/traces",
                content=request.SerializeToString(),
                headers={**PB, "Origin": "https://shop.example.com"},
            )
            assert sent.status_code == 200
            health = client.get(f"{url}/healthz", headers=auth).json()
            assert health["spans_dropped"]["server_scope_from_browser"] == 1
            assert health["spans_exported"] == 0
    finally:
        first.kill()  # kill -9
        first.wait(60)
    with open(log, "ab") as out:
        second = subprocess.Popen(command, env=env, stderr=out)
    try:
        with httpx.Client(timeout=10) as client:
            wait_until_up(client, f"{url}/healthz", second)

            def stored() -> list[str]:
                answer = client.post(
                    f"{url}/sql",
                    json={"query": "SELECT SpanName FROM otel_traces ORDER BY 1", "format": "TSV"},
                    headers=auth,
                )
                assert answer.status_code == 200, answer.text
                return answer.text.splitlines()

            wait_until(
                lambda: len(stored()) >= 30,
                "the 30 acknowledged spans are stored",
                timeout_s=30,
                detail=lambda: f"stored: {stored()}\n{log.read_text()[-3000:]}",
            )
            names = stored()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert sorted(names) == sorted(f"click {i}" for i in range(30))
