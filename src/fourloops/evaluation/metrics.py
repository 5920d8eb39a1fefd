"""All metrics of a task in one call, and the metric catalogue used by segments.

``evaluate(task, y_true, prediction)`` returns every metric of the task as a
``{name: float | None}`` dictionary; ``None`` marks a metric that is undefined
for these rows (ROC-AUC with one class, R2 with constant ``y_true``, anything
of an empty sample). The prediction is, per task:

* ``"binary"``: P(y = 1) per row (or an (n, 2) probability matrix);
* ``"multiclass"``: an (n, K) probability matrix, labels are 0..K-1;
* ``"regression"``: the point prediction, plus optionally
  ``quantiles={level: values}`` for pinball losses and interval coverage.

>>> evaluate("binary", [0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])["roc_auc"]
0.75
>>> evaluate("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 4.0])["mae"]
0.3333333333333333
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from numpy.typing import ArrayLike

from fourloops.definitions.model import Task
from fourloops.evaluation.calibration import DEFAULT_BINS, Strategy, bin_edges, ece_spec
from fourloops.evaluation.cost import Cost, best_threshold, expected_cost
from fourloops.evaluation.metrics_binary import (
    FloatArray,
    MetricSpec,
    as_weights,
    binary_specs,
    check_probability,
    optional,
    prepare_binary,
)
from fourloops.evaluation.metrics_multiclass import multiclass_specs, prepare_multiclass
from fourloops.evaluation.metrics_regression import prepare_regression, regression_specs

__all__ = ["TASKS", "evaluate", "higher_is_better", "metric_specs", "prepare"]

#: The task names (:class:`fourloops.definitions.Task`).
TASKS = tuple(t.value for t in Task)

#: Metrics that lower is better, beyond those the specs declare (cost outputs).
_LOWER_IS_BETTER = {"cost", "cost_per_row", "best_cost", "best_cost_per_row", "ece"}


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")


def prepare(
    task: str,
    y_true: ArrayLike,
    prediction: ArrayLike,
    *,
    quantiles: Mapping[float, ArrayLike] | None = None,
) -> tuple[FloatArray, FloatArray, tuple[float, ...]]:
    """Checked ``(y, prediction, quantile levels)`` arrays for ``task``."""
    _check_task(task)
    if task == "binary":
        y, score = prepare_binary(y_true, prediction)
        return y, check_probability(score), ()
    if task == "multiclass":
        return (*prepare_multiclass(y_true, prediction), ())
    return prepare_regression(y_true, prediction, quantiles)


def metric_specs(
    task: str,
    *,
    threshold: float = 0.5,
    edges: FloatArray | None = None,
    levels: tuple[float, ...] = (),
) -> dict[str, MetricSpec]:
    """The metrics of ``task`` by name (binary ECE over ``edges``, default 10 equal bins)."""
    _check_task(task)
    if task == "binary":
        specs = binary_specs(threshold)
        specs["ece"] = ece_spec(bin_edges([], DEFAULT_BINS) if edges is None else edges)
        return specs
    if task == "multiclass":
        return multiclass_specs()
    return regression_specs(levels)


def higher_is_better(task: str, metric: str) -> bool:
    """Whether a larger value of ``metric`` is an improvement.

    >>> higher_is_better("binary", "roc_auc"), higher_is_better("binary", "log_loss")
    (True, False)
    """
    if metric in _LOWER_IS_BETTER:
        return False
    specs = metric_specs(task, levels=_levels_in([metric]))
    if metric not in specs:
        raise ValueError(f"unknown {task} metric {metric!r}")
    return specs[metric].higher_is_better


def _levels_in(names: list[str]) -> tuple[float, ...]:
    """Quantile levels mentioned by ``pinball@q`` / ``coverage@lo-hi`` names."""
    levels: set[float] = set()
    for name in names:
        if name.startswith("pinball@"):
            levels.add(float(name.removeprefix("pinball@")))
        elif name.startswith("coverage@"):
            levels.update(float(v) for v in name.removeprefix("coverage@").split("-"))
    return tuple(sorted(levels))


def evaluate(
    task: str,
    y_true: ArrayLike,
    prediction: ArrayLike,
    *,
    threshold: float = 0.5,
    cost: Cost | None = None,
    bins: int = DEFAULT_BINS,
    strategy: Strategy = "uniform",
    quantiles: Mapping[float, ArrayLike] | None = None,
    sample_weight: ArrayLike | None = None,
) -> dict[str, Any]:
    """Every metric of ``task``; ``None`` where undefined.

    Binary adds ``ece`` (``bins`` bins of ``strategy``) and, with ``cost``, the
    total ``cost`` and ``cost_per_row`` at ``threshold`` plus ``best_threshold``,
    ``best_cost`` and ``best_cost_per_row``. ``sample_weight`` weights every
    metric except the cost outputs, which count rows. ``n`` is the row count.
    """
    y, pred, levels = prepare(task, y_true, prediction, quantiles=quantiles)
    w = as_weights(sample_weight, y.shape[0])
    edges = bin_edges(pred, bins, strategy) if task == "binary" else None
    specs = metric_specs(task, threshold=threshold, edges=edges, levels=levels)
    result: dict[str, Any] = {"n": int(y.shape[0])}
    result.update({name: optional(spec(y, pred, w)) for name, spec in specs.items()})
    if task == "binary" and cost is not None:
        total = expected_cost(y, pred, cost, threshold=threshold)
        choice = best_threshold(y, pred, cost)
        result["cost"] = total
        result["cost_per_row"] = total / y.shape[0] if y.shape[0] else None
        result["best_threshold"] = choice.threshold if y.shape[0] else None
        result["best_cost"] = choice.cost
        result["best_cost_per_row"] = choice.cost_per_row if y.shape[0] else None
    return result
