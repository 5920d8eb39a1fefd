"""fourloops: run a machine-learning model in production through four loops.

``import fourloops as fl`` gives the definitions (``fl.Entity``, ``fl.FileSource``,
``fl.FeatureView``, ``fl.Contract``, the field types, ``fl.Model`` with its
``fl.Label``, ``fl.Objective``, ``fl.Cost``, ``fl.TimeSplit``, ``fl.Fallback``, ``fl.Budget``,
``fl.Rollout`` with its stages ``fl.Shadow``/``fl.Canary``/``fl.Full`` and ``fl.Check``,
``fl.Retrain``, ``fl.Explore`` (exploration of decision models) and
``fl.gates``), ``fl.Project``, ``fl.monitor`` (drift, data health and
performance of any two data sets, window by window), and ``fl.ope`` (off-policy
evaluation of a target policy on logged propensities).
"""

from __future__ import annotations

from fourloops.definitions import (
    Bool,
    Budget,
    Canary,
    Category,
    Check,
    Contract,
    Cost,
    Entity,
    Explore,
    Fallback,
    FeatureView,
    FileSource,
    Float,
    Full,
    Int,
    Label,
    Model,
    Objective,
    Retrain,
    Rollout,
    Shadow,
    String,
    TimeSplit,
    Timestamp,
    gates,
)
from fourloops.errors import FourloopsError

__version__ = "0.1.0"

__all__ = [
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
]


def __getattr__(name: str) -> object:
    # The project facade imports every loop; load it only when asked for so that
    # `import fourloops` stays cheap for definition files.
    if name == "Project":
        from fourloops.project import Project

        return Project
    if name == "monitor":
        from fourloops.evaluation.monitor import monitor

        return monitor
    if name == "ope":
        from fourloops.evaluation.ope import ope

        return ope
    raise AttributeError(f"module 'fourloops' has no attribute {name!r}")
