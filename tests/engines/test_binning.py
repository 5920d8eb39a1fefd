"""The table lookup of a value's bin is the binary search's answer, exactly, ties included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fourloops.engines.binning import MAX_CANDIDATES, BinLookup

_FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def _edges(draw: st.DrawFn) -> np.ndarray:
    """Sorted edges: spread or crowded, far from zero or around it, with repeats."""
    k = draw(st.integers(1, 150))
    offset = draw(st.sampled_from([0.0, 1.0, -1e6, 1e9, 1e-300]))
    spread = draw(st.sampled_from([1e-9, 1e-3, 1.0, 1e6, 1e308]))
    raw = draw(hnp.arrays(np.float64, k, elements=st.floats(-1.0, 1.0)))
    if draw(st.booleans()):  # a heavy tail: most edges crowded near the start
        raw = np.sign(raw) * np.abs(raw) ** 8
    edges = np.sort(offset + spread * raw)
    if k > 3 and draw(st.booleans()):  # repeated edges (an integer column's quantiles)
        edges[1:3] = edges[1]
    return np.sort(edges)


@settings(max_examples=300, deadline=None)
@given(edges=_edges(), data=st.data())
def test_the_lookup_is_the_binary_search(edges: np.ndarray, data: st.DataObject) -> None:
    lookup = BinLookup(tuple(edges))
    at = edges[data.draw(hnp.arrays(np.int64, 50, elements=st.integers(0, edges.size - 1)))]
    with np.errstate(over="ignore", invalid="ignore"):  # edges up to 1e308 apart: an infinite spread
        spread = edges[-1] - edges[0]
        values = np.concatenate(
            [
                at,  # exactly on an edge: the bin the edge closes
                np.nextafter(at, np.inf),
                np.nextafter(at, -np.inf),
                edges[0] + spread * data.draw(hnp.arrays(np.float64, 200, elements=st.floats(-0.5, 1.5))),
                data.draw(hnp.arrays(np.float64, 20, elements=_FLOATS)),  # anything, outliers of any size
            ]
        )
    values = values[np.isfinite(values)]  # the lookup takes finite values (the caller drops the rest)
    expected = np.searchsorted(edges, values, side="left")
    assert np.array_equal(lookup(values), expected)


def test_common_edges_take_the_table_and_a_crowded_spot_falls_back_to_the_search() -> None:
    quantiles = np.quantile(np.random.default_rng(0).normal(size=5000), np.linspace(0.01, 0.99, 99))
    lookup = BinLookup(tuple(quantiles))
    assert lookup.table is not None and lookup.table[4].shape[0] <= MAX_CANDIDATES
    x = np.random.default_rng(1).normal(size=100_000)
    assert np.array_equal(lookup(x), np.searchsorted(quantiles, x, side="left"))
    crowded = np.concatenate([np.linspace(0.0, 1e-12, 50), [1.0]])  # 50 edges in a trillionth of the range
    assert BinLookup(tuple(crowded)).table is None
    assert BinLookup((0.0, 1.0)).table is None  # too few edges to gain
    huge = np.arange(-4, 5) * 2.5e307  # -1e308 to 1e308: a range that overflows takes the binary search
    assert BinLookup(tuple(huge)).table is None
    x = np.array([-1e308, 0.0, 1.0, 6e307, 1e308])
    assert np.array_equal(BinLookup(tuple(huge))(x), np.searchsorted(huge, x, side="left"))
