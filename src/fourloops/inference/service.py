"""The request path of one model: validate, look up features, route, predict, log.

:class:`ModelService` holds everything one model needs to answer: the request
validator compiled from the model's contracts, the routing table and loaded
predictors (swapped atomically when the registry changes), the fallback, the
circuit breaker, and the event store. :meth:`ModelService.predict` answers a
list of instances; every answered prediction is appended to the event store
*before* the caller gets it back, so an acknowledged prediction is never lost.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fourloops.clock import Clock
from fourloops.contracts import compile_contract
from fourloops.definitions import FeatureView, Model, Task
from fourloops.definitions.lifecycle import RouteKind
from fourloops.errors import (
    ContractViolation,
    FourloopsError,
    ModelUnavailable,
    NotFoundError,
    StoreError,
)
from fourloops.inference.cache import PredictionCache
from fourloops.inference.calls import ModelCaller, Outcome, finite_or_none
from fourloops.inference.circuit import CircuitBreaker
from fourloops.inference.decisions import Decider, Decision
from fourloops.inference.eventlog import EventWriter, FeatureLogger
from fourloops.inference.inline import InlineGate
from fourloops.inference.request_ids import DuplicateRequestId, RequestIds
from fourloops.inference.routing import Route
from fourloops.inference.state import ServingState, read_serving_state
from fourloops.ingestion.features import model_inputs, resolve_features, serving_contract
from fourloops.ingestion.online import read_online_features
from fourloops.registry.models import ModelRegistry
from fourloops.storage.artifacts import ArtifactStore
from fourloops.storage.events import EventStore, PredictionEvent
from fourloops.storage.online import OnlineStore

__all__ = ["SHADOW_SUFFIX", "Answer", "BatchRequest", "ModelService", "Prediction"]

#: Appended to a request id to name its shadow score's event (reserved: clients may not use it).
SHADOW_SUFFIX = ":shadow"


@dataclass(frozen=True)
class Prediction:
    """One answered instance."""

    request_id: str
    model: str
    version: int
    route: str
    prediction: Any
    fallback: str | None = None
    propensity: float | None = None
    feature_status: dict[str, str] = field(default_factory=dict)
    fallback_reason: str | None = None  # why the fallback answered: timeout, error or circuit_open
    #: A decision model's answer: action, its propensity, exploration rate, expected reward.
    decision: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "request_id": self.request_id,
            "model": self.model,
            "version": self.version,
            "route": self.route,
            "prediction": self.prediction,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
            "feature_status": self.feature_status,
        }
        if self.decision is not None:
            out.update(self.decision)
        return out


@dataclass(frozen=True)
class BatchRequest:
    """One request's share of a batch (see :meth:`ModelService.predict_batch`)."""

    instances: Sequence[Mapping[str, Any]]
    request_id: str | None = None
    unit_ids: Sequence[str | None] | None = None


#: A request's answer: its predictions and the shadow work to do off the request path.
Answer = tuple[list[Prediction], list[tuple[int, dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class _Routed:
    """One valid row of a batch, routed: which request it belongs to and where it goes."""

    request: int  # position of its request in the batch
    request_id: str
    unit: Any
    route: Route
    row: dict[str, Any]
    status: dict[str, str]


class ModelService:
    """Serve one model: ``predict(instances)`` -> predictions, each logged before it is returned.

    ``hash_key`` keys the hash of sensitive fields in the events (see
    :func:`fourloops.server.events_hash_key`, which also checks its length).
    """

    def __init__(
        self,
        model: Model,
        *,
        views: Mapping[str, FeatureView],
        registry: ModelRegistry,
        artifacts: ArtifactStore,
        online: OnlineStore,
        events: EventStore,
        clock: Clock,
        hash_key: bytes,
        breaker: CircuitBreaker | None = None,
        timeout: float | None = None,
        cache: PredictionCache | None = None,
        inline_max: float = 0.0,
    ) -> None:
        self.model = model
        self.hash_key = hash_key
        self.name = model.name
        self.views = dict(views)
        self.registry = registry
        self.artifacts = artifacts
        self.online = online
        self.writer = EventWriter(events)
        self.clock = clock
        #: Told every count as it happens (the server's Prometheus counters); None: not counted.
        self.on_count: Callable[[str, int], None] | None = None
        self.caller = ModelCaller(
            model.name, breaker=breaker, timeout=timeout, cache=cache, count=self._count
        )
        self.breaker = self.caller.breaker
        self.inputs = model_inputs(model, self.views)
        self.grouped = resolve_features(model.features, self.views) if model.features else {}
        self.view_fields = {f for names in self.grouped.values() for f in names}
        self.contract = serving_contract(model, self.views)
        self.validator = compile_contract(self.contract, requests=True)
        self.log_features = FeatureLogger(self.contract, hash_key)
        #: A decision model's action drawer (None for every other task).
        self.decider = (
            Decider(model.name, model.actions, model.exploration)
            if model.task is Task.POLICY and model.actions is not None and model.exploration is not None
            else None
        )
        self.state: ServingState | None = None
        self._request_ids: RequestIds | None = None
        #: Whether a lone request may be answered on the event loop (see fourloops.inference.inline);
        #: a lone answer slower than the model's deadline shuts it at once.
        self.inline = InlineGate(inline_max, capable=self._local_io(), stall_seconds=timeout)

    @property
    def request_ids(self) -> RequestIds | None:
        """Where the ids clients send are claimed (None: not checked; see fourloops.inference.request_ids).

        The server shares one between all its models: labels join by request id alone.
        """
        return self._request_ids

    @request_ids.setter
    def request_ids(self, ledger: RequestIds | None) -> None:
        self._request_ids = ledger
        self.inline.capable = self._local_io()

    # -- registry state -----------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read aliases from the registry; load new versions before switching. True if changed.

        A model without a champion yet stays unloaded (it answers 503 ``not_ready``
        until one is promoted); a champion that disappears while serving raises,
        and the caller keeps serving the state it has.
        """
        try:
            state = read_serving_state(
                self.name,
                registry=self.registry,
                artifacts=self.artifacts,
                task=self.model.task.value,
                current=self.state,
            )
        except NotFoundError:
            if self.state is None:
                return False
            raise
        if state is None:
            return False
        self.state = state  # one reference assignment: requests see the old state or the new one
        return True

    # -- the request path ---------------------------------------------------------------------
    def validate(self, instances: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Normalised values of every instance, or ContractViolation naming instance, field and rule."""
        values = []
        problems: dict[str, str] = {}
        messages: list[str] = []
        for i, instance in enumerate(instances):
            prefix = f"instances[{i}]." if len(instances) > 1 else ""
            if not isinstance(instance, Mapping):
                problems[f"instances[{i}]"] = "type"
                messages.append(f"instances[{i}]: must be an object")
                continue
            try:  # one pass: normalised values, or the violations in the row validator's wording
                values.append(self.validator.check_row(instance))
            except ContractViolation as err:
                for name, rule in err.violations.items():
                    problems[prefix + name] = rule
                messages.append(f"{prefix[:-1]}: {err}" if prefix else str(err))
        if problems:
            raise ContractViolation("invalid input: " + "; ".join(messages), problems)
        return values

    def _features(self, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Fill view features from the online store where the request did not carry them."""
        statuses: list[dict[str, str]] = [{} for _ in rows]
        for view_name, names in self.grouped.items():
            need = [i for i, r in enumerate(rows) if any(r.get(n) is None for n in names)]
            if not need:
                continue
            found = read_online_features(
                self.online, {view_name: names}, self.views, [rows[i] for i in need], now=self.clock()
            )
            for i, result in zip(need, found, strict=True):
                statuses[i][view_name] = result.status[view_name]
                for name in names:
                    if rows[i].get(name) is None:
                        value = result.values.get(name)
                        default = self.inputs[name].default
                        rows[i][name] = default if value is None and default is not None else value
        return statuses

    def _fallback(self, state: ServingState, row: dict[str, Any]) -> tuple[Any, str, int]:
        """The fallback's answer, its kind and the version that gave it (0: no model did).

        A fallback that fails too (a rule that raises, a previous version that
        cannot answer either) is counted and raises :class:`ModelUnavailable`:
        the request gets a 503, never a 500 and never an unlogged answer.
        """
        fb = self.model.fallback
        if fb is None:
            raise ModelUnavailable(f"model {self.name!r} could not answer and has no fallback configured")
        if fb.constant is not None:
            return fb.constant, "constant", 0
        answer: Callable[[], Any]
        if fb.rule is not None:
            rule = fb.rule
            kind, version, answer = "rule", 0, lambda: rule(dict(row))
        elif state.previous is not None and state.previous in state.predictors:
            predictor = state.predictors[state.previous]
            kind, version = "previous_version", state.previous
            answer = lambda: finite_or_none(predictor.predict_one(row))  # noqa: E731
        else:
            raise ModelUnavailable(
                f"model {self.name!r} could not answer and has no previous version to fall back to"
            )
        try:
            return answer(), kind, version
        except Exception as err:
            self._count("fallback_errors")
            raise ModelUnavailable(
                f"model {self.name!r} could not answer and its {kind} fallback failed too: "
                f"{type(err).__name__}: {err}"
            ) from None

    def _count(self, name: str, n: int = 1) -> None:
        if self.on_count is not None:
            self.on_count(name, n)

    def predict(
        self,
        instances: Sequence[Mapping[str, Any]],
        *,
        request_id: str | None = None,
        unit_ids: Sequence[str | None] | None = None,
    ) -> tuple[list[Prediction], list[tuple[int, dict[str, Any]]]]:
        """Answer ``instances``; return the predictions and the shadow work to do off the path.

        The events of all predictions are appended (durably) before this returns.
        """
        [result] = self.predict_batch([BatchRequest(instances, request_id, unit_ids)])
        if isinstance(result, Exception):
            raise result
        return result

    def _local_io(self) -> bool:
        """Only local, quick I/O may run on the loop: a plain local event log, a local online store."""
        ledger = getattr(self, "_request_ids", None)
        return (
            bool(getattr(self.writer.store, "local_appends", False))
            and (not self.grouped or bool(getattr(self.online, "local_reads", False)))
            and (ledger is None or ledger.local)
        )

    def can_answer_inline(self) -> bool:
        """Whether a lone request may be answered on the event loop now."""
        return self.inline.open()

    def predict_inline(self, requests: Sequence[BatchRequest]) -> list[Answer | FourloopsError]:
        """:meth:`predict_batch` on the calling thread (the event loop), model call included."""
        return self.predict_batch(requests, inline=True)

    def predict_batch(
        self, requests: Sequence[BatchRequest], *, inline: bool = False
    ) -> list[Answer | FourloopsError]:
        """Answer several requests at once, with ONE event-log append for all of them (group commit).

        Each request is validated on its own: a request that breaks the contract
        (or whose model failed with no fallback) gets its error in its slot and
        does not fail the others. The model is called row by row with
        ``predict_one``: for single-row requests batched a few at a time that is
        far cheaper than building a frame for ``predict``. If no model is loaded
        or the event log fails, the whole batch raises (nothing is acknowledged).
        """
        started = time.perf_counter()
        try:
            return self._predict_batch(requests, inline=inline)
        finally:
            if len(requests) == 1:
                self.inline.record(time.perf_counter() - started)

    def _predict_batch(
        self, requests: Sequence[BatchRequest], *, inline: bool
    ) -> list[Answer | FourloopsError]:
        """The work of :meth:`predict_batch`."""
        state = self.state
        if state is None:
            raise NotFoundError(f"model {self.name!r} is not loaded (no champion yet)")
        results: list[Answer | FourloopsError] = []
        valid: list[tuple[int, list[dict[str, Any]]]] = []
        for n, request in enumerate(requests):
            try:
                valid.append((n, self.validate(request.instances)))
                results.append(([], []))
            except ContractViolation as err:
                results.append(err)
        # Claim the ids clients sent: a reused one is refused (409) before anything is done for it.
        claimed = self._claim(requests, valid, results)
        try:
            return self._answer_valid(state, requests, valid, results, claimed, inline=inline)
        except BaseException:
            self._release(rid for ids in claimed.values() for rid in ids)
            raise

    def _claim(
        self,
        requests: Sequence[BatchRequest],
        valid: list[tuple[int, list[dict[str, Any]]]],
        results: list[Answer | FourloopsError],
    ) -> dict[int, list[str]]:
        """Claim each valid request's client ids; refused requests leave ``valid`` with their error."""
        ledger = self._request_ids
        claimed: dict[int, list[str]] = {}
        if ledger is None:
            return claimed
        kept = []
        for n, rows in valid:
            base = requests[n].request_id
            if base is None:  # the server makes a random id: new by construction
                kept.append((n, rows))
                continue
            ids = [base] if len(rows) == 1 else [f"{base}-{i}" for i in range(len(rows))]
            try:
                taken = ledger.claim(ids)
            except StoreError as err:
                results[n] = err
                continue
            if taken is not None:
                self._count("duplicate_request_ids")
                results[n] = DuplicateRequestId(taken)
                continue
            claimed[n] = ids
            kept.append((n, rows))
        valid[:] = kept
        return claimed

    def _release(self, ids: Iterable[str]) -> None:
        """Give back the claims of requests that were not acknowledged."""
        ledger = self._request_ids
        if ledger is None:
            return
        try:
            ledger.release(list(ids))
        except StoreError:  # the claim expires with the window; the retry waits for it
            self._count("request_id_release_failures")

    def _answer_valid(
        self,
        state: ServingState,
        requests: Sequence[BatchRequest],
        valid: list[tuple[int, list[dict[str, Any]]]],
        results: list[Answer | FourloopsError],
        claimed: dict[int, list[str]],
        *,
        inline: bool,
    ) -> list[Answer | FourloopsError]:
        """Features, routing, one model call and one event-log append for the valid requests."""
        # One online-store read for the rows of every valid request.
        all_rows = [row for _, rows in valid for row in rows]
        statuses = self._features(all_rows)
        # Route every row, then ONE protected model call for all of them.
        routed: list[_Routed] = []
        for n, rows in valid:
            request = requests[n]
            base_id = request.request_id or uuid.uuid4().hex
            for i, row in enumerate(rows):
                rid = base_id if len(rows) == 1 else f"{base_id}-{i}"
                unit = (request.unit_ids[i] if request.unit_ids else None) or rid
                routed.append(_Routed(n, rid, unit, state.table.route(str(unit)), row, statuses[len(routed)]))
        outcomes = self.caller.call(
            state.predictors, [(r.route.version, r.row) for r in routed], direct=inline
        )
        at = self.clock()
        events: list[PredictionEvent] = []
        failed: set[int] = set()
        pending: dict[int, list[PredictionEvent]] = {}
        for r, outcome in zip(routed, outcomes, strict=True):
            if r.request in failed:
                continue
            try:
                answer, event, shadow = self._answer(state, r, outcome, at)
            except ModelUnavailable as err:  # no fallback for a failed model: this request only
                results[r.request] = err
                failed.add(r.request)
                pending.pop(r.request, None)
                self._release(claimed.pop(r.request, ()))
                continue
            answers, shadow_work = results[r.request]  # type: ignore[misc]
            answers.append(answer)
            if shadow is not None:
                shadow_work.append(shadow)
            pending.setdefault(r.request, []).append(event)
        for request_events in pending.values():
            events.extend(request_events)
        if events:
            try:
                self.writer.append(events)
            except Exception as err:  # counted by the server (fourloops_event_log_failures_total)
                raise StoreError(f"prediction not acknowledged: the event log failed: {err}") from err
        return results

    def event_log_lag(self) -> float:
        """Seconds the oldest prediction not yet acknowledged has waited for the event log (0 if none)."""
        return self.writer.lag()

    @property
    def events(self) -> EventStore:
        """The event store this service logs to."""
        return self.writer.store

    @events.setter
    def events(self, store: EventStore) -> None:
        self.writer.store = store
        self.inline.capable = self._local_io()

    def _answer(
        self, state: ServingState, r: _Routed, outcome: Outcome, at: datetime
    ) -> tuple[Prediction, PredictionEvent, tuple[int, dict[str, Any]] | None]:
        """One routed row: the model's outcome (or the fallback's answer) and the event to log."""
        started = time.perf_counter()
        version = r.route.version
        fallback = reason = None
        if outcome.failure is None:
            output = outcome.output
        else:
            reason = outcome.failure
            output, fallback, version = self._fallback(state, r.row)
        extra: dict[str, Any] = {}
        propensity, decided = r.route.propensity, None
        if self.decider is not None:  # a decision model: draw the action (fourloops.inference.decisions)
            decision = self._decide(output, fallback, r.row, r.request_id)
            output, propensity, decided = decision.action, decision.propensity, decision.answer()
            extra.update(decision.extra(version, r.route.propensity))
        latency = (outcome.seconds + time.perf_counter() - started) * 1000
        answer = Prediction(
            r.request_id,
            self.name,
            version,
            r.route.name,
            output,
            fallback,
            r.route.propensity,
            r.status,
            reason,
            decided,
        )
        if fallback:  # the version routed to, which failed, is kept for evaluation
            extra.update(fallback=fallback, fallback_reason=reason, routed_version=r.route.version)
        if r.status:
            extra["features_status"] = r.status
        if outcome.cached:
            extra["cached"] = True
        event = PredictionEvent(
            request_id=r.request_id,
            unit_id=None if r.unit == r.request_id else str(r.unit),
            at=at,
            model=self.name,
            version=version,
            route=r.route.name,
            features=self.log_features(r.row),
            output=output,
            propensity=propensity,
            latency_ms=latency,
            fallback=bool(fallback),
            extra=extra,
        )
        shadow = None
        if r.route.shadow_version is not None and r.route.shadow_version in state.predictors:
            shadow = (r.route.shadow_version, {"row": r.row, "request_id": r.request_id, "unit": r.unit})
        return answer, event, shadow

    def _decide(self, output: Any, fallback: str | None, row: Mapping[str, Any], request_id: str) -> Decision:
        """A decision model's action: drawn from its scores, or a fallback's action (certain)."""
        assert self.decider is not None
        if fallback is not None and not isinstance(output, list):
            return self.decider.certain(output)
        return self.decider.decide(output, row, request_id)

    def score_shadow(self, work: list[tuple[int, dict[str, Any]]]) -> None:
        """Score and log shadow predictions (called off the request path)."""
        state = self.state
        if state is None or not work:
            return
        events = []
        for version, item in work:
            started = time.perf_counter()
            rid = f"{item['request_id']}{SHADOW_SUFFIX}"
            propensity, extra = None, {"shadow_of": item["request_id"]}
            try:
                output = finite_or_none(state.predictors[version].predict_one(item["row"]))
                if self.decider is not None:  # the shadow policy draws as it would have served
                    decision = self.decider.decide(output, item["row"], rid)
                    output, propensity = decision.action, decision.propensity
                    extra.update(decision.extra(version, None))
            except Exception:
                self._count("shadow_errors")
                continue
            events.append(
                PredictionEvent(
                    request_id=rid,
                    unit_id=str(item["unit"]),
                    at=self.clock(),
                    model=self.name,
                    version=version,
                    route=RouteKind.SHADOW,
                    features=self.log_features(item["row"]),
                    output=output,
                    propensity=propensity,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    fallback=False,
                    extra=extra,
                )
            )
        if events:
            self.writer.append(events)
            self._count("shadow_predictions", len(events))
