"""SQL for the DuckDB point-in-time join (see :mod:`fourloops.engines.base` for the rule).

Every view becomes a relation with one *sort key* ``__fl_sk`` per row, and every
entity row gets one *probe* ``__fl_p{i}`` per view, such that a single DuckDB
``ASOF LEFT JOIN ... ON keys AND probe >= sk`` returns exactly the row the rule
asks for. ASOF picks the row with the greatest sort key not above the probe, so
sort keys must be unique per join key and ordered like the rule's preference.

Views without a created column
    ``sk = (event_us, ord)`` packed into one integer, ``ord`` being the dense
    source position; ``probe(t) = (t_us, max ord)``. Then ``sk <= probe`` iff
    ``event_us <= t_us``, and the greatest such ``sk`` is the row maximising
    ``(event_ts, source order)``: the rule, with no separate de-duplication pass.

Views with a created column
    A row is visible at ``t`` iff ``avail = greatest(event_ts, created_ts) <= t``.
    Within one key, sort rows by ``(avail, T)`` with ``T = (event_us, created_us,
    ord)`` (unique per row) and keep the set ``K`` of rows whose ``T`` exceeds the
    ``T`` of every earlier row (a running max over a window frame ending one row
    before). Claim: for every ``t``, the best visible row ``b`` is the last row of
    ``K`` in that order with ``avail <= t``.

    * ``b`` is in ``K``: every row before ``b`` has ``avail <= avail(b) <= t``, so
      it is visible and, ``b`` being the best visible row, has a smaller ``T``.
    * no row ``r`` of ``K`` after ``b`` has ``avail(r) <= t``: such an ``r`` would
      be visible, so ``T(r) < T(b)``; but ``b`` precedes ``r``, so ``r`` would not
      exceed every earlier ``T`` and would not be in ``K``.

    The sort key packs ``(avail_us, position in that order)``, so "last row of
    ``K`` with ``avail <= t``" is exactly the ASOF match of ``probe(t) = (t_us,
    max position)``.

Packing: when ``(avail span + 1) * 2**bits(rows)`` fits in a signed BIGINT the key
is ``(time_us - lo) * 2**b + ord`` (probes below ``lo`` become NULL, which match
nothing, and probes above ``hi`` are clamped to ``hi``); otherwise it is the
HUGEINT ``time_us * 2**64 + ord``. TTL is applied after the match, on the
matched row's event time: ``event_us >= t_us - ttl_us`` keeps the value.

Prepared views
    :func:`prepare_sql` materialises, once, only the rows that can ever win: the
    set ``K`` above (or, without a created column, every row), reduced to the
    last row of each ``(keys, avail)`` group (two rows of ``K`` with the same
    ``avail`` are visible at the same instants and the later one, with the
    greater ``T``, always wins). The availability time is then unique per key,
    so it *is* the sort key: ``__fl_at`` (avail us, BIGINT) with probe ``t_us``,
    and ``__fl_ev`` (event us) for the ttl test when it differs from
    ``__fl_at``. The join needs no packing, no window and no bounds pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from fourloops.engines.base import ViewJoin

__all__ = [
    "AT",
    "EV",
    "ORD",
    "Direct",
    "Packing",
    "entity_cte",
    "join_sql",
    "literal",
    "prepare_sql",
    "prepared_cte",
    "quote",
    "us",
    "view_bounds_sql",
    "view_cte",
]

#: Dense source position column every source relation exposes.
ORD = "__fl_ord"
#: Availability time (us) of a prepared view row: its unique sort key within the keys.
AT = "__fl_at"
#: Event time (us) of a prepared view row, stored when the view has a created column.
EV = "__fl_ev"
#: Entity-time column (microseconds since the epoch) added to the entity relation.
TUS = "__fl_tus"
_INT64_MAX = 2**63 - 1
_TWO64 = "18446744073709551616::HUGEINT"
_TWO64_MINUS_1 = "18446744073709551615::HUGEINT"


def quote(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def us(column: str) -> str:
    """Microseconds since the epoch of a time-zone-aware column (any precision)."""
    return f"epoch_us(CAST({quote(column)} AS TIMESTAMPTZ))"


@dataclass(frozen=True)
class Packing:
    """How ``(time_us, ord)`` pairs are packed into one sortable integer."""

    lo: int
    hi: int
    bits: int
    huge: bool

    @classmethod
    def choose(cls, rows: int, lo: int | None, hi: int | None) -> Packing:
        """Pick a BIGINT packing if ``[lo, hi] x [0, rows]`` fits, else HUGEINT."""
        if lo is None or hi is None:  # no visible rows: nothing can match
            return cls(lo=0, hi=0, bits=1, huge=False)
        bits = max(1, (rows + 1).bit_length())
        huge = (hi - lo + 1) << bits > _INT64_MAX
        return cls(lo=lo, hi=hi, bits=bits, huge=huge)

    def key(self, time_us: str, ord_: str) -> str:
        """SQL for the sort key of a view row."""
        if self.huge:
            return f"(CAST({time_us} AS HUGEINT) * {_TWO64} + {ord_})"
        return f"(({time_us} - {self.lo}) * {1 << self.bits} + {ord_})"

    def probe(self, time_us: str) -> str:
        """SQL for the probe of an entity row at ``time_us``."""
        if self.huge:
            return f"(CAST({time_us} AS HUGEINT) * {_TWO64} + {_TWO64_MINUS_1})"
        mask = (1 << self.bits) - 1
        return (
            # A NULL time fails the test and yields NULL (least() would ignore it).
            f"CASE WHEN {time_us} >= {self.lo} THEN "
            f"(least({time_us}, {self.hi}) - {self.lo}) * {1 << self.bits} + {mask} END"
        )


@dataclass(frozen=True)
class Direct:
    """The probe of a prepared view: the entity time itself (sort keys are unique times)."""

    def probe(self, time_us: str) -> str:
        """SQL for the probe of an entity row at ``time_us``."""
        return time_us


def prepare_sql(view: ViewJoin, source: str, casts: dict[str, str]) -> str:
    """SQL for the prepared (compacted) form of ``view``, sorted by keys and ``__fl_at``.

    Columns: the join keys, ``__fl_at``, ``__fl_ev`` (only with a created
    column), then the feature columns under their own names.
    """
    key_names = [quote(k) for k in view.join_keys]
    keys = ", ".join(key_names)
    feats = []
    for column in view.features:
        if column in view.join_keys:
            continue
        expr = quote(column)
        if column in casts:
            expr = f"CAST({expr} AS {casts[column]}) AS {expr}"
        feats.append(expr)
    valid = " AND ".join(f"{k} IS NOT NULL" for k in [*key_names, quote(view.timestamp)])
    if view.created is None:
        inner = ", ".join([*key_names, f"{us(view.timestamp)} AS {AT}", *feats, ORD])
        last = (
            f"SELECT * FROM (SELECT {inner} FROM {source} WHERE {valid}) "
            f"QUALIFY row_number() OVER (PARTITION BY {keys}, {AT} ORDER BY {ORD} DESC) = 1"
        )
        return f"SELECT * EXCLUDE ({ORD}) FROM ({last}) ORDER BY {keys}, {AT}"
    valid += f" AND {quote(view.created)} IS NOT NULL"
    ev, cr = us(view.timestamp), us(view.created)
    inner = ", ".join(
        [*key_names, f"greatest({ev}, {cr}) AS {AT}", f"{ev} AS {EV}", f"{cr} AS __fl_cr"] + [*feats, ORD]
    )
    tup = f"{EV}, __fl_cr, {ORD}"
    tupled = (
        f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY {tup}) AS __fl_tup "
        f"FROM (SELECT {inner} FROM {source} WHERE {valid})"
    )
    frame = f"PARTITION BY {keys} ORDER BY {AT}, __fl_tup"
    ranked = (
        f"SELECT *, max(__fl_tup) OVER ({frame} ROWS BETWEEN UNBOUNDED PRECEDING AND "
        f"1 PRECEDING) AS __fl_prev FROM ({tupled})"
    )
    kept = f"SELECT * FROM ({ranked}) WHERE __fl_prev IS NULL OR __fl_tup > __fl_prev"
    last = (
        f"SELECT * FROM ({kept}) "
        f"QUALIFY row_number() OVER (PARTITION BY {keys}, {AT} ORDER BY __fl_tup DESC) = 1"
    )
    drop = f"__fl_cr, {ORD}, __fl_tup, __fl_prev"
    return f"SELECT * EXCLUDE ({drop}) FROM ({last}) ORDER BY {keys}, {AT}"


def prepared_cte(i: int, view: ViewJoin, source: str) -> str:
    """CTE ``__fl_v{i}`` over a prepared view, with the names :func:`view_cte` uses."""
    cols = [f"{quote(k)} AS __fl_k{j}" for j, k in enumerate(view.join_keys)]
    cols.append(f"{AT} AS __fl_sk")
    cols.append(f"{EV if view.created is not None else AT} AS __fl_evus")
    cols += [f"{quote(c)} AS __fl_f{j}" for j, c in enumerate(view.features)]
    return f"__fl_v{i} AS (SELECT {', '.join(cols)} FROM {source})"


def view_bounds_sql(view: ViewJoin, source: str) -> str:
    """SQL returning ``(rows, lo, hi)``: row count and range of the ASOF time in us."""
    if view.created is None:
        return f"SELECT count(*), min({us(view.timestamp)}), max({us(view.timestamp)}) FROM {source}"
    avail = f"greatest({us(view.timestamp)}, {us(view.created)})"
    return (
        f"SELECT count(*), min({avail}), max({avail}) FROM {source} WHERE {quote(view.created)} IS NOT NULL"
    )


def _feature_exprs(view: ViewJoin, casts: dict[str, str]) -> list[str]:
    out = []
    for j, column in enumerate(view.features):
        expr = quote(column)
        if column in casts:
            expr = f"CAST({expr} AS {casts[column]})"
        out.append(f"{expr} AS __fl_f{j}")
    return out


def view_cte(i: int, view: ViewJoin, source: str, packing: Packing, casts: dict[str, str]) -> list[str]:
    """CTE definitions producing relation ``__fl_v{i}``: keys, event us, sort key, features.

    ``casts`` maps feature columns to the SQL type they are cast to (used to turn
    nanosecond time-zone-aware timestamps into microsecond ones).
    """
    keys = [f"{quote(k)} AS __fl_k{j}" for j, k in enumerate(view.join_keys)]
    feats = _feature_exprs(view, casts)
    ev = quote(view.timestamp)
    if view.created is None:
        inner = ", ".join([*keys, f"{us(view.timestamp)} AS __fl_evus", *feats, ORD])
        return [
            f"__fl_v{i} AS (SELECT *, {packing.key('__fl_evus', ORD)} AS __fl_sk "
            f"FROM (SELECT {inner} FROM {source} WHERE {ev} IS NOT NULL))"
        ]
    cr = quote(view.created)
    key_cols = ", ".join(f"__fl_k{j}" for j in range(len(view.join_keys)))
    order = "__fl_avus, __fl_evus, __fl_crus, " + ORD
    window = f"PARTITION BY {key_cols} ORDER BY {order}"
    # T = (event, created, ord) is replaced by its rank within the key: a BIGINT
    # running max is far cheaper than one over a struct.
    rank = f"PARTITION BY {key_cols} ORDER BY __fl_evus, __fl_crus, {ORD}"
    inner = ", ".join(
        [
            *keys,
            f"{us(view.timestamp)} AS __fl_evus",
            f"{us(view.created)} AS __fl_crus",
            f"greatest({us(view.timestamp)}, {us(view.created)}) AS __fl_avus",
            *feats,
            ORD,
        ]
    )
    visible = f"SELECT {inner} FROM {source} WHERE {ev} IS NOT NULL AND {cr} IS NOT NULL"
    tupled = f"SELECT *, row_number() OVER ({rank}) AS __fl_tup FROM ({visible})"
    ranked = (
        f"SELECT *, row_number() OVER ({window}) AS __fl_pos, "
        f"max(__fl_tup) OVER ({window} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
        f"AS __fl_prev FROM ({tupled})"
    )
    return [
        f"__fl_v{i} AS (SELECT *, {packing.key('__fl_avus', '__fl_pos')} AS __fl_sk "
        f"FROM ({ranked}) WHERE __fl_prev IS NULL OR __fl_tup > __fl_prev)"
    ]


def entity_cte(source: str, timestamp: str, packings: list[Packing | Direct]) -> str:
    """CTE ``__fl_e``: entity rows plus their time in us and one probe per view."""
    probes = ", ".join(f"{p.probe(TUS)} AS __fl_p{i}" for i, p in enumerate(packings))
    probes = f", {probes}" if probes else ""
    return f"__fl_e AS (SELECT *{probes} FROM (SELECT *, {us(timestamp)} AS {TUS} FROM {source}))"


def join_sql(
    views: list[ViewJoin],
    entity_columns: list[tuple[str, str]],
    feature_outputs: list[list[str]],
) -> tuple[str, list[str]]:
    """The SELECT list and FROM clause joining ``__fl_e`` to every ``__fl_v{i}``.

    ``entity_columns`` holds ``(name, sql expression)`` pairs (possibly none:
    the caller may take entity columns from its own copy). Returns the SQL
    (without ORDER BY) and the names of the per-view status columns (0 found,
    1 missing, 2 expired). The entity order column is selected as ``__fl_rid``.
    """
    select = [f"{expr} AS {quote(name)}" for name, expr in entity_columns]
    joins = []
    status = []
    for i, view in enumerate(views):
        v = f"__fl_v{i}"
        ttl_us = _ttl_us(view)
        limit = f"__fl_e.{TUS} - {ttl_us}"
        if ttl_us >= 2**62:  # keep the subtraction exact for huge ttls
            limit = f"CAST(__fl_e.{TUS} AS HUGEINT) - {ttl_us}"
        fresh = f"{v}.__fl_evus >= {limit}"
        for j, name in enumerate(feature_outputs[i]):
            select.append(f"CASE WHEN {fresh} THEN {v}.__fl_f{j} END AS {quote(name)}")
        status.append(f"__fl_s{i}")
        select.append(
            f"CAST(CASE WHEN {v}.__fl_sk IS NULL THEN 1 WHEN {fresh} THEN 0 ELSE 2 END "
            f"AS UTINYINT) AS __fl_s{i}"
        )
        on = [f"__fl_e.{quote(ek)} = {v}.__fl_k{j}" for j, ek in enumerate(view.entity_columns)]
        on.append(f"__fl_e.__fl_p{i} >= {v}.__fl_sk")
        joins.append(f"ASOF LEFT JOIN {v} ON " + " AND ".join(on))
    select.append(f"__fl_e.{ORD} AS __fl_rid")
    sql = "SELECT " + ", ".join(select) + " FROM __fl_e " + " ".join(joins)
    return sql, status


def _ttl_us(view: ViewJoin) -> int:
    ttl = view.ttl
    return (ttl.days * 86_400 + ttl.seconds) * 1_000_000 + ttl.microseconds
