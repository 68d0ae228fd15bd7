"""What Grafana's browser code does to a ClickHouse query before the backend sees it.

Dashboards use template variables and the frontend-only ``$__conditionalAll``;
Grafana substitutes them in the browser (``applyTemplateVariables``), then the
backend expands the macros (:mod:`dashboards.macros`). Tests run both steps to
get the SQL that ClickHouse would really receive. Alert rules never get this
step, which is why their queries must not use variables.

Supported, as the plugin documents them: ``$__conditionalAll(condition, $var)``
(``1=1`` when the variable is All), ``${var:singlequote}`` (``'a','b'``),
``${var}`` and ``$var`` (the values joined by commas).

A data link's URL is filled in the browser too, when its cell is clicked (:func:`data_link`):
``${__value.raw}`` is the cell's value, ``${var}`` a text box variable's, and the
``:percentencode`` format is JavaScript's ``encodeURIComponent``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from dashboards.macros import MacroError, closing_paren, split_args

Values = list[str] | None  # None: the variable is set to All

_CONDITIONAL_ALL = "$__conditionalAll"


def _format(values: Values, fmt: str) -> str:
    chosen = values or []
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in chosen)
    if fmt in ("", "raw", "csv"):
        return ",".join(chosen)
    raise MacroError(f"variable format {fmt!r} is not emulated")


def interpolate(sql: str, variables: dict[str, Values]) -> str:
    """``sql`` with the dashboard's variables substituted as Grafana's frontend does."""
    while (start := sql.find(_CONDITIONAL_ALL + "(")) >= 0:
        open_at = start + len(_CONDITIONAL_ALL)
        end = closing_paren(sql, open_at)
        if end < 0:
            raise MacroError("unbalanced $__conditionalAll(")
        args = split_args(sql[open_at + 1 : end])
        if len(args) != 2:
            raise MacroError("$__conditionalAll needs (condition, $variable)")
        name = args[1].lstrip("$").strip("{}")
        if name not in variables:
            raise MacroError(f"unknown dashboard variable {name!r}")
        replacement = "1=1" if variables[name] is None else args[0]
        sql = sql[:start] + replacement + sql[end + 1 :]

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        fmt = match.group(2) or ""
        if name not in variables:
            raise MacroError(f"unknown dashboard variable {name!r}")
        return _format(variables[name], fmt)

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)", substitute, sql)


def data_link(url: str, variables: dict[str, str], value: str) -> str:
    """A data link's ``url`` as Grafana follows it from a cell holding ``value``, with the
    dashboard's text ``variables``."""

    def substitute(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2) or ""
        if name == "__value.raw":
            found = value
        elif name in variables:
            found = variables[name]
        else:
            raise MacroError(f"unknown data link variable {name!r}")
        if fmt == "percentencode":
            return quote(found, safe="-_.!~*'()")  # encodeURIComponent's unreserved set
        if fmt in ("", "raw"):
            return found
        raise MacroError(f"variable format {fmt!r} is not emulated")

    return re.sub(r"\$\{([\w.]+)(?::(\w+))?\}", substitute, url)
