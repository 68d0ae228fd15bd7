"""The Grafana ClickHouse plugin's macros, expanded as its backend expands them.

Follows grafana/clickhouse-datasource v4.20.0 (``pkg/macros/macros.go``), which
runs the ``grafana/macropro`` engine with the plugin's ClickHouse overrides:

- comments (``--`` and ``/* */``) are blanked before expansion, string
  literals (with backslash escapes) are kept, so a macro in a comment never
  expands;
- macro names are matched longest first, and only as whole names;
- an argument list in parentheses is split on top-level commas, outside
  quotes and nested parentheses, and each argument is trimmed.

A ``$__name`` that the plugin's backend does not define raises
:class:`UnknownMacroError` instead of being left in the SQL, so a query that
Grafana would send to ClickHouse half-expanded fails here first. The
frontend-only macros (``$__conditionalAll``, ``$__adHocFilters``) and
dashboard variables are resolved by Grafana's browser code before the query
reaches the backend, and never for alert rules: they are refused too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from contract.errors import NextraceError

PLUGIN_VERSION = "4.20.0"


class MacroError(NextraceError, ValueError):
    """A macro could not be expanded; the message names it."""


class UnknownMacroError(MacroError):
    """A ``$__name`` that the plugin's backend does not expand."""


@dataclass(frozen=True)
class QueryContext:
    """What Grafana sends with a query: the time range and the interval."""

    time_from: dt.datetime
    time_to: dt.datetime
    interval: dt.timedelta = dt.timedelta(seconds=30)
    table: str = ""
    column: str = ""

    @property
    def from_s(self) -> int:
        return int(self.time_from.timestamp())

    @property
    def to_s(self) -> int:
        return int(self.time_to.timestamp())

    @property
    def from_ms(self) -> int:
        return int(self.time_from.timestamp() * 1000)

    @property
    def to_ms(self) -> int:
        return int(self.time_to.timestamp() * 1000)

    @property
    def interval_ms(self) -> int:
        return int(self.interval.total_seconds() * 1000)


Macro = Callable[[QueryContext, list[str]], str]


def _date(t: dt.datetime) -> str:
    return f"toDate('{t.astimezone(dt.UTC):%Y-%m-%d}')"


def _one_arg(name: str, args: list[str]) -> str:
    if len(args) != 1 or not args[0]:
        raise MacroError(f"$__{name} needs exactly 1 argument (a column), got {len(args)}")
    return args[0]


def _two_args(name: str, args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise MacroError(f"$__{name} needs 2 arguments, got {len(args)}")
    return args[0], args[1]


def _interval_s(ctx: QueryContext) -> int:
    return int(max(ctx.interval.total_seconds(), 1))


def format_duration(d: dt.timedelta) -> str:
    """Grafana's compact interval notation, truncating to the largest unit (macropro)."""
    ms = int(d.total_seconds() * 1000)
    for unit, size in (
        ("y", 365 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ):
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_CALENDAR = {"d": 86_400.0, "w": 604_800.0, "y": 365.25 * 86_400, "M": 365.25 * 86_400 / 12}


def parse_duration(text: str) -> float:
    """Seconds in Grafana's duration notation: Go's ``time.ParseDuration`` plus d, w, M, y."""
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in _CALENDAR:
        return int(text[:-1]) * _CALENDAR[text[-1]]
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+-"):
        raise MacroError(f"invalid duration {text!r}")
    seconds = sum(float(n) * _GO_UNITS[u] for n, u in parts)
    return -seconds if text.startswith("-") else seconds


def _time_group(_ctx: QueryContext, args: list[str]) -> str:
    column, raw = _two_args("timeGroup", args)
    if not column.strip():
        raise MacroError("$__timeGroup needs a column expression")
    seconds = round(parse_duration(raw.strip().strip("'\"")))
    if seconds <= 0:
        raise MacroError(f"$__timeGroup interval must be positive, got {raw!r}")
    return f"toStartOfInterval(toDateTime({column.strip()}), INTERVAL {seconds} second)"


def _date_time_filter(ctx: QueryContext, args: list[str]) -> str:
    date_col, time_col = _two_args("dateTimeFilter", args)
    return (
        f"({date_col} >= {_date(ctx.time_from)} AND {date_col} <= {_date(ctx.time_to)}) AND "
        f"({time_col} >= toDateTime({ctx.from_s}) AND {time_col} <= toDateTime({ctx.to_s}))"
    )


def _context_value(name: str, value: str) -> str:
    if not value:
        raise MacroError(f"$__{name}: no {name} name in the query context")
    return value


MACROS: dict[str, Macro] = {
    "timeFilter": lambda ctx, a: (
        f"{_one_arg('timeFilter', a)} >= toDateTime({ctx.from_s}) AND "
        f"{a[0]} <= toDateTime({ctx.to_s})"
    ),
    "timeFilter_ms": lambda ctx, a: (
        f"{_one_arg('timeFilter_ms', a)} >= fromUnixTimestamp64Milli({ctx.from_ms}) AND "
        f"{a[0]} <= fromUnixTimestamp64Milli({ctx.to_ms})"
    ),
    "dateFilter": lambda ctx, a: (
        f"{_one_arg('dateFilter', a)} >= {_date(ctx.time_from)} AND {a[0]} <= {_date(ctx.time_to)}"
    ),
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "fromTime": lambda ctx, _: f"toDateTime({ctx.from_s})",
    "toTime": lambda ctx, _: f"toDateTime({ctx.to_s})",
    "fromTime_ms": lambda ctx, _: f"fromUnixTimestamp64Milli({ctx.from_ms})",
    "toTime_ms": lambda ctx, _: f"fromUnixTimestamp64Milli({ctx.to_ms})",
    "interval_s": lambda ctx, _: str(_interval_s(ctx)),
    "timeInterval": lambda ctx, a: (
        f"toStartOfInterval(toDateTime({_one_arg('timeInterval', a)}), "
        f"INTERVAL {_interval_s(ctx)} second)"
    ),
    "timeInterval_ms": lambda ctx, a: (
        f"toStartOfInterval(toDateTime64({_one_arg('timeInterval_ms', a)}, 3), "
        f"INTERVAL {max(ctx.interval_ms, 1)} millisecond)"
    ),
    "timeFrom": lambda ctx, a: f"{_one_arg('timeFrom', a)} >= toDateTime({ctx.from_s})",
    "timeTo": lambda ctx, a: f"{_one_arg('timeTo', a)} <= toDateTime({ctx.to_s})",
    "timeGroup": _time_group,
    "interval": lambda ctx, _: format_duration(ctx.interval),
    "interval_ms": lambda ctx, _: str(ctx.interval_ms),
    "table": lambda ctx, _: _context_value("table", ctx.table),
    "column": lambda ctx, _: _context_value("column", ctx.column),
}
FRONTEND_ONLY = frozenset({"conditionalAll", "adHocFilters"})


def strip_comments(sql: str) -> str:
    """Blank ``--`` and ``/* */`` comments (keeping their length), never inside strings."""
    out: list[str] = []
    i = 0
    while i < len(sql):
        c = sql[i]
        if c in "'\"":
            j = i + 1
            while j < len(sql):
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < len(sql) and sql[j + 1] == c:  # a doubled quote escapes itself
                        j += 2
                        continue
                    j += 1
                    break
                j += 1
            out.append(sql[i:j])
            i = j
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = len(sql) if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = len(sql) if j < 0 else j + 2  # an unterminated comment runs to the end
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _outside_quotes(s: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, parenthesis depth before it) for each character outside quotes,
    as macropro scans macro arguments."""
    depth = 0
    quote = ""
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = ""
            continue
        if c in "'\"":
            quote = c
            continue
        yield i, c, depth
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1


def closing_paren(s: str, start: int) -> int:
    """The index of the ``)`` closing the ``(`` at ``start``, or -1."""
    for i, c, depth in _outside_quotes(s[start:]):
        if c == ")" and depth == 1:
            return start + i
    return -1


def split_args(raw: str) -> list[str]:
    raw = raw.strip()
    if not raw:
        return []
    args: list[str] = []
    start = balance = 0
    for i, c, depth in _outside_quotes(raw):
        if c == ")" and depth == 0:
            raise MacroError(f"unexpected ')' at position {i} of the arguments")
        if c == "," and depth == 0:
            args.append(raw[start:i].strip())
            start = i + 1
        balance = depth + (c == "(") - (c == ")")
    if balance:
        raise MacroError("unbalanced parentheses in macro arguments")
    args.append(raw[start:].strip())
    return args


_ANY_MACRO = re.compile(r"\$__([A-Za-z0-9_]+)")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*")


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL the plugin's backend would send to ClickHouse for ``sql``."""
    result = strip_comments(sql)
    for name in sorted(MACROS, key=lambda n: (-len(n), n)):
        token = "$__" + name
        pieces: list[str] = []
        rest = result
        while (index := rest.find(token)) >= 0:
            after = index + len(token)
            if after < len(rest) and (rest[after].isalnum() or rest[after] == "_"):
                pieces.append(rest[:after])
                rest = rest[after:]
                continue
            pieces.append(rest[:index])
            rest = rest[after:]
            raw = ""
            if rest.startswith("("):
                end = closing_paren(rest, 0)
                if end >= 0:
                    raw, rest = rest[1:end], rest[end + 1 :]
            pieces.append(MACROS[name](ctx, split_args(raw)))
        result = "".join(pieces) + rest
    leftover = _ANY_MACRO.search(result)
    if leftover is not None:
        name = leftover.group(1)
        where = "frontend-only" if name in FRONTEND_ONLY else "unknown"
        raise UnknownMacroError(
            f"$__{name} is {where} in the Grafana ClickHouse plugin {PLUGIN_VERSION} backend"
        )
    variable = _VARIABLE.search(result)
    if variable is not None:
        raise UnknownMacroError(
            f"{variable.group(0)} is a dashboard variable: substitute it before expanding"
        )
    return result
