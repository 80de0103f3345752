"""Is every SQL statement keyed by tenant? (Citus-ready: docs/operations.md,
"Moving to Citus".)

Citus routes a statement on a table distributed by ``tenant_ref`` to one
shard only when the statement pins ``tenant_ref``; and it accepts a unique
constraint on such a table only when the constraint includes ``tenant_ref``.
``check_sql`` parses statements with pglast (PostgreSQL's own parser) and
reports, per statement, every place that breaks either rule for the tables in
``DISTRIBUTED``:

* a ``SELECT`` / ``UPDATE`` / ``DELETE`` level (a subquery, a CTE and each
  arm of a ``UNION`` are levels of their own) that reads a distributed table
  must pin that table's ``tenant_ref``: a top-level ``AND`` conjunct of its
  ``WHERE`` or of an inner join's condition ``<table or alias>.tenant_ref =
  <expression without columns>`` (or ``= ANY(...)``, ``IN (...)``), or an
  equality with, or ``USING (tenant_ref)`` on, another table of the level
  that is pinned itself. A condition under ``OR`` pins nothing;
* an ``INSERT`` into a distributed table names ``tenant_ref`` among its
  columns, and its ``ON CONFLICT`` target includes it (a constraint named by
  ``ON CONSTRAINT`` is looked up in ``constraints``);
* ``CREATE TABLE``, ``ALTER TABLE ... ADD CONSTRAINT`` and ``CREATE UNIQUE
  INDEX`` on a distributed table: every primary key, unique and exclusion
  constraint includes ``tenant_ref``;
* ``COPY`` out of a distributed table (a read of every tenant) and ``MERGE``
  into one (not checked here) are reported.

Statements that are multi-tenant by design are not exempt here: the caller
(tests/test_citus_ready.py) holds the short, documented allow-list, matched
by ``fingerprint`` (constants and parameter numbers aside, the same
statement).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import pglast
from pglast import ast, enums

# The tables distributed by tenant_ref (and their daily partitions).
DISTRIBUTED = frozenset({"connection_events", "connection_rollups", "connection_rollups_daily", "access_points",
                         "client_directory", "client_directory_days"})
TENANT = "tenant_ref"
_PARTITION = re.compile(r"^(connection_events)_p\d{8}$")


@dataclass(frozen=True)
class Finding:
    """One place a statement is not keyed by tenant."""

    relation: str
    problem: str

    def __str__(self) -> str:
        return f"{self.relation}: {self.problem}"


def distributed_name(relname: str) -> str | None:
    """The distributed table ``relname`` is (or is a partition of), or None."""
    if relname in DISTRIBUTED:
        return relname
    match = _PARTITION.match(relname)
    return match.group(1) if match else None


def fingerprint(sql: str) -> str:
    """The statement's fingerprint: equal for the same statement whatever its
    constants, parameter numbers and layout (pg_stat_statements' normalised
    text and the code's text alike)."""
    return str(pglast.parser.fingerprint(sql))


def split(sql: str) -> list[str]:
    """The statements of a script (a migration), each as its text."""
    return list(pglast.split(sql))


def check_sql(sql: str, *, constraints: Mapping[str, Sequence[str]] | None = None) -> list[Finding]:
    """Every finding of every statement in ``sql`` (empty: keyed by tenant).
    ``constraints``: the columns of unique constraints by name, for ``ON
    CONFLICT ON CONSTRAINT``. Raises pglast's ParseError for text that is not
    SQL."""
    checker = _Checker(constraints or {})
    for raw in pglast.parse_sql(sql):
        if raw.stmt is not None:
            checker.statement(raw.stmt)
    return checker.findings


def touches_distributed(sql: str) -> bool:
    """Whether any statement in ``sql`` names a distributed table."""
    for raw in pglast.parse_sql(sql):
        for node in _walk(raw.stmt):
            if isinstance(node, ast.RangeVar) and distributed_name(node.relname or ""):
                return True
    return False


def _nodes(value: object) -> Iterator[ast.Node]:
    """The nodes in an attribute's value (a node, or nested tuples of them)."""
    if isinstance(value, ast.Node):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _nodes(item)


def _walk(node: object) -> Iterator[ast.Node]:
    """``node`` and every node below it, depth first."""
    for top in _nodes(node):
        yield top
        for name in getattr(type(top), "__slots__", ()):
            for child in _nodes(getattr(top, name, None)):
                yield from _walk(child)


def _names(items: object) -> list[str]:
    """The names of a list of String nodes / IndexElems / ResTargets."""
    out: list[str] = []
    for item in items if isinstance(items, tuple) else ():
        if isinstance(item, ast.String) and item.sval is not None:
            out.append(item.sval)
        elif isinstance(item, ast.IndexElem) and item.name:
            out.append(item.name)
        elif isinstance(item, ast.ResTarget) and item.name:
            out.append(item.name)
    return out


def _conjuncts(expr: object) -> list[ast.Node]:
    if isinstance(expr, ast.BoolExpr) and expr.boolop == enums.BoolExprType.AND_EXPR:
        return [c for arg in expr.args or () for c in _conjuncts(arg)]
    if isinstance(expr, ast.BooleanTest) and expr.booltesttype == enums.BoolTestType.IS_TRUE:
        # `(condition) IS TRUE` holds exactly where the condition does (a
        # form that keeps the planner from using it as an index condition)
        return _conjuncts(expr.arg)
    return [expr] if isinstance(expr, ast.Node) else []


def _tenant_column(expr: object) -> tuple[bool, str | None]:
    """(True, qualifier) if ``expr`` is the column ``[qualifier.]tenant_ref``
    (casts aside)."""
    while isinstance(expr, ast.TypeCast):
        expr = expr.arg
    if isinstance(expr, ast.ColumnRef):
        parts = expr.fields or ()
        fields = [f.sval or "" for f in parts if isinstance(f, ast.String)]
        if len(fields) == len(parts) and fields and fields[-1] == TENANT:
            return True, fields[-2] if len(fields) >= 2 else None
    return False, None


def _column_free(expr: object) -> bool:
    """No column and no subquery: a value fixed for the whole statement."""
    if expr is None:
        return False
    return not any(isinstance(n, ast.ColumnRef | ast.SubLink | ast.SelectStmt) for n in _walk(expr))


@dataclass
class _Relation:
    table: str  # the distributed table ('' for any other relation)
    name: str  # how the level refers to it: its alias, else its name


class _Level:
    """The relations of one query level and what pins their tenant."""

    def __init__(self) -> None:
        self.relations: list[_Relation] = []
        self.pinned: set[str | None] = set()  # names pinned directly (None: an unqualified tenant_ref)
        self.edges: list[tuple[set[str | None], set[str | None]]] = []  # tenant equalities between sides

    def conditions(self, expr: ast.Node | None, sides: set[str] | None = None) -> None:
        """Take the conjuncts of ``expr``; ``sides``: the names a join's
        condition may pin (None: any)."""

        def allowed(names: set[str | None]) -> set[str | None]:
            return names if sides is None else {n for n in names if n is None or n in sides}

        for conjunct in _conjuncts(expr):
            if not isinstance(conjunct, ast.A_Expr):
                continue
            operator = _names(conjunct.name)
            if operator != ["="]:
                continue
            kinds = (enums.A_Expr_Kind.AEXPR_OP, enums.A_Expr_Kind.AEXPR_OP_ANY, enums.A_Expr_Kind.AEXPR_IN)
            if conjunct.kind not in kinds:
                continue
            left, left_name = _tenant_column(conjunct.lexpr)
            right, right_name = _tenant_column(conjunct.rexpr)
            if conjunct.kind == enums.A_Expr_Kind.AEXPR_OP and left and right:
                self.edges.append((allowed({left_name}), allowed({right_name})))
            elif left and _column_free(conjunct.rexpr):
                self.pinned |= allowed({left_name})
            elif right and conjunct.kind == enums.A_Expr_Kind.AEXPR_OP and _column_free(conjunct.lexpr):
                self.pinned |= allowed({right_name})

    def unpinned(self) -> list[_Relation]:
        names = {r.name for r in self.relations}
        pinned = set(names) if None in self.pinned else {n for n in self.pinned if n in names}
        changed = True
        while changed:
            changed = False
            for a, b in self.edges:
                for one, other in ((a, b), (b, a)):
                    ends = names if None in one else one
                    if any(n in pinned for n in ends):
                        new = (names if None in other else {n for n in other if n in names}) - pinned
                        if new:
                            pinned |= new
                            changed = True
        return [r for r in self.relations if r.table and r.name not in pinned]


class _Checker:
    def __init__(self, constraints: Mapping[str, Sequence[str]]) -> None:
        self.constraints = constraints
        self.findings: list[Finding] = []
        self.ctes: set[str] = set()

    def report(self, relation: str, problem: str) -> None:
        self.findings.append(Finding(relation, problem))

    def statement(self, stmt: ast.Node) -> None:
        self.ctes |= {n.ctename or "" for n in _walk(stmt) if isinstance(n, ast.CommonTableExpr)}
        for node in _walk(stmt):
            if isinstance(node, ast.SelectStmt) and node.op == enums.SetOperation.SETOP_NONE:
                self.level(node.fromClause, node.whereClause)
            elif isinstance(node, ast.UpdateStmt):
                self.level((node.relation, *(node.fromClause or ())), node.whereClause)
            elif isinstance(node, ast.DeleteStmt):
                self.level((node.relation, *(node.usingClause or ())), node.whereClause)
            elif isinstance(node, ast.InsertStmt):
                self.insert(node)
            elif isinstance(node, ast.MergeStmt):
                self.target(node.relation, "MERGE is not checked: write it as INSERT ... ON CONFLICT")
            elif isinstance(node, ast.CopyStmt):
                if node.relation is not None and not node.is_from:
                    self.target(node.relation, "COPY ... TO reads every tenant")
            elif isinstance(node, ast.CreateStmt):
                elements = node.tableElts or ()
                self.keys(node.relation, [(c, _key_columns(c)) for c in elements if isinstance(c, ast.Constraint)]
                          + [(c, [d.colname or ""]) for d in elements if isinstance(d, ast.ColumnDef)
                             for c in d.constraints or () if isinstance(c, ast.Constraint)])
            elif isinstance(node, ast.AlterTableStmt):
                self.keys(node.relation, [(c.def_, _key_columns(c.def_)) for c in node.cmds or ()
                                          if isinstance(c, ast.AlterTableCmd)
                                          and c.subtype == enums.AlterTableType.AT_AddConstraint
                                          and isinstance(c.def_, ast.Constraint)])
            elif isinstance(node, ast.IndexStmt) and (node.unique or node.primary):
                table = self.table(node.relation)
                if table and TENANT not in _names(node.indexParams):
                    named = f" {node.idxname}" if node.idxname else ""
                    self.report(table, f"unique index{named} on ({', '.join(_names(node.indexParams))}) lacks {TENANT}")

    def table(self, relation: ast.Node | None) -> str:
        if not isinstance(relation, ast.RangeVar):
            return ""
        if relation.schemaname is None and relation.relname in self.ctes:
            return ""
        return distributed_name(relation.relname or "") or ""

    def target(self, relation: ast.Node | None, problem: str) -> None:
        table = self.table(relation)
        if table:
            self.report(table, problem)

    def level(self, items: Sequence[ast.Node | None] | None, where: ast.Node | None) -> None:
        level = _Level()

        def add(item: ast.Node | None) -> set[str]:
            """Add the relations of a FROM item; the names it brings."""
            if isinstance(item, ast.RangeVar):
                name = (item.alias.aliasname if item.alias is not None else item.relname) or ""
                level.relations.append(_Relation(self.table(item), name))
                return {name}
            if isinstance(item, ast.JoinExpr):
                left, right = add(item.larg), add(item.rarg)
                kind = item.jointype
                sides = (left | right if kind == enums.JoinType.JOIN_INNER
                         else right if kind == enums.JoinType.JOIN_LEFT
                         else left if kind == enums.JoinType.JOIN_RIGHT else set())
                if TENANT in _names(item.usingClause) and kind == enums.JoinType.JOIN_INNER:
                    level.edges.append((set(left), set(right)))
                level.conditions(item.quals, sides)
                return left | right
            if isinstance(item, ast.RangeSubselect | ast.RangeFunction) and item.alias is not None:
                return {item.alias.aliasname or ""}
            return set()

        for item in items or ():
            add(item)
        level.conditions(where)
        for relation in level.unpinned():
            self.report(relation.table, f"read without a {TENANT} condition (as {relation.name})")

    def insert(self, node: ast.InsertStmt) -> None:
        table = self.table(node.relation)
        if not table:
            return
        if TENANT not in _names(node.cols):
            self.report(table, f"INSERT does not name {TENANT} among its columns")
        clause = node.onConflictClause
        if clause is None:
            return
        infer = clause.infer
        if infer is None:
            self.report(table, "ON CONFLICT without a conflict target")
        elif infer.conname:
            columns = self.constraints.get(infer.conname)
            if columns is None:
                self.report(table, f"ON CONFLICT ON CONSTRAINT {infer.conname}: constraint not known")
            elif TENANT not in columns:
                self.report(table, f"ON CONFLICT ON CONSTRAINT {infer.conname} lacks {TENANT}")
        elif TENANT not in _names(infer.indexElems):
            self.report(table, f"ON CONFLICT ({', '.join(_names(infer.indexElems))}) lacks {TENANT}")

    def keys(self, relation: ast.Node | None, constraints: list[tuple[ast.Constraint, list[str]]]) -> None:
        table = self.table(relation)
        if not table:
            return
        kinds = {enums.ConstrType.CONSTR_PRIMARY: "primary key", enums.ConstrType.CONSTR_UNIQUE: "unique",
                 enums.ConstrType.CONSTR_EXCLUSION: "exclusion"}
        for constraint, columns in constraints:
            kind = kinds.get(constraint.contype) if constraint.contype is not None else None
            # (... USING INDEX: the index was checked when it was made)
            if kind is None or constraint.indexname or TENANT in columns:
                continue
            named = f" {constraint.conname}" if constraint.conname else ""
            self.report(table, f"{kind} constraint{named} on ({', '.join(columns)}) lacks {TENANT}")


def _key_columns(constraint: ast.Constraint) -> list[str]:
    """The columns of a table constraint (an exclusion's first elements)."""
    if constraint.contype == enums.ConstrType.CONSTR_EXCLUSION:
        return [n for pair in constraint.exclusions or () for n in _names(pair[:1])]
    return _names(constraint.keys)
