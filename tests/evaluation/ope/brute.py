"""The estimators written out as plain loops over rounds, independent of the vectorised code."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

__all__ = ["brute_force"]

#: (action, position, reward, propensity, round) per logged round.
Round = tuple[int, int, float, float, int]


def brute_force(
    logs: Sequence[Round], actions: Sequence[int], pi: Callable[[int, int, int], float]
) -> dict[str, float | None]:
    """DM, IPS, SNIPS, DR and the diagnostics; ``pi(round, action, position)`` is the target probability."""
    n = len(logs)
    cell_sum: dict[tuple[int, int], float] = defaultdict(float)
    cell_n: dict[tuple[int, int], int] = defaultdict(int)
    pos_sum: dict[int, float] = defaultdict(float)
    pos_n: dict[int, int] = defaultdict(int)
    for a, k, r, _, _ in logs:
        cell_sum[a, k] += r
        cell_n[a, k] += 1
        pos_sum[k] += r
        pos_n[k] += 1
    overall = sum(r for _, _, r, _, _ in logs) / n

    def q(a: int, k: int) -> float:
        if cell_n[a, k]:
            return cell_sum[a, k] / cell_n[a, k]
        if pos_n[k]:
            return pos_sum[k] / pos_n[k]
        return overall

    dm = ips = correction = total_w = total_w2 = unsupported = 0.0
    largest = 0.0
    for a, k, r, p, i in logs:
        dm += sum(pi(i, b, k) * q(b, k) for b in actions)
        w = pi(i, a, k) / p
        ips += w * r
        correction += w * (r - q(a, k))
        total_w += w
        total_w2 += w * w
        largest = max(largest, w)
        unsupported += sum(pi(i, b, k) for b in actions if not cell_n[b, k])
    return {
        "dm": dm / n,
        "ips": ips / n,
        "snips": ips / total_w if total_w > 0 else None,
        "dr": dm / n + correction / n,
        "ess": total_w**2 / total_w2 if total_w2 > 0 else 0.0,
        "max_weight_share": largest / total_w if total_w > 0 else 0.0,
        "unsupported_mass": unsupported / n,
    }
