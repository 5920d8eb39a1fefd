"""When a model retrains by itself: triggers, and the limits that stop a retraining storm.

>>> r = Retrain(every="30d", new_labels=50_000, on_alerts=["input_drift", "performance"])
>>> r.every, r.cooldown, r.max_per_week
(datetime.timedelta(days=30), datetime.timedelta(days=3), 2)

What a retraining trains on can differ from a first training's: a retrain
exists to learn what changed lately, and the model's own split may hold out
exactly that (a 30-day validation and a 30-day test keep the last two months
out of the fit, so a change that began a month ago is judged, never learnt).
``split`` gives retraining its own, shorter holdout, and ``window`` keeps the
fit to recent rows so that a new regime is not outvoted by a year of the old:

>>> from fourloops.definitions.model import TimeSplit
>>> r = Retrain(on_alerts=["performance"], window="90d", split=TimeSplit(validation="7d", test="7d"))
>>> r.to_dict()["window"], r.to_dict()["split"]
('90d', {'validation': '7d', 'test': '7d'})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fourloops.definitions.durations import format_duration, parse_duration
from fourloops.errors import DefinitionError

if TYPE_CHECKING:
    from fourloops.definitions.model import TimeSplit

__all__ = ["ALERT_TRIGGERS", "Retrain"]

#: Alert kinds that can trigger a retraining.
ALERT_TRIGGERS = (
    "input_drift",
    "prediction_drift",
    "multivariate_drift",
    "performance",
    "estimated_performance",
    "unknown_categories",
)


@dataclass(frozen=True, init=False)
class Retrain:
    """Retraining triggers of a model, checked by the controller at every tick.

    Parameters
    ----------
    every:
        Retrain on a schedule (e.g. ``"30d"``) since the newest version was trained.
    new_labels:
        Retrain once this many labels have matured since the newest version's training cutoff.
    on_alerts:
        Retrain when the monitor raised one of these alert kinds (on the champion) since the
        newest version was trained (drift on important features, a realised or estimated drop...).
    cooldown:
        No retraining within this long of the previous one, whatever the triggers say.
    max_per_week:
        At most this many retrainings in any seven days (an alert that flaps cannot start a storm).
    rollout:
        A candidate that passes its gates starts the model's rollout (else it only waits, registered).
    window:
        A retrain fits on the rows of this long before now only (e.g. ``"90d"``; default: every
        row, as :meth:`~fourloops.Project.train` does); recorded as the version's ``start``.
    split:
        The retrain's own ``fl.TimeSplit`` (default: the model's): a shorter holdout lets it
        learn from the weeks a longer one would only judge it on. Recorded in the lineage, so
        ``fourloops reproduce`` re-runs it the same way.
    """

    every: timedelta | None
    new_labels: int | None
    on_alerts: tuple[str, ...]
    cooldown: timedelta
    max_per_week: int
    rollout: bool
    window: timedelta | None
    split: TimeSplit | None

    def __init__(
        self,
        *,
        every: str | int | timedelta | None = None,
        new_labels: int | None = None,
        on_alerts: Sequence[str] = (),
        cooldown: str | int | timedelta = "3d",
        max_per_week: int = 2,
        rollout: bool = True,
        window: str | int | timedelta | None = None,
        split: TimeSplit | None = None,
    ) -> None:
        from fourloops.definitions.model import TimeSplit  # model.py imports this module

        object.__setattr__(
            self, "every", None if every is None else parse_duration(every, what="Retrain every")
        )
        if new_labels is not None and (
            isinstance(new_labels, bool) or not isinstance(new_labels, int) or new_labels < 1
        ):
            raise DefinitionError(f"Retrain new_labels must be a positive integer, got {new_labels!r}")
        object.__setattr__(self, "new_labels", new_labels)
        unknown = [a for a in on_alerts if a not in ALERT_TRIGGERS]
        if unknown:
            raise DefinitionError(
                f"Retrain on_alerts: unknown kind {unknown[0]!r}; choose from {', '.join(ALERT_TRIGGERS)}"
            )
        object.__setattr__(self, "on_alerts", tuple(on_alerts))
        object.__setattr__(self, "cooldown", parse_duration(cooldown, what="Retrain cooldown"))
        if isinstance(max_per_week, bool) or not isinstance(max_per_week, int) or max_per_week < 1:
            raise DefinitionError(f"Retrain max_per_week must be an integer >= 1, got {max_per_week!r}")
        object.__setattr__(self, "max_per_week", max_per_week)
        object.__setattr__(self, "rollout", bool(rollout))
        object.__setattr__(
            self, "window", None if window is None else parse_duration(window, what="Retrain window")
        )
        if split is not None and not isinstance(split, TimeSplit):
            raise DefinitionError(f"Retrain split must be an fl.TimeSplit, got {split!r}")
        object.__setattr__(self, "split", split)
        if every is None and new_labels is None and not on_alerts:
            raise DefinitionError("Retrain needs a trigger: every=, new_labels= or on_alerts=")

    def to_dict(self) -> dict[str, Any]:
        return {
            "every": format_duration(self.every) if self.every else None,
            "new_labels": self.new_labels,
            "on_alerts": list(self.on_alerts),
            "cooldown": format_duration(self.cooldown),
            "max_per_week": self.max_per_week,
            "rollout": self.rollout,
            "window": format_duration(self.window) if self.window else None,
            "split": self.split.to_dict() if self.split is not None else None,
        }
