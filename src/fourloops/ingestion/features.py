"""Feature references: ``"view:field"`` strings and their resolution."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fourloops.definitions import FeatureView, Field, Model, String, Timestamp
from fourloops.errors import NotFoundError, SchemaError

__all__ = ["model_inputs", "resolve_features"]


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
