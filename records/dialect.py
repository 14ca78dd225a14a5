"""The SQL both engines agree on: every query casefinder writes is DuckDB SQL inside this subset,
and `to_spark` compiles it to Spark SQL with sqlglot. No rule is written twice.

`check_subset` refuses anything outside the subset with a `DialectError` naming the construct:
functions whose meaning differs between DuckDB and Spark (month arithmetic on intervals, date
differences in units other than days, `RANGE` window frames, `arg_max` keyed on a value that can
tie, anything not listed below). The known traps, and how the subset avoids them:

- month arithmetic: window starts are computed in Python (`features.dates.add_months`, clamped to
  the end of a shorter month as Spark's `add_months` is) and written as date literals;
  `INTERVAL` is refused.
- date differences: `date_diff('day', a, b)` only (DuckDB counts unit boundaries, Spark does not).
- `RANGE` frames: refused (the engines type RANGE offsets differently).
- `arg_max` / `max_by` ties: either engine may pick any tied row, so the key must be a struct
  ending with the value itself (ties broken by the larger value) and NULL where the value is.
- decimal literals: `36.0` is DECIMAL in Spark (division keeps 6 places), DOUBLE arithmetic in
  DuckDB; non-integer literals compile to DOUBLE.
- integer division: `/` is true division on both; `//` (DuckDB) compiles to `DIV` (both truncate).
- null ordering: DuckDB sorts NULLs last ascending, Spark first; sqlglot writes the order out.
- `regexp_full_match` (whole string) compiles to an anchored `RLIKE`; `isfinite` to a comparison
  with infinity; `json_object` to `to_json(named_struct(...))` keeping NULL fields; `x[-1]` on a
  string (1-based in DuckDB) to `substr(x, -1, 1)`.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlglot
from sqlglot import exp


class DialectError(ValueError):
    """SQL outside the subset both engines agree on; the message names the construct."""


# Expression types in the subset (besides the structural nodes of a query).
_ALLOWED: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Select, exp.From, exp.Where, exp.Group, exp.Order, exp.Ordered, exp.With, exp.CTE,
        exp.Subquery, exp.Union, exp.Join, exp.Table, exp.TableAlias, exp.Alias, exp.Column,
        exp.Identifier, exp.Star, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Distinct,
        exp.DataType, exp.Var, exp.Values, exp.Tuple, exp.Window, exp.PartitionedByProperty,
        exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Cast, exp.TryCast, exp.Greatest,
        exp.Least, exp.Extract, exp.DateDiff,
        exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between, exp.Like,
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Neg, exp.Abs,
        exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseOrAgg,
        exp.Count, exp.Sum, exp.Max, exp.Min, exp.Avg, exp.ArgMax, exp.RowNumber,
        exp.Substring, exp.Lower, exp.Upper, exp.Trim, exp.Replace, exp.RegexpReplace,
        exp.RegexpFullMatch, exp.Contains, exp.Chr, exp.Unicode, exp.Ascii, exp.Length, exp.Concat,
        exp.JSONObject, exp.JSONKeyValue, exp.Bracket, exp.Struct, exp.PropertyEQ, exp.MD5,
    }
)  # fmt: skip
# Functions sqlglot does not model that mean the same on both engines.
_ANONYMOUS = frozenset({"bit_count", "isfinite"})


def _construct(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return f"function {node.name}()"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name().lower()}()"
    return type(node).__name__


def _refuse(node: exp.Expression, why: str) -> DialectError:
    text = node.sql("duckdb")
    return DialectError(
        f"{_construct(node)} ({text[:80]}) is outside the SQL DuckDB and Spark agree on: {why}"
    )


def _struct_ends_with(key: exp.Expression, value: exp.Expression) -> bool:
    """`key` is a struct (or CASE ... THEN struct END) whose last field is `value`."""
    structs = [key] if isinstance(key, exp.Struct) else []
    if isinstance(key, exp.Case) and key.args.get("default") is None:
        structs = [i.args["true"] for i in key.args.get("ifs", [])]
    if not structs or not all(isinstance(s, exp.Struct) for s in structs):
        return False
    for struct in structs:
        last = struct.expressions[-1]
        last = last.expression if isinstance(last, exp.PropertyEQ) else last
        if last != value:
            return False
    return True


def check_subset(tree: exp.Expression) -> None:
    """Raise `DialectError` for the first construct in `tree` outside the subset."""
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            if node.name.lower() not in _ANONYMOUS:
                raise _refuse(node, "not in the agreed function list")
            continue
        if type(node) not in _ALLOWED:
            why = (
                "month and interval arithmetic differ; compute the date in Python "
                "(features.dates.add_months) and write it as a literal"
                if isinstance(node, exp.Interval | exp.DateAdd | exp.DateSub | exp.AddMonths)
                else "not in the agreed list"
            )
            raise _refuse(node, why)
        if isinstance(node, exp.DateDiff):
            unit = (node.args.get("unit") or exp.var("day")).name.lower()
            if unit != "day":
                raise _refuse(node, "date differences are in days only")
        if isinstance(node, exp.Window):
            spec = node.args.get("spec")
            if spec is not None and str(spec.args.get("kind", "")).upper() == "RANGE":
                raise _refuse(node, "RANGE frames are typed differently")
        if isinstance(node, exp.ArgMax) and not _struct_ends_with(node.expression, node.this):
            raise _refuse(
                node,
                "either engine may pick any tied row; key on a struct ending with the value, "
                "NULL where the value is",
            )
        if isinstance(node, exp.Bracket):
            index = node.expressions[0] if len(node.expressions) == 1 else None
            if not (isinstance(index, exp.Neg) and index.this.is_int):
                raise _refuse(node, "only x[-n] (the n-th character from the end) is agreed")


def parse(sql: str) -> exp.Expression:
    """DuckDB SQL parsed and checked against the subset."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise DialectError(f"SQL does not parse as DuckDB SQL: {exc}") from None
    check_subset(tree)
    return tree


def _spark_node(node: exp.Expression) -> exp.Expression:
    """One node rewritten where the engines spell the same meaning differently."""
    if isinstance(node, exp.RegexpFullMatch):
        pattern = node.expression
        if not isinstance(pattern, exp.Literal):
            raise _refuse(node, "the pattern must be a literal")
        anchored = exp.Literal.string(f"^(?:{pattern.this})$")
        return exp.RegexpLike(this=node.this, expression=anchored)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "isfinite":
        infinity = exp.cast(exp.Literal.string("Infinity"), "double")
        return exp.paren(exp.LT(this=exp.Abs(this=node.expressions[0]), expression=infinity))
    if isinstance(node, exp.JSONObject):
        pairs: list[exp.Expression] = []
        for kv in node.expressions:
            pairs += [kv.this, kv.expression]
        struct = exp.Anonymous(this="named_struct", expressions=pairs)
        options = exp.Anonymous(
            this="map",
            expressions=[exp.Literal.string("ignoreNullFields"), exp.Literal.string("false")],
        )
        return exp.Anonymous(this="to_json", expressions=[struct, options])
    if isinstance(node, exp.Literal) and not node.is_string and not node.is_int:
        # 36.0 is a DECIMAL(3,1) in Spark, and decimal division keeps 6 places; DuckDB divides
        # as DOUBLE. A non-integer literal is a DOUBLE on both.
        return exp.cast(node.copy(), "double")
    if isinstance(node, exp.Literal) and not node.is_string and not node.is_int:
        # 36.0 is a DECIMAL(3,1) in Spark, and decimal division keeps 6 places; DuckDB divides
        # as DOUBLE. A non-integer literal is a DOUBLE on both.
        return exp.cast(node.copy(), "double")
    if isinstance(node, exp.Bracket):
        # sqlglot holds the index 0-based: DuckDB's x[-1] (1-based) is Neg(2) here.
        back = int(node.expressions[0].this.this) - 1
        return exp.Substring(
            this=node.this, start=exp.Literal.number(-back), length=exp.Literal.number(1)
        )
    return node


def to_spark(sql: str, tables: Mapping[str, str] | None = None) -> str:
    """`sql` (DuckDB SQL in the subset) as Spark SQL; `DialectError` outside the subset.

    `tables` renames tables (contract name -> the Spark view or catalog table holding it); a
    renamed table keeps its old name as its alias, so column references stay as written.
    """
    tables = tables or {}

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.db and node.name in tables:
            alias = node.alias or node.name
            target = sqlglot.parse_one(tables[node.name], into=exp.Table, read="spark")
            target.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
            return target
        return _spark_node(node)

    tree = parse(sql).transform(rename)
    return tree.sql(dialect="spark")
