"""The npm package in js/next: its own tests (Node's test runner) pass, and it packs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.examples.nextjs_app import HELPER, HELPER_PACKAGE, pack_helper

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js 20 and npm are needed for the npm package's tests",
)


def test_the_package_tests_pass_under_nodes_test_runner():
    # Its tests run on the real OpenTelemetry SDK, a devDependency: installed as `npm ci` does.
    installed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=HELPER,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    done = subprocess.run(
        ["node", "--test"], cwd=HELPER, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "# fail 0" in done.stdout


def test_npm_pack_makes_a_tarball_with_the_module_and_its_types(tmp_path: Path):
    tarball = pack_helper(tmp_path, dict(os.environ))
    with tarfile.open(tarball) as packed:
        names = sorted(packed.getnames())
        manifest_file = packed.extractfile("package/package.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)
    assert names == [
        "package/README.md",
        "package/build-id.js",
        "package/client.d.ts",
        "package/client.js",
        "package/fail-safe.js",
        "package/index.d.ts",
        "package/index.js",
        "package/package.json",
        "package/revalidation.d.ts",
        "package/revalidation.js",
        "package/tracer.js",
        "package/warmup.d.ts",
        "package/warmup.js",
    ]
    assert manifest["name"] == HELPER_PACKAGE
    assert manifest["type"] == "module"
    assert manifest["exports"] == {
        ".": {"types": "./index.d.ts", "default": "./index.js"},
        "./client": {"types": "./client.d.ts", "default": "./client.js"},
        "./revalidation": {"types": "./revalidation.d.ts", "default": "./revalidation.js"},
        "./warmup": {"types": "./warmup.d.ts", "default": "./warmup.js"},
    }
    assert set(manifest["peerDependencies"]) == {"next", "@opentelemetry/api", "@vercel/otel"}
