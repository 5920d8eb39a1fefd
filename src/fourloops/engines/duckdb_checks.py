"""Checks of a point-in-time join's inputs, before any query runs.

Each names the input (``entities``, ``view 'weather'``), the column and what is
wrong with it: a missing column, naive timestamps, a key whose type differs
from the entity column's, an output name that clashes or uses the reserved
``__fl_`` prefix, a view that is not the prepared form it claims to be.
"""

from __future__ import annotations

from collections.abc import Sequence

from fourloops.engines import duckdb_pit as sql
from fourloops.engines.base import ViewJoin
from fourloops.errors import SchemaError

__all__ = ["check_outputs", "check_reserved", "check_source", "check_time", "check_view", "require"]

TZ_TYPES = frozenset({"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ_NS"})
NAIVE_TYPES = frozenset({"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"})
INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
RESERVED_PREFIX = "__fl_"


def check_reserved(columns: Sequence[str], what: str) -> None:
    """Refuse columns named with the reserved ``__fl_`` prefix."""
    for column in columns:
        if column.startswith(RESERVED_PREFIX):
            raise SchemaError(f"{what}: column {column!r} uses the reserved prefix '__fl_'")


def check_time(types: dict[str, str], column: str, what: str) -> None:
    """``column`` must exist and hold timestamps with a time zone."""
    kind = require(types, column, what)
    if kind in NAIVE_TYPES:
        raise SchemaError(
            f"{what}: column {column!r} holds naive timestamps ({kind}); "
            "give it a time zone (fourloops never guesses one)"
        )
    if kind not in TZ_TYPES:
        raise SchemaError(f"{what}: column {column!r} must be a timestamp with time zone, not {kind}")


def require(types: dict[str, str], column: str, what: str) -> str:
    """The DuckDB type of ``column``; SchemaError naming the columns there are when it is missing."""
    if column not in types:
        shown = sorted(c for c in types if not c.startswith(RESERVED_PREFIX))  # internal columns are ours
        raise SchemaError(f"{what}: no column {column!r} (has {shown})")
    return types[column]


def check_source(view: ViewJoin, types: dict[str, str]) -> None:
    """A view's data has its keys, times and features (prepared views: their BIGINT time columns)."""
    what = f"view {view.name!r}"
    if view.prepared:
        need = [sql.AT] if view.created is None else [sql.AT, sql.EV]
        for column in need:
            if types.get(column) != "BIGINT":
                raise SchemaError(
                    f"{what}: not a prepared view (no BIGINT column {column!r}); "
                    "make it with DuckDBEngine.prepare_view"
                )
    else:
        check_time(types, view.timestamp, what)
        if view.created is not None:
            check_time(types, view.created, what)
    for column in [*view.join_keys, *view.features]:
        require(types, column, what)


def check_view(view: ViewJoin, types: dict[str, str], ent_types: dict[str, str]) -> None:
    """:func:`check_source`, and each join key has the type of its entity column."""
    what = f"view {view.name!r}"
    check_source(view, types)
    for key, ek in zip(view.join_keys, view.entity_columns, strict=True):
        vt = types[key]
        et = require(ent_types, ek, f"entities (keys of {what})")
        if vt != et and not (vt in INTEGER_TYPES and et in INTEGER_TYPES):
            raise SchemaError(f"{what}: key {key!r} is {vt} but entity column {ek!r} is {et}")


def check_outputs(ent_types: dict[str, str], views: list[ViewJoin]) -> list[list[str]]:
    """Each view's output column names, refusing clashes and reserved names."""
    seen = {c: "the entities" for c in ent_types if c != sql.ORD}
    outputs = []
    for view in views:
        names = []
        for name in view.features.values():
            if name in seen:
                raise SchemaError(f"view {view.name!r}: output column {name!r} clashes with {seen[name]}")
            if name.startswith(RESERVED_PREFIX):
                raise SchemaError(f"view {view.name!r}: output column {name!r} is reserved")
            seen[name] = f"view {view.name!r}"
            names.append(name)
        outputs.append(names)
    return outputs
