"""Run examples/nextjs for real: npm install, next build, next start, and requests as a browser
sends them (RSC headers with the matching ``_rsc`` cache-busting parameter)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.waiting import listens, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nextjs"
HELPER = Path(__file__).resolve().parents[2] / "js" / "next"
HELPER_PACKAGE = "@nextrace/next"


def pack_helper(destination: Path, env: dict[str, str]) -> Path:
    """``npm pack`` of the helper package into ``destination``; the tarball's path."""
    done = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(destination)],
        cwd=HELPER,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(f"npm pack failed:\n{done.stderr[-3000:]}")
    (packed,) = json.loads(done.stdout)
    return destination / str(packed["filename"])


def rsc_param(prefetch: str = "0", segment: str = "0", tree: str = "0", next_url: str = "0") -> str:
    """Next 16's ``_rsc`` value for these headers; a wrong one is answered with a redirect.

    (``computeCacheBustingSearchParam`` in next/dist/shared/lib/router/utils.)
    """
    digest = hashlib.sha256(f"{prefetch},{segment},{tree},{next_url}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")


def rsc_headers(kind: str) -> tuple[dict[str, str], str]:
    """Headers and ``_rsc`` of an RSC navigation, a prefetch, or a segment prefetch."""
    if kind == "navigation":
        return {"RSC": "1", "Next-Url": "/"}, rsc_param(next_url="/")
    if kind == "prefetch":
        return {"RSC": "1", "Next-Router-Prefetch": "1", "Next-Url": "/"}, rsc_param(
            prefetch="1", next_url="/"
        )
    headers = {"RSC": "1", "Next-Router-Prefetch": "1", "Next-Router-Segment-Prefetch": "/_tree"}
    return headers, rsc_param(prefetch="1", segment="/_tree")


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> None:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        output = done.stdout[-3000:] + done.stderr[-3000:]
        raise AssertionError(f"{' '.join(command)} failed:\n{output}")


def wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until ``port`` accepts connections, without a request (it would be traced)."""
    wait_until(lambda: process.poll() is not None or listens(port), f"port {port} listens")
    if process.poll() is not None:
        raise AssertionError(f"{process.args!r} exited with {process.returncode}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (npx starts next-server as a child), then wait."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@dataclass(frozen=True)
class Call:
    """A call the upstream received, from its log: the path, the trace it came with (from its
    traceparent; "" without one), when it was received and answered (time.time() seconds;
    answered is None while it waits), and its number, which its answer carries."""

    path: str
    trace_id: str
    received: float
    answered: float | None
    number: int = -1  # its place in the log, which its answer names


class ExampleApp:
    """A built copy of the example app on Next.js ``next_major`` (15 or 16), with its slow
    upstream running."""

    def __init__(
        self, workdir: Path, upstream_port: int, next_major: int = 16, browser_endpoint: str = ""
    ) -> None:
        """``browser_endpoint``: where the pages send their browser spans (written into the
        client bundle at build time); none without it."""
        self.dir = workdir / "nextjs"
        self.next_major = next_major
        self.upstream_port = upstream_port
        self.upstream_url = f"http://127.0.0.1:{upstream_port}"
        self.env = {
            **os.environ,
            "NEXT_TELEMETRY_DISABLED": "1",
            "UPSTREAM_URL": self.upstream_url,
            "UPSTREAM_PORT": str(upstream_port),
            "NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT": browser_endpoint,
        }
        self._upstream: subprocess.Popen[bytes] | None = None

    def build(self) -> None:
        shutil.copytree(EXAMPLE, self.dir, ignore=shutil.ignore_patterns("node_modules", ".next"))
        # The helper package is installed as a user installs it: from the tarball npm pack makes.
        tarball = pack_helper(self.dir.parent, self.env)
        manifest = json.loads((self.dir / "package.json").read_text())
        manifest["dependencies"][HELPER_PACKAGE] = f"file:{tarball}"
        (self.dir / "package.json").write_text(json.dumps(manifest, indent=2))
        run(["node", "use-next.mjs", str(self.next_major)], self.dir, self.env, timeout=60)
        run(["npm", "install", "--no-audit", "--no-fund"], self.dir, self.env, timeout=300)
        self._upstream = start(["node", "upstream.mjs"], self.dir, self.env, self.dir / "up.log")
        wait_for(self.upstream_port, self._upstream)
        self.rebuild()

    def rebuild(self) -> None:
        """``next build``: a new build id, served by the next ``serve``."""
        # The ISR page is prerendered at build time, from the upstream.
        run(["npx", "next", "build"], self.dir, self.env, timeout=300)

    def build_id(self) -> str:
        return (self.dir / ".next" / "BUILD_ID").read_text().strip()

    @contextlib.contextmanager
    def serve(self, port: int, collector_url: str, service: str, helper: bool) -> Iterator[str]:
        """``next start`` exporting to ``collector_url``; stopped (and flushed) on exit."""
        env = {
            **self.env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
            "OTEL_SERVICE_NAME": service,
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            # Small exports: a request's spans are split across several, as under load.
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
            "NEXTRACE_HELPER": "1" if helper else "0",
        }
        command = ["npx", "next", "start", "--hostname", "127.0.0.1", "--port", str(port)]
        server = start(command, self.dir, env, self.dir / f"{service}.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(port, server)
            yield url
        finally:
            stop(server)

    def upstream_answers(self, path: str) -> list[float]:
        """When the upstream answered each call for ``path`` so far, in that order
        (time.time() seconds)."""
        return sorted(c.answered for c in self.upstream_log() if c.path == path and c.answered)

    def upstream_log(self) -> list[Call]:
        """Every call the upstream has had, in the order received."""
        log = httpx.get(f"{self.upstream_url}/calls").json()["log"]
        return [
            Call(
                path=call["path"],
                trace_id=call["traceparent"][3:35],
                received=call["received"] / 1000,
                answered=call["answered"] / 1000 if "answered" in call else None,
                number=call["number"],
            )
            for call in log
        ]

    @contextlib.contextmanager
    def holding(self, path: str) -> Iterator[None]:
        """The upstream's next call for ``path`` waits, unanswered, until the block ends."""
        httpx.post(f"{self.upstream_url}/hold", params={"path": path}).raise_for_status()
        try:
            yield
        finally:
            httpx.post(f"{self.upstream_url}/release", params={"path": path}).raise_for_status()

    def wait_for_call(self, path: str, after: float) -> None:
        """Until the upstream has received a call for ``path`` since ``after`` (time.time())."""
        wait_until(
            lambda: any(c.path == path and c.received >= after for c in self.upstream_log()),
            f"the upstream receives a call for {path}",
        )

    def close(self) -> None:
        if self._upstream is not None:
            stop(self._upstream)
