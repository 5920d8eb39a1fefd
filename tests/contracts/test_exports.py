from __future__ import annotations

import fourloops.contracts as contracts


def test_public_names() -> None:
    assert sorted(contracts.__all__) == [
        "BatchResult",
        "BatchValidator",
        "Change",
        "CompiledContract",
        "FieldCoverage",
        "Finding",
        "RowResult",
        "RowValidator",
        "compare_schemas",
        "compile_contract",
        "diff_contracts",
        "json_schema",
        "observe_schema",
    ]
    assert all(hasattr(contracts, name) for name in contracts.__all__)
