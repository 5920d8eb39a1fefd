"""The inference loop's operations on a project: the server, the event log, delayed labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fourloops.errors import SourceError
from fourloops.project.training import TrainingOperations

if TYPE_CHECKING:
    import pyarrow as pa
    from starlette.applications import Starlette

    from fourloops.storage.events.columnar import CompactionReport, EventSchema
    from fourloops.storage.serving_periods import ServingPeriods

__all__ = ["SERVING_ROLL_UP_AFTER", "LabelReport", "ServingOperations"]

#: How long the servers' per-minute counts are kept before compaction rolls them up by hour.
SERVING_ROLL_UP_AFTER = timedelta(days=2)


@dataclass(frozen=True)
class LabelReport:
    """What recording a batch of labels did: matched, repeated, ahead of their event, refused."""

    inserted: int
    duplicates: int
    unknown: int
    rejected: int
    rejections: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, int]:
        """The counts, JSON-ready (the refused rows are named in ``rejections``)."""
        return {
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "unknown": self.unknown,
            "rejected": self.rejected,
        }


class ServingOperations(TrainingOperations):
    """The prediction server, the event log it writes, and the labels that join it later."""

    def app(self, *, models: list[str] | None = None, record_periods: bool = True) -> Starlette:
        """The ASGI app serving ``models`` (default: every defined model), e.g. for a test client.

        ``record_periods=False`` keeps the server's counts of contract rejections and CPU time out
        of the metadata store (a replay whose monitor must not depend on real time).
        """
        from fourloops.server import build_app

        return build_app(self, models=models, record_periods=record_periods)  # type: ignore[arg-type]

    @cached_property
    def serving_periods(self) -> ServingPeriods:
        """What servers counted per model and period that the event log cannot hold (rejections, CPU)."""
        from fourloops.storage.serving_periods import ServingPeriods

        return ServingPeriods(self.metadata)

    def serve(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        log_format: str | None = None,
    ) -> None:
        """Run the prediction server until interrupted (SIGTERM or Ctrl-C drain it and exit 0)."""
        from fourloops.server import serve

        serve(self, host=host, port=port, workers=workers, log_format=log_format)  # type: ignore[arg-type]

    def events(
        self, *, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> pa.Table:
        """The prediction events with ``since <= at < until``, their labels joined, oldest first."""
        return self.event_store.scan(model=model, since=since, until=until)

    def event_schemas(self) -> dict[str, EventSchema]:
        """The typed columns of each model's compacted events, from its serving contract."""
        from fourloops.definitions import Task
        from fourloops.ingestion.features import resolve_features, serving_contract
        from fourloops.storage.events.columnar import EventSchema

        schemas = {}
        for name, model in self.models.items():
            contract = serving_contract(model, self.feature_views)
            views = list(resolve_features(model.features, self.feature_views)) if model.features else []
            schemas[name] = EventSchema.from_contract(
                name,
                contract.fields,
                views=views,
                multiclass=model.task is Task.MULTICLASS,
                policy=model.task is Task.POLICY,
            )
        return schemas

    def compact_events(self) -> CompactionReport:
        """Append what the event log gained since the last compaction to the typed event tables.

        Incremental and idempotent (exactly once per request id, first event
        wins); safe to run from cron while servers write. The evaluation loop
        compacts before it reads. The servers' counts older than
        ``SERVING_ROLL_UP_AFTER`` are rolled up to one row per model and hour.
        """
        report = self.event_store.compact(self.event_tables, self.event_schemas())
        rolled = self.serving_periods.roll_up(before=self.clock() - SERVING_ROLL_UP_AFTER)
        report.serving_rows_rolled_up = rolled.rows_read
        return report

    def export_events(
        self,
        path: str | Path,
        *,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Write :meth:`events` to a Parquet file; returns the number of events written."""
        import pyarrow.parquet as pq

        table = self.events(model=model, since=since, until=until)
        try:
            pq.write_table(table, path, compression="zstd")
        except OSError as exc:
            raise SourceError(f"cannot write {path}: {exc.strerror or exc}") from None
        return int(table.num_rows)

    def labels(
        self, source: str | Path | Any, *, column: str = "label", at: datetime | None = None
    ) -> LabelReport:
        """Record delayed ground truth by request id, from a CSV/Parquet file or a list of labels.

        Idempotent: the first label per request id wins, later ones are counted
        as duplicates; a label whose prediction is not logged (yet) is kept and
        counted as unknown. Rows without an id or a value are refused and named,
        as are labels that do not fit the task of the model that logged their
        prediction (``"yes"`` for a binary model). ``at`` (default: the
        project's clock) is when the labels became known.
        """
        from fourloops.ingestion.labels import LabelBatch, label_problem, read_label_file

        when = at or self.clock()
        if isinstance(source, str | Path):
            batch = read_label_file(source, column=column, at=when)
        else:
            batch = LabelBatch(labels=list(source))
        models = self.event_store.models_of([label.request_id for label in batch.labels])
        fitting = []
        for label in batch.labels:
            model = self.models.get(models.get(label.request_id, ""))
            problem = label_problem(model.task, label.value) if model is not None else None
            if model is None or problem is None:
                fitting.append(label)
            else:
                batch.rejected.append(f"request {label.request_id!r} (model {model.name!r}): {problem}")
        batch.labels = fitting
        stats = self.event_store.add_labels(batch.labels)
        return LabelReport(
            inserted=stats.inserted,
            duplicates=stats.duplicates,
            unknown=stats.unknown,
            rejected=len(batch.rejected),
            rejections=tuple(batch.rejected),
        )
