"""The ``Host`` check against DNS rebinding (collector.ingest.hosts): its rules, and every endpoint
of
a collector with every receiver on, beyond loopback (in process: tests listen on loopback
only) and on loopback (a real process: tests/nextrace/test_secured_collect.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from collector.config import BatchSettings, CollectorConfig, StoreConfig
from collector.ingest.hosts import HostPolicy
from collector.service import Collector
from tests.builders import make_request, make_span

TOKEN = "collector-token-0123456789"
SECRET = "drain-secret-0123456789"
LOGPUSH = "logpush-token-0123456789"
SHOP = "https://shop.example.com"


@pytest.mark.parametrize(
    ("listen", "allowed", "token", "accepted", "refused"),
    [
        # On loopback: loopback names and addresses only, with any port.
        (
            "127.0.0.1",
            (),
            False,
            ["localhost", "localhost:4318", "127.0.0.1:4318", "127.0.0.2", "[::1]:4318"],
            ["evil.example", "evil.example:4318", "10.0.0.5:4318", "localhost.evil.example", ""],
        ),
        ("127.0.0.1", ("dev.internal",), False, ["dev.internal:4318"], ["evil.example"]),
        # Beyond loopback: addresses (a rebound page sends a name) and the name listened on.
        (
            "collector.internal",
            (),
            False,
            ["collector.internal:4318", "10.0.0.5:4318", "[2001:db8::1]:4318", "localhost"],
            ["evil.example:4318", "collector.internal.evil.example"],
        ),
        # Every address: every name with a token, none without (until listed).
        ("0.0.0.0", (), True, ["collector", "evil.example:4318", "10.0.0.5"], [""]),
        ("0.0.0.0", (), False, ["10.0.0.5:4318", "localhost"], ["collector:4318"]),
        ("::", ("collector",), False, ["collector:4318", "COLLECTOR."], ["other:4318"]),
        ("0.0.0.0", ("*",), False, ["anything.example"], []),
    ],
)
def test_which_hosts_are_answered(listen, allowed, token, accepted, refused):
    policy = HostPolicy(listen, allowed, token=token)
    assert [host for host in accepted if not policy.accepts(host)] == []
    assert [host for host in refused if policy.accepts(host)] == []


@pytest.fixture
def everything_on(store_config: StoreConfig) -> Iterator[Collector]:
    """A collector beyond loopback with a token and every receiver on, whose ``Host`` names are
    listed (it listens on every address: without a list, it would answer any name)."""
    config = CollectorConfig(
        store=store_config,
        host="0.0.0.0",
        token=TOKEN,
        allowed_hosts=("collector.internal",),
        browser_origins=(SHOP,),
        vercel_drain_secret=SECRET,
        cloudflare_logpush_token=LOGPUSH,
        batch=BatchSettings(timeout_s=0.2),
    )
    instance = Collector(config)
    instance.start()
    try:
        yield instance
    finally:
        instance.shutdown()


def test_every_endpoint_checks_host_before_anything_else(everything_on: Collector):
    assert everything_on.app is not None
    spans = make_request([make_span("rebound")], scope="browser").SerializeToString()
    drain = b"[]"
    signature = hmac.new(SECRET.encode(), drain, hashlib.sha1).hexdigest()
    pb = {"Content-Type": "application/x-protobuf"}
    # Each with the credential it needs: only the Host is wrong.
    requests = [
        ("POST", "/v1/traces", spans, {**pb, "Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/healthz", b"", {"Authorization": f"Bearer {TOKEN}"}),
        ("GET", "/metrics", b"", {"Authorization": f"Bearer {TOKEN}"}),
        ("POST", "/sql", b'{"query": "SELECT 1"}', {"Content-Type": "application/json"}),
        ("POST", "/v1/browser/traces", spans, {**pb, "Origin": SHOP}),
        ("POST", "/v1/cdn/vercel", drain, {"x-vercel-signature": signature}),
        ("POST", "/v1/cdn/cloudflare", b"", {"Authorization": f"Bearer {LOGPUSH}"}),
    ]
    for base, expected in (("http://evil.example:4318", 403), ("http://collector.internal", 200)):
        with TestClient(everything_on.app, base_url=base) as client:
            for method, path, body, headers in requests:
                if path == "/sql":
                    headers = {**headers, "Authorization": f"Bearer {TOKEN}"}
                answer = client.request(method, path, content=body, headers=headers)
                assert answer.status_code == expected, (base, path, answer.text)
                if expected == 403:
                    assert answer.text.count("\n") == 1
                    assert "--allowed-host evil.example" in answer.text
    assert everything_on.health()["requests_rejected"]["wrong_host"] == len(requests)
