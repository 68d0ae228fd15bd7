"""What the browser instrumentation (``@nextrace/next/client``) adds to a Next.js app's client
bundle, measured from ``next build``'s output.

Builds ``examples/nextjs`` twice on the same machine, with its ``instrumentation-client.js``
and without it, and compares the JavaScript ``next build`` writes for browsers
(``.next/static/**/*.js``), raw and gzip-compressed (level 9, as a CDN would serve it). The
budget is 30 kB gzip. A build is deterministic, so one of each is enough.

Run: ``python -m bench.client_bundle [--out FILE]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.examples.nextjs_app import ExampleApp

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_GZIP_BYTES = 30_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def client_js(app_dir: Path) -> dict[str, int]:
    """Bytes of the JavaScript a build serves to browsers, raw and gzipped."""
    files = sorted((app_dir / ".next" / "static").rglob("*.js"))
    raw = [path.read_bytes() for path in files]
    return {
        "files": len(files),
        "bytes": sum(len(data) for data in raw),
        "gzip_bytes": sum(len(gzip.compress(data, 9)) for data in raw),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "client_bundle.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nextrace-bundle-") as tmp:
        app = ExampleApp(
            Path(tmp),
            free_port(),
            browser_endpoint="https://collector.example.com/v1/browser/traces",
        )
        try:
            print("  building examples/nextjs with its browser instrumentation", flush=True)
            app.build()
            with_client = client_js(app.dir)
            print("  building it again without instrumentation-client.js", flush=True)
            (app.dir / "instrumentation-client.js").unlink()
            shutil.rmtree(app.dir / ".next")
            app.rebuild()
            without = client_js(app.dir)
            manifest = app.dir / "node_modules" / "next" / "package.json"
            next_version = json.loads(manifest.read_text())["version"]
        finally:
            app.close()
    added = {key: with_client[key] - without[key] for key in ("bytes", "gzip_bytes")}
    result: dict[str, Any] = {
        "benchmark": "client_bundle",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "next": next_version,
        "with_instrumentation": with_client,
        "without_instrumentation": without,
        "added": added,
        "budget_gzip_bytes": BUDGET_GZIP_BYTES,
        "within_budget": added["gzip_bytes"] <= BUDGET_GZIP_BYTES,
    }
    print(
        f"client JavaScript: {without['gzip_bytes']:,} B gzip without, "
        f"{with_client['gzip_bytes']:,} B with: {added['gzip_bytes']:,} B added "
        f"({added['bytes']:,} B raw; budget {BUDGET_GZIP_BYTES:,} B gzip)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
