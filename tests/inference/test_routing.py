from __future__ import annotations

import doctest
import json
import math
import random
import subprocess
import sys
from collections import Counter

import pytest

from fourloops.errors import ConfigError
from fourloops.inference.routing import Route, RoutingTable, unit_position

N_UNITS = 100_000


@pytest.fixture(scope="module")
def unit_ids() -> list[str]:
    rng = random.Random(1)
    return [f"{rng.getrandbits(64):016x}" for _ in range(N_UNITS)]


def within_three_standard_errors(count: int, n: int, share: float) -> bool:
    standard_error = math.sqrt(share * (1.0 - share) / n)
    return abs(count / n - share) <= 3 * standard_error


def test_champion_only() -> None:
    assert RoutingTable(champion=7).route("u") == Route(7, "champion", 1.0, None)


def test_same_unit_same_route() -> None:
    table = RoutingTable(champion=1, canary=2, canary_share=0.5, model="churn")
    first = [table.route(f"user-{i}") for i in range(1000)]
    again = RoutingTable(champion=1, canary=2, canary_share=0.5, model="churn")
    assert [again.route(f"user-{i}") for i in range(1000)] == first


def test_hash_is_stable_across_processes() -> None:
    # A fresh interpreter (another PYTHONHASHSEED) puts units at the same positions.
    code = "from fourloops.inference.routing import unit_position; print(unit_position('churn', 'user-42'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345"},
    ).stdout
    assert float(out) == unit_position("churn", "user-42")


def test_unit_position_is_pinned() -> None:
    # Changing the hash would reshuffle every running experiment; pin it.
    assert unit_position("churn", "user-42") == 0.5746674166034677


def test_positions_are_in_unit_interval_and_depend_on_the_model() -> None:
    positions = [unit_position("a", str(i)) for i in range(1000)]
    assert all(0.0 <= p < 1.0 for p in positions)
    assert positions != [unit_position("b", str(i)) for i in range(1000)]


@pytest.mark.parametrize("share", [0.01, 0.1, 0.5, 0.9])
def test_canary_share_is_respected(unit_ids: list[str], share: float) -> None:
    table = RoutingTable(champion=1, canary=2, canary_share=share, model="m")
    routes = [table.route(unit) for unit in unit_ids]
    canary = sum(route.name == "canary" for route in routes)
    assert within_three_standard_errors(canary, N_UNITS, share)
    for route in routes:
        if route.name == "canary":
            assert (route.version, route.propensity) == (2, share)
        else:
            assert (route.version, route.name, route.propensity) == (1, "champion", 1.0 - share)


def test_ab_shares_are_respected(unit_ids: list[str]) -> None:
    shares = {3: 0.2, 1: 0.5, 2: 0.3}
    table = RoutingTable(champion=1, ab=shares, model="m")
    routes = [table.route(unit) for unit in unit_ids]
    counts = Counter(route.version for route in routes)
    for version, share in shares.items():
        assert within_three_standard_errors(counts[version], N_UNITS, share)
    for route in routes:
        assert route.name == f"ab:{route.version}"
        assert route.propensity == shares[route.version]


def test_ab_does_not_depend_on_dict_order() -> None:
    one = RoutingTable(champion=1, ab={1: 0.5, 2: 0.5})
    other = RoutingTable(champion=1, ab={2: 0.5, 1: 0.5})
    assert [one.route(str(i)) for i in range(500)] == [other.route(str(i)) for i in range(500)]


def test_ab_with_an_empty_arm_never_routes_to_it(unit_ids: list[str]) -> None:
    table = RoutingTable(champion=1, ab={1: 0.0, 2: 1.0})
    assert {table.route(unit).version for unit in unit_ids[:5000]} == {2}


def test_ab_shares_a_hair_under_one_still_route() -> None:
    table = RoutingTable(champion=1, ab={1: 0.1, 2: 0.2, 3: 0.7 - 5e-10})
    assert table.route("x").version in {1, 2, 3}


def test_canary_ramp_is_monotone(unit_ids: list[str]) -> None:
    at_10 = RoutingTable(champion=1, canary=2, canary_share=0.1, model="m")
    at_20 = RoutingTable(champion=1, canary=2, canary_share=0.2, model="m")
    canary_10 = {unit for unit in unit_ids if at_10.route(unit).name == "canary"}
    canary_20 = {unit for unit in unit_ids if at_20.route(unit).name == "canary"}
    assert canary_10 < canary_20
    assert within_three_standard_errors(len(canary_20), N_UNITS, 0.2)


def test_canary_at_full_and_zero_share() -> None:
    full = RoutingTable(champion=1, canary=2, canary_share=1.0)
    assert {full.route(str(i)) for i in range(200)} == {Route(2, "canary", 1.0)}
    paused = RoutingTable(champion=1, canary=2, canary_share=0.0)
    assert {paused.route(str(i)) for i in range(200)} == {Route(1, "champion", 1.0)}


def test_shadow_never_changes_the_answer(unit_ids: list[str]) -> None:
    plain = RoutingTable(champion=1, canary=2, canary_share=0.3, model="m")
    shadowed = RoutingTable(champion=1, canary=2, canary_share=0.3, shadow=9, model="m")
    for unit in unit_ids[:5000]:
        route = shadowed.route(unit)
        assert route.shadow_version == 9
        assert (route.version, route.name, route.propensity) == (
            plain.route(unit).version,
            plain.route(unit).name,
            plain.route(unit).propensity,
        )


def test_versions_lists_everything_to_load() -> None:
    assert RoutingTable(champion=1, canary=2, canary_share=0.1, shadow=3).versions() == {1, 2, 3}
    assert RoutingTable(champion=1, canary=2).versions() == {1}
    assert RoutingTable(champion=1, ab={4: 0.5, 5: 0.5}).versions() == {1, 4, 5}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"champion": 1, "canary": 2, "canary_share": 1.5}, "canary_share must be a share in"),
        ({"champion": 1, "canary": 2, "canary_share": -0.1}, "canary_share must be a share in"),
        ({"champion": 1, "canary": 2, "canary_share": math.nan}, "canary_share must be a share in"),
        ({"champion": 1, "canary_share": 0.1}, "no canary version"),
        ({"champion": 1, "canary": 1, "canary_share": 0.1}, "also the champion"),
        ({"champion": "1"}, "champion must be a version"),
        ({"champion": 1, "shadow": 2.0}, "shadow must be a version"),
        ({"champion": 1, "ab": {1: 0.5, 2: 0.6}}, "must sum to 1, got 1.1"),
        ({"champion": 1, "ab": {1: 1.5, 2: -0.5}}, "share in"),
        ({"champion": 1, "ab": {}}, "must map versions"),
        ({"champion": 1, "ab": {"1": 1.0}}, "ab version must be a version"),
        ({"champion": 1, "canary": 2, "ab": {1: 1.0}}, "not both"),
        ({"champion": 1, "model": 3}, "model must be a name"),
    ],
)
def test_invalid_tables_are_refused_clearly(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RoutingTable(**settings)  # type: ignore[arg-type]


def test_round_trips_through_json() -> None:
    for table in (
        RoutingTable(champion=1, canary=2, canary_share=0.25, shadow=3, model="churn"),
        RoutingTable(champion=1, ab={1: 0.5, 2: 0.5}, model="churn"),
    ):
        again = RoutingTable.from_dict(json.loads(json.dumps(table.to_dict())))
        assert again == table
        assert [again.route(str(i)) for i in range(100)] == [table.route(str(i)) for i in range(100)]


def test_from_dict_refuses_garbage() -> None:
    with pytest.raises(ConfigError, match="invalid routing table"):
        RoutingTable.from_dict({"canary": 2})
    with pytest.raises(ConfigError, match="invalid routing table"):
        RoutingTable.from_dict({"champion": 1, "ab": {"x": 1.0}})


def test_doctests() -> None:
    import fourloops.inference.routing as module

    assert doctest.testmod(module).failed == 0


def test_package_exports() -> None:
    # The inference package's curated surface (the protection and routing primitives so far).
    import fourloops.inference as inference

    assert set(inference.__all__) == {
        "CircuitBreaker",
        "CircuitState",
        "Decision",
        "LocalRateLimiter",
        "ModelClientLimiter",
        "RateLimiter",
        "RateLimits",
        "RedisRateLimiter",
        "Route",
        "RoutingTable",
        "TokenBucket",
        "unit_position",
    }
    for name in inference.__all__:
        assert getattr(inference, name) is not None
