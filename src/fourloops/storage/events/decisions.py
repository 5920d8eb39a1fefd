"""A decision model's logged choice: the action, its propensity and the action distribution, checked.

The event of a decision model (``task="policy"``) carries the chosen action as
its ``output``, the probability the serving policy gave it as its
``propensity``, and under ``extra["policy"]`` (:data:`DECISION_KEY`) the
action distribution: ``distribution`` (the likeliest actions with their
probabilities, the chosen one always among them), ``rest`` (the total
probability of the actions not listed), the ``rate`` of exploration applied,
the policy's version and the route's own probability.

Off-policy evaluation is only as good as these numbers, so a distribution
that breaks one of the :data:`RULES` is refused, by the event store when an
event is logged and by :func:`fourloops.ope` when logs are read:

* ``probability_range``: every listed probability, and ``rest``, is a number in [0, 1];
* ``sums_to_one``: the listed probabilities and ``rest`` sum to one (within :data:`TOLERANCE`);
* ``chosen_action_positive``: the chosen action is listed, with a probability above zero;
* ``propensity_matches``: the logged propensity is the distribution's probability of the chosen action.

>>> distribution_problem({"a": 0.7, "b": 0.2}, 0.1, "b", 0.2) is None
True
>>> distribution_problem({"a": 0.7, "b": 0.2}, 0.0, "b", 0.2)
('sums_to_one', 'the probabilities sum to 0.9, not 1')
>>> distribution_problem({"a": 1.0, "b": 0.0}, 0.0, "b", None)
('chosen_action_positive', "the chosen action 'b' has probability 0")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fourloops.errors import SchemaError

__all__ = [
    "DECISION_KEY",
    "RULES",
    "TOLERANCE",
    "distribution_problem",
    "refuse_bad_decisions",
    "rejection_message",
]

#: The key of an event's ``extra`` holding a decision model's distribution and settings.
DECISION_KEY = "policy"
#: How far a distribution may sum from one (logs rounded to a few decimals still pass).
TOLERANCE = 1e-3
#: The rules a logged distribution must follow, in the order they are checked.
RULES = ("probability_range", "sums_to_one", "chosen_action_positive", "propensity_matches")
#: How many refused rows a message names before it counts the others.
_SHOWN = 5


def _probability(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def distribution_problem(
    distribution: Mapping[str, Any], rest: Any, chosen: str, propensity: float | None
) -> tuple[str, str] | None:
    """The first rule (of :data:`RULES`) a logged distribution breaks, with why; None if it breaks none."""
    if not isinstance(distribution, Mapping) or not distribution:
        return "probability_range", "the distribution is not a non-empty mapping of action to probability"
    values: dict[str, float] = {}
    for action, value in distribution.items():
        p = _probability(value)
        if p is None:
            return "probability_range", f"action {str(action)!r} has probability {value!r}"
        values[str(action)] = p
    remainder = 0.0 if rest is None else _probability(rest)
    if remainder is None:
        return "probability_range", f"the rest of the actions have probability {rest!r}"
    total = math.fsum(values.values()) + remainder
    if abs(total - 1.0) > TOLERANCE:
        return "sums_to_one", f"the probabilities sum to {total:.6g}, not 1"
    p_chosen = values.get(str(chosen), 0.0)
    if p_chosen <= 0.0:
        return "chosen_action_positive", f"the chosen action {str(chosen)!r} has probability 0"
    if propensity is not None and abs(float(propensity) - p_chosen) > TOLERANCE:
        return (
            "propensity_matches",
            f"the propensity {float(propensity):.6g} is not the chosen action's probability {p_chosen:.6g}",
        )
    return None


def rejection_message(what: str, problems: Sequence[tuple[str, str, str]], total: int) -> str:
    """One line naming the refused rows (``(row, rule, detail)``) and counting them by rule."""
    counts: dict[str, int] = {}
    for _, rule, _ in problems:
        counts[rule] = counts.get(rule, 0) + 1
    shown = "; ".join(f"{row}: {rule} ({detail})" for row, rule, detail in problems[:_SHOWN])
    more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    by_rule = ", ".join(f"{rule} {n}" for rule, n in counts.items())
    return (
        f"{what}: {len(problems)} of {total} rows have an action distribution that breaks its rules "
        f"({by_rule}): {shown}{more}"
    )


def refuse_bad_decisions(events: Sequence[Any]) -> None:
    """Raise :class:`SchemaError` if a decision event's distribution breaks a rule (nothing is logged).

    Events without a decision (every model but a policy model's) pass untouched.
    """
    problems: list[tuple[str, str, str]] = []
    for event in events:
        decision = event.extra.get(DECISION_KEY) if event.extra else None
        if decision is None:
            continue
        distribution = decision.get("distribution") if isinstance(decision, Mapping) else None
        problem = distribution_problem(
            distribution if isinstance(distribution, Mapping) else {},
            decision.get("rest") if isinstance(decision, Mapping) else None,
            str(event.output),
            event.propensity,
        )
        if problem is not None:
            problems.append((f"event {event.request_id!r} of model {event.model!r}", *problem))
    if problems:
        raise SchemaError(rejection_message("the event log refused the group", problems, len(events)))
