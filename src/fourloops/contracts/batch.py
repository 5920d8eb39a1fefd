"""The vectorised batch validator of a contract.

:class:`BatchValidator` applies a contract to a whole ``pyarrow.Table`` or
``polars.DataFrame`` with Polars expressions (no Python loop over rows). It
implements exactly the semantics of :mod:`fourloops.contracts.row` (see that
module's docstring for the rules, null semantics and parsing), which a
property-based test checks value for value.

How it stays fast: over all rows it only computes one "does this row break any
rule" mask plus a few sums for coverage; the per-rule codes, the violation
lists and the examples are computed on the quarantined rows only.

Counts of ``unknown`` and ``defaulted`` values are over *all* input rows
(also rows quarantined for another field), like the coverage shares.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa

from fourloops.contracts._common import DEFAULTED, FIRST_RULE, RULE_BY_CODE
from fourloops.contracts._plans import Plan, plan_absent, plan_column
from fourloops.definitions.contract import Contract, ExtraPolicy
from fourloops.definitions.fields import Category, Rule, UnknownPolicy
from fourloops.errors import SchemaError

__all__ = ["BatchResult", "BatchValidator", "FieldCoverage", "to_polars"]

#: How many distinct offending values a result keeps per (column, rule).
MAX_EXAMPLES = 5
ROW_COLUMN = "_fl_row"
VIOLATIONS_COLUMN = "_fl_violations"


@dataclass
class FieldCoverage:
    """Shares of all input rows, for one contract field."""

    share_present: float  # non-null (valid or not)
    share_null: float  # null, including null tokens, NaN-as-null and an absent column
    share_default: float | None  # final value equals the default (None: no default)
    share_unknown: float | None  # unknown categories (None: not a Category)


@dataclass
class BatchResult:
    """Outcome of validating one batch.

    ``valid`` holds the passing rows (input order) with contract columns
    normalised; ``quarantine`` the failing rows with their original values plus
    ``_fl_row`` (position in the input) and ``_fl_violations``
    (``["column:rule", ...]``).
    """

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    n_rows: int
    n_valid: int
    n_quarantined: int
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)
    defaulted: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, FieldCoverage] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no row was quarantined."""
        return self.n_quarantined == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no row data)."""
        return {
            "n_rows": self.n_rows,
            "n_valid": self.n_valid,
            "n_quarantined": self.n_quarantined,
            "violations": [
                {
                    "column": column,
                    "rule": rule,
                    "rows": rows,
                    "examples": self.examples.get((column, rule), []),
                }
                for (column, rule), rows in self.counts.items()
            ],
            "unknown": dict(self.unknown),
            "defaulted": dict(self.defaulted),
            "coverage": {name: asdict(c) for name, c in self.coverage.items()},
        }


def to_polars(data: Any) -> pl.DataFrame:
    """A Polars frame of ``data`` (a pyarrow Table/RecordBatch or a Polars frame)."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pa.Table | pa.RecordBatch):
        frame = pl.from_arrow(data)
        assert isinstance(frame, pl.DataFrame)
        return frame
    raise SchemaError(f"expected a pyarrow.Table or polars.DataFrame, got {type(data).__name__}")


def _share(count: int, n: int) -> float:
    return count / n if n else 0.0


class BatchValidator:
    """Validates whole tables against a contract, vectorised.

    >>> import fourloops as fl, polars as pl
    >>> from fourloops.contracts import BatchValidator
    >>> v = BatchValidator(fl.Contract({"temp": fl.Float(max=130)}, null_tokens=["NA"]))
    >>> r = v.validate_batch(pl.DataFrame({"temp": [12.5, 140.0]}))
    >>> r.n_valid, r.counts
    (1, {('temp', 'max'): 1})
    """

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def __repr__(self) -> str:
        return f"BatchValidator({self.contract!r})"

    def _plans(self, df: pl.DataFrame) -> dict[str, Plan]:
        schema = df.schema
        return {
            name: plan_column(name, f, schema[name], self.contract) if name in schema else plan_absent(f)
            for name, f in self.contract.fields.items()
        }

    def validate_batch(self, data: Any) -> BatchResult:
        """Validate a ``pyarrow.Table`` or ``polars.DataFrame``."""
        df = to_polars(data)
        n = df.height
        fields = self.contract.fields
        plans = self._plans(df)
        extras = [c for c in df.columns if c not in fields]
        forbidden = extras if self.contract.extra is ExtraPolicy.FORBID else []

        # Pass 1, all rows: valid rows, bad rows and the sums behind coverage.
        all_bad = bool(forbidden) or any(p.absent and p.null_code >= FIRST_RULE for p in plans.values())
        present = {k: p for k, p in plans.items() if not p.absent}
        stats: list[pl.Expr] = []
        for name, p in present.items():
            null_sum = pl.col(name).null_count() if p.plain_null else p.null.sum()
            stats.append(null_sum.alias(f"null:{name}"))
            if p.unknown is not None:
                stats.append((~p.null & p.unknown).sum().alias(f"unknown:{name}"))
            if fields[name].default is not None:
                same = ~p.null & ~p.bad() & (p.output() == p.default)
                stats.append(same.fill_null(False).sum().alias(f"same:{name}"))
        if all_bad or not present:
            bad: pl.Expr = pl.repeat(all_bad, n, dtype=pl.Boolean)
        else:
            bad = pl.any_horizontal([p.bad() for p in present.values()])
        # The mask is fused into each filter: filtering by a precomputed mask is
        # several times slower than evaluating it inside the streaming query.
        lf = df.lazy()
        queries = [
            lf.filter(~bad).with_columns(p.output().alias(k) for k, p in plans.items()),
            lf.with_row_index(ROW_COLUMN).filter(bad),
            lf.select(stats) if stats else lf.select(pl.len()),
        ]
        valid, rows, totals = pl.collect_all(queries, engine="streaming")
        sums: dict[str, int] = totals.row(0, named=True) if stats else {}

        # Pass 2, bad rows only: exact rule per field, violations, examples.
        quarantine, counts, examples = self._quarantine(rows, df.columns, plans, forbidden)

        unknown: dict[str, int] = {}
        defaulted: dict[str, int] = {}
        coverage: dict[str, FieldCoverage] = {}
        for name, f in fields.items():
            p = plans[name]
            nulls = n if p.absent else int(sums[f"null:{name}"])
            share_unknown = None
            if isinstance(f, Category):
                if f.unknown is UnknownPolicy.REJECT:
                    n_unknown = counts.get((name, Rule.CATEGORY.value), 0)
                else:
                    n_unknown = int(sums.get(f"unknown:{name}", 0))
                    unknown[name] = n_unknown
                share_unknown = _share(n_unknown, n)
            share_default = None
            if f.default is not None:
                filled = nulls if p.null_code == DEFAULTED else 0
                defaulted[name] = filled
                share_default = _share(filled + int(sums.get(f"same:{name}", 0)), n)
            coverage[name] = FieldCoverage(
                share_present=_share(n - nulls, n),
                share_null=_share(nulls, n),
                share_default=share_default,
                share_unknown=share_unknown,
            )
        return BatchResult(
            valid=valid,
            quarantine=quarantine,
            n_rows=n,
            n_valid=valid.height,
            n_quarantined=quarantine.height,
            counts=counts,
            examples=examples,
            unknown=unknown,
            defaulted=defaulted,
            coverage=coverage,
        )

    def _quarantine(
        self, rows: pl.DataFrame, columns: list[str], plans: dict[str, Plan], forbidden: list[str]
    ) -> tuple[pl.DataFrame, dict[tuple[str, str], int], dict[tuple[str, str], list[str]]]:
        rows = rows.with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
        code_names = {name: f"__fl_code_{i}" for i, name in enumerate(plans)}
        rows = rows.with_columns(p.code().alias(code_names[k]) for k, p in plans.items())
        labels: list[pl.Expr] = []
        counts: dict[tuple[str, str], int] = {}
        examples: dict[tuple[str, str], list[str]] = {}
        tallies: dict[str, pl.LazyFrame] = {}
        worst: tuple[Any, ...] = (None,) * len(code_names)
        if rows.height:
            worst = rows.select(pl.col(c).max() for c in code_names.values()).row(0)
        for (name, code_name), top in zip(code_names.items(), worst, strict=True):
            mapping = {code: f"{name}:{rule.value}" for code, rule in RULE_BY_CODE.items()}
            labels.append(pl.col(code_name).replace_strict(mapping, default=None, return_dtype=pl.String))
            if top is None or top < FIRST_RULE:
                continue
            if plans[name].absent:
                counts[(name, Rule.MISSING.value)] = rows.height
                examples[(name, Rule.MISSING.value)] = []
                continue
            tallies[name] = (
                rows.lazy()
                .filter(pl.col(code_name) >= FIRST_RULE)
                .group_by(code_name)
                .agg(pl.len(), pl.col(name).unique(maintain_order=True).head(MAX_EXAMPLES))
                .sort(code_name)
            )
        for name, tally in zip(tallies, pl.collect_all(tallies.values()), strict=True):
            for code, rows_with, hits in tally.iter_rows():
                rule = RULE_BY_CODE[code].value
                counts[(name, rule)] = rows_with
                examples[(name, rule)] = [repr(v) for v in hits]
        for name in forbidden:
            labels.append(pl.lit(f"{name}:{Rule.UNKNOWN_FIELD.value}"))
            if rows.height:
                counts[(name, Rule.UNKNOWN_FIELD.value)] = rows.height
                examples[(name, Rule.UNKNOWN_FIELD.value)] = _examples(rows.get_column(name))
        violations = pl.concat_list(labels).list.drop_nulls().alias(VIOLATIONS_COLUMN)
        quarantine = rows.with_columns(violations).select(*columns, ROW_COLUMN, VIOLATIONS_COLUMN)
        return quarantine, counts, examples


def _examples(values: pl.Series) -> list[str]:
    try:
        distinct = values.unique(maintain_order=True).head(MAX_EXAMPLES)
    except pl.exceptions.InvalidOperationError:  # pragma: no cover - unhashable dtypes
        distinct = values.head(MAX_EXAMPLES)
    return [repr(v) for v in distinct.to_list()]
