"""What a new user meets at the command line: one-line errors, and `nextrace sql`'s manners.

Each command runs as the installed ``nextrace`` would (a child process, through
``nextrace.cli:main``), so what is asserted is what the user reads.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from nextrace import cli
from tests.support.processes import free_port, nextrace
from tests.support.waiting import wait_until
from traffic.router_cache import STALE_TIMES
from traffic.scenarios import SCENARIOS


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]


def assert_usage_error(result: subprocess.CompletedProcess[str], option: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Invalid value for '{option}'" in result.stderr


def test_the_choices_offered_are_the_ones_that_exist():
    assert {s.value for s in cli.ScenarioName} == set(SCENARIOS)
    assert {v.value for v in cli.NextVersion} == set(STALE_TIMES)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["serve", "--port", "99999"], "--port"),
        (["demo", "--speed", "0"], "--speed"),
        (["demo", "--speed", "-1"], "--speed"),
        (["demo", "--next-version", "13"], "--next-version"),
        (["demo", "--scenario", "nope"], "--scenario"),
        (["collect", "--wal-fsync", "sometimes"], "--wal-fsync"),
        (["dashboards", "build", "--clickhouse-protocol", "grpc"], "--clickhouse-protocol"),
    ],
)
def test_values_out_of_range_are_usage_errors(tmp_path, args, option):
    assert_usage_error(nextrace(*args, cwd=tmp_path, timeout=60), option)


def test_files_and_folders_that_cannot_be_used_fail_in_one_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert_one_line_error(
        nextrace("dashboards", "build", "--out", str(a_file), cwd=tmp_path),
        "Not a directory",
        str(a_file),
    )
    assert_one_line_error(
        nextrace("demo", "--workdir", str(a_file / "runs"), cwd=tmp_path),
        "cannot create the run folder",
    )
    missing_parent = tmp_path / "typo" / "store"
    elsewhere = tmp_path / "elsewhere"  # a relative DSN may create folders; an absolute one not
    elsewhere.mkdir()
    assert_one_line_error(
        nextrace("collect", "--dsn", f"chdb:{missing_parent}", "--port", "0", cwd=elsewhere),
        f"{missing_parent.parent} does not exist",
    )
    assert not missing_parent.parent.exists()  # nothing created on a typo


def test_a_datasource_database_that_is_no_identifier_fails_in_one_line(tmp_path):
    built = nextrace("dashboards", "build", "--clickhouse-database", "otel;drop", cwd=tmp_path)
    assert_one_line_error(built, "'otel;drop' is not a ClickHouse identifier")
    assert not (tmp_path / "grafana").exists()


def test_grafana_that_cannot_be_reached_fails_in_one_line(tmp_path):
    base = ["dashboards", "provision", "--token", "t", "--clickhouse-host", "ch"]
    assert_one_line_error(
        nextrace(*base, "--grafana-url", "localhost:3000", cwd=tmp_path), "needs a scheme"
    )
    closed = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(
        nextrace(*base, "--grafana-url", closed, cwd=tmp_path), f"cannot reach Grafana at {closed}"
    )


def test_version_and_short_help(tmp_path):
    version = nextrace("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.strip() == f"nextrace {cli.VERSION}"
    short = subprocess.run(
        [sys.executable, "-m", "nextrace.cli", "demo", "-h"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},  # one line per option
        timeout=60,
    )
    assert short.returncode == 0
    assert "<steady|deploy|webhook-flood|prefetch-storm|prefetch-release|instances>" in short.stdout


@pytest.fixture(scope="module")
def store_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An embedded store with its schema and three spans, made in a child process (chDB allows
    one store per process, and the test process has its own)."""
    folder = tmp_path_factory.mktemp("sql") / "store"
    dsn = f"chdb:{folder}"
    code = (
        "from collector.config import StoreConfig; from collector.storage.store import open_store;"
        f"s = open_store(StoreConfig.from_dsn({dsn!r}));"
        "s.client.command(\"INSERT INTO otel_traces (TraceId, SpanName) VALUES ('t', 'a'), "
        "('t', 'b'), ('u', 'a')\"); s.close()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    return dsn


def test_sql_reads_comments_format_clauses_and_stdin(tmp_path, store_dsn):
    commented = nextrace(
        "sql",
        "-- spans per name\nSELECT SpanName, count() FROM otel_traces GROUP BY 1 ORDER BY 1",
        "--dsn",
        store_dsn,
        "--format",
        "TSV",
        cwd=tmp_path,
    )
    assert commented.returncode == 0, commented.stderr
    assert commented.stdout == "a\t2\nb\t1\n"

    own_format = nextrace(
        "sql", "SELECT count() AS n FROM otel_traces FORMAT JSONEachRow", "--dsn", store_dsn,
        cwd=tmp_path,
    )  # fmt: skip
    assert own_format.returncode == 0, own_format.stderr
    assert own_format.stdout == '{"n":3}\n'

    piped = subprocess.run(
        [sys.executable, "-m", "nextrace.cli", "sql", "--dsn", store_dsn, "--format", "TSV"],
        input="SELECT uniqExact(TraceId) FROM otel_traces",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "2\n"


def test_sql_says_0_rows_and_quotes_only_what_the_user_wrote(tmp_path, store_dsn):
    empty = nextrace(
        "sql", "SELECT * FROM otel_traces WHERE SpanName = 'z'", "--dsn", store_dsn, cwd=tmp_path
    )
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == ""
    assert empty.stderr.strip() == "0 rows"

    wrong = nextrace("sql", "SELEC 1", "--dsn", store_dsn, cwd=tmp_path)
    assert_one_line_error(wrong, "Syntax error")
    assert "formatQuerySingleLine" not in wrong.stderr
    unknown = nextrace("sql", "SELECT nope FROM otel_traces", "--dsn", store_dsn, cwd=tmp_path)
    assert_one_line_error(unknown, "nope")
    assert "nextrace-read" not in unknown.stderr


def test_the_hint_names_a_command_the_user_can_paste(monkeypatch, tmp_path):
    script = tmp_path / "venv" / "bin" / "nextrace"
    monkeypatch.setattr(sys, "argv", [str(script)])
    monkeypatch.setenv("PATH", "/nowhere")
    assert cli._self_command() == str(script.resolve())  # not on PATH: the full path
    monkeypatch.setattr(sys, "argv", ["-m"])
    assert cli._self_command().endswith(" -m nextrace.cli")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.slow
def test_sigterm_stops_the_demo_and_its_children(tmp_path):
    ports = free_port(), free_port()
    demo = subprocess.Popen(
        [
            *(sys.executable, "-m", "nextrace.cli", "demo", "--scenario", "steady"),
            *("--collector-port", str(ports[0]), "--server-port", str(ports[1])),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert demo.stderr is not None
        for line in demo.stderr:  # the demo is browsing once its server answers
            if "reference server on" in line:
                break
        assert not port_is_free(ports[0])
        assert not port_is_free(ports[1])
        demo.send_signal(signal.SIGTERM)
        _, stderr = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    assert demo.returncode == 130, stderr
    assert "the collector and the server were stopped" in stderr
    wait_until(
        lambda: port_is_free(ports[0]) and port_is_free(ports[1]),
        "no child of the demo listens any more",
    )
