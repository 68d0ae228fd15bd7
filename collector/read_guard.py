"""What the read surface (``POST /sql``, ``nextrace sql``) may run, decided on ClickHouse's own AST.

No regular expression decides here. The store first asks ClickHouse to
re-format the text (``formatQuerySingleLine``, the text bound as a value), which
fails unless it is exactly one statement; then it asks for ``EXPLAIN AST`` of
that canonical text, and :func:`check_ast` walks the tree. The canonical text,
not the user's, is what runs, so what was checked is what executes.

Allowed: one ``SELECT`` (with ``WITH``, ``UNION``, subqueries), ``DESCRIBE``,
``SHOW TABLES``, ``SHOW CREATE TABLE``, ``EXISTS`` or ``EXPLAIN``, reading the
store's own database. Refused, with a message that says why:

- ``INTO OUTFILE`` (it writes files even under ``readonly=1``);
- a ``SETTINGS`` clause (the reader's limits are fixed);
- table functions other than generators (``file``, ``url``, ``s3``, ``remote``,
  ``mysql``…: they read files or open connections);
- scalar functions that read files, dictionaries, joins or server settings;
- tables of another database (``system.*`` included).

The reader runs every statement with ``readonly=1`` and limits that a query
cannot lift (see :class:`collector.store.ClickHouseStore`), a second line of
defence behind this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.errors import ReadOnlyViolation

STATEMENTS = {
    "SelectWithUnionQuery": "SELECT",
    "SelectIntersectExceptQuery": "SELECT",
    "DescribeQuery": "DESCRIBE",
    "ShowTables": "SHOW TABLES",
    "ShowCreateTableQuery": "SHOW CREATE TABLE",
    "ExistsTableQuery": "EXISTS",
    "Explain": "EXPLAIN",
}
"""Top-level AST node types that read, and the statement each one is."""

GENERATOR_TABLE_FUNCTIONS = frozenset({"numbers", "zeros", "generate_series", "generateSeries"})
"""Table functions that only generate rows; every other one reaches outside the store."""

_OUTSIDE_FUNCTIONS = frozenset(
    {
        "file",
        "joinGet",
        "joinGetOrNull",
        "getMacro",
        "getServerSetting",
        "getMergeTreeSetting",
        "filesystemAvailable",
        "filesystemCapacity",
        "filesystemUnreserved",
        "hostName",
        "hostname",
        "fullHostName",
        "currentRequestURL",
        "zookeeperSessionUptime",
    }
)
_OUTSIDE_PREFIXES = ("dict", "catboost", "modelEvaluate", "evalMLMethod")


@dataclass(frozen=True, slots=True)
class AstNode:
    """One line of ``EXPLAIN AST``: ``kind`` (``Function``…), ``name`` (``file``…), its depth,
    and the kind of its parent (``""`` for the root)."""

    kind: str
    name: str
    depth: int
    parent: str


def parse_explain_ast(text: str) -> list[AstNode]:
    """The nodes of ``EXPLAIN AST`` output, one per line, indented one space per level."""
    nodes: list[AstNode] = []
    stack: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        words = line.strip().split()
        kind = words[0]
        name = words[1] if len(words) > 1 and not words[1].startswith("(") else ""
        del stack[depth:]
        nodes.append(AstNode(kind, name, depth, stack[-1] if stack else ""))
        stack.append(kind)
    return nodes


def check_ast(nodes: list[AstNode], database: str) -> None:
    """Raise :class:`ReadOnlyViolation` unless the statement only reads the store's tables."""
    if not nodes:
        raise ReadOnlyViolation("empty statement")
    top = nodes[0].kind
    if top not in STATEMENTS:
        allowed = ", ".join(sorted(set(STATEMENTS.values())))
        raise ReadOnlyViolation(f"only reading statements are allowed here ({allowed}); got {top}")
    for node in nodes[1:]:
        if node.kind == "Literal" and node.parent in STATEMENTS:
            raise ReadOnlyViolation("INTO OUTFILE is not allowed: results come back in the answer")
        if node.kind == "Set":
            raise ReadOnlyViolation(
                "a SETTINGS clause is not allowed: the read limits are fixed by the collector"
            )
        if node.kind == "Function" and node.parent == "TableExpression":
            if node.name not in GENERATOR_TABLE_FUNCTIONS:
                raise ReadOnlyViolation(
                    f"table function {node.name}() is not allowed: it reads outside the store "
                    "(only tables of the store, and numbers()/zeros(), can be read)"
                )
        elif node.kind == "Function" and (
            node.name in _OUTSIDE_FUNCTIONS or node.name.startswith(_OUTSIDE_PREFIXES)
        ):
            raise ReadOnlyViolation(
                f"function {node.name}() is not allowed: it reads outside the store"
            )
        if node.kind == "TableIdentifier" and "." in node.name:
            db = node.name.split(".", 1)[0].strip("`")
            if db != database:
                raise ReadOnlyViolation(
                    f"table {node.name} is not in the store's database {database!r}: "
                    "only the store's tables can be read"
                )
