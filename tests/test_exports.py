"""The public surface: ``fl.__all__`` and every module's ``__all__`` say what the code defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import pytest

import fourloops as fl

#: What ``import fourloops as fl`` means to give.
PUBLIC = {
    "Bool",
    "Budget",
    "Canary",
    "Check",
    "Full",
    "Retrain",
    "Rollout",
    "Shadow",
    "Category",
    "Contract",
    "Cost",
    "Entity",
    "Explore",
    "Fallback",
    "FeatureView",
    "FileSource",
    "Float",
    "FourloopsError",
    "Int",
    "Label",
    "Model",
    "Objective",
    "Project",
    "String",
    "TimeSplit",
    "Timestamp",
    "__version__",
    "gates",
    "monitor",
    "ope",
}
#: Names a package provides on first access (``__getattr__``), not at import.
LAZY = {"Project", "monitor", "ope"}
#: Modules that are scripts or configuration rather than importable API.
NOT_API = ("fourloops.storage.migrations",)


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(fl.__path__, prefix="fourloops."):
        if info.name.startswith(NOT_API):
            continue
        names.append(info.name)
    return sorted(names)


def test_public_surface_is_what_we_mean() -> None:
    assert set(fl.__all__) == PUBLIC
    for name in fl.__all__:
        assert getattr(fl, name) is not None


def test_the_package_defines_exactly_what_all_lists() -> None:
    defined = {
        name
        for name, value in vars(fl).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    # Subpackages imported for their contents are public only if listed (fl.gates is).
    listed_modules = {n for n in fl.__all__ if isinstance(getattr(fl, n), types.ModuleType)}
    assert defined | LAZY | listed_modules | {"__version__"} == set(fl.__all__)


def test_project_is_lazily_importable() -> None:
    from fourloops.project import Project

    assert fl.Project is Project


@pytest.mark.parametrize("module_name", _modules())
def test_each_module_lists_what_it_defines(module_name: str) -> None:
    """``__all__`` names only what exists, and every public class or function defined here is in it."""
    module = importlib.import_module(module_name)
    listed = getattr(module, "__all__", None)
    assert listed is not None, f"{module_name} has no __all__"
    missing = [name for name in listed if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it does not define: {missing}"
    assert len(listed) == len(set(listed)), f"{module_name}.__all__ repeats names"
    own = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == module_name
    }
    unlisted = sorted(own - set(listed))
    assert not unlisted, f"{module_name} defines public {unlisted} but leaves them out of __all__"
