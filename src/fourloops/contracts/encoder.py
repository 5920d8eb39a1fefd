"""The model-input encoder: how validated values become the numbers a model sees.

Compiled once from the contract's fields of a model's inputs and stored with
the model's artifact, so that training and serving encode alike by
construction:

* a number (``Float``, ``Int``) is its float value, null is NaN;
* a ``Bool`` is 1.0 or 0.0, null is NaN;
* a ``Category`` is its position among the contract's categories (plus
  ``__unknown__`` last under ``unknown="map"``); a value outside them, or null,
  is NaN (a model's "missing").

Training encodes a batch with :meth:`InputEncoder.frame` (pandas, categories as
``Categorical`` with exactly the contract's categories, which is what LightGBM
and XGBoost learn category codes from); serving encodes one request with
:meth:`InputEncoder.row`, the same codes on a path without a DataFrame.

>>> import fourloops as fl, polars as pl
>>> enc = InputEncoder.from_fields({"origin": fl.Category(["EWR", "JFK"]), "late": fl.Bool(),
...                                 "temp": fl.Float()})
>>> enc.row({"origin": "JFK", "late": True, "temp": 41.0})
[1.0, 1.0, 41.0]
>>> enc.row({"origin": "SFO", "late": None, "temp": None})
[nan, nan, nan]
>>> enc.frame(pl.DataFrame({"origin": ["JFK"], "late": [True], "temp": [41.0]}))["origin"].cat.codes.tolist()
[1]
>>> InputEncoder.from_dict(enc.to_dict()) == enc
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fourloops.definitions import UNKNOWN_CATEGORY, Bool, Category, Field, Float, Int
from fourloops.definitions.fields import UnknownPolicy
from fourloops.errors import SchemaError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["CATEGORY", "FLAG", "NUMBER", "InputColumn", "InputEncoder"]

#: Column kinds of an encoder.
NUMBER, FLAG, CATEGORY = "number", "bool", "category"
_KINDS = (NUMBER, FLAG, CATEGORY)
_NAN = math.nan


@dataclass(frozen=True)
class InputColumn:
    """One model input: its name, kind and (for a category) the categories in code order."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == CATEGORY:
            out["categories"] = list(self.categories)
        return out


def _column(name: str, f: Field) -> InputColumn:
    if isinstance(f, Category):
        cats = list(f.categories) + ([UNKNOWN_CATEGORY] if f.unknown == UnknownPolicy.MAP else [])
        return InputColumn(name, CATEGORY, tuple(cats))
    if isinstance(f, Bool):
        return InputColumn(name, FLAG)
    if isinstance(f, Float | Int):
        return InputColumn(name, NUMBER)
    raise SchemaError(f"feature {name!r}: type {type(f).__name__} cannot be a model input")


def _number(value: Any) -> float:
    return _NAN if value is None else float(value)


def _flag(value: Any) -> float:
    return _NAN if value is None else (1.0 if value else 0.0)


def _category(table: dict[str, float]) -> Callable[[Any], float]:
    def encode(value: Any) -> float:
        return _NAN if value is None else table.get(value, _NAN)

    return encode


@dataclass(frozen=True)
class InputEncoder:
    """The ordered model inputs and how each is encoded (see the module docstring); immutable."""

    columns: tuple[InputColumn, ...]
    _codes: tuple[tuple[str, Callable[[Any], float]], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise SchemaError(f"model inputs repeat a name: {names}")
        for c in self.columns:
            if c.kind not in _KINDS:
                raise SchemaError(f"model input {c.name!r}: unknown kind {c.kind!r}")
        codes: list[Callable[[Any], float]] = []
        for c in self.columns:
            if c.kind == CATEGORY:
                codes.append(_category({value: float(i) for i, value in enumerate(c.categories)}))
            else:
                codes.append(_flag if c.kind == FLAG else _number)
        object.__setattr__(self, "_codes", tuple(zip([c.name for c in self.columns], codes, strict=True)))

    @classmethod
    def from_fields(cls, fields: Mapping[str, Field]) -> InputEncoder:
        """The encoder of these contract fields, in their order."""
        return cls(tuple(_column(name, f) for name, f in fields.items()))

    @property
    def names(self) -> list[str]:
        """The input names, in the order the model sees them."""
        return [c.name for c in self.columns]

    def row(self, values: Mapping[str, Any]) -> list[float]:
        """One row's inputs as floats, in order (serving's path: no DataFrame)."""
        try:
            return [encode(values[name]) for name, encode in self._codes]
        except KeyError as err:
            raise SchemaError(f"input lacks feature {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise SchemaError(f"input features must be numbers: {err}") from err

    def frame(self, frame: pl.DataFrame) -> pd.DataFrame:
        """A batch's inputs as a pandas frame: numbers as float64, categories as a fixed ``Categorical``."""
        import numpy as np
        import pandas as pd
        import polars as pl

        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            raise SchemaError(f"input lacks feature column(s) {', '.join(missing)}")
        columns: dict[str, Any] = {}
        for c in self.columns:
            series = frame[c.name]
            if c.kind == CATEGORY:
                known = series.cast(pl.String)
                known = known.set(~known.is_in(list(c.categories)), None)  # outside them: missing
                columns[c.name] = pd.Categorical(known.to_list(), categories=list(c.categories))
            else:
                columns[c.name] = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
        return pd.DataFrame(columns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (stored in the artifact's metadata as ``inputs``)."""
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputEncoder:
        """The encoder of a :meth:`to_dict` mapping (SchemaError when it is not one)."""
        try:
            return cls(
                tuple(
                    InputColumn(str(c["name"]), str(c["kind"]), tuple(c.get("categories") or ()))
                    for c in data["columns"]
                )
            )
        except (KeyError, TypeError) as err:
            raise SchemaError(f"invalid model-input encoder {data!r}: {err}") from err
