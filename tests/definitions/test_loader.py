from __future__ import annotations

from pathlib import Path

import pytest

from fourloops.definitions.loader import load_definitions
from fourloops.errors import DefinitionError
from fourloops.examples import example_path


def test_loads_the_example_project() -> None:
    defs = load_definitions(example_path() / "definitions.py")
    assert set(defs.feature_views) == {"weather", "planes"}
    assert set(defs.entities) == {"airport", "plane"}
    assert defs.feature_views["weather"].source.created == "ingested_at"


def test_error_in_definitions_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "definitions.py"
    f.write_text("import fourloops as fl\n\nx = fl.Float(min=3, max=1)\n")
    with pytest.raises(DefinitionError) as info:
        load_definitions(f)
    assert "definitions.py" in str(info.value) and "greater than max" in str(info.value)


def test_python_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "definitions.py"
    f.write_text("a = 1\nb = undefined_name\n")
    with pytest.raises(DefinitionError, match=r"definitions.py:2: NameError"):
        load_definitions(f)


def test_two_different_views_with_one_name(tmp_path: Path) -> None:
    f = tmp_path / "definitions.py"
    f.write_text(
        "import fourloops as fl\n"
        "e = fl.Entity('e', join_keys=['k'])\n"
        "s = fl.FileSource('x.parquet', timestamp='t')\n"
        "a = fl.FeatureView('v', entity=e, source=s, ttl='1h', contract=fl.Contract({'x': fl.Int()}))\n"
        "b = fl.FeatureView('v', entity=e, source=s, ttl='2h', contract=fl.Contract({'x': fl.Int()}))\n"
    )
    with pytest.raises(DefinitionError, match="two different feature views are named 'v'"):
        load_definitions(f)


def test_missing_definitions(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="not found"):
        load_definitions(tmp_path / "nope.py")
