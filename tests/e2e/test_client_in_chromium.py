"""The README's ``instrumentation-client.js``, built without its endpoint, in Debian's Chromium
(slow): the page keeps its client-side navigations, the console says once that nothing is
traced, and nothing is thrown.

Next.js imports ``instrumentation-client.js`` before it starts its router; if the module
throws, the router never starts, and every link is a full page load. The page here does the
same, in small: ``app.js`` imports the snippet (as ``next build`` writes it when
``NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT`` was not set) and the package as ``npm pack`` makes it,
then navigates on click as Next.js's router does: ``onRouterTransitionStart``, the page's RSC
payload (``RSC: 1``), ``history.pushState``.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.examples.nextjs_app import HELPER, pack_helper
from traffic.chromium import Chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's Chromium is needed"),
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm is needed to pack the package"),
]

PAGE = """<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>shop</title>
<script>
  // What the page logs as warnings, and its fetch before any script of the app ran.
  window.warnings = [];
  const warn = console.warn.bind(console);
  console.warn = (...args) => { window.warnings.push(args.map(String).join(' ')); warn(...args); };
  window.pageFetch = window.fetch;
</script>
<script type="importmap">
  {"imports": {"@nextrace/next/client": "/node_modules/@nextrace/next/client.js"}}
</script>
<nav><a href="/">Home</a> <a href="/about/">About</a></nav>
<main><h1>{heading}</h1></main>
<script type="module" src="/app.js"></script>
"""

APP = """// Next.js's App Router, in small: instrumentation-client.js first, then the router.
import * as instrumentation from '/instrumentation-client.js';

window.clientNavigations = 0;
document.addEventListener('click', async (event) => {
  const link = event.target.closest('a[href]');
  if (!link) return;
  event.preventDefault();
  instrumentation.onRouterTransitionStart?.(link.href, 'push');
  const answer = await fetch(`${link.pathname}?_rsc=1`, { headers: { RSC: '1' } });
  await answer.text();
  history.pushState(null, '', link.href);
  document.querySelector('main h1').textContent = link.textContent;
  window.clientNavigations += 1;
});
"""


def readme_snippet() -> str:
    """The README's ``instrumentation-client.js``, as ``next build`` writes it without the
    endpoint's variable: ``process.env.NEXT_PUBLIC_…`` is undefined in the browser."""
    readme = (HELPER / "README.md").read_text()
    (snippet,) = re.findall(r"```js\n(// instrumentation-client\.js.*?)```", readme, re.S)
    return re.sub(r"process\.env\.NEXT_PUBLIC_\w+", "undefined", snippet)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    """The page, its app and the packed package, served on loopback; the origin."""
    root = tmp_path / "site"
    for path, heading in (("", "Home"), ("about", "About")):
        (root / path).mkdir(parents=True, exist_ok=True)
        (root / path / "index.html").write_text(PAGE.replace("{heading}", heading))
    (root / "app.js").write_text(APP)
    (root / "instrumentation-client.js").write_text(readme_snippet())
    with tarfile.open(pack_helper(tmp_path, dict(os.environ))) as packed:
        packed.extractall(tmp_path / "unpacked", filter="data")
    shutil.copytree(tmp_path / "unpacked" / "package", root / "node_modules/@nextrace/next")
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_built_without_its_endpoint_the_client_keeps_client_side_navigations(site, tmp_path):
    with Chromium(tmp_path) as chromium:
        chromium.goto(f"{site}/")
        chromium.wait_for_network_idle()
        chromium.evaluate("window.sameDocument = true")  # gone if the click loads a new page
        chromium.click('a[href="/about/"]')
        chromium.wait_until(
            "location.pathname === '/about/' && document.readyState === 'complete' && "
            "document.querySelector('main h1')?.textContent === 'About'",
            "/about/ shows",
        )
        assert chromium.evaluate("window.sameDocument === true"), "the click loaded a new page"
        assert chromium.evaluate("window.clientNavigations") == 1
        assert chromium.evaluate("window.fetch === window.pageFetch")  # not wrapped
        warnings = chromium.evaluate("window.warnings")
        errors = list(chromium.console_errors)
    assert errors == []
    assert len(warnings) == 1, warnings
    assert "no endpoint" in warnings[0]
    assert "NEXT_PUBLIC_NEXTRACE_BROWSER_ENDPOINT" in warnings[0]
