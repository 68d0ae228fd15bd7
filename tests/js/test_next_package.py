"""The npm package in js/next: its own tests (Node's test runner) pass, it packs outside the
repository, and it installs as its README says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.examples.nextjs_app import HELPER, HELPER_PACKAGE, pack_helper

REPOSITORY = HELPER.parents[1]


def tarballs_in_repository() -> list[str]:
    """The tarballs in the working tree that git would show (not ignored, not committed)."""
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "--", "*.tgz"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return listed.stdout.splitlines()


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
    before = tarballs_in_repository()
    tarball = pack_helper(tmp_path, dict(os.environ))
    assert tarballs_in_repository() == before  # written where it was told, outside the clone
    with tarfile.open(tarball) as packed:
        names = sorted(packed.getnames())
        manifest_file = packed.extractfile("package/package.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)
        client_types = packed.extractfile("package/client.d.ts")
        assert client_types is not None
        types = client_types.read().decode()
    assert names == [
        "package/README.md",
        "package/build-id.js",
        "package/cache-handler.d.ts",
        "package/cache-handler.js",
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
        "./cache-handler": {"types": "./cache-handler.d.ts", "default": "./cache-handler.js"},
        "./client": {"types": "./client.d.ts", "default": "./client.js"},
        "./revalidation": {"types": "./revalidation.d.ts", "default": "./revalidation.js"},
        "./warmup": {"types": "./warmup.d.ts", "default": "./warmup.js"},
    }
    assert set(manifest["peerDependencies"]) == {"next", "@opentelemetry/api", "@vercel/otel"}
    # Built without its endpoint, the browser client is valid: it does nothing.
    assert "endpoint?: string | undefined;" in types


@pytest.mark.slow
def test_the_readmes_install_lines_install_the_package(tmp_path: Path):
    """The README's lines, pasted: pack in the clone, install in an app (peer dependencies
    from the registry, as a user's app gets them)."""
    readme = (HELPER / "README.md").read_text()
    section = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    in_clone, in_app = block.split("# in your app\n")
    app = tmp_path / "my-app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "my-app", "private": true}\n')
    before = tarballs_in_repository()
    # Where the README's temporary folder is, said even if a line fails, to remove it.
    said = "trap 'echo \"packed in ${pack:-}\"' EXIT"
    script = f'set -e\n{said}\ncd "{REPOSITORY}"\n{in_clone}cd "{app}"\n{in_app}'
    # The lines as pasted, with npm's cache first (no wait for the registry to confirm what it
    # holds) and no audit or funding requests. npm installs the peer dependencies too, as in
    # a user's app (Next.js, 217 MB, is most of the test's time): a conflict between their
    # ranges would fail here.
    env = {
        **os.environ,
        "npm_config_prefer_offline": "true",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
    }
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    packed_in = re.findall(r"^packed in (.+)$", done.stdout, re.M)
    if packed_in:
        shutil.rmtree(packed_in[-1], ignore_errors=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert tarballs_in_repository() == before
    assert packed_in
    assert not Path(packed_in[-1]).is_relative_to(REPOSITORY)
    # The app imports it by the names the README uses, with the types beside each module.
    imported = subprocess.run(
        [
            "node",
            "--input-type=module",
            "-e",
            "const client = await import('@nextrace/next/client');"
            "const server = await import('@nextrace/next');"
            "console.log(typeof client.startClientTracing, typeof server.NextraceSpanProcessor)",
        ],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imported.stdout.split() == ["function", "function"], imported.stderr[-3000:]
    installed = app / "node_modules" / "@nextrace" / "next"
    assert (installed / "client.d.ts").is_file()
    assert (installed / "index.d.ts").is_file()
