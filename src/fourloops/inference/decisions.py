"""Serving a decision model: from the predicted reward of every action to one action, drawn and logged.

A decision model (``task="policy"``) answers with an **action**. Its predictor
scores every action (the predicted reward); the model's
:class:`~fourloops.definitions.Explore` turns the scores into a probability per
action (greedy choice, exploration rate capped per segment, propensity floor:
:meth:`Explore.distribution`); :class:`Decider` draws one action from them.

* **Reproducible draws.** The draw is a pure function of the model's name and
  the request id (the first 53 bits of a BLAKE2b hash, as a number in
  ``[0, 1)``, salted apart from the routing hash), so a retried request gets
  the same action, on any server. The request ids the server makes are random
  (UUID4), so draws are independent of the context.
* **What is logged** (:meth:`Decision.extra`): the event's ``propensity`` is
  the probability of the chosen action under the route that answered,
  P(action | route, context); the route's own probability (its share of
  units) is logged beside it as ``route_propensity``, so that off-policy
  evaluation can use either (each round's propensity under its own route is
  what importance weights need; the product is the probability over both
  draws). The distribution logged is the ``top_k`` likeliest actions (the
  chosen one always among them) and ``rest``, the total probability of the
  others; then the applied exploration ``rate``, the ``greedy`` action, the
  ``expected_reward`` of the chosen action, the version that scored and a
  hash of the exploration settings (``explore``).
* A **fallback** that answers with an action (``fl.Fallback(constant="none")``
  or a rule) chose it with probability one: its event says so.

>>> import fourloops as fl
>>> decider = Decider("offers", ["a", "b", "c"], fl.Explore(rate=0.3, floor=0.0))
>>> d = decider.decide([0.1, 0.5, 0.2], {}, "request-1")
>>> d.greedy, round(d.rate, 2), [round(d.distribution[a], 2) for a in "abc"]
('b', 0.3, [0.1, 0.8, 0.1])
>>> d.propensity == d.distribution[d.action]
True
>>> decider.decide([0.1, 0.5, 0.2], {}, "request-1") == d   # a retry gets the same action
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fourloops.definitions import Explore
from fourloops.definitions.hashing import content_hash
from fourloops.errors import ModelUnavailable
from fourloops.storage.events.decisions import DECISION_KEY

__all__ = ["Decider", "Decision", "draw_position"]

_SALT = "\x1fdecision\x1f"
_DOUBLE_BITS = 53


def draw_position(model: str, request_id: str) -> float:
    """The request's draw in ``[0, 1)``: stable for a model and a request id.

    >>> draw_position("offers", "r-1") == draw_position("offers", "r-1")
    True
    """
    digest = hashlib.blake2b(f"{model}{_SALT}{request_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> (64 - _DOUBLE_BITS)) / (1 << _DOUBLE_BITS)


@dataclass(frozen=True)
class Decision:
    """One action chosen for one request, with what the event log keeps about it."""

    action: str
    propensity: float
    distribution: dict[str, float]
    rest: float
    rate: float
    greedy: str
    expected_reward: float | None = None
    explore: str = ""
    scores: Sequence[float] = field(default=(), compare=False, repr=False)

    def answer(self) -> dict[str, Any]:
        """The fields a response carries beside the usual ones."""
        return {
            "action": self.action,
            "propensity": self.propensity,
            "exploration_rate": self.rate,
            "expected_reward": self.expected_reward,
        }

    def extra(self, version: int, route_propensity: float | None) -> dict[str, Any]:
        """The event's ``extra["policy"]``."""
        return {
            DECISION_KEY: {
                "distribution": self.distribution,
                "rest": self.rest,
                "rate": self.rate,
                "greedy": self.greedy,
                "expected_reward": self.expected_reward,
                "version": version,
                "explore": self.explore,
                "route_propensity": route_propensity,
            }
        }


class Decider:
    """Draws a decision model's action from its scores (see the module docstring)."""

    def __init__(self, model: str, actions: Sequence[str], explore: Explore) -> None:
        self.model = model
        self.actions = list(actions)
        self.explore = explore
        self.top_k = explore.top_k
        #: A short hash of the exploration settings: part of the policy's version in every event.
        self.explore_hash = content_hash(explore.to_dict())[:12]
        self._index = {a: i for i, a in enumerate(self.actions)}

    def __repr__(self) -> str:
        return f"Decider({self.model!r}, actions={self.actions!r}, explore={self.explore!r})"

    def decide(self, scores: Sequence[Any], row: Mapping[str, Any], request_id: str) -> Decision:
        """The action for one request's ``scores`` (in the declared order of the actions)."""
        if not isinstance(scores, Sequence) or isinstance(scores, str) or len(scores) != len(self.actions):
            raise ModelUnavailable(
                f"model {self.model!r} scored {scores!r}, not one number per action ({len(self.actions)})"
            )
        numbers = [
            float(s) if isinstance(s, int | float) and not isinstance(s, bool) else math.nan for s in scores
        ]
        probabilities, rate, greedy = self.explore.distribution(numbers, row)
        u = draw_position(self.model, request_id)
        chosen, cumulative = len(probabilities) - 1, 0.0
        for i, p in enumerate(probabilities):
            cumulative += p
            if u < cumulative:
                chosen = i
                break
        expected = numbers[chosen]
        return Decision(
            action=self.actions[chosen],
            propensity=probabilities[chosen],
            distribution=self._top(probabilities, chosen),
            rest=self._rest(probabilities, chosen),
            rate=rate,
            greedy=self.actions[greedy],
            expected_reward=expected if math.isfinite(expected) else None,
            explore=self.explore_hash,
            scores=numbers,
        )

    def certain(self, action: Any) -> Decision:
        """A fallback's answer: ``action`` chosen with probability one (it must be an action)."""
        if action not in self._index:
            raise ModelUnavailable(
                f"model {self.model!r}: the fallback answered {action!r}, which is not one of its actions"
            )
        return Decision(str(action), 1.0, {str(action): 1.0}, 0.0, 0.0, str(action), None, self.explore_hash)

    def _order(self, probabilities: Sequence[float], chosen: int) -> list[int]:
        order = sorted(range(len(probabilities)), key=lambda i: (-probabilities[i], i))[: self.top_k]
        if chosen not in order:
            order.append(chosen)
        return order

    def _top(self, probabilities: Sequence[float], chosen: int) -> dict[str, float]:
        return {self.actions[i]: probabilities[i] for i in self._order(probabilities, chosen)}

    def _rest(self, probabilities: Sequence[float], chosen: int) -> float:
        listed = self._order(probabilities, chosen)
        if len(listed) >= len(probabilities):
            return 0.0
        return max(0.0, math.fsum(p for i, p in enumerate(probabilities) if i not in set(listed)))
