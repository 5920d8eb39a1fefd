from __future__ import annotations

from pathlib import Path

import pytest

from fourloops.config import load_config
from fourloops.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "fourloops.toml").write_text(text)
    return tmp_path


def test_defaults_are_embedded(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[project]\nname = "p"\n'), env={})
    assert cfg.project.name == "p"
    assert cfg.storage.online == "sqlite:///.fourloops/online.db"
    assert cfg.url(cfg.storage.online) == f"sqlite:///{tmp_path.resolve()}/.fourloops/online.db"
    assert cfg.path(cfg.storage.offline) == tmp_path.resolve() / ".fourloops/offline"
    assert cfg.engine.name == "duckdb"


def test_environment_overrides_file(tmp_path: Path) -> None:
    root = write(tmp_path, '[storage]\nonline = "sqlite:///a.db"\n[engine]\nthreads = 1\n')
    cfg = load_config(
        root, env={"FOURLOOPS_STORAGE_ONLINE": "redis://h:6379/0", "FOURLOOPS_ENGINE_THREADS": "2"}
    )
    assert cfg.storage.online == "redis://h:6379/0"
    assert cfg.engine.threads == 2


def test_absolute_and_memory_urls_unchanged(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""), env={})
    assert cfg.url("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert cfg.url("sqlite:///:memory:") == "sqlite:///:memory:"
    assert cfg.url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[storage]\nonlin = 'x'\n", {}, "unknown key 'storage.onlin'"),
        ("[storag]\n", {}, "unknown section [storag]"),
        ("[engine]\nthreads = 'many'\n", {}, "key 'engine.threads': expected an integer"),
        ("[engine]\nthreads = true\n", {}, "expected an integer"),
        ("[storage]\nonline = 5\n", {}, "key 'storage.online': expected a string"),
        ("[storage\n", {}, "invalid TOML"),
        ("storage = 3\n", {}, "'storage' must be a [storage] table"),
        ("[engine]\nname = 'spork'\n", {}, "unknown engine 'spork'"),
        (
            "",
            {"FOURLOOPS_ENGINE_THREADS": "x"},
            "environment FOURLOOPS_ENGINE_THREADS: expected an integer",
        ),
    ],
)
def test_broken_config_names_file_key_and_problem(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    root = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(root, env=env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    if not message.startswith("environment"):
        assert "fourloops.toml" in str(info.value)


def test_missing_config_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fourloops init"):
        load_config(tmp_path, env={})


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such project folder"):
        load_config(tmp_path / "nope", env={})
