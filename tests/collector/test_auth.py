from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from collector.config import CollectorConfig, StoreConfig
from collector.errors import ConfigError
from collector.ingest.auth import load_token
from collector.service import Collector
from tests.builders import make_request, make_span

TOKEN = "s3cr3t-token-0123456789abcdef"


@pytest.fixture
def guarded(store_config: StoreConfig):
    instance = Collector(CollectorConfig(store=store_config, host="0.0.0.0", token=TOKEN))
    app = instance.start()
    with TestClient(app, client=("203.0.113.9", 4000)) as remote:
        yield remote
    instance.shutdown()


def test_every_endpoint_wants_the_token(guarded: TestClient):
    body = make_request([make_span("s")]).SerializeToString()
    proto = {"Content-Type": "application/x-protobuf"}
    for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        assert (
            guarded.post("/v1/traces", content=body, headers={**proto, **wrong}).status_code == 401
        )
        assert guarded.get("/healthz", headers=wrong).status_code == 401
        assert guarded.get("/metrics", headers=wrong).status_code == 401
        assert guarded.post("/sql", json={"query": "SELECT 1"}, headers=wrong).status_code == 401
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.post("/v1/traces", content=body, headers={**proto, **ok}).status_code == 200
    assert guarded.get("/healthz", headers=ok).status_code == 200
    answer = guarded.post("/sql", json={"query": "SELECT 1", "format": "TSV"}, headers=ok)
    assert (answer.status_code, answer.text) == (200, "1\n")


def test_listening_beyond_loopback_without_a_token_is_refused(store_config: StoreConfig):
    with pytest.raises(ConfigError, match="without a token"):
        CollectorConfig(store=store_config, host="0.0.0.0")
    CollectorConfig(store=store_config, host="0.0.0.0", allow_unauthenticated=True)
    CollectorConfig(store=store_config, host="::1")


def test_the_token_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("NEXTRACE_TOKEN", raising=False)
    monkeypatch.delenv("NEXTRACE_TOKEN_FILE", raising=False)
    assert load_token() is None
    monkeypatch.setenv("NEXTRACE_TOKEN", TOKEN)
    assert load_token() == TOKEN
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}x\n")
    path.chmod(0o600)
    monkeypatch.setenv("NEXTRACE_TOKEN_FILE", str(path))
    assert load_token() == f"{TOKEN}x"
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 16"):
        load_token(path)


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o602, 0o666], ids=oct)
def test_a_token_file_open_to_other_users_is_refused_in_one_line(tmp_path, mode):
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    path.chmod(mode)
    with pytest.raises(ConfigError) as info:
        load_token(path)
    message = str(info.value)
    assert "\n" not in message
    assert f"mode {mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert TOKEN not in message
    path.chmod(0o400)
    assert load_token(path) == TOKEN


@pytest.mark.parametrize("mode", [0o600, 0o440, 0o640], ids=oct)
def test_a_token_file_its_group_can_read_is_accepted(tmp_path, mode):
    # A Kubernetes secret mounted in a pod with fsGroup: the kubelet gives the pod's group
    # read access (0440 for defaultMode 0400). Others than the owner and group are refused.
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    path.chmod(mode)
    assert load_token(path) == TOKEN
