"""Reading source files without coercing anything.

Parquet keeps its physical types; CSV is read with every column as text (an
empty field stays the empty string), so that the contract, not the CSV
reader's guesses, decides what a value means and which values are null.
"""

from __future__ import annotations

import csv
import glob
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

from fourloops.definitions import FileSource
from fourloops.errors import SourceError

__all__ = ["SourceFile", "list_files", "match_files", "read_entities", "read_file"]

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """One file of a source with the fingerprint of its bytes."""

    path: Path
    fingerprint: str
    size: int
    mtime_ns: int = 0


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def match_files(source: FileSource, root: Path) -> list[Path]:
    """The files a source currently consists of, sorted by path (no content is read).

    Raises :class:`SourceError` when the path or glob matches nothing.
    """
    pattern = source.resolve(root)
    files = [p for p in sorted(Path(p) for p in glob.glob(pattern, recursive=True)) if p.is_file()]
    if not files:
        raise SourceError(f"source {source.name!r}: no file matches {pattern}")
    return files


def list_files(
    source: FileSource, root: Path, *, known: Mapping[str, Mapping[str, Any]] | None = None
) -> list[SourceFile]:
    """The files of a source with the SHA-256 of their bytes.

    ``known`` maps a path to what was recorded when it was last read
    (``fingerprint``, ``size``, ``mtime_ns``): a file whose size and
    modification time are unchanged keeps its recorded fingerprint instead of
    being read and hashed again.
    """
    known = known or {}
    out = []
    try:
        for p in match_files(source, root):
            stat = p.stat()
            seen = known.get(str(p), {})
            unchanged = seen.get("size") == stat.st_size and seen.get("mtime_ns") == stat.st_mtime_ns
            fingerprint = str(seen["fingerprint"]) if unchanged and "fingerprint" in seen else _fingerprint(p)
            out.append(SourceFile(p, fingerprint, stat.st_size, stat.st_mtime_ns))
    except OSError as err:
        raise SourceError(f"source {source.name!r}: cannot read {err.filename}: {err.strerror}") from err
    return out


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


def read_entities(source: FileSource, root: Path) -> pl.DataFrame:
    """Every row of an entity source (one row per prediction), its files in order, as one frame."""
    frames = []
    for path in match_files(source, root):
        frame = pl.from_arrow(read_file(path, source.format))
        assert isinstance(frame, pl.DataFrame)
        frames.append(frame)
    if not frames:
        raise SourceError(f"entity source {source.path!r} has no files under {root}")
    return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
