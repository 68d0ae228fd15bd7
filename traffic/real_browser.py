"""Real browser sessions beside the virtual browsers: Debian's headless Chromium on the
reference server's pages, whose client router (and ``@nextrace/next/client``) makes the
requests and the browser spans, as in a real Next.js app.

A session lands on a page, then, after a think time, clicks a link in view (the page's own
``<nav>``), or goes back, until its time is up; the pages' router prefetches what comes into
view and what the pointer passes over. Each session is a Chromium of its own, in its own
profile folder, so that their router caches are apart.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from traffic.chromium import Chromium, ChromiumError


@dataclass
class RealSession:
    """What one real session did."""

    navigations: int = 0
    backs: int = 0
    errors: list[str] = field(default_factory=list)  # what the page logged as errors


def browse_with_chromium(
    origin: str,
    landing: str,
    until: float,
    workdir: Path,
    rng: random.Random,
    think_time_s: float = 1.5,
    back_probability: float = 0.15,
) -> RealSession:
    """One session on ``origin`` from ``landing`` until ``until`` (``time.monotonic()``)."""
    done = RealSession()
    workdir.mkdir(parents=True, exist_ok=True)
    with Chromium(workdir) as page:
        page.goto(f"{origin}{landing}")
        depth = 0
        while time.monotonic() + think_time_s < until:
            time.sleep(rng.expovariate(1 / think_time_s))
            if depth and rng.random() < back_probability:
                page.evaluate("history.back()")
                depth -= 1
                done.backs += 1
                continue
            hrefs: list[str] = page.evaluate(
                "[...document.querySelectorAll('nav a[href]')].map((a) => a.getAttribute('href'))"
            )
            if not hrefs:
                break
            href = rng.choice(hrefs)
            try:
                page.click(f"nav a[href={json.dumps(href)}]")
                page.wait_until(f"location.pathname === {json.dumps(href)}", f"{href} shown")
            except ChromiumError:
                continue  # the page changed under the pointer: think, and try again
            depth += 1
            done.navigations += 1
        # Leaving sends what the page still holds (the instrumentation's pagehide flush).
        page.send("Page.navigate", url="about:blank")
        page.wait_until("location.href === 'about:blank'", "the page left")
        done.errors = list(page.console_errors)
    return done
