"""fourloops: run a machine-learning model in production through four loops.

``import fourloops as fl`` gives the definitions (``fl.Entity``, ``fl.FileSource``,
``fl.FeatureView``, ``fl.Contract`` and the field types) and ``fl.Project``.
"""

from __future__ import annotations

from fourloops.definitions import (
    Bool,
    Category,
    Contract,
    Entity,
    FeatureView,
    FileSource,
    Float,
    Int,
    String,
    Timestamp,
)
from fourloops.errors import FourloopsError

__version__ = "0.1.0"

__all__ = [
    "Bool",
    "Category",
    "Contract",
    "Entity",
    "FeatureView",
    "FileSource",
    "Float",
    "FourloopsError",
    "Int",
    "Project",
    "String",
    "Timestamp",
    "__version__",
]


def __getattr__(name: str) -> object:
    # The project facade imports every loop; load it only when asked for so that
    # `import fourloops` stays cheap for definition files.
    if name == "Project":
        from fourloops.project import Project

        return Project
    raise AttributeError(f"module 'fourloops' has no attribute {name!r}")
