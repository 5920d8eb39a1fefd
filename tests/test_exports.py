from __future__ import annotations

import fourloops as fl


def test_public_surface_is_what_we_mean() -> None:
    assert set(fl.__all__) == {
        "Bool",
        "Category",
        "Contract",
        "Cost",
        "Entity",
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
    }
    for name in fl.__all__:
        assert getattr(fl, name) is not None


def test_project_is_lazily_importable() -> None:
    from fourloops.project import Project

    assert fl.Project is Project
