"""Contract compilation: one contract, two validators that always agree.

``compile_contract(contract)`` gives an object with ``validate_batch(table)``
(vectorised, Polars) and ``validate_row(mapping)`` (per request, microseconds);
``json_schema`` gives the OpenAPI schema, ``diff_contracts`` the breaking
changes between versions and ``observe_schema``/``compare_schemas`` the
schema drift of a source. The shared semantics are documented in
:mod:`fourloops.contracts.row`.
"""

from __future__ import annotations

from fourloops.contracts.batch import BatchResult, BatchValidator, FieldCoverage
from fourloops.contracts.compat import Change, diff_contracts
from fourloops.contracts.compiled import CompiledContract, compile_contract
from fourloops.contracts.drift import Finding, compare_schemas, observe_schema
from fourloops.contracts.jsonschema import json_schema
from fourloops.contracts.row import RowResult, RowValidator

__all__ = [
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
