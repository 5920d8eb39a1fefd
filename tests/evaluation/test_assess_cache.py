"""What assess derives from a reference's scores is cached by their content: never stale, never shared
between different references."""

from __future__ import annotations

import numpy as np

from fourloops.engines.summaries import ScoreSummary
from fourloops.evaluation import assess as assess_module
from fourloops.evaluation.assess import Assessment
from fourloops.evaluation.window_metrics import realised


def _scores(seed: int) -> ScoreSummary:
    rng = np.random.default_rng(seed)
    summary = ScoreSummary.empty("binary", 20)
    pos = rng.integers(0, 50, 20)
    neg = rng.integers(0, 50, 20)
    rows = pos + neg
    return ScoreSummary(
        "binary", 20, pos, neg, np.zeros(20, dtype=np.int64), (np.arange(20) + 0.5) / 20 * rows, summary.sums
    )


def test_the_same_scores_give_the_cached_metrics_and_different_scores_their_own() -> None:
    how = Assessment(windows=None, threshold=0.5, seed=3)
    a = _scores(1)
    first = assess_module._reference_metrics(a, how)
    # equal content in fresh arrays: the cached values, equal to computing them again
    again = assess_module._reference_metrics(_scores(1), how)
    assert again == first == realised(a, threshold=0.5, seed=3)
    # one count changed: a different reference, computed on its own
    b = _scores(1)
    b.positives[0] += 1
    assert assess_module._fingerprint(b) != assess_module._fingerprint(a)
    assert assess_module._reference_metrics(b, how) == realised(b, threshold=0.5, seed=3)
    assert assess_module._reference_metrics(b, how) != first
    # another threshold or seed is another entry
    other = Assessment(windows=None, threshold=0.3, seed=3)
    assert assess_module._reference_metrics(a, other) == realised(a, threshold=0.3, seed=3)


def test_a_window_whose_every_row_is_labelled_checks_its_estimate_on_all_rows() -> None:
    """assess reuses the estimate of all rows as the estimate of the labelled rows when no row is
    unlabelled: the two are equal there (and differ once some row is not labelled)."""
    from fourloops.evaluation.window_metrics import Calibrator, estimate

    calibrator = Calibrator.fit(_scores(2))
    window = _scores(3)
    everyone = estimate(window, calibrator)
    assert everyone == estimate(window, calibrator, labelled_only=True)
    pending = _scores(3)
    pending.unlabelled[:5] = 30
    assert estimate(pending, calibrator) != estimate(pending, calibrator, labelled_only=True)


def test_scores_that_differ_only_in_their_hour_blocks_are_different_keys() -> None:
    from dataclasses import replace

    a = _scores(1)
    counts = np.zeros((2, 50), dtype=np.int64)
    counts[0, 3] = 5
    blocked = replace(a, blocks={7: counts})
    assert assess_module._fingerprint(blocked) != assess_module._fingerprint(a)
    assert assess_module._fingerprint(blocked) == assess_module._fingerprint(
        replace(a, blocks={7: counts.copy()})
    )
    assert assess_module._fingerprint(blocked) != assess_module._fingerprint(replace(a, blocks={8: counts}))
