"""What the read surface (``POST /sql``, ``nextrace sql``) may run, decided on ClickHouse's own AST.

No regular expression decides here. The store first asks ClickHouse to
re-format the text (``formatQuerySingleLine``, the text bound as a value), which
fails unless it is exactly one statement; then it asks for ``EXPLAIN AST`` of
that canonical text, and :func:`check_ast` walks the tree. The canonical text,
not the user's, is what runs, so what was checked is what executes.

Allowed: one ``SELECT`` (with ``WITH``, ``UNION``, subqueries), ``DESCRIBE``,
``SHOW TABLES``, ``SHOW CREATE TABLE``, ``EXISTS`` or ``EXPLAIN``, reading the
store's own database. Refused, with a one-line message that says why:

- ``INTO OUTFILE`` (it writes files even under ``readonly=1``);
- a ``SETTINGS`` clause (the reader's limits are fixed);
- table functions other than generators (``file``, ``url``, ``s3``, ``remote``,
  ``mysql``…: they read files or open connections);
- scalar functions that read files, dictionaries, joins, settings (``getSetting``
  included) or other databases' tables;
- tables of another database (``system.*`` and ``INFORMATION_SCHEMA`` included), in
  ``SELECT``, ``DESCRIBE``, ``SHOW TABLES FROM``, ``SHOW CREATE TABLE`` and ``EXISTS`` alike;
- the other ``SHOW`` lists, which read system tables: ``SHOW SETTINGS``, ``SHOW DATABASES``,
  ``SHOW DICTIONARIES``… (``EXPLAIN AST`` prints all of them as ``ShowTables``, so which one
  it is comes from the canonical text, which ClickHouse wrote and which starts with its
  keywords).

Introspection of the reader's own session that reads no table, such as ``currentDatabase()``,
stays allowed.

The reader runs every statement with ``readonly=1`` and limits that a query
cannot lift (see :class:`collector.storage.store.ClickHouseStore`), a second line of
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
        "getSetting",
        "getSettingOrDefault",
        "getServerSetting",
        "getMergeTreeSetting",
        "hasColumnInTable",
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


def without_format(nodes: list[AstNode], fmt: str) -> list[AstNode]:
    """``nodes`` without the statement's ``FORMAT fmt`` clause, which ClickHouse prints as its
    last child (``Identifier JSON``), so that it is not taken for a database or a table."""
    children = _children(nodes, 0) if nodes else []
    if children and children[-1].kind == "Identifier" and children[-1].name == fmt:
        return [node for node in nodes if node is not children[-1]]
    return nodes


_NAMING_A_TABLE = frozenset({"ShowCreateTableQuery", "ExistsTableQuery"})
"""Statements whose two ``Identifier`` children, when there are two, are a database and a table."""
_CLAUSE_WORDS = frozenset({"LIKE", "ILIKE", "NOT", "FROM", "IN", "LIMIT"})


def check_ast(nodes: list[AstNode], database: str, canonical: str) -> None:
    """Raise :class:`ReadOnlyViolation` unless the statement only reads the store's tables.

    ``canonical`` is the statement as ClickHouse re-formatted it (the text whose AST ``nodes``
    is): ``EXPLAIN AST`` prints every ``SHOW`` list (tables, settings, databases…) as the same
    ``ShowTables`` node, and only the text says which one it is.
    """
    if not nodes:
        raise ReadOnlyViolation("empty statement")
    top = nodes[0].kind
    if top not in STATEMENTS:
        allowed = ", ".join(sorted(set(STATEMENTS.values())))
        raise ReadOnlyViolation(f"only reading statements are allowed here ({allowed}); got {top}")
    if top == "ShowTables" and canonical.split(" ", 2)[:2] != ["SHOW", "TABLES"]:
        raise ReadOnlyViolation(
            f"{_keywords(canonical)} is not allowed: settings and system tables are closed here "
            "(SHOW TABLES lists the store's tables)"
        )
    for index, node in enumerate(nodes):
        if node.kind == "Literal" and node.parent in STATEMENTS:
            raise ReadOnlyViolation("INTO OUTFILE is not allowed: results come back in the answer")
        if node.kind == "Set":
            raise ReadOnlyViolation(
                "a SETTINGS clause is not allowed: the read limits are fixed by the collector"
            )
        if node.kind == "ShowTables" and index:
            raise ReadOnlyViolation("EXPLAIN of a SHOW statement is not allowed: run it itself")
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
            _check_database(node.name.split(".", 1)[0].strip("`"), node.name, database)
        if node.kind in _NAMING_A_TABLE:
            named = [child.name for child in _children(nodes, index) if child.kind == "Identifier"]
            if len(named) == 2:
                _check_database(named[0], ".".join(named), database)
    if top == "ShowTables":
        for child in _children(nodes, 0):
            if child.kind == "Identifier" and child.name != database:
                raise ReadOnlyViolation(
                    f"SHOW TABLES FROM {child.name} is not allowed: only the store's database "
                    f"{database!r} can be listed (settings and system tables are closed here)"
                )


def _check_database(name: str, table: str, database: str) -> None:
    if name != database:
        raise ReadOnlyViolation(
            f"table {table} is not in the store's database {database!r}: "
            "only the store's tables can be read"
        )


def _children(nodes: list[AstNode], index: int) -> list[AstNode]:
    """The direct children of ``nodes[index]``: the nodes one level deeper until the next one
    at its level or above."""
    depth = nodes[index].depth
    children = []
    for node in nodes[index + 1 :]:
        if node.depth <= depth:
            break
        if node.depth == depth + 1:
            children.append(node)
    return children


def _keywords(canonical: str) -> str:
    """The leading keywords of a canonical statement (``SHOW SETTINGS`` of
    ``SHOW SETTINGS LIKE 'max%'``), to name it in a refusal."""
    words = []
    for word in canonical.split():
        if not (word.isalpha() and word.isupper()) or word in _CLAUSE_WORDS:
            break
        words.append(word)
    return " ".join(words) or "this statement"
