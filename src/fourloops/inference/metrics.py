"""The prediction server's Prometheus metrics (``GET /metrics``).

Counted at the HTTP layer: requests by status, latency, predictions by
version and route, fallbacks by kind and reason, rejected inputs by rule,
429s, 503s for shed load, batch sizes; counted by the model services as they
happen: timeouts, model errors, cache hits, shadow predictions. Gauges of the
services' state: requests in progress, micro-batch queue depth, event-log
lag, the circuit state.

With several worker processes (``fourloops serve --workers N``) the server
runs prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``):
every worker writes its values to shared files and a scrape, whichever worker
answers it, reports the sum over workers (gauges: the sum of requests in
progress and queued, the largest lag, any open circuit). There the gauges
are sampled every :data:`SAMPLE_INTERVAL_S`; in one process they are read
at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["SAMPLE_INTERVAL_S", "ServerMetrics", "multiprocess_mode"]

#: Seconds between two samples of the gauges in multiprocess mode.
SAMPLE_INTERVAL_S = 1.0

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
_APPEND_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)

#: Service counters exported as ``fourloops_<name>_total`` (model label).
SERVICE_COUNTERS = {
    "timeouts": "Model calls past the deadline (the fallback answered)",
    "model_errors": "Model calls that raised (the fallback answered)",
    "circuit_refusals": "Rows the open circuit kept from the model (the fallback answered)",
    "fallback_errors": "Fallbacks that failed too (rule raised, previous version failed): 503",
    "cache_hits": "Predictions answered from the prediction cache",
    "shadow_predictions": "Shadow predictions scored and logged",
    "shadow_errors": "Shadow model calls that raised",
    "duplicate_request_ids": "Requests refused because their request_id was already used (409)",
    "request_id_release_failures": "Claims on request ids that could not be given back (Redis failed)",
}


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps values in shared files (several worker processes)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir"))


def _gauge_values(
    services: Mapping[str, Any], in_progress: Callable[[str], int]
) -> Iterator[tuple[str, float, float, float]]:
    """(model, event-log lag, circuit open 0/1, requests in progress) of every service, now."""
    for model, service in services.items():
        circuit = 0.0 if service.breaker.state == "closed" else 1.0
        yield model, service.event_log_lag(), circuit, float(in_progress(model))


_LAG_HELP = "Age of the oldest prediction waiting for the event log (0 when none waits)"
_CIRCUIT_HELP = "1 while the model's circuit breaker is open"
_PROGRESS_HELP = "Prediction requests being answered"


def _feed(children: Mapping[str, Any]) -> Callable[[str, int], None]:
    """A service's ``on_count``: add ``n`` to the Prometheus counter named ``name``."""

    def count(name: str, n: int) -> None:
        children[name].inc(n)

    return count


class _ServiceCollector(Collector):
    """Reads the services' gauges when Prometheus scrapes (one process)."""

    def __init__(self, services: Mapping[str, Any], in_progress: Callable[[str], int]) -> None:
        self.services = services
        self.in_progress = in_progress

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily("fourloops_event_log_lag_seconds", _LAG_HELP, labels=["model"])
        circuit = GaugeMetricFamily("fourloops_circuit_open", _CIRCUIT_HELP, labels=["model"])
        pending = GaugeMetricFamily("fourloops_requests_in_progress", _PROGRESS_HELP, labels=["model"])
        for model, lag_s, open_, progress in _gauge_values(self.services, self.in_progress):
            lag.add_metric([model], lag_s)
            circuit.add_metric([model], open_)
            pending.add_metric([model], progress)
        yield from (lag, circuit, pending)


class ServerMetrics:
    """Every metric of one server process, in its own registry."""

    def __init__(self, services: Mapping[str, Any], in_progress: Callable[[str], int]) -> None:
        self.registry = CollectorRegistry()
        self.collectors: list[Collector] = []
        r = self.registry
        self.requests = Counter("fourloops_requests", "Prediction requests", ["model", "status"], registry=r)
        self.predictions = Counter(
            "fourloops_predictions", "Answered predictions", ["model", "version", "route"], registry=r
        )
        self.latency = Histogram(
            "fourloops_request_seconds",
            "Latency of answered requests, per version and route that answered",
            ["model", "version", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "fourloops_fallbacks", "Fallback answers", ["model", "kind", "reason"], registry=r
        )
        self.rejections = Counter(
            "fourloops_rejections", "Rejected inputs by rule", ["model", "rule"], registry=r
        )
        self.feature_lookups = Counter(
            "fourloops_feature_lookups",
            "Online-store reads of a view's features per prediction, by outcome (ok, missing, expired)",
            ["model", "view", "status"],
            registry=r,
        )
        self.rate_limited = Counter("fourloops_rate_limited", "429 answers", ["model", "limit"], registry=r)
        self.rate_limit_errors = Counter(
            "fourloops_rate_limit_errors", "Requests the rate limiter could not judge", ["model"], registry=r
        )
        self.event_failures = Counter(
            "fourloops_event_log_failures", "Predictions not acknowledged", ["model"], registry=r
        )
        self.event_append = Histogram(
            "fourloops_event_log_append_seconds",
            "Time to append one group of events to the event log",
            ["model"],
            buckets=_APPEND_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "fourloops_batch_size",
            "Instances per request",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 64, 256),
            registry=r,
        )
        self.micro_batch = Histogram(
            "fourloops_micro_batch_size",
            "Single-instance requests answered per model-service call (micro-batching)",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.shed = Counter(
            "fourloops_shed", "Requests shed with 503 (too many pending)", ["model"], registry=r
        )
        counters = {
            name: Counter(f"fourloops_{name}", help_, ["model"], registry=r)
            for name, help_ in SERVICE_COUNTERS.items()
        }
        for model, service in services.items():
            # labels() makes every child now, so each is exported as 0 before it first counts.
            service.on_count = _feed({name: c.labels(model) for name, c in counters.items()})
        self.services = services
        self.in_progress = in_progress
        self.multiprocess = multiprocess_mode()
        self._depths: dict[str, Callable[[], int]] = {}
        if self.multiprocess:
            # Sampled gauges, combined over the live workers when scraped.
            self.queue_depth = Gauge(
                "fourloops_queue_depth",
                "Requests waiting for a micro-batch",
                ["model"],
                registry=r,
                multiprocess_mode="livesum",
            )
            self.lag = Gauge(
                "fourloops_event_log_lag_seconds",
                _LAG_HELP,
                ["model"],
                registry=r,
                multiprocess_mode="livemax",
            )
            self.circuit = Gauge(
                "fourloops_circuit_open", _CIRCUIT_HELP, ["model"], registry=r, multiprocess_mode="livemax"
            )
            self.progress = Gauge(
                "fourloops_requests_in_progress",
                _PROGRESS_HELP,
                ["model"],
                registry=r,
                multiprocess_mode="livesum",
            )
            self.sample()
        else:
            self.queue_depth = Gauge(
                "fourloops_queue_depth", "Requests waiting for a micro-batch", ["model"], registry=r
            )
            r.register(_ServiceCollector(services, in_progress))

    def watch_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the model's micro-batch queue depth."""
        if self.multiprocess:
            self._depths[model] = depth
            self.queue_depth.labels(model).set(depth())
        else:
            self.queue_depth.labels(model).set_function(depth)

    def sample(self) -> None:
        """Multiprocess mode: write this worker's current gauge values for the next scrape."""
        for model, lag_s, open_, progress in _gauge_values(self.services, self.in_progress):
            self.lag.labels(model).set(lag_s)
            self.circuit.labels(model).set(open_)
            self.progress.labels(model).set(progress)
        for model, depth in self._depths.items():
            self.queue_depth.labels(model).set(depth())

    def add_collector(self, collector: Collector) -> None:
        """Export what ``collector`` reads at scrape time (not kept per worker: it reads shared state)."""
        self.collectors.append(collector)
        if not self.multiprocess:
            self.registry.register(collector)

    def render(self) -> bytes:
        """The exposition text of a scrape: this process's metrics, or every worker's combined."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        self.sample()
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        for collector in self.collectors:
            combined.register(collector)
        return generate_latest(combined)

    def close(self) -> None:
        """Multiprocess mode: drop this worker's live gauges (it is going away)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
