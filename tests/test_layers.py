"""The architecture, checked: data flows one way through the loops, and a layer never imports a higher one.

Layers (see ``docs/architecture.md``):

1. definitions, storage, engines (and the base modules: errors, clock, config, logs)
2. contracts, registry
3. ingestion
4. evaluation (reads events and features, never the server) and inference (never evaluation)
5. adaptation (talks to servers only through the registry: never imports inference)
6. project, cli, server, demo, scaffold, testing, examples (the composition on top)

Every import counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fourloops"

LAYERS = {
    "definitions": 1,
    "storage": 1,
    "engines": 1,
    "errors": 1,
    "clock": 1,
    "config": 1,
    "logs": 1,
    "contracts": 2,
    "registry": 2,
    "ingestion": 3,
    "evaluation": 4,
    "inference": 4,
    "adaptation": 5,
    "project": 6,
    "cli": 6,
    "server": 6,
    "demo": 6,
    "simulation": 6,
    "scaffold": 6,
    "testing": 6,
    "examples": 6,
    "__init__": 6,
}
#: Same-layer or lower imports that are still forbidden.
FORBIDDEN = {("evaluation", "inference"), ("inference", "evaluation"), ("adaptation", "inference")}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.startswith("fourloops")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fourloops"):
            found.append((node.module, node.lineno))
    return found


def _files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    relative = path.relative_to(SRC)
    own = relative.parts[0].removesuffix(".py")
    assert own in LAYERS, f"{relative}: add its package to LAYERS (and to docs/architecture.md)"
    for module, line in _imports(path):
        target = _part(module)
        if target == own:
            continue
        assert target in LAYERS, f"{relative}:{line} imports unknown part {module}"
        assert LAYERS[target] <= LAYERS[own], (
            f"{relative}:{line} imports {module}: layer {LAYERS[target]} from layer {LAYERS[own]}"
        )
        assert (own, target) not in FORBIDDEN, f"{relative}:{line}: {own} may not import {target}"
