"""@nextrace/next writes the span contract that the collector, dashboards and reports read: every
attribute name its modules write is one of contract/semconv.py's, so that a name changed on
one side alone fails here rather than as an empty panel."""

from __future__ import annotations

import re
from pathlib import Path

from contract import nextjs, semconv

PACKAGE = Path(__file__).resolve().parents[2] / "js" / "next"
# A quoted attribute name; names in Symbol.for(…) are the package's own markers, not spans'.
_NAME = re.compile(
    r"""(?<!Symbol\.for\()['"]((?:nextrace|cache|next)\.[a-z_]+(?:\.[a-z_]+)*)['"]"""
)


def test_every_attribute_the_package_writes_is_in_the_contract():
    contract = {
        value for name, value in vars(semconv).items() if name.isupper() and isinstance(value, str)
    }
    written = {
        (module.name, found)
        for module in sorted(PACKAGE.glob("*.js"))
        for found in _NAME.findall(module.read_text(encoding="utf-8"))
    }
    assert len({name for _, name in written}) >= 20  # the package's names were found
    assert sorted((m, n) for m, n in written if n not in contract) == []


# A quoted Next.js span type, such as 'AppRender.fetch'.
_SPAN_TYPE = re.compile(r"""['"]([A-Z][A-Za-z]+\.[a-z][A-Za-z]+)['"]""")


def test_the_span_types_and_scope_the_package_reads_are_the_contracts():
    read = {
        (module.name, found)
        for module in sorted(PACKAGE.glob("*.js"))
        for found in _SPAN_TYPE.findall(module.read_text(encoding="utf-8"))
    }
    assert {name for _, name in read} >= {nextjs.REQUEST, nextjs.FETCH}
    assert sorted((m, n) for m, n in read if n not in nextjs.SPAN_PHASES) == []
    tracer = (PACKAGE / "tracer.js").read_text(encoding="utf-8")
    assert f"export const SCOPE = '{nextjs.HELPER_SCOPE}';" in tracer
