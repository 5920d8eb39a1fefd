"""Models: what to predict, from which features, trained how, judged how.

>>> import fourloops as fl, polars as pl
>>> label = fl.Label("delayed", expr=pl.col("arr_delay") > 15, available="arrived_at")
>>> label.name
'delayed'
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fourloops.definitions.budget import Budget
from fourloops.definitions.contract import Contract
from fourloops.definitions.durations import format_duration, parse_duration
from fourloops.definitions.explore import ACTION_COLUMN, PROPENSITY_COLUMN, Explore
from fourloops.definitions.gates import Gate
from fourloops.definitions.hashing import content_hash
from fourloops.definitions.naming import check_name
from fourloops.definitions.retrain import Retrain
from fourloops.definitions.rollout import Rollout
from fourloops.definitions.source import FileSource
from fourloops.errors import DefinitionError

__all__ = ["Cost", "Fallback", "Label", "Model", "Objective", "Task", "TimeSplit"]


class Task(enum.StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"
    POLICY = "policy"  # a decision model: chooses one of its actions; the label is the reward


DEFAULT_PRIMARY = {
    Task.BINARY: "roc_auc",
    Task.MULTICLASS: "log_loss",
    Task.REGRESSION: "rmse",
    Task.POLICY: "policy_value",
}
#: Gates that judge predictions against labels, which a decision model does not make.
_NOT_FOR_POLICIES = ("no_regression", "max_segment_drop", "max_calibration_error")


def _fingerprint(obj: Any) -> str:
    try:
        text = inspect.getsource(obj)
    except (OSError, TypeError):
        text = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Label:
    """The target: a column of the entity source, or a Polars expression over it.

    Parameters
    ----------
    name:
        Name of the label column in training sets.
    expr:
        Polars expression computing the label (``pl.col("arr_delay") > 15``);
        default: the column ``name`` itself. A null result means "no label"
        (e.g. a cancelled flight): the row is left out of training and counted.
    available:
        Column with the time the label became known. A row whose label was not
        yet known at the training cutoff is left out (label maturity).
    delay:
        Expected label delay; used for maturity when there is no ``available`` column.
    """

    def __init__(
        self,
        name: str,
        *,
        expr: Any = None,
        available: str | None = None,
        delay: str | int | timedelta | None = None,
    ) -> None:
        self.name = check_name(name, "Label")
        self.expr = expr
        self.available = available
        self.delay = None if delay is None else parse_duration(delay, what=f"Label {name!r} delay")

    def to_dict(self) -> dict[str, Any]:
        expr = None
        if self.expr is not None:
            try:
                expr = json.loads(self.expr.meta.serialize(format="json"))
            except (AttributeError, TypeError, ValueError):
                raise DefinitionError(f"Label {self.name!r}: expr must be a Polars expression") from None
        return {
            "name": self.name,
            "expr": expr,
            "available": self.available,
            "delay": format_duration(self.delay) if self.delay else None,
        }


@dataclass(frozen=True)
class Cost:
    """Cost per row of each decision outcome of a binary model: false positive, false
    negative, true positive, true negative. Negative values are gains.

    Declared in a model's objective and used by the metrics (expected cost, the
    cost-optimal threshold): this is the one definition both read.

    >>> Cost(fp=1, fn=5)
    Cost(fp=1.0, fn=5.0, tp=0.0, tn=0.0)
    """

    fp: float
    fn: float
    tp: float = 0.0
    tn: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fp", "fn", "tp", "tn"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise DefinitionError(f"Cost.{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, float]:
        """A JSON-able dictionary (``Cost(**d)`` reads it back)."""
        return {"fp": self.fp, "fn": self.fn, "tp": self.tp, "tn": self.tn}


class Objective:
    """How a model is judged: a primary metric, guardrail metrics, an optional cost matrix."""

    def __init__(
        self,
        primary: str | None = None,
        *,
        guardrails: Sequence[str] = (),
        cost: Cost | None = None,
        threshold: float = 0.5,
    ) -> None:
        self.primary = primary
        self.guardrails = list(guardrails)
        self.cost = cost
        self.threshold = float(threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "guardrails": self.guardrails,
            "cost": self.cost.to_dict() if self.cost else None,
            "threshold": self.threshold,
        }


class TimeSplit:
    """Split rows by time: the oldest for training, then validation, the newest for test.

    ``validation`` and ``test`` are fractions of the time span (``0.15``) or
    durations (``"30d"``, counted back from the newest row). Never random.
    """

    def __init__(self, *, validation: float | str = 0.15, test: float | str = 0.15) -> None:
        self.validation = validation
        self.test = test
        for what, value in (("validation", validation), ("test", test)):
            if isinstance(value, float | int) and not isinstance(value, bool):
                if not 0 < value < 0.5:
                    raise DefinitionError(f"TimeSplit: {what} fraction must be in (0, 0.5), got {value}")
            else:
                parse_duration(value, what=f"TimeSplit {what}")

    def to_dict(self) -> dict[str, Any]:
        return {"validation": self.validation, "test": self.test}


class Fallback:
    """What answers when the model cannot: a constant, the previous version, or a rule."""

    def __init__(
        self,
        *,
        constant: Any = None,
        previous_version: bool = False,
        rule: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        chosen = sum(x is not None and x is not False for x in (constant, rule)) + int(previous_version)
        if chosen != 1:
            raise DefinitionError("Fallback: give exactly one of constant=, previous_version=True, rule=")
        self.constant = constant
        self.previous_version = previous_version
        self.rule = rule

    def to_dict(self) -> dict[str, Any]:
        if self.rule is not None:
            return {"rule": _fingerprint(self.rule)}
        if self.previous_version:
            return {"previous_version": True}
        return {"constant": self.constant}


class Model:
    """A model definition.

    Parameters
    ----------
    name:
        Unique name.
    task:
        ``"binary"``, ``"multiclass"``, ``"regression"`` or ``"policy"`` (a decision model: it
        chooses one of ``actions`` per request; its label is the reward of the chosen action, and
        its entity rows are logged rounds with the columns ``action`` and ``propensity``, the
        probability the logging policy gave that action).
    entities:
        Source of prediction events: one row per prediction, its timestamp is
        the moment of prediction (features are joined as known then).
    features:
        ``"view:field"`` references, looked up point-in-time (offline) or in the
        online store (serving).
    request:
        Contract of fields the caller sends with each request (they are also
        columns of ``entities``); validated identically in training and serving.
    label:
        The target and its maturity.
    trainer:
        A scikit-learn-compatible estimator (LightGBM and XGBoost ones included),
        or a function ``(X, y, params) -> estimator``.
    params:
        Parameters passed to a trainer function (recorded in lineage).
    objective, gates, segments, split, fallback:
        How the model is judged, what it must pass, how metrics are sliced,
        how rows are split by time, and what answers when it cannot.
    budget:
        Operating limits (latency, fallback rate, volume) the monitor checks on the event log.
    rollout:
        How a new version reaches traffic (``fl.Rollout``: stages, checks; default: shadow,
        5 % and 25 % canaries, then full).
    retrain:
        When the controller retrains the model by itself (``fl.Retrain``: schedule, new labels,
        alerts; cooldown and a weekly cap).
    actions:
        Decision models: the actions, in order (at least two distinct names).
    exploration:
        Decision models: how the server explores (``fl.Explore``; default: epsilon-greedy, rate 0.1,
        floor 0.01).
    """

    def __init__(
        self,
        name: str,
        *,
        task: str | Task,
        entities: FileSource,
        label: Label,
        trainer: Any,
        features: Sequence[str] = (),
        request: Contract | None = None,
        params: dict[str, Any] | None = None,
        objective: Objective | None = None,
        gates: Sequence[Gate] = (),
        segments: Sequence[str] = (),
        split: TimeSplit | None = None,
        fallback: Fallback | None = None,
        budget: Budget | None = None,
        rollout: Rollout | None = None,
        retrain: Retrain | None = None,
        actions: Sequence[str] | None = None,
        exploration: Explore | None = None,
        description: str = "",
    ) -> None:
        self.name = check_name(name, "Model")
        try:
            self.task = Task(task)
        except ValueError:
            raise DefinitionError(
                f"Model {name!r}: task must be binary, multiclass, regression or policy, got {task!r}"
            ) from None
        if not isinstance(entities, FileSource):
            raise DefinitionError(f"Model {name!r}: entities must be a source such as fl.FileSource")
        if not isinstance(label, Label):
            raise DefinitionError(f"Model {name!r}: label must be an fl.Label")
        if trainer is None:
            raise DefinitionError(f"Model {name!r}: a trainer is required")
        if not features and request is None:
            raise DefinitionError(f"Model {name!r}: give features=[...] and/or a request contract")
        for ref in features:
            if not isinstance(ref, str) or ref.count(":") != 1:
                raise DefinitionError(f"Model {name!r}: feature {ref!r} must look like 'view:field'")
        if request is not None and not isinstance(request, Contract):
            raise DefinitionError(f"Model {name!r}: request must be an fl.Contract")
        if budget is not None and not isinstance(budget, Budget):
            raise DefinitionError(f"Model {name!r}: budget must be an fl.Budget, got {budget!r}")
        if rollout is not None and not isinstance(rollout, Rollout):
            raise DefinitionError(f"Model {name!r}: rollout must be an fl.Rollout, got {rollout!r}")
        estimated = [c.outcome for c in (rollout.checks if rollout is not None else []) if c.estimate]
        if estimated and self.task is not Task.BINARY:
            raise DefinitionError(
                f"Model {name!r}: Check({estimated[0]!r}, estimate=True) needs a binary classifier "
                f"(its calibrated score), not task={self.task.value!r}"
            )
        if retrain is not None and not isinstance(retrain, Retrain):
            raise DefinitionError(f"Model {name!r}: retrain must be an fl.Retrain, got {retrain!r}")
        for gate in gates:
            if not isinstance(gate, Gate):
                raise DefinitionError(f"Model {name!r}: gates must be fl.gates objects, got {gate!r}")
            if gate.kind == "off_policy_lift" and self.task is not Task.POLICY:
                raise DefinitionError(f"Model {name!r}: gate OffPolicyLift is for task='policy' models")
        self.entities = entities
        self.label = label
        self.trainer = trainer
        self.features = list(features)
        self.request = request
        self.params = dict(params or {})
        self.objective = objective or Objective()
        if self.objective.primary is None:
            self.objective.primary = DEFAULT_PRIMARY[self.task]
        self.gates = list(gates)
        self.segments = list(segments)
        self.split = split or TimeSplit()
        self.fallback = fallback
        self.budget = budget
        self.rollout = rollout
        self.retrain = retrain
        self.actions: list[str] | None = None
        self.exploration: Explore | None = None
        if self.task is Task.POLICY:
            self.actions, self.exploration = _check_policy(self, actions, exploration)
        elif actions is not None or exploration is not None:
            raise DefinitionError(f"Model {name!r}: actions= and exploration= are for task='policy'")
        self.description = description

    @property
    def primary_metric(self) -> str:
        assert self.objective.primary is not None
        return self.objective.primary

    def trainer_spec(self) -> dict[str, Any]:
        """What the trainer is, as JSON: estimator class and parameters, or function fingerprint."""
        if hasattr(self.trainer, "get_params") and hasattr(self.trainer, "fit"):
            cls = type(self.trainer)
            params = {k: _jsonable(v) for k, v in sorted(self.trainer.get_params(deep=False).items())}
            return {"estimator": f"{cls.__module__}.{cls.__qualname__}", "params": params}
        if callable(self.trainer):
            return {"function": _fingerprint(self.trainer), "params": self.params}
        raise DefinitionError(f"Model {self.name!r}: trainer must be an estimator or a function")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task.value,
            "entities": self.entities.to_dict(),
            "label": self.label.to_dict(),
            "features": self.features,
            "request": self.request.to_dict() if self.request else None,
            "trainer": self.trainer_spec(),
            "objective": self.objective.to_dict(),
            "gates": [g.to_dict() for g in self.gates],
            "segments": self.segments,
            "split": self.split.to_dict(),
            "fallback": self.fallback.to_dict() if self.fallback else None,
            # Only when set: models without a budget keep the content hash they always had.
            **({"budget": self.budget.to_dict()} if self.budget is not None else {}),
            **({"rollout": self.rollout.to_dict()} if self.rollout is not None else {}),
            **({"retrain": self.retrain.to_dict()} if self.retrain is not None else {}),
            **({"actions": self.actions} if self.actions is not None else {}),
            **({"exploration": self.exploration.to_dict()} if self.exploration is not None else {}),
        }

    @property
    def version(self) -> str:
        return content_hash(self.to_dict())

    def __repr__(self) -> str:
        return f"Model({self.name!r}, task={self.task.value!r}, features={self.features!r})"


def _check_policy(
    model: Model, actions: Sequence[str] | None, exploration: Explore | None
) -> tuple[list[str], Explore]:
    """A decision model's actions and exploration, checked against its request and gates."""
    name = model.name
    if actions is None or isinstance(actions, str) or not isinstance(actions, Sequence):
        raise DefinitionError(f"Model {name!r}: a policy model needs actions=[...], a list of action names")
    chosen = list(actions)
    if len(chosen) < 2:
        raise DefinitionError(f"Model {name!r}: a policy model needs at least two actions, got {chosen!r}")
    for action in chosen:
        if not isinstance(action, str) or not action.strip():
            raise DefinitionError(f"Model {name!r}: action {action!r} must be a non-empty string")
    repeated = sorted({a for a in chosen if chosen.count(a) > 1})
    if repeated:
        raise DefinitionError(f"Model {name!r}: actions {repeated} are listed more than once")
    explore = Explore() if exploration is None else exploration
    if not isinstance(explore, Explore):
        raise DefinitionError(f"Model {name!r}: exploration must be an fl.Explore, got {explore!r}")
    fields = list(model.request.fields) if model.request is not None else []
    for column in (ACTION_COLUMN, PROPENSITY_COLUMN):
        if column in fields:
            raise DefinitionError(
                f"Model {name!r}: {column!r} is a logged column of a policy model's rounds, not a request "
                "field (the server chooses the action)"
            )
    explore.check(chosen, fields, model=name)
    for gate in model.gates:
        if gate.kind in _NOT_FOR_POLICIES:
            raise DefinitionError(
                f"Model {name!r}: gate {type(gate).__name__} judges predictions against labels; a policy "
                "model is judged off-policy (use fl.gates.OffPolicyLift)"
            )
    fb = model.fallback
    if fb is not None and fb.constant is not None and fb.constant not in chosen:
        raise DefinitionError(
            f"Model {name!r}: the fallback constant {fb.constant!r} must be one of the actions {chosen}"
        )
    return chosen, explore


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
