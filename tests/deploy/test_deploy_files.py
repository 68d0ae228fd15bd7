"""The files under deploy/ agree with the code: options exist, DSNs parse, packages ship."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from typer.main import get_command

from collector.config import StoreConfig
from dashboards.files import write
from nextrace.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_the_compose_collector_command_is_accepted_by_the_cli():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    service = compose["services"]["collector"]
    command = get_command(app)
    args = service["command"]
    subcommand = command.commands[args[0]]  # type: ignore[attr-defined]
    context = subcommand.make_context(args[0], list(args[1:]))
    assert context.params["host"] == "0.0.0.0"
    assert context.params["port"] == 4318
    # Beyond loopback it needs a token, which compose takes from the shell, never the file.
    assert service["environment"]["NEXTRACE_TOKEN"].startswith("${NEXTRACE_TOKEN:?")
    server = compose["services"]["server"]["environment"]
    assert server["OTEL_EXPORTER_OTLP_HEADERS"].startswith(
        "Authorization=Bearer%20${NEXTRACE_TOKEN"
    )
    store = StoreConfig.from_dsn(service["environment"]["NEXTRACE_DSN"])
    assert (store.interface, store.host, store.port, store.database) == (
        "http",
        "clickhouse",
        8123,
        "otel",
    )
    clickhouse = compose["services"]["clickhouse"]["environment"]
    assert store.username == clickhouse["CLICKHOUSE_USER"]
    assert store.password == clickhouse["CLICKHOUSE_PASSWORD"]


def test_the_compose_server_exports_to_the_compose_collector():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    args = compose["services"]["server"]["command"]
    serve = get_command(app).commands[args[0]]  # type: ignore[attr-defined]
    params = serve.make_context(args[0], list(args[1:])).params
    collector_port = compose["services"]["collector"]["command"]
    assert (
        params["collector"]
        == f"http://collector:{collector_port[collector_port.index('--port') + 1]}"
    )
    assert params["host"] == "0.0.0.0"


def test_the_dockerfile_copies_every_package_the_project_ships():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile


def compose_schema_errors(path: Path) -> str:
    """What check-jsonschema's copy of the Compose specification finds wrong in ``path``."""
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return "" if checked.returncode == 0 else checked.stdout + checked.stderr


def test_the_compose_file_is_valid_for_the_compose_specification(tmp_path):
    compose = ROOT / "deploy" / "docker-compose.yml"
    assert compose_schema_errors(compose) == ""
    misspelt = tmp_path / "docker-compose.yml"
    misspelt.write_text(compose.read_text().replace("    healthcheck:", "    healthchek:", 1))
    assert "healthchek" in compose_schema_errors(misspelt)


def test_the_readmes_grafana_demo_reaches_the_compose_clickhouse_on_free_ports():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### See the demo in Grafana", 1)[1].split("```bash\n", 1)[1]
    commands = section.split("```", 1)[0]
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    dsn = commands.split("NEXTRACE_DSN='", 1)[1].split("'", 1)[0]
    store = StoreConfig.from_dsn(dsn)
    clickhouse = compose["services"]["clickhouse"]
    assert f"127.0.0.1:{store.port}:8123" in clickhouse["ports"]
    assert (store.username, store.password) == (
        clickhouse["environment"]["CLICKHOUSE_USER"],
        clickhouse["environment"]["CLICKHOUSE_PASSWORD"],
    )
    demo_line = next(line for line in commands.splitlines() if " demo " in line + " ")
    args = demo_line.split("nextrace ", 1)[1].split()
    demo = get_command(app).commands[args[0]]  # type: ignore[attr-defined]
    params = demo.make_context(args[0], args[1:]).params
    published = {
        int(port.split(":")[1])
        for service in compose["services"].values()
        for port in service.get("ports", [])
    }
    assert params["collector_port"] not in published
    assert params["server_port"] not in published


def test_the_compose_grafana_sets_every_variable_the_provisioning_files_use(tmp_path):
    write(tmp_path, webhook="$NEXTRACE_ALERT_WEBHOOK")
    used = {
        name
        for path in (tmp_path / "provisioning").rglob("*.yaml")
        for name in re.findall(r"\$([A-Z][A-Z_]*)", path.read_text())  # not $__macros
    }
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]["environment"]
    # The webhook only when built with one (deploy/README.md); everything else always.
    assert used - set(grafana) == {"NEXTRACE_ALERT_WEBHOOK"}
    clickhouse = compose["services"]["clickhouse"]
    assert grafana["CLICKHOUSE_HOST"] == "clickhouse"
    assert any(p.endswith(f":{grafana['CLICKHOUSE_PORT']}") for p in clickhouse["ports"])
    assert grafana["CLICKHOUSE_PASSWORD"] == clickhouse["environment"]["CLICKHOUSE_PASSWORD"]


def test_every_compose_service_publishes_the_port_it_listens_on():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    for name in ("collector", "server"):
        service = compose["services"][name]
        args = service["command"]
        listen = args[args.index("--port") + 1]
        assert [p.rsplit(":", 1)[1] for p in service["ports"]] == [listen], name
        assert all(p.startswith("127.0.0.1:") for p in service["ports"]), name  # loopback only
