"""`nextrace demo` in a test: a shortened scenario, its progress shown and nothing left
running."""

from __future__ import annotations

from pathlib import Path

from nextrace.demo import DemoResult, run_demo
from tests.support.processes import free_port


def demo(tmp_path: Path, scenario: str, speed: float) -> DemoResult:
    """Run ``scenario`` at ``speed`` in ``tmp_path`` on free ports."""
    lines: list[str] = []
    result = run_demo(
        scenario,
        workdir=tmp_path,
        speed=speed,
        collector_port=free_port(),
        server_port=free_port(),
        say=lines.append,
    )
    assert any("navigations" in line for line in lines)  # progress was shown
    assert not processes_using(result.run_dir)  # nothing left running
    return result


def processes_using(path: Path) -> list[str]:
    """The command lines of running processes that name ``path``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in text:
            found.append(text)
    return found
