"""Validate a feature view's source files and move them into the offline store.

Every row either reaches the offline store (validated, normalised) or the
quarantine (with the rules it broke). Nothing is dropped silently; the report
counts every row, every failure by column and rule (with examples), feature
coverage, and schema drift against the previous delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from fourloops.clock import Clock
from fourloops.contracts import compare_schemas, compile_contract, observe_schema
from fourloops.definitions import Contract, FeatureView, Int, String, Timestamp
from fourloops.errors import DefinitionError, SchemaError
from fourloops.ingestion.offline_store import OfflineStore
from fourloops.ingestion.sources import SourceFile, list_files, read_file
from fourloops.storage.metadata import MetadataStore

__all__ = ["FileReport", "IngestReport", "ingest_view", "ingestion_contract", "validate_table"]

#: Columns the quarantine adds to the original row.
VIOLATIONS = "_fl_violations"
ROW = "_fl_row"
FILE = "_fl_file"


@dataclass
class FileReport:
    """What happened to one source file."""

    path: str
    fingerprint: str
    rows: int = 0
    valid: int = 0
    quarantined: int = 0
    skipped: bool = False  # already ingested with this fingerprint
    quarantine_path: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)  # column, rule, rows, examples
    coverage: dict[str, Any] = field(default_factory=dict)
    drift: list[dict[str, Any]] = field(default_factory=list)
    unknown: dict[str, int] = field(default_factory=dict)
    defaulted: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IngestReport:
    """The validation report of one feature view's source."""

    view: str
    version: str
    contract_version: str
    files: list[FileReport] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files if not f.skipped)

    @property
    def valid(self) -> int:
        return sum(f.valid for f in self.files if not f.skipped)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files if not f.skipped)

    @property
    def drift(self) -> list[dict[str, Any]]:
        return [d for f in self.files for d in f.drift]

    def failures(self) -> list[dict[str, Any]]:
        """Failures summed over files: one entry per (column, rule)."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for f in self.files:
            for item in f.failures:
                key = (item["column"], item["rule"])
                entry = merged.setdefault(key, {**item, "rows": 0, "examples": []})
                entry["rows"] += item["rows"]
                for ex in item["examples"]:
                    if ex not in entry["examples"] and len(entry["examples"]) < 5:
                        entry["examples"].append(ex)
        return sorted(merged.values(), key=lambda e: -e["rows"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "version": self.version,
            "contract_version": self.contract_version,
            "rows": self.rows,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "failures": self.failures(),
            "drift": self.drift,
            "files": [f.to_dict() for f in self.files],
        }


def ingestion_contract(view: FeatureView, table: pa.Table | None = None) -> Contract:
    """The view's contract plus implicit rules for its keys and time columns.

    Keys must be present and non-null; event and created times must be
    timezone-aware timestamps. When the contract does not declare a key, its
    type is taken from the data (integer columns -> ``Int``, else ``String``).
    """
    fields = dict(view.contract.fields)
    for col in (view.source.timestamp, view.source.created):
        if col and col not in fields:
            fields[col] = Timestamp()
    for key in view.entity.join_keys:
        if key in fields:
            if fields[key].nullable:
                raise DefinitionError(f"FeatureView {view.name!r}: join key {key!r} cannot be nullable")
            continue
        is_int = (
            table is not None
            and key in table.column_names
            and pa.types.is_integer(table.schema.field(key).type)
        )
        fields[key] = Int() if is_int else String()
    c = view.contract
    return Contract(fields, null_tokens=[*c.null_tokens, *(["NaN"] if c.nan_is_null else [])], extra=c.extra)


def validate_table(
    view: FeatureView, table: pa.Table, contract: Contract | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, Any]:
    """Validate (and transform) one table: (valid rows, quarantined rows, batch result).

    ``contract`` is the view's :func:`ingestion_contract` for this table, when the caller has it.
    """
    contract = contract or ingestion_contract(view, table)
    result = compile_contract(contract).validate_batch(table)
    valid, quarantine = result.valid, result.quarantine
    if view.transform is not None and valid.height:
        valid, quarantine = _apply_transform(view, valid, quarantine, result)
    return valid, quarantine, result


def _apply_transform(
    view: FeatureView, valid: pl.DataFrame, quarantine: pl.DataFrame, result: Any
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Run the view's transformation on the valid rows and validate what it derives."""
    assert view.transform is not None
    try:
        transformed = view.transform(valid)
    except Exception as err:
        raise DefinitionError(
            f"FeatureView {view.name!r}: transform failed: {type(err).__name__}: {err}"
        ) from err
    if not isinstance(transformed, pl.DataFrame) or transformed.height != valid.height:
        raise DefinitionError(
            f"FeatureView {view.name!r}: transform must return a Polars DataFrame with one row per input row"
        )
    missing = [c for c in view.derived if c not in transformed.columns]
    if missing:
        raise DefinitionError(f"FeatureView {view.name!r}: transform did not produce {missing}")
    derived = compile_contract(Contract(view.derived, extra="allow")).validate_batch(transformed)
    for key, n in derived.counts.items():
        result.counts[key] = result.counts.get(key, 0) + n
        result.examples.setdefault(key, derived.examples.get(key, []))
    if derived.quarantine.height:
        # Map positions among the valid rows back to positions in the input.
        failed = set(quarantine[ROW].to_list()) if quarantine.height else set()
        original = pl.Series([i for i in range(result.n_rows) if i not in failed], dtype=pl.Int64)
        bad = derived.quarantine.with_columns(original.gather(derived.quarantine[ROW]).alias(ROW))
        quarantine = pl.concat([quarantine, bad], how="diagonal_relaxed").sort(ROW)
    return derived.valid, quarantine


def _stored_columns(view: FeatureView) -> list[str]:
    cols = [*view.entity.join_keys, view.source.timestamp]
    if view.source.created:
        cols.append(view.source.created)
    return cols + [c for c in view.features if c not in cols]


def ingest_view(
    view: FeatureView,
    *,
    root: Path,
    offline: OfflineStore,
    quarantine_dir: Path,
    metadata: MetadataStore,
    force: bool = False,
    files: list[SourceFile] | None = None,
    now: Clock,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Validate every new or changed source file of ``view`` and store the valid rows."""
    manifest = {} if force else offline.manifest(view)
    files = list_files(view.source, root, known=manifest) if files is None else files
    report = IngestReport(view.name, view.version, view.contract.version)
    stored = _stored_columns(view)
    for src in files:
        key = str(src.path)
        entry = manifest.get(key)
        if entry is not None and entry["fingerprint"] == src.fingerprint:
            report.files.append(
                FileReport(
                    key,
                    src.fingerprint,
                    rows=entry["rows"],
                    valid=entry["valid"],
                    quarantined=entry["quarantined"],
                    skipped=True,
                )
            )
            continue
        if progress:
            progress(f"validating {src.path.name}")
        table = read_file(src.path, view.source.format)
        file_report, part, newest = _ingest_table(
            view, table, src, stored, offline, quarantine_dir, metadata, now
        )
        manifest[key] = {
            "fingerprint": src.fingerprint,
            "size": src.size,
            "mtime_ns": src.mtime_ns,
            "part": part.name if part else None,
            # When the part's last row became knowable: materialisation skips parts known before.
            "available_max": newest.isoformat() if newest is not None else None,
            "rows": file_report.rows,
            "valid": file_report.valid,
            "quarantined": file_report.quarantined,
        }
        report.files.append(file_report)
        offline.save_manifest(view, manifest)
    # Files that disappeared from the source no longer contribute rows.
    current = {str(f.path) for f in files}
    if set(manifest) - current:
        offline.save_manifest(view, {k: v for k, v in manifest.items() if k in current})
    return report


def _ingest_table(
    view: FeatureView,
    table: pa.Table,
    src: SourceFile,
    stored: list[str],
    offline: OfflineStore,
    quarantine_dir: Path,
    metadata: MetadataStore,
    now: Clock,
) -> tuple[FileReport, Path | None, datetime | None]:
    contract = ingestion_contract(view, table)
    snapshot = observe_schema(table, contract)
    previous = metadata.last_schema(view.source.name)
    findings = compare_schemas(previous, snapshot, contract)
    metadata.record_schema(view.source.name, snapshot)

    valid, quarantine, result = validate_table(view, table, contract)
    report = FileReport(
        str(src.path),
        src.fingerprint,
        rows=table.num_rows,
        valid=valid.height,
        quarantined=quarantine.height,
    )
    report.failures = [
        {"column": col, "rule": rule, "rows": n, "examples": result.examples.get((col, rule), [])}
        for (col, rule), n in sorted(result.counts.items(), key=lambda kv: -kv[1])
    ]
    report.coverage = {name: _as_dict(cov) for name, cov in result.coverage.items()}
    report.unknown = dict(result.unknown)
    report.defaulted = dict(result.defaulted)
    report.drift = [_as_dict(f) for f in findings]

    part = None
    newest = None
    if valid.height:
        missing = [c for c in stored if c not in valid.columns]
        if missing:
            raise SchemaError(f"{src.path}: columns {missing} missing after validation of view {view.name!r}")
        part = offline.write_part(view, src.fingerprint, valid.select(stored))
        times = [valid[c].max() for c in (view.source.timestamp, view.source.created) if c in valid.columns]
        known = [t for t in times if isinstance(t, datetime)]
        newest = max(known) if known else None
    if quarantine.height:
        folder = quarantine_dir / view.name
        folder.mkdir(parents=True, exist_ok=True)
        stamp = now().strftime("%Y%m%dT%H%M%S%fZ")
        qpath = folder / f"{stamp}-{src.fingerprint[:12]}.parquet"
        quarantine.with_columns(pl.lit(str(src.path)).alias(FILE)).write_parquet(qpath)
        report.quarantine_path = str(qpath)
    metadata.record_validation(
        view=view.name,
        source=str(src.path),
        contract_version=view.contract.version,
        n_rows=report.rows,
        n_valid=report.valid,
        n_quarantined=report.quarantined,
        quarantine_path=report.quarantine_path,
        report=report.to_dict(),
    )
    return report, part, newest


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    return dict(obj)
