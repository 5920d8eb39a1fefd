"""When a column counts as drifted: the policy, and the verdicts it gives.

A column drifted in a window when, for its headline method,

1. the window has at least ``min_rows`` values of the column (fewer:
   ``too_few_rows``, no verdict);
2. its p-value, adjusted by Benjamini–Hochberg over every column, segment
   and the prediction tested in the window, is at most ``alpha`` (so the
   chance that *anything* alarms in a window where nothing changed stays at
   ``alpha``, however many columns there are);
3. its effect size reaches the method's floor (a tiny shift in a huge window
   is "changed but negligible": significant, not drifted).

The headline method of a column is the first of ``methods`` that applies to
its kind; by default the two-sample Kolmogorov–Smirnov test for numeric
columns (it needs no binning choice and has an exact null) and the
two-sample chi-square for categorical ones (unseen categories are a cell of
their own, sparse cells are merged).

>>> DriftPolicy().headline("numeric"), DriftPolicy(methods=("psi",)).headline("numeric")
('ks', 'psi')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from fourloops.errors import ConfigError
from fourloops.evaluation.drift.methods import METHODS, MethodResult

__all__ = ["DEFAULT_METHODS", "ColumnDrift", "DriftPolicy", "adjust"]

#: The headline method per column kind when none is asked for.
DEFAULT_METHODS = {"numeric": "ks", "categorical": "chi2"}


@dataclass(frozen=True)
class DriftPolicy:
    """How drift is tested and judged (see the module docstring).

    Parameters
    ----------
    alpha:
        False-alarm rate per window (after the correction over columns and segments).
    min_rows:
        Fewest values a window needs for a verdict.
    methods:
        Methods to run on every column they apply to; the first that applies is the headline.
        Default: ``ks`` for numeric, ``chi2`` for categorical columns.
    floors:
        Effect-size floor per method, overriding the method's own.
    bins, coarse_bins:
        Fine bins of numeric columns (KS, Wasserstein, the chi-square of numbers uses the coarse
        ones) and coarse bins (PSI, Jensen–Shannon), both at the reference's quantiles.
    max_categories:
        Categories a column keeps by name; rarer ones are pooled as ``__other__``.
    draws:
        Simulations of the null for the distance methods.
    correction:
        ``"bh"`` (Benjamini–Hochberg over the window's tests) or ``"none"``.
    """

    alpha: float = 0.05
    min_rows: int = 30
    methods: tuple[str, ...] | None = None
    floors: Mapping[str, float] = field(default_factory=dict)
    bins: int = 100
    coarse_bins: int = 10
    max_categories: int = 100
    draws: int = 2000
    correction: str = "bh"

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"drift alpha must be between 0 and 1, got {self.alpha}")
        if self.min_rows < 1:
            raise ConfigError(f"min_rows must be at least 1, got {self.min_rows}")
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(self.methods))
            unknown = [m for m in self.methods if m not in METHODS]
            if unknown or not self.methods:
                raise ConfigError(
                    f"unknown drift method {', '.join(map(repr, unknown)) or '(none given)'}; "
                    f"choose from {', '.join(METHODS)}"
                )
        for name, floor in self.floors.items():
            if name not in METHODS or not floor >= 0:
                raise ConfigError(f"floor for {name!r} must be a known method and a number >= 0")
        if self.bins < 2 or self.coarse_bins < 2 or self.coarse_bins > self.bins:
            raise ConfigError("bins and coarse_bins must be at least 2, coarse_bins at most bins")
        if self.correction not in ("bh", "none"):
            raise ConfigError(f"correction must be 'bh' or 'none', got {self.correction!r}")

    def applicable(self, kind: str) -> list[str]:
        """The methods to run on a column of ``kind``, headline first."""
        if self.methods is None:
            return [DEFAULT_METHODS[kind]]
        chosen = [m for m in self.methods if kind in METHODS[m].kinds]
        return chosen or [DEFAULT_METHODS[kind]]

    def headline(self, kind: str) -> str:
        return self.applicable(kind)[0]

    def floor(self, method: str) -> float:
        return float(self.floors.get(method, METHODS[method].floor))

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "min_rows": self.min_rows,
            "methods": list(self.methods) if self.methods else None,
            "floors": {m: self.floor(m) for m in METHODS},
            "bins": self.bins,
            "coarse_bins": self.coarse_bins,
            "correction": self.correction,
        }


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift in one window (and segment): the headline verdict and every method run."""

    column: str
    kind: str
    rows: int
    results: tuple[MethodResult, ...]
    alpha: float
    p_adjusted: float | None = None
    drifted: bool = False
    note: str | None = None

    @property
    def headline(self) -> MethodResult:
        return self.results[0]

    @property
    def significant(self) -> bool:
        """The adjusted p-value is at most alpha (whatever the effect size)."""
        return self.p_adjusted is not None and self.p_adjusted <= self.alpha

    def to_dict(self) -> dict[str, Any]:
        head = self.headline
        return {
            "method": head.method,
            "statistic": head.statistic,
            "p_value": head.p_value,
            "p_adjusted": self.p_adjusted,
            "alpha": self.alpha,
            "effect": head.effect,
            "threshold": head.threshold,
            "drifted": self.drifted,
            "negligible": self.significant and not self.drifted,
            "rows": self.rows,
            "kind": self.kind,
            "note": self.note,
            "methods": {r.method: r.to_dict() for r in self.results},
        }


def adjust(tests: Sequence[ColumnDrift], policy: DriftPolicy) -> list[ColumnDrift]:
    """Verdicts for one window's tests: adjusted p-values (over all of them), significance and effect.

    Tests with a ``note`` (too few values, nothing to compare) take no part and are not drifted.
    """
    live = [i for i, t in enumerate(tests) if t.note is None]
    out = list(tests)
    if not live:
        return out
    raw = np.array([tests[i].headline.p_value for i in live], dtype=float)
    adjusted = scipy_stats.false_discovery_control(raw, method="bh") if policy.correction == "bh" else raw
    for i, p in zip(live, adjusted, strict=True):
        test = tests[i]
        p_adj = float(min(max(p, 0.0), 1.0))
        drifted = p_adj <= policy.alpha and test.headline.effect >= test.headline.threshold
        out[i] = replace(test, p_adjusted=p_adj, drifted=bool(drifted))
    return out
