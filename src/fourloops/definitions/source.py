"""Sources: where raw rows come from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fourloops.definitions.hashing import content_hash
from fourloops.errors import DefinitionError

__all__ = ["FileSource"]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv"}


class FileSource:
    """Rows in Parquet or CSV files: a path or a glob, relative to the project folder.

    Parameters
    ----------
    path:
        File or glob (``data/weather/*.parquet``).
    timestamp:
        Column with each row's event time: when the fact was true.
    created:
        Optional column with when the row was written/ingested. When present, a
        row is invisible to any point-in-time lookup earlier than it, and it
        breaks ties between rows with the same event time (latest wins).
    format:
        ``"parquet"`` or ``"csv"``; inferred from the file suffix when omitted.
    name:
        Name used in reports and quarantine folders (defaults to the file stem).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        timestamp: str,
        created: str | None = None,
        format: str | None = None,
        name: str | None = None,
    ) -> None:
        self.path = str(path)
        if not timestamp or not isinstance(timestamp, str):
            raise DefinitionError(f"FileSource {self.path!r}: timestamp= must name a column")
        self.timestamp = timestamp
        self.created = created
        if format is None:
            suffix = Path(self.path.replace("*", "x")).suffix.lower()
            format = _FORMATS.get(suffix)
            if format is None:
                raise DefinitionError(
                    f"FileSource {self.path!r}: cannot tell the format from the suffix "
                    f"{suffix!r}; pass format='parquet' or format='csv'"
                )
        if format not in ("parquet", "csv"):
            raise DefinitionError(
                f"FileSource {self.path!r}: format must be 'parquet' or 'csv', got {format!r}"
            )
        self.format = format
        stem = Path(self.path).name.split(".")[0].replace("*", "all")
        self.name = name or stem

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "file",
            "path": self.path,
            "timestamp": self.timestamp,
            "created": self.created,
            "format": self.format,
        }

    @property
    def version(self) -> str:
        return content_hash(self.to_dict())

    def resolve(self, root: Path) -> str:
        """The absolute path (or glob) of this source for a project rooted at ``root``."""
        path = Path(self.path)
        return str(path if path.is_absolute() else root / path)

    def __repr__(self) -> str:
        extra = f", created={self.created!r}" if self.created else ""
        return f"FileSource({self.path!r}, timestamp={self.timestamp!r}{extra})"
