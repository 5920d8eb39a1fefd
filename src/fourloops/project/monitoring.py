"""Monitoring a project's models on their own event log (the evaluation loop's first door)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourloops.definitions.lifecycle import Alias
from fourloops.errors import ConfigError, NotFoundError
from fourloops.project.evaluation import EvaluationOperations

if TYPE_CHECKING:
    from fourloops.evaluation.alerts import AlertPolicy
    from fourloops.evaluation.drift.policy import DriftPolicy
    from fourloops.evaluation.monitor_result import MonitorResult
    from fourloops.evaluation.reference import ModelReference
    from fourloops.evaluation.windows import WindowBounds

__all__ = ["MonitoringOperations", "REFERENCE_CACHE"]

#: Where references fitted after the fact (for versions trained before profiles existed) are kept.
REFERENCE_CACHE = ".fourloops/references"


class MonitoringOperations(EvaluationOperations):
    """Drift, data health and performance of a model's served predictions, window by window."""

    def reference(self, name: str, version: int | str = Alias.CHAMPION) -> ModelReference:
        """The monitoring reference of a version: stored at training, or fitted now and cached.

        A version trained before references were profiled (or imported) gets one fitted from its
        test rows, rebuilt point-in-time at its recorded cutoff, and kept in ``.fourloops/references``.
        """
        from fourloops.adaptation.training import prepare_data, profile_reference
        from fourloops.evaluation.reference import ModelReference
        from fourloops.ingestion.features import model_inputs
        from fourloops.registry.loading import load_version
        from fourloops.storage.artifacts import ArtifactRef

        recorded = self.registry.get_version(name, version)
        stored = recorded.lineage.get("reference_profile")
        if stored:
            return ModelReference.from_bytes(self.artifacts.open(ArtifactRef.from_dict(stored)).read_bytes())
        sha = str((recorded.artifact or {}).get("sha256", "none"))[:12]
        cache = self.root / REFERENCE_CACHE / f"{name}-v{recorded.version}-{sha}.json"
        if cache.is_file():
            return ModelReference.from_bytes(cache.read_bytes())
        model = self.model(name)
        cutoff_text = recorded.lineage.get("cutoff") or (recorded.lineage.get("judgement") or {}).get(
            "cutoff"
        )
        cutoff = datetime.fromisoformat(cutoff_text) if cutoff_text else None
        data = prepare_data(model, root=self.root, views=self.feature_views, join=self._join, cutoff=cutoff)
        predictor = load_version(self.artifacts, recorded, task=model.task.value)
        if predictor.encoder is not None:
            data.X_test = predictor.encoder.frame(data.split.test)
        defaults = {
            n: f.default for n, f in model_inputs(model, self.feature_views).items() if f.default is not None
        }
        ref = profile_reference(
            model, data, predictor, artifacts=self.artifacts, engine=self.engine, defaults=defaults
        )
        payload = self.artifacts.open(ref).read_bytes()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_bytes(payload)
        tmp.replace(cache)
        return ModelReference.from_bytes(payload)

    def calibration(self, name: str, version: int) -> list[float] | None:
        """A binary version's P(y = 1) at evenly spaced scores from 0 to 1, fitted on its reference.

        The calibration the monitor's estimated performance uses (isotonic, corrected for its
        optimism at the ends); ``None`` when the reference has no labelled rows of both classes.
        Kept per version for the life of the project object.
        """
        from fourloops.evaluation.window_metrics import Calibrator

        cache: dict[tuple[str, int], list[float] | None] = self.__dict__.setdefault("_calibrations", {})
        key = (name, int(version))
        if key not in cache:
            scores = self.reference(name, version).profile.summaries.scores.get((0, None, None))
            fitted = Calibrator.fit(scores) if scores is not None and scores.task == "binary" else None
            cache[key] = None if fitted is None else [float(x) for x in fitted.y]
        return cache[key]

    def monitor(
        self,
        name: str,
        *,
        window: str | int | timedelta = "1d",
        since: datetime | None = None,
        until: datetime | None = None,
        version: int | str | None = None,
        route: str = "champion",
        segments: Sequence[str] | None = None,
        methods: Sequence[str] | None = None,
        policy: DriftPolicy | None = None,
        alerts: AlertPolicy | None = None,
        compact: bool = True,
        seed: int = 0,
        multivariate: bool = True,
        record: bool = True,
        notify: bool = True,
        all_versions: bool = False,
    ) -> MonitorResult:
        """Monitor model ``name``'s served predictions, window by window, against its reference.

        The events of one version and route are judged together (default: the
        champion's version, on the champion route; a canary or shadow is judged
        with ``route=``), each request once (the first event of a request id),
        against the reference profiled from that version's test rows. Labels
        posted so far are joined; a window whose labels cannot all have arrived
        yet (its end plus the model's label delay is after now) is ``pending``.
        Windows by time on the event time (``at``) or by row count. With ``all_versions``, every
        version that answered on the route is judged together (against ``version``'s reference):
        a period that spans promotions, as a simulation does.

        The alert policy is ``alerts``, else the project's ``[alerts]`` settings (consecutive
        windows, allowed drop, labels needed, null rise). With ``record`` (the default) the alerts
        are kept in the metadata store, one row per episode (an episode an earlier run saw, and
        one it carries on, is not new), and the new ones (``result.new_alerts``) go to the
        configured sinks (``[alerts]``: a log line, a webhook), in the background (not with
        ``notify=False``). Snoozed alerts (:meth:`snooze`) are left out.
        """
        from fourloops.evaluation.alerts import AlertPolicy
        from fourloops.evaluation.drift.policy import DriftPolicy
        from fourloops.evaluation.monitor import run
        from fourloops.evaluation.multivariate import DomainClassifier
        from fourloops.evaluation.reference import LABEL, PREDICTION

        model = self.model(name)
        if compact:
            self.compact_events()
        try:
            recorded = self.registry.get_version(name, version if version is not None else Alias.CHAMPION)
        except NotFoundError:
            raise NotFoundError(
                f"model {name!r} has no champion to monitor; give --version N (fourloops models {name})"
            ) from None
        reference = self.reference(name, recorded.version)
        profile = reference.profile
        if methods is not None or policy is not None:
            base = policy or profile.policy
            policy = DriftPolicy(**{**base.__dict__, **({"methods": tuple(methods)} if methods else {})})
            profile.policy = policy
        if route not in {"champion", "canary", "shadow"} and not route.startswith("ab:"):
            raise ConfigError(f"route must be champion, canary, shadow or ab:<version>, got {route!r}")
        importance = reference.importance
        now = self.clock()
        settings = self.config.alerts
        alerts = alerts or AlertPolicy(
            consecutive=settings.consecutive,
            max_drop=settings.max_drop,
            min_labels=settings.min_labels,
            null_rise=settings.null_rise,
            rejection_rate=settings.rejection_rate,
            pool=settings.pool,
            segment_alpha=settings.segment_alpha,
            importance=importance,
        )
        snoozed = tuple(self.alert_log.snoozed(name, at=now))
        alerts = AlertPolicy(
            **{
                **alerts.__dict__,
                "importance": alerts.importance or importance,
                "snoozed": (*alerts.snoozed, *snoozed),
            }
        )
        delay = reference.label_delay or timedelta(0)

        def mature(b: WindowBounds) -> bool:
            return b.end is None or b.end + delay <= now

        route_sql = route.replace("'", "''")
        route_only = f"route = '{route_sql}'"
        where = route_only if all_versions else f"version = {int(recorded.version)} AND {route_only}"
        scan = self.engine.open_events(self.event_tables, model=name, since=since, until=until)
        try:
            has_labels = reference.task != "multiclass"
            result = run(
                None,
                scan,
                timestamp="at",
                window=window,
                label=LABEL if has_labels else None,
                score=PREDICTION if reference.task == "binary" else None,
                prediction=PREDICTION if reference.task != "binary" else None,
                task=reference.task,
                segments=list(segments) if segments is not None else list(profile.segments),
                policy=policy,
                alerts=alerts,
                threshold=reference.threshold,
                since=since,
                until=until,
                seed=seed,
                profile=profile,
                where=where,
                mature=mature,
                observed_until=until or now,
                primary=reference.primary,
                operational=True,
                budget=model.budget.to_dict() if model.budget is not None else reference.budget,
                coverage=reference.coverage,
                multivariate=DomainClassifier(seed=seed) if multivariate else None,
                reference_sample=reference.sample,
                serving=(lambda b: self._serving_counts(name, b)) if route == "champion" else None,
                history=lambda start, end: self.engine.open_events(
                    self.event_tables, model=name, since=start, until=end
                ),
            )
        finally:
            scan.close()
        if record:
            fresh = self.alert_log.record(
                name, recorded.version, route, [a.to_dict() for a in result.alerts], at=now
            )
            new = [a for a, is_new in zip(result.alerts, fresh, strict=True) if is_new]
            result.new_alerts = new
            result.settings["new_alerts"] = len(new)
            if notify:
                self.alert_dispatcher.submit(name, new)
        result.settings.update(
            {
                "model": name,
                "version": recorded.version,
                "route": route,
                "label_delay": str(delay),
                "importance": importance,
            }
        )
        # The rest of the log in the monitored period (a window of a long log reads its own days).
        period = [
            f"\"at\" {op} TIMESTAMPTZ '{t.astimezone(UTC).isoformat()}'"
            for op, t in ((">=", since), ("<", until))
            if t is not None
        ]
        groups = self.query_events(
            f"SELECT version, route, count(*) AS n FROM events WHERE NOT (version = {int(recorded.version)} "
            f"AND route = '{route_sql}'){''.join(' AND ' + c for c in period)} GROUP BY ALL ORDER BY n DESC",
            model=name,
            compact=False,
            since=since,
            until=until,
        ).to_pylist()
        for g in groups:
            result.notes.append(
                f"also in the log: version {g['version']} on route {g['route']} ({g['n']:,} events"
                f"{' in the period' if period else ''}); monitor it with --version {g['version']} "
                f"--route {g['route']}"
            )
        return result

    def _serving_counts(self, name: str, bounds: Sequence[WindowBounds]) -> list[dict[str, Any]]:
        """Per window by time, what the model's servers counted beside the event log (none: ``{}``).

        Contract rejections (requests, share of the requests that reached the contract, by field
        and rule) and the servers' CPU milliseconds per 1,000 predictions; windows by row count
        have no time bounds to sum them over.
        """
        timed = [(i, b.start, b.end) for i, b in enumerate(bounds) if b.start and b.end]
        out: list[dict[str, Any]] = [{} for _ in bounds]
        totals = self.serving_periods.windows(name, [(start, end) for _, start, end in timed])
        for (i, _, _), total in zip(timed, totals, strict=True):
            if not total.periods:
                continue
            out[i] = {
                "rejected": total.rejected,
                "rejection_rate": total.rejection_rate,
                "rejections": total.rejections,
                "cpu_ms_per_1000": total.cpu_ms_per_1000,
            }
        return out

    def alerts(self, name: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        """Stored alerts (of model ``name``, or all), newest first."""
        return self.alert_log.alerts(name, limit=limit)

    def snooze(
        self, name: str, kind: str, *, duration: str | timedelta, column: str | None = None, reason: str = ""
    ) -> datetime:
        """Silence ``kind`` alerts of model ``name`` (of ``column``, or every column) for ``duration``.

        Returns when the snooze ends. Audited.
        """
        from fourloops.definitions.durations import parse_duration
        from fourloops.evaluation.alerts import AlertKind

        self.model(name)
        kinds = [k.value for k in AlertKind]
        if kind not in kinds:
            raise ConfigError(f"unknown alert kind {kind!r}; choose from {', '.join(kinds)}")
        length = duration if isinstance(duration, timedelta) else parse_duration(duration, what="snooze")
        now = self.clock()
        self.alert_log.snooze(name, kind, until=now + length, column=column, reason=reason, at=now)
        return now + length

    def report(self, name: str, out: str | Path, **monitor_args: object) -> MonitorResult:
        """Monitor model ``name`` and write the self-contained HTML report to ``out``."""
        result = self.monitor(name, **monitor_args)  # type: ignore[arg-type]
        result.to_html(out, title=f"{name}: monitoring report")
        return result
