"""Feature references: ``"view:field"`` strings and their resolution."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping

from fourloops.definitions import Contract, FeatureView, Field, Model, String, Timestamp
from fourloops.errors import NotFoundError, SchemaError

__all__ = ["model_inputs", "resolve_features", "serving_contract"]


def resolve_features(refs: Iterable[str] | str, views: Mapping[str, FeatureView]) -> dict[str, list[str]]:
    """Group ``["weather:temp", "weather:visib", "planes:*"]`` by view, checking each exists.

    ``"view:*"`` stands for every feature of the view. Order is kept; duplicates are removed.
    """
    if isinstance(refs, str):
        refs = [r for r in refs.split(",") if r.strip()]
    grouped: dict[str, list[str]] = {}
    for ref in refs:
        ref = ref.strip()
        view_name, sep, field = ref.partition(":")
        if not sep or not view_name or not field:
            raise SchemaError(f"feature reference {ref!r} must look like 'view:field'")
        view = views.get(view_name)
        if view is None:
            known = ", ".join(sorted(views)) or "none"
            raise NotFoundError(f"feature reference {ref!r}: no feature view {view_name!r} (known: {known})")
        names = list(view.features) if field == "*" else [field]
        for name in names:
            if name not in view.features:
                known = ", ".join(view.features)
                raise NotFoundError(
                    f"feature reference {ref!r}: view {view_name!r} has no feature {name!r} "
                    f"(features: {known})"
                )
            chosen = grouped.setdefault(view_name, [])
            if name not in chosen:
                chosen.append(name)
    if not grouped:
        raise SchemaError("no features requested")
    return grouped


def model_inputs(model: Model, views: dict[str, FeatureView]) -> dict[str, Field]:
    """The model's inputs in order: request fields (except free text), then view features."""
    out: dict[str, Field] = {}
    if model.request is not None:
        for name, f in model.request.fields.items():
            if not isinstance(f, String | Timestamp):
                out[name] = f
    grouped = resolve_features(model.features, views) if model.features else {}
    for view_name, names in grouped.items():
        for name in names:
            if name in out:
                raise SchemaError(
                    f"model {model.name!r}: feature {name!r} comes from both the request "
                    f"and view {view_name!r}"
                )
            out[name] = views[view_name].features[name]
    return out


def serving_contract(model: Model, views: Mapping[str, FeatureView]) -> Contract:
    """What a request to ``model`` may hold: its request fields, and its view features (optional).

    A caller may send feature values itself instead of having them read from
    the online store, so each view feature is a field of this contract too,
    nullable. Unknown fields are refused. Every view's join keys must be
    request fields (they are what the online store is read by).
    """
    inputs = model_inputs(model, dict(views))
    grouped = resolve_features(model.features, views) if model.features else {}
    fields = dict(model.request.fields) if model.request is not None else {}
    for names in grouped.values():
        for name in names:
            if name not in fields:
                optional = copy.copy(inputs[name])
                optional.nullable = True
                fields[name] = optional
    for view_name in grouped:
        for key in views[view_name].entity.join_keys:
            if key not in fields:
                raise SchemaError(
                    f"model {model.name!r}: join key {key!r} of view {view_name!r} is not a request field"
                )
    request = model.request
    tokens: list[str | float] = list(request.null_tokens) if request is not None else []
    if request is not None and request.nan_is_null:
        tokens.append(math.nan)
    return Contract(fields, null_tokens=tokens, extra="forbid", lenient=bool(request and request.lenient))
