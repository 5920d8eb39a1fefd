"""A contract compiled once into both of its validators and its JSON Schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fourloops.contracts.batch import BatchResult, BatchValidator
from fourloops.contracts.jsonschema import json_schema
from fourloops.contracts.row import RowResult, RowValidator
from fourloops.definitions.contract import Contract

__all__ = ["CompiledContract", "compile_contract"]


class CompiledContract:
    """The batch and row validators of one contract, sharing its semantics.

    >>> import fourloops as fl
    >>> from fourloops.contracts import compile_contract
    >>> c = compile_contract(fl.Contract({"n": fl.Int(min=0)}))
    >>> c.validate_row({"n": "3"}).values
    {'n': 3}
    """

    def __init__(self, contract: Contract, *, requests: bool = False) -> None:
        self.contract = contract
        self.batch = BatchValidator(contract)
        #: ``requests``: rows are JSON requests, read strictly unless the contract is lenient.
        self.row = RowValidator(contract, strict=requests and not contract.lenient)

    def __repr__(self) -> str:
        return f"CompiledContract({self.contract!r})"

    def validate_batch(self, data: Any) -> BatchResult:
        """Validate a ``pyarrow.Table`` or ``polars.DataFrame``."""
        return self.batch.validate_batch(data)

    def validate_row(self, row: Mapping[str, Any]) -> RowResult:
        """Validate one mapping of field -> value."""
        return self.row.validate_row(row)

    def check_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Normalised values of a valid row, else raise ``ContractViolation``."""
        return self.row.check_row(row)

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (OpenAPI 3.1) of one row."""
        return json_schema(self.contract)


def compile_contract(contract: Contract, *, requests: bool = False) -> CompiledContract:
    """Compile ``contract`` into its batch and row validators.

    With ``requests=True`` the row validator reads JSON requests: strictly, as
    the JSON Schema says, unless the contract is ``lenient``.
    """
    return CompiledContract(contract, requests=requests)
