"""deploy/kubernetes/: every manifest is valid for Kubernetes, and the pieces fit together
(the load balancer finds the collectors, the sidecar reaches its collector, ConfigMaps and
Secrets are the ones the pods mount, the collector's arguments are ones the CLI takes)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.main import get_command

from dashboards.files import DASHBOARDS_PATH, write
from nextrace.cli import app

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
MANIFESTS = ("collector.yaml", "loadbalancer.yaml", "server.yaml", "grafana.yaml")
VERSIONS = ("1.29.0", "1.37.0")  # the oldest Kubernetes still in wide use, and the newest here


def documents(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((KUBERNETES / name).read_text()))


def resource(kind: str, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        doc
        for manifest in MANIFESTS
        for doc in documents(manifest)
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c["name"] == name]
    return found


def otelcol(name: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((KUBERNETES / "otel-collector" / name).read_text())
    return config


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS)
def test_every_manifest_is_valid_for_kubernetes(manifest, version):
    for document in documents(manifest):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validation_catches_a_misspelt_field():
    workload = copy.deepcopy(resource("StatefulSet", "nextrace-collector"))
    probe = container(workload, "collector").pop("readinessProbe")
    container(workload, "collector")["readinesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(workload, VERSIONS[-1], strict=True)


def test_the_collector_runs_with_arguments_the_cli_takes_on_loopback_with_its_log_on_a_volume():
    workload = resource("StatefulSet", "nextrace-collector")
    collector = container(workload, "collector")
    args = collector["args"]
    collect = get_command(app).commands[args[0]]  # type: ignore[attr-defined]
    params = collect.make_context(args[0], list(args[1:])).params
    assert params["host"] == "127.0.0.1"  # the network reaches only the sidecar, with a token
    mounts = {m["name"]: m["mountPath"] for m in collector["volumeMounts"]}
    assert str(params["wal_dir"]) == mounts["wal"]
    claims = [c["metadata"]["name"] for c in workload["spec"]["volumeClaimTemplates"]]
    assert "wal" in claims
    probe = " ".join(collector["readinessProbe"]["exec"]["command"])
    assert f"127.0.0.1:{params['port']}/healthz" in probe
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in collector["env"]}
    assert set(secrets) == {"NEXTRACE_DSN", "NEXTRACE_TOKEN"}  # secrets never in the manifest


def test_the_load_balancer_routes_by_trace_to_every_collectors_sidecar():
    balancer = otelcol("loadbalancer.yaml")
    exporter = balancer["exporters"]["loadbalancing"]
    assert exporter["routing_key"] == "traceID"  # the normalizer needs all spans of a trace
    resolver = exporter["resolver"]["dns"]
    headless = resource("Service", resolver["hostname"])
    assert headless["spec"]["clusterIP"] == "None"
    workload = resource("StatefulSet", "nextrace-collector")
    assert workload["spec"]["serviceName"] == resolver["hostname"]
    sidecar = otelcol("sidecar.yaml")
    listen = sidecar["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert listen.endswith(f":{resolver['port']}")
    ports = {p["containerPort"] for p in container(workload, "otlp-grpc")["ports"]}
    assert resolver["port"] in ports
    # Spans queue on a volume at the balancer, and nowhere in the sidecar: its export returns
    # once nextrace has answered.
    assert exporter["protocol"]["otlp"]["sending_queue"]["storage"] == "file_storage/queue"
    assert sidecar["exporters"]["otlphttp"]["sending_queue"]["enabled"] is False
    port = container(workload, "collector")["args"]
    assert sidecar["exporters"]["otlphttp"]["endpoint"] == "http://127.0.0.1:4318"
    assert "--port=4318" in port


@pytest.mark.parametrize("name", ["loadbalancer.yaml", "sidecar.yaml"])
def test_the_otel_collector_configs_are_whole_and_hold_no_secret(name):
    config = otelcol(name)
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(kind, [])) <= set(config.get(kind, {})), (name, kind)
    extensions = config["service"]["extensions"]
    assert set(extensions) == set(config["extensions"])
    for key, extension in config["extensions"].items():
        if key.startswith("bearertokenauth"):
            assert extension["token"] == "${env:NEXTRACE_TOKEN}"
    # Every listener asks for the token.
    for protocol in config["receivers"]["otlp"]["protocols"].values():
        assert protocol["auth"]["authenticator"].startswith("bearertokenauth")


def test_the_kustomization_generates_every_config_map_the_pods_mount(tmp_path):
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    copy_root = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy_root)
    write(copy_root / "grafana")  # what `nextrace dashboards build --out …/grafana` writes
    generated = {}
    for generator in kustomization["configMapGenerator"]:
        for file in generator["files"]:
            assert (copy_root / file).is_file(), file
        generated[generator["name"]] = generator["files"]
    assert set(kustomization["resources"]) == set(MANIFESTS)
    mounted = {
        volume["configMap"]["name"]
        for manifest in MANIFESTS
        for doc in documents(manifest)
        if doc["kind"] in ("Deployment", "StatefulSet")
        for volume in doc["spec"]["template"]["spec"].get("volumes", [])
        if "configMap" in volume
    }
    assert mounted == set(generated)
    built = sorted(p.name for p in (copy_root / "grafana" / "dashboards").glob("*.json"))
    assert sorted(Path(f).name for f in generated["nextrace-grafana-dashboards"]) == built
    grafana = container(resource("Deployment", "nextrace-grafana"), "grafana")
    mounts = {m["name"]: m["mountPath"] for m in grafana["volumeMounts"]}
    assert mounts["dashboards"] == DASHBOARDS_PATH


def test_the_secret_the_readme_creates_holds_every_key_the_pods_read():
    keys = {
        env["valueFrom"]["secretKeyRef"]["key"]
        for manifest in MANIFESTS
        for doc in documents(manifest)
        if doc["kind"] in ("Deployment", "StatefulSet")
        for c in doc["spec"]["template"]["spec"]["containers"]
        for env in c.get("env", [])
        if "valueFrom" in env
    }
    readme = (ROOT / "deploy" / "README.md").read_text()
    command = readme.split("kubectl -n nextrace create secret generic nextrace", 1)[1]
    command = command.split("\n\n", 1)[0]
    assert {key for key in keys if f"--from-literal={key}=" in command} == keys


def test_the_clickhouse_operator_resources_name_each_other():
    keeper, cluster = documents("clickhouse.yaml")
    assert {keeper["apiVersion"], cluster["apiVersion"]} == {"clickhouse.com/v1alpha1"}
    assert (keeper["kind"], cluster["kind"]) == ("KeeperCluster", "ClickHouseCluster")
    assert cluster["spec"]["keeperClusterRef"]["name"] == keeper["metadata"]["name"]
