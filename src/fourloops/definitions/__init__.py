"""Declarative project objects: entities, sources, feature views, contracts, field types, models."""

from __future__ import annotations

from fourloops.definitions import gates
from fourloops.definitions.budget import Budget
from fourloops.definitions.contract import Contract, ExtraPolicy
from fourloops.definitions.durations import format_duration, parse_duration
from fourloops.definitions.entity import Entity
from fourloops.definitions.explore import Explore
from fourloops.definitions.feature_view import FeatureView
from fourloops.definitions.fields import (
    UNKNOWN_CATEGORY,
    Bool,
    Category,
    Field,
    Float,
    Int,
    Rule,
    String,
    Timestamp,
    UnknownPolicy,
)
from fourloops.definitions.model import Cost, Fallback, Label, Model, Objective, Task, TimeSplit
from fourloops.definitions.retrain import Retrain
from fourloops.definitions.rollout import Canary, Check, Full, Rollout, RolloutStage, Shadow
from fourloops.definitions.source import FileSource

__all__ = [
    "UNKNOWN_CATEGORY",
    "Bool",
    "Budget",
    "Canary",
    "Check",
    "Full",
    "Retrain",
    "Rollout",
    "RolloutStage",
    "Shadow",
    "Category",
    "Contract",
    "Cost",
    "Fallback",
    "Label",
    "Model",
    "Objective",
    "Task",
    "TimeSplit",
    "gates",
    "Entity",
    "Explore",
    "ExtraPolicy",
    "FeatureView",
    "Field",
    "FileSource",
    "Float",
    "Int",
    "Rule",
    "String",
    "Timestamp",
    "UnknownPolicy",
    "format_duration",
    "parse_duration",
]
