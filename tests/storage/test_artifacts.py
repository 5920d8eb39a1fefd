"""The artifact store: one conformance suite run over every backend."""

from __future__ import annotations

import hashlib
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest

from fourloops.errors import ArtifactIntegrityError, ConfigError
from fourloops.storage.artifacts import (
    ArtifactRef,
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
    open_artifact_store,
)


@dataclass
class Backend:
    store: ArtifactStore
    read: Callable[[ArtifactRef], bytes]
    write: Callable[[ArtifactRef, bytes], None]
    delete: Callable[[ArtifactRef], None]


def _local(tmp_path: Path) -> Backend:
    store = LocalArtifactStore(tmp_path / "artifacts")

    def path(ref: ArtifactRef) -> Path:
        return store.root / ref.uri.split("/artifacts/", 1)[1]

    def write(ref: ArtifactRef, data: bytes) -> None:
        path(ref).chmod(stat.S_IWUSR | stat.S_IRUSR)
        path(ref).write_bytes(data)

    return Backend(store, lambda ref: path(ref).read_bytes(), write, lambda ref: path(ref).unlink())


def _memory(tmp_path: Path) -> Backend:
    store = FsspecArtifactStore(f"memory://t-{uuid.uuid4().hex}", cache_dir=tmp_path / "cache")
    fs = store.fs
    return Backend(
        store,
        lambda ref: fs.cat_file(ref.uri),
        lambda ref, data: fs.pipe_file(ref.uri, data),
        lambda ref: fs.rm_file(ref.uri),
    )


@pytest.fixture(params=["local", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = _local(tmp_path) if request.param == "local" else _memory(tmp_path)
    yield made
    if request.param == "memory":
        fs = fsspec.filesystem("memory")
        root = made.store.url.removeprefix("memory://")
        if fs.exists(root):
            fs.rm(root, recursive=True)


def test_bytes_round_trip(backend: Backend) -> None:
    data = b"model bytes \x00\x01" * 100
    ref = backend.store.put_bytes(data, suffix=".txt")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert ref.uri.endswith(f"/sha256/{ref.sha256[:2]}/{ref.sha256}.txt")
    assert backend.store.exists(ref)
    backend.store.verify(ref)
    assert backend.store.open(ref).read_bytes() == data
    assert isinstance(backend.store, ArtifactStore)


def test_file_round_trip_keeps_suffix(backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "model.txt"
    source.write_bytes(b"x" * 3_000_000)  # larger than one chunk
    ref = backend.store.put_file(source)
    assert ref.uri.endswith(".txt")
    assert ref.size == 3_000_000
    assert backend.store.open(ref).read_bytes() == source.read_bytes()


def test_same_bytes_twice_is_one_artifact(backend: Backend, tmp_path: Path) -> None:
    first = backend.store.put_bytes(b"same")
    source = tmp_path / "same"
    source.write_bytes(b"same")
    assert backend.store.put_file(source) == first
    assert backend.store.put_bytes(b"same") == first


def test_ref_dict_round_trip(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"abc")
    assert ArtifactRef.from_dict(ref.to_dict()) == ref


def _one_line(err: pytest.ExceptionInfo[ArtifactIntegrityError]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_tampered_artifact_is_refused(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"abcdef", suffix=".bin")
    flipped = bytearray(backend.read(ref))
    flipped[2] ^= 0x01
    backend.write(ref, bytes(flipped))
    for check in (backend.store.open, backend.store.verify):
        with pytest.raises(ArtifactIntegrityError) as err:
            check(ref)
        message = _one_line(err)
        assert ref.uri in message
        assert ref.sha256 in message
        assert hashlib.sha256(bytes(flipped)).hexdigest() in message


def test_truncated_artifact_is_refused(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"abcdef")
    backend.write(ref, b"abc")
    with pytest.raises(ArtifactIntegrityError, match="corrupt.*found [0-9a-f]{64} \\(3 bytes\\)"):
        backend.store.open(ref)


def test_missing_artifact_is_refused(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"gone")
    backend.delete(ref)
    assert not backend.store.exists(ref)
    for check in (backend.store.open, backend.store.verify):
        with pytest.raises(ArtifactIntegrityError, match="is missing") as err:
            check(ref)
        assert ref.sha256 in _one_line(err)


def test_put_repairs_a_corrupt_copy(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"abcdef")
    backend.write(ref, b"xxxxxx")
    assert backend.store.put_bytes(b"abcdef") == ref
    backend.store.verify(ref)


def test_ref_that_does_not_name_its_hash_is_refused(backend: Backend) -> None:
    ref = backend.store.put_bytes(b"abc")
    forged = ArtifactRef(uri=ref.uri, sha256="0" * 64, size=ref.size)
    with pytest.raises(ArtifactIntegrityError, match="does not name"):
        backend.store.open(forged)


def test_local_artifacts_are_read_only(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = store.put_bytes(b"abc")
    assert not store.open(ref).stat().st_mode & stat.S_IWUSR


def test_open_artifact_store_picks_a_backend(tmp_path: Path) -> None:
    assert isinstance(open_artifact_store(tmp_path), LocalArtifactStore)
    local = open_artifact_store(tmp_path.as_uri())
    assert isinstance(local, LocalArtifactStore)
    assert local.root == tmp_path.resolve()
    assert isinstance(open_artifact_store("memory://x"), FsspecArtifactStore)
    with pytest.raises(ConfigError, match="nope://bucket/x"):
        open_artifact_store("nope://bucket/x")


def test_fsspec_store_over_file_urls(tmp_path: Path) -> None:
    store = FsspecArtifactStore((tmp_path / "remote").as_uri(), cache_dir=tmp_path / "cache")
    ref = store.put_bytes(b"hello", suffix=".json")
    assert ref.uri.startswith("file://")
    assert store.open(ref).read_bytes() == b"hello"
