"""The offline store: validated feature rows of each feature view, as Parquet.

Layout under the configured ``storage.offline`` folder::

    <view>/<view version>/part-<source file sha256[:16]>.parquet
    <view>/<view version>/manifest.json      # source file -> fingerprint, rows, part

A view's data is rebuilt under a new folder when its version (source, contract,
ttl, transformation) changes, so a training set always reads rows validated by
the definition in force. Source files are ingested once per fingerprint: a new
or changed file is validated; an unchanged one is not read again.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from fourloops.definitions import FeatureView

__all__ = ["OfflineStore"]

MANIFEST = "manifest.json"


class OfflineStore:
    """Parquet files of validated rows, one folder per feature-view version."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"OfflineStore({str(self.root)!r})"

    def folder(self, view: FeatureView) -> Path:
        return self.root / view.name / view.version

    def manifest(self, view: FeatureView) -> dict[str, Any]:
        """Source file path -> {fingerprint, part, rows, valid, quarantined} for the current version."""
        path = self.folder(view) / MANIFEST
        if not path.exists():
            return {}
        return dict(json.loads(path.read_text()))

    def save_manifest(self, view: FeatureView, manifest: dict[str, Any]) -> None:
        folder = self.folder(view)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, folder / MANIFEST)  # atomic: readers see the old or the new manifest

    def write_part(self, view: FeatureView, fingerprint: str, frame: pl.DataFrame) -> Path:
        folder = self.folder(view)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{fingerprint[:16]}.parquet"
        tmp = folder / f".{path.name}.tmp"
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
        return path

    def parts(self, view: FeatureView, *, known_after: datetime | None = None) -> list[str]:
        """Parquet files holding the view's current rows (those listed in the manifest).

        With ``known_after``, only the parts holding a row that became knowable (event or created
        time) after it: the others cannot change what an incremental materialisation writes.
        """
        folder = self.folder(view)
        out = []
        for entry in self.manifest(view).values():
            if not entry.get("part"):
                continue
            newest = entry.get("available_max")
            if known_after is not None and newest is not None and _aware(newest) <= known_after:
                continue
            out.append(str(folder / entry["part"]))
        return sorted(out)


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
