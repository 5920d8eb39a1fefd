"""Schema drift: how the physical shape of a source changes between runs.

:func:`observe_schema` takes a small JSON-able snapshot of a batch (column
types, and per contract field how often each null token and NaN occur);
:func:`compare_schemas` compares two snapshots and reports what changed, such
as the classic pipeline change that starts writing ``""`` where it wrote nulls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from fourloops.contracts.batch import to_polars
from fourloops.definitions.contract import Contract, ExtraPolicy

__all__ = ["Finding", "compare_schemas", "observe_schema"]


@dataclass(frozen=True)
class Finding:
    """One schema change; ``severity`` is ``"error"`` or ``"warning"``."""

    column: str
    kind: str
    severity: str
    message: str


def observe_schema(data: Any, contract: Contract) -> dict[str, Any]:
    """Snapshot of ``data`` (pyarrow Table or Polars frame) for drift checks.

    >>> import fourloops as fl, polars as pl
    >>> c = fl.Contract({"x": fl.Float(nullable=True)}, null_tokens=["", "NA"])
    >>> observe_schema(pl.DataFrame({"x": ["1", "", ""]}), c)["nulls"]
    {'x': {'tokens': {'': 2, 'NA': 0}, 'nan': 0, 'null': 0}}
    """
    df = to_polars(data)
    exprs: list[pl.Expr] = []
    for name in contract.fields:
        if name not in df.schema:
            continue
        dtype = df.schema[name]
        col = pl.col(name)
        exprs.append(col.null_count().alias(f"null\x00{name}"))
        if dtype in (pl.String, pl.Categorical):
            for token in contract.null_tokens:
                hit = col.cast(pl.String) == token
                exprs.append(hit.sum().alias(f"token\x00{name}\x00{token}"))
        if dtype.is_float():
            exprs.append(col.is_nan().sum().alias(f"nan\x00{name}"))
    sums = df.select(exprs).row(0, named=True) if exprs else {}
    nulls: dict[str, Any] = {}
    for name in contract.fields:
        if name not in df.schema:
            continue
        tokens = {t: int(sums.get(f"token\x00{name}\x00{t}", 0)) for t in contract.null_tokens}
        nulls[name] = {
            "tokens": tokens,
            "nan": int(sums.get(f"nan\x00{name}", 0)),
            "null": int(sums[f"null\x00{name}"]),
        }
    return {
        "rows": df.height,
        "columns": {name: str(dtype) for name, dtype in df.schema.items()},
        "nulls": nulls,
    }


def compare_schemas(
    previous: dict[str, Any] | None, current: dict[str, Any], contract: Contract
) -> list[Finding]:
    """Findings between two :func:`observe_schema` snapshots (``previous`` may be None)."""
    findings: list[Finding] = []
    columns = current["columns"]
    for name in contract.fields:
        if name not in columns:
            message = f"column {name!r}: declared in the contract but missing"
            findings.append(Finding(name, "missing_column", "error", message))
    if previous is None:
        return findings
    before = previous["columns"]
    forbid = contract.extra is ExtraPolicy.FORBID
    for name, dtype in columns.items():
        declared = name in contract.fields
        if name not in before:
            severity = "error" if forbid and not declared else "warning"
            message = f"column {name!r}: new column ({dtype})"
            findings.append(Finding(name, "new_column", severity, message))
        elif before[name] != dtype:
            message = f"column {name!r}: physical type changed from {before[name]} to {dtype}"
            severity = "error" if declared else "warning"
            findings.append(Finding(name, "type_changed", severity, message))
    for name in before:
        if name not in columns and name not in contract.fields:
            message = f"column {name!r}: disappeared"
            findings.append(Finding(name, "column_disappeared", "warning", message))
    for name, now in current["nulls"].items():
        was = previous.get("nulls", {}).get(name)
        if was is None:
            continue
        for token, count in now["tokens"].items():
            if count > 0 and was["tokens"].get(token, 0) == 0:
                message = f"column {name!r}: null token {token!r} appears in {count} rows (was 0)"
                findings.append(Finding(name, "null_token_appeared", "warning", message))
        if now["nan"] > 0 and was.get("nan", 0) == 0:
            message = f"column {name!r}: NaN appears in {now['nan']} rows (was 0)"
            findings.append(Finding(name, "nan_appeared", "warning", message))
    return findings
