"""Reading source files without coercing anything.

Parquet keeps its physical types; CSV is read with every column as text (an
empty field stays the empty string), so that the contract, not the CSV
reader's guesses, decides what a value means and which values are null.
"""

from __future__ import annotations

import csv
import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fourloops.definitions import FileSource
from fourloops.errors import SourceError

__all__ = ["SourceFile", "list_files", "read_file"]

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file of a source with the fingerprint of its bytes."""

    path: Path
    fingerprint: str
    size: int


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(source: FileSource, root: Path) -> list[SourceFile]:
    """The files a source currently consists of (sorted by path), fingerprinted.

    Raises :class:`SourceError` when the path or glob matches nothing.
    """
    pattern = source.resolve(root)
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    files = [p for p in matches if p.is_file()]
    if not files:
        raise SourceError(f"source {source.name!r}: no file matches {pattern}")
    try:
        return [SourceFile(p, _fingerprint(p), p.stat().st_size) for p in files]
    except OSError as err:
        raise SourceError(f"source {source.name!r}: cannot read {err.filename}: {err.strerror}") from err


def read_file(path: Path, fmt: str) -> pa.Table:
    """Read one source file as an Arrow table (CSV: all columns as strings)."""
    try:
        if fmt == "parquet":
            return pq.read_table(path)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh, delimiter=delimiter), [])
        return pv.read_csv(
            path,
            parse_options=pv.ParseOptions(delimiter=delimiter),
            # Every column is text and an empty field stays "": the contract decides.
            convert_options=pv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceError(f"{path}: cannot read as {fmt}: {detail}") from err
