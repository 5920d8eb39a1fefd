"""The artifact store: content-addressed files (models, reports) checked on every read.

An artifact is stored once under its SHA-256, at
``<root>/sha256/<first 2 hex>/<full hex><suffix>``, and referred to by an
:class:`ArtifactRef` (where it is, its hash, its size). Reading an artifact
always recomputes both, so a flipped or truncated byte is refused with
:class:`~fourloops.errors.ArtifactIntegrityError` instead of being loaded.

The local folder is the default; any fsspec URL (``s3://bucket/prefix``,
``memory://``...) scales it out. :func:`open_artifact_store` picks one.

>>> import tempfile
>>> store = open_artifact_store(tempfile.mkdtemp())
>>> ref = store.put_bytes(b"hello", suffix=".txt")
>>> ref.sha256[:12], ref.size
('2cf24dba5fb0', 5)
>>> store.open(ref).read_bytes()
b'hello'
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from fourloops.errors import ArtifactIntegrityError, ConfigError, StoreError

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "open_artifact_store",
]

#: Bytes read at a time while hashing or copying (1 MiB).
CHUNK_SIZE = 1 << 20
_HASH_DIR = "sha256"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is stored, and the SHA-256 and size it must still have."""

    uri: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (what the registry records)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRef:
        """The inverse of :meth:`to_dict`."""
        return cls(uri=str(data["uri"]), sha256=str(data["sha256"]), size=int(data["size"]))


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed, write-once storage of files."""

    url: str

    def put_file(self, path: str | os.PathLike[str]) -> ArtifactRef: ...

    def put_bytes(self, data: bytes, suffix: str = "") -> ArtifactRef: ...

    def open(self, ref: ArtifactRef) -> Path: ...

    def verify(self, ref: ArtifactRef) -> None: ...

    def exists(self, ref: ArtifactRef) -> bool: ...


def _digest(chunks: Iterable[bytes]) -> tuple[str, int]:
    """SHA-256 hex digest and byte count of a stream of chunks."""
    sha, size = hashlib.sha256(), 0
    for chunk in chunks:
        sha.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), size


def _chunks(handle: BinaryIO) -> Iterable[bytes]:
    while chunk := handle.read(CHUNK_SIZE):
        yield chunk


def _suffix_of(path: str | os.PathLike[str]) -> str:
    return "".join(Path(path).suffixes)[:32]


def _key(sha256: str, suffix: str) -> str:
    """The artifact's path relative to the store root."""
    return f"{_HASH_DIR}/{sha256[:2]}/{sha256}{suffix}"


def _ref_key(ref: ArtifactRef) -> str:
    """The store-relative key a reference names; its file name must start with its hash."""
    name = ref.uri.rstrip("/").rsplit("/", 1)[-1]
    if len(ref.sha256) != 64 or not name.startswith(ref.sha256):
        raise ArtifactIntegrityError(f"artifact {ref.uri} does not name its recorded sha256 {ref.sha256}")
    return _key(ref.sha256, name[len(ref.sha256) :])


def _check(ref: ArtifactRef, actual: tuple[str, int] | None) -> None:
    """Raise unless ``actual`` (hash, size) matches the reference."""
    if actual is None:
        raise ArtifactIntegrityError(
            f"artifact {ref.uri} is missing: expected sha256 {ref.sha256} ({ref.size} bytes), found nothing"
        )
    sha256, size = actual
    if sha256 != ref.sha256 or size != ref.size:
        raise ArtifactIntegrityError(
            f"artifact {ref.uri} is corrupt: expected sha256 {ref.sha256} ({ref.size} bytes), "
            f"found {sha256} ({size} bytes)"
        )


class LocalArtifactStore:
    """Artifacts in a local folder; writes are atomic and files read-only afterwards."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifactStore(root={str(self.root)!r})"

    def _path(self, ref: ArtifactRef) -> Path:
        return self.root / _ref_key(ref)

    def _ref(self, path: Path, sha256: str, size: int) -> ArtifactRef:
        return ArtifactRef(uri=path.as_uri(), sha256=sha256, size=size)

    def _commit(self, tmp: Path, sha256: str, size: int, suffix: str) -> ArtifactRef:
        """Move a fully written temp file into place, unless an intact copy is there."""
        final = self.root / _key(sha256, suffix)
        ref = self._ref(final, sha256, size)
        try:
            if final.exists() and self._actual(final) == (sha256, size):
                tmp.unlink()
                return ref
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp.chmod(_READ_ONLY)
            os.replace(tmp, final)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot write artifact {final}: {err}") from err
        return ref

    def _tempfile(self) -> tuple[BinaryIO, Path]:
        tmp_dir = self.root / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="put-")
        except OSError as err:
            raise StoreError(f"cannot write to artifact store {self.root}: {err}") from err
        return os.fdopen(fd, "wb"), Path(name)

    def put_file(self, path: str | os.PathLike[str]) -> ArtifactRef:
        """Copy a file in, hashing it on the way (one pass, constant memory)."""
        out, tmp = self._tempfile()
        sha, size = hashlib.sha256(), 0
        try:
            with out, open(path, "rb") as src:
                for chunk in _chunks(src):
                    sha.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot store artifact from {path}: {err}") from err
        return self._commit(tmp, sha.hexdigest(), size, _suffix_of(path))

    def put_bytes(self, data: bytes, suffix: str = "") -> ArtifactRef:
        """Store ``data``; the same bytes twice is a no-op returning the same reference."""
        out, tmp = self._tempfile()
        with out:
            out.write(data)
        return self._commit(tmp, hashlib.sha256(data).hexdigest(), len(data), suffix)

    @staticmethod
    def _actual(path: Path) -> tuple[str, int] | None:
        try:
            with path.open("rb") as handle:
                return _digest(_chunks(handle))
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreError(f"cannot read artifact {path}: {err}") from err

    def open(self, ref: ArtifactRef) -> Path:
        """The artifact's local path, after checking its hash and size."""
        path = self._path(ref)
        _check(ref, self._actual(path))
        return path

    def verify(self, ref: ArtifactRef) -> None:
        """Raise :class:`ArtifactIntegrityError` unless the artifact is intact."""
        _check(ref, self._actual(self._path(ref)))

    def exists(self, ref: ArtifactRef) -> bool:
        """Whether the artifact's file is present (not whether it is intact)."""
        return self._path(ref).is_file()


class FsspecArtifactStore:
    """Artifacts on any fsspec file system; :meth:`open` downloads a verified local copy.

    Object stores write each object atomically; a partial upload on another
    file system is caught by the next read and repaired by the next put.
    """

    def __init__(self, url: str, *, cache_dir: str | os.PathLike[str] | None = None) -> None:
        import fsspec

        try:
            self.fs, path = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as err:
            raise ConfigError(f"cannot open artifact store {url}: {err}") from err
        self.url = url
        self._root = path.rstrip("/")
        default_cache = Path(tempfile.gettempdir()) / "fourloops-artifact-cache"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache

    def __repr__(self) -> str:
        return f"FsspecArtifactStore(url={self.url!r})"

    def _path(self, key: str) -> str:
        return f"{self._root}/{key}"

    def _ref(self, key: str, sha256: str, size: int) -> ArtifactRef:
        return ArtifactRef(uri=self.fs.unstrip_protocol(self._path(key)), sha256=sha256, size=size)

    def _actual(self, path: str) -> tuple[str, int] | None:
        try:
            with self.fs.open(path, "rb") as handle:
                return _digest(_chunks(handle))
        except FileNotFoundError:
            return None
        except OSError as err:
            raise StoreError(f"cannot read artifact {path}: {err}") from err

    def _needs_write(self, path: str, sha256: str, size: int) -> bool:
        return self._actual(path) != (sha256, size)

    def put_file(self, path: str | os.PathLike[str]) -> ArtifactRef:
        """Upload a file (hashed first in one streaming pass, then uploaded)."""
        try:
            with open(path, "rb") as handle:
                sha256, size = _digest(_chunks(handle))
            key = _key(sha256, _suffix_of(path))
            if self._needs_write(self._path(key), sha256, size):
                self.fs.makedirs(self._path(key).rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(os.fspath(path), self._path(key))
        except OSError as err:
            raise StoreError(f"cannot store artifact from {path} in {self.url}: {err}") from err
        return self._ref(key, sha256, size)

    def put_bytes(self, data: bytes, suffix: str = "") -> ArtifactRef:
        """Store ``data``; the same bytes twice is a no-op returning the same reference."""
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        key = _key(sha256, suffix)
        try:
            if self._needs_write(self._path(key), sha256, size):
                self.fs.makedirs(self._path(key).rsplit("/", 1)[0], exist_ok=True)
                self.fs.pipe_file(self._path(key), data)
        except OSError as err:
            raise StoreError(f"cannot store artifact in {self.url}: {err}") from err
        return self._ref(key, sha256, size)

    def open(self, ref: ArtifactRef) -> Path:
        """Download into the cache, hashing on the way; return it only if intact."""
        key = _ref_key(ref)
        final = self.cache_dir / key
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=final.parent, prefix="get-")
        except OSError as err:
            raise StoreError(f"cannot write to artifact cache {self.cache_dir}: {err}") from err
        tmp = Path(name)
        sha, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out, self.fs.open(self._path(key), "rb") as src:
                for chunk in _chunks(src):
                    sha.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            _check(ref, (sha.hexdigest(), size))
            tmp.chmod(_READ_ONLY)
            os.replace(tmp, final)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            _check(ref, None)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"cannot fetch artifact {ref.uri}: {err}") from err
        except ArtifactIntegrityError:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def verify(self, ref: ArtifactRef) -> None:
        """Raise :class:`ArtifactIntegrityError` unless the stored copy is intact."""
        _check(ref, self._actual(self._path(_ref_key(ref))))

    def exists(self, ref: ArtifactRef) -> bool:
        """Whether the artifact is present (not whether it is intact)."""
        return bool(self.fs.exists(self._path(_ref_key(ref))))


def open_artifact_store(
    url_or_path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
) -> ArtifactStore:
    """A local store for a plain path or ``file://`` URL, an fsspec store otherwise."""
    text = os.fspath(url_or_path)
    scheme = urlsplit(text).scheme
    if "://" not in text or (len(scheme) == 1 and os.name == "nt"):
        return LocalArtifactStore(text)
    if scheme == "file":
        parts = urlsplit(text)
        host = "" if parts.netloc in ("", "localhost") else f"//{parts.netloc}"
        return LocalArtifactStore(url2pathname(unquote(host + parts.path)))
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except (ImportError, ValueError) as err:
        raise ConfigError(f"unsupported artifact store URL {text}: {err}") from err
    return FsspecArtifactStore(text, cache_dir=cache_dir)
