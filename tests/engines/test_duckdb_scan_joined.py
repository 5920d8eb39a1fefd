"""A scan whose relation is a join (the event log with its labels) reads the join only where a query
needs a joined column, and its summaries and samples are those of the joined relation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from fourloops.engines import duckdb_summaries
from fourloops.engines.duckdb_scan import DuckDBScan, Joined
from fourloops.engines.summaries import ScorePlan, Summaries, SummaryPlan, TimeWindows

T0 = datetime(2024, 1, 1, tzinfo=UTC)
JOINED = Joined("ev_alone", frozenset({"label_number"}))


def _tables(n: int = 200_000, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """Events over 5 days in time order (several windows a streamed batch), 70 % of them labelled."""
    rng = np.random.default_rng(seed)
    ids = [f"r{i:07d}" for i in range(n)]
    at = [T0 + timedelta(seconds=int(s)) for s in np.sort(rng.integers(0, 5 * 86_400, n))]
    x = rng.normal(size=n)
    x[rng.random(n) < 0.02] = np.nan
    k = rng.choice(["a", "b", "c", "d"], n).tolist()
    events = pa.table(
        {
            "request_id": ids,
            "at": pa.array(at, pa.timestamp("us", "UTC")),
            "x": x,
            "k": k,
            "route": rng.choice(["champion", "canary"], n, p=[0.9, 0.1]).tolist(),
            "score": rng.random(n),
        }
    )
    labelled = np.flatnonzero(rng.random(n) < 0.7)
    labels = pa.table(
        {
            "request_id": [ids[i] for i in labelled],
            "label_number": (rng.random(labelled.size) < 0.4).astype(float),
        }
    )
    return events, labels


def _scan(joined: Joined | None) -> DuckDBScan:
    events, labels = _tables()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("events_arrow", events)
    con.register("labels_arrow", labels)
    con.execute("CREATE TEMP VIEW ev_alone AS SELECT * FROM events_arrow")
    con.execute(
        "CREATE TEMP VIEW ev AS SELECT e.*, l.label_number FROM ev_alone e "
        "LEFT JOIN labels_arrow l USING (request_id)"
    )
    for day, (low, high) in enumerate([(0, 2), (2, 3), (3, 5)]):  # parts of uneven days, as by rows
        since, until = (f"TIMESTAMPTZ '{(T0 + timedelta(days=d)).isoformat()}'" for d in (low, high))
        con.execute(
            f"CREATE TEMP VIEW ev_{day} AS SELECT e.*, l.label_number FROM "
            f'(SELECT * FROM ev_alone WHERE "at" >= {since} AND "at" < {until}) e '
            "LEFT JOIN labels_arrow l USING (request_id)"
        )
    return DuckDBScan(con, register=lambda _: "ev", joined=joined)


PLAN = SummaryPlan(
    numeric={"x": (-1.0, 0.0, 0.5, 2.0), "score": (0.25, 0.5, 0.75)},
    categorical={"k": ("a", "b", "c")},
    windows=TimeWindows("at", T0, timedelta(days=1)),
    score=ScorePlan("binary", "score", "label_number", grid=100),
)


@pytest.fixture
def read(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The relation each of the summaries' queries read."""
    seen: dict[str, list[str]] = {}
    for name in ("_aggregate", "_count_categorical", "_batches"):
        original = getattr(duckdb_summaries, name)

        def spy(con: Any, relation: Any, *args: Any, _name: str = name, _f: Any = original) -> Any:
            # the streamed scan is handed the relations it reads one after another
            seen.setdefault(_name, []).extend([relation] if isinstance(relation, str) else relation)
            return _f(con, relation, *args)

        monkeypatch.setattr(duckdb_summaries, name, spy)
    return seen


def _flat(summaries: Summaries) -> Iterator[tuple[Any, ...]]:
    for key, info in sorted(summaries.groups.items(), key=str):
        yield key, info.rows, info.start, info.end
        for column, by_key in summaries.numeric.items():
            s = by_key[key]
            yield column, s.counts.tolist(), s.nulls, s.distinct, s.minimum, s.maximum
        for column, by_key in summaries.categorical.items():
            c = by_key[key]
            yield column, c.counts.tolist(), c.unseen, c.nulls, dict(c.unseen_values)
        score = summaries.scores[key]
        yield "score", score.positives.tolist(), score.negatives.tolist(), score.unlabelled.tolist()


@pytest.mark.parametrize("where", [None, "route = 'champion'"])
def test_only_the_streamed_scan_of_the_score_reads_the_join(
    read: dict[str, list[str]], where: str | None
) -> None:
    with _scan(JOINED) as scan:
        got = scan.summarize(PLAN, where=where)
    assert read == {"_aggregate": ["ev_alone"], "_count_categorical": ["ev_alone"], "_batches": ["ev"]}
    with _scan(None) as scan:
        expected = scan.summarize(PLAN, where=where)
    assert list(_flat(got)) == list(_flat(expected))
    assert sum(got.groups[(w, None, None)].rows for w in range(5)) == sum(
        expected.groups[(w, None, None)].rows for w in range(5)
    )


def test_a_condition_on_a_joined_column_keeps_the_join(read: dict[str, list[str]]) -> None:
    with _scan(JOINED) as scan:
        got = scan.summarize(PLAN, where="Label_Number IS NOT NULL")
        assert scan.rows("label_number IS NULL") + scan.rows("label_number IS NOT NULL") == scan.rows()
    assert set(read["_aggregate"]) == set(read["_count_categorical"]) == set(read["_batches"]) == {"ev"}
    with _scan(None) as scan:
        expected = scan.summarize(PLAN, where="label_number IS NOT NULL")
    assert list(_flat(got)) == list(_flat(expected))


def test_without_a_score_nothing_reads_the_join(read: dict[str, list[str]]) -> None:
    with _scan(JOINED) as scan:
        scan.summarize(SummaryPlan(numeric=PLAN.numeric, categorical=PLAN.categorical, windows=PLAN.windows))
    assert {r for relations in read.values() for r in relations} == {"ev_alone"}


def test_samples_and_time_range_are_those_of_the_joined_relation() -> None:
    where = "route = 'champion' AND \"at\" < TIMESTAMPTZ '2024-01-03 00:00:00+00:00'"
    with _scan(JOINED) as lean, _scan(None) as full:
        assert lean._reading(["x", "k"], where) == "ev_alone"
        assert lean._reading(["x", "label_number"], where) == "ev"
        assert lean._reading(["x"], "* IS NOT NULL") == "ev"  # in doubt, the join
        assert lean.time_range("at") == full.time_range("at")
        assert lean.rows(where) == full.rows(where)
        a = lean.sample(["request_id", "x", "k"], 1_000, where=where, seed=3)
        b = full.sample(["request_id", "x", "k"], 1_000, where=where, seed=3)
        assert a.num_rows == b.num_rows == 1_000
        assert lean.sample(["x", "label_number"], 10, where=where).column_names == ["x", "label_number"]


@pytest.mark.parametrize("where", [None, "route = 'champion'", "label_number IS NOT NULL"])
def test_a_streamed_scan_in_parts_reads_them_in_turn_and_counts_the_same(
    read: dict[str, list[str]], where: str | None
) -> None:
    """Parts that together hold the joined relation's rows give the summaries of the whole join."""
    with _scan(Joined("ev_alone", frozenset({"label_number"}), ("ev_0", "ev_1", "ev_2"))) as scan:
        got = scan.summarize(PLAN, where=where)
    assert read["_batches"] == ["ev_0", "ev_1", "ev_2"]
    with _scan(None) as scan:
        expected = scan.summarize(PLAN, where=where)
    assert list(_flat(got)) == list(_flat(expected))
