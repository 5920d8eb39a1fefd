"""The evaluation loop's operations on a project (so far: training/serving parity)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fourloops.evaluation.parity import DEFAULT_TOLERANCE, ParityReport, compare_predictions
from fourloops.project.serving import ServingOperations

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EvaluationOperations"]

#: Column the event time takes in the re-scored entity rows (made unique against the request fields).
_AT = "served_at"


class EvaluationOperations(ServingOperations):
    """Judging what the server did, from the event log."""

    def query_events(self, query: str, *, model: str | None = None, compact: bool = True) -> pa.Table:
        """SQL over the typed event log (views ``events`` with labels joined, and ``labels``).

        The query runs in the batch engine, out of core, on the compacted
        Parquet files (compacted first unless ``compact=False``); only the
        result comes back. Quote ``"at"`` (a keyword in SQL).

        >>> project.query_events('SELECT route, count(*) FROM events GROUP BY route')  # doctest: +SKIP
        """
        if compact:
            self.compact_events()
        return self.engine.query_events(self.event_tables, query, model=model)

    def parity(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> ParityReport:
        """Re-score served predictions offline and compare (see :mod:`fourloops.evaluation.parity`).

        Each event of model ``name`` with ``since <= at < until`` is rebuilt
        from its logged request fields, its features are joined point-in-time
        at the event's time, and the version that answered scores it. Events
        the check cannot reproduce are counted by reason in ``skipped``: a
        fallback answered, the caller sent feature values itself, or an input
        is logged hashed (``sensitive``). The first event per request id counts.
        """
        import polars as pl

        from fourloops.contracts.encoder import InputEncoder
        from fourloops.ingestion.features import model_inputs

        model = self.model(name)
        inputs = model_inputs(model, self.feature_views)
        events = pl.from_arrow(self.events(model=name, since=since, until=until))
        assert isinstance(events, pl.DataFrame)
        events = events.unique("request_id", keep="first", maintain_order=True)
        skipped: dict[str, int] = {}
        fallback = events["fallback"]
        skipped["fallback"] = int(fallback.sum())
        events = events.filter(~fallback)
        if any(f.sensitive for f in inputs.values()):
            skipped["sensitive_inputs"] = events.height
            events = events.head(0)
        views = {ref.split(":")[0] for ref in model.features}
        rows: list[dict[str, Any]] = []
        kept: list[tuple[str, int, Any]] = []
        request_fields = list(model.request.fields) if model.request is not None else []
        at_column = _AT
        while at_column in request_fields:
            at_column += "_"
        caller_supplied = 0
        for rid, at, version, features, output, extra in events.select(
            "request_id", "at", "version", "features", "output", "extra"
        ).iter_rows():
            looked_up = json.loads(extra).get("features_status", {})
            if not views <= set(looked_up):  # the request carried view features itself
                caller_supplied += 1
                continue
            values = json.loads(features)
            rows.append({**{f: values.get(f) for f in request_fields}, at_column: at})
            kept.append((rid, int(version), json.loads(output)))
        skipped["caller_supplied_features"] = caller_supplied
        if not rows:
            return compare_predictions([], [], [], tolerance=tolerance, skipped=skipped)
        entities = pl.DataFrame(rows, infer_schema_length=None)
        frame = (
            self.dataset(entities, features=model.features, timestamp=at_column).to_polars()
            if model.features
            else entities
        )
        offline: list[Any] = [None] * len(kept)
        for version in sorted({v for _, v, _ in kept}):
            predictor = self.load_model(name, version)
            encoder = predictor.encoder or InputEncoder.from_fields(inputs)
            positions = [i for i, (_, v, _) in enumerate(kept) if v == version]
            scores = predictor.predict(encoder.frame(frame[positions]))
            for i, score in zip(positions, scores, strict=True):
                offline[i] = score.tolist() if hasattr(score, "tolist") else float(score)
        return compare_predictions(
            [rid for rid, _, _ in kept],
            [served for _, _, served in kept],
            offline,
            tolerance=tolerance,
            skipped=skipped,
        )
