"""The evaluation loop's operations on a project: training/serving parity, off-policy evaluation of routes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fourloops.evaluation.parity import DEFAULT_TOLERANCE, ParityReport, compare_predictions
from fourloops.project.serving import ServingOperations

if TYPE_CHECKING:
    import pyarrow as pa

    from fourloops.evaluation.ope import OPEResult

__all__ = ["EvaluationOperations"]

#: Column the event time takes in the re-scored entity rows (made unique against the request fields).
_AT = "served_at"


class EvaluationOperations(ServingOperations):
    """Judging what the server did, from the event log."""

    def query_events(
        self,
        query: str,
        *,
        model: str | None = None,
        compact: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pa.Table:
        """SQL over the typed event log (views ``events`` with labels joined, and ``labels``).

        The query runs in the batch engine, out of core, on the compacted
        Parquet files (compacted first unless ``compact=False``); only the
        result comes back. Quote ``"at"`` (a keyword in SQL). With ``since`` /
        ``until`` the engine reads only the partitions that can hold events of
        that range (a few outside it too: filter on ``"at"``).

        >>> project.query_events('SELECT route, count(*) FROM events GROUP BY route')  # doctest: +SKIP
        """
        if compact:
            self.compact_events()
        return self.engine.query_events(self.event_tables, query, model=model, since=since, until=until)

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

    def ope(
        self,
        model: str,
        policy: Any,
        *,
        reward: str = "label_number",
        since: datetime | None = None,
        until: datetime | None = None,
        replicates: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        min_ess: float = 100.0,
        max_unsupported: float = 0.05,
        compact: bool = True,
    ) -> OPEResult:
        """Off-policy evaluation of a routing policy (or of a decision model's policy) on served requests.

        For a decision model (``task="policy"``) each served request is a round whose action is the
        action served, with the propensity the served policy gave it on the route that answered,
        and whose action distribution is checked (:func:`fourloops.evaluation.ope.read_logs`);
        ``policy`` is one row per action (``action,probability``) or one row per request, action
        and position (``round_id,action,position,probability``; the round id is the request id).
        Otherwise:

        Each served request is a round: its action is the route that answered it (``champion``,
        ``canary``, ``ab:<version>``), logged at one position, with the route's logged
        ``propensity`` (the share of units routed that way), and its reward the request's
        label (``reward``: a column of the ``events`` view, default ``label_number``). Requests
        without a label yet, and shadow copies (no propensity), are left out and counted in the
        notes; a request counts once (its first event). ``policy`` is one row per route with one
        probability column (``route,probability``; a frame or a CSV/Parquet path), e.g. the
        split a candidate routing would use. See :func:`fourloops.evaluation.ope.ope` for the
        estimators, intervals and verdict.

        Routing draws a unit's route from a hash of its id, so the propensities are the true
        assignment probabilities only while the split did not change; evaluate a period with one
        split (``since``/``until``). Leaving unlabelled requests out assumes that whether a label
        has arrived does not depend on the route; prefer a period whose labels are all due.
        """
        from fourloops.definitions import Task
        from fourloops.errors import SchemaError
        from fourloops.evaluation.ope import align, evaluate, read_logs, read_policy

        decisions = (
            self.model(model).task is Task.POLICY
        )  # an unknown model: an error naming the defined ones
        if compact:
            self.compact_events()
        columns = self.query_events("SELECT * FROM events LIMIT 0", model=model, compact=False).column_names
        if "propensity" not in columns:  # no compacted events: the view has only its base columns
            raise SchemaError(f"model {model!r} has no served requests in the event log")
        if reward not in columns:
            raise SchemaError(
                f"the event log has no column {reward!r} for the reward (it has: {', '.join(columns)})"
            )
        conditions = ["route <> 'shadow'", "propensity IS NOT NULL"]
        if since is not None:
            conditions.append(f"\"at\" >= TIMESTAMPTZ '{since.astimezone(UTC).isoformat()}'")
        if until is not None:
            conditions.append(f"\"at\" < TIMESTAMPTZ '{until.astimezone(UTC).isoformat()}'")
        quoted = '"' + reward.replace('"', '""') + '"'
        # A decision model's action is the action served (its propensity: under the route that answered,
        # each round's own logging policy), with the distribution it was drawn from, checked on reading.
        chosen = (
            "request_id AS round_id, action, distribution, distribution_rest"
            if decisions
            else "route AS action"
        )
        events = self.query_events(
            f"SELECT request_id, {chosen}, propensity, CAST({quoted} AS DOUBLE) AS reward, "
            f"coalesce(fallback, false) AS fallback FROM events WHERE {' AND '.join(conditions)} "
            'QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY "at") = 1 ORDER BY "at", request_id',
            model=model,
            compact=False,
        )
        served = events.num_rows
        labelled = events.filter(events["reward"].is_valid())
        if labelled.num_rows == 0:
            raise SchemaError(
                f"model {model!r} has no served request with a {reward!r} in the event log"
                + (f" ({served} served, none labelled yet)" if served else "")
            )
        notes = []
        if served > labelled.num_rows:
            notes.append(
                f"{served - labelled.num_rows} of {served} served requests have no {reward!r} yet: left out"
            )
        fallbacks = sum(labelled["fallback"].to_pylist())
        if fallbacks and not decisions:
            notes.append(
                f"{fallbacks} requests were answered by the fallback; their route is still their action"
            )
        elif fallbacks:
            notes.append(
                f"{fallbacks} requests were answered by the fallback (their action logged as certain)"
            )
        logs = read_logs(labelled, what="the event log")
        target = read_policy(policy)
        rounds = align(logs, target)
        return evaluate(
            rounds,
            replicates=replicates,
            confidence=confidence,
            seed=seed,
            min_ess=min_ess,
            max_unsupported=max_unsupported,
            settings={
                "model": model,
                "reward": reward,
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
                "served": served,
            },
            notes=notes,
        )
