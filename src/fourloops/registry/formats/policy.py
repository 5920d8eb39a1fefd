"""Decision models: a reward model saved in its native format, served as a scorer of every action.

A decision model (``task="policy"``) is trained as a **reward model**: the
trainer's estimator fitted on the context inputs plus the logged action (one
categorical input, :data:`~fourloops.definitions.explore.ACTION_COLUMN`),
predicting the reward. It is saved like any regression model, in its own
format, with the actions in its metadata (``meta["policy"]``). Loaded for
``task="policy"``, it becomes a :class:`PolicyPredictor`: given a context, it
predicts the reward of every action, in the declared order. The greedy
policy takes the best-scored one; the exploration policy
(:class:`~fourloops.definitions.Explore`) spreads probability from there.

>>> import tempfile, lightgbm, polars as pl, fourloops as fl
>>> from fourloops.contracts.encoder import InputEncoder
>>> from fourloops.registry.formats import load_model, save_model
>>> encoder = InputEncoder.from_fields({"x": fl.Float(), "action": fl.Category(["a", "b"])})
>>> rows = pl.DataFrame({"x": [0.0, 1.0] * 200, "action": ["a"] * 200 + ["b"] * 200})
>>> reward = [0.3 if a == "a" else x for x, a in rows.iter_rows()]    # "a" is best at 0, "b" at 1
>>> model = lightgbm.LGBMRegressor(n_estimators=50, min_data_per_group=10, verbose=-1)
>>> model = model.fit(encoder.frame(rows), reward)
>>> saved = save_model(model, tempfile.mkdtemp(), inputs=encoder, policy=["a", "b"])
>>> scorer = load_model(saved.path, saved.format, task="policy")
>>> scorer.feature_names, scorer.actions
(['x'], ['a', 'b'])
>>> [round(r, 1) for r in scorer.predict_one({"x": 1.0})]
[0.3, 1.0]
>>> scorer.predict(pl.DataFrame({"x": [0.0, 1.0]})).round(1).tolist()
[[0.3, 0.0], [0.3, 1.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fourloops.contracts.encoder import CATEGORY, InputEncoder
from fourloops.definitions.explore import ACTION_COLUMN
from fourloops.errors import RegistryError
from fourloops.registry.formats.base import Predictor, Task, to_frame

__all__ = ["POLICY_META", "PolicyPredictor", "policy_meta"]

#: The metadata key of a decision model's actions and action input.
POLICY_META = "policy"


def policy_meta(actions: Sequence[str], action_input: str = ACTION_COLUMN) -> dict[str, Any]:
    """What a decision model's artifact records about its actions."""
    return {"actions": list(actions), "action_input": action_input}


class PolicyPredictor(Predictor):
    """Scores every action of a decision model for a context: ``(n, K)`` predicted rewards.

    ``reward_model`` is the loaded regression model, with the input encoder it was trained
    through (context inputs and the action). The predictor's own ``encoder`` and
    ``feature_names`` are the context's: the action is what it chooses, not an input.
    """

    def __init__(self, reward_model: Predictor, meta: Mapping[str, Any]) -> None:
        inner = reward_model.encoder
        spec = meta.get(POLICY_META) or {}
        actions = [str(a) for a in spec.get("actions") or []]
        action_input = str(spec.get("action_input") or ACTION_COLUMN)
        if inner is None or len(actions) < 2:
            raise RegistryError(
                "not a decision model's artifact: it records no input encoder or fewer than two actions"
            )
        column = next((c for c in inner.columns if c.name == action_input), None)
        if column is None or column.kind != CATEGORY:
            raise RegistryError(
                f"decision model: its inputs have no categorical action input {action_input!r}"
            )
        context = tuple(c for c in inner.columns if c.name != action_input)
        super().__init__(Task.POLICY, [c.name for c in context])
        self.format = reward_model.format
        self.reward_model = reward_model
        self.actions = actions
        self.action_input = action_input
        self.encoder = InputEncoder(context)
        self._categories = list(column.categories)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted reward of every action (columns, in the declared order) for each row of ``X``."""
        import pandas as pd

        frame = to_frame(X, self.feature_names)
        if not hasattr(frame, "columns"):  # a bare array without names cannot be scored
            raise RegistryError("a decision model scores frames with named context columns")
        n = len(frame)
        names = self.reward_model.feature_names or [*(self.feature_names or []), self.action_input]
        out = np.empty((n, len(self.actions)), dtype=np.float64)
        for j, action in enumerate(self.actions):
            with_action = frame.assign(
                **{self.action_input: pd.Categorical([action] * n, categories=self._categories)}
            )
            out[:, j] = np.asarray(self.reward_model.predict(with_action[names]), dtype=np.float64)
        return out

    def predict_one(self, row: Mapping[str, Any]) -> list[float]:
        """The predicted reward of every action for one context, in the declared order."""
        model = self.reward_model
        return [float(model.predict_one({**row, self.action_input: a})) for a in self.actions]  # type: ignore[arg-type]

    def rewards(self, X: Any, actions: Sequence[str]) -> np.ndarray:
        """The predicted reward of the given action in each row (e.g. the logged one)."""
        index = {a: j for j, a in enumerate(self.actions)}
        columns = np.array([index[str(a)] for a in actions], dtype=np.int64)
        scores = self.predict(X)
        chosen: np.ndarray = scores[np.arange(len(columns)), columns]
        return chosen
