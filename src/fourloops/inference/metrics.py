"""The prediction server's Prometheus metrics (``GET /metrics``).

Counted at the HTTP layer: requests by status, latency, predictions by
version and route, fallbacks by kind and reason, rejected inputs by rule,
429s, 503s for shed load, batch sizes. Read from the model services at scrape
time: requests in progress, micro-batch queue depth, event-log lag, the
circuit state, and the services' own counters (timeouts, model errors, cache
hits, shadow predictions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ServerMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
_APPEND_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)

#: Service counters exported as ``fourloops_<name>_total`` (model label).
SERVICE_COUNTERS = {
    "timeouts": "Model calls past the deadline (the fallback answered)",
    "model_errors": "Model calls that raised (the fallback answered)",
    "circuit_open": "Rows the open circuit kept from the model (the fallback answered)",
    "fallback_errors": "Fallbacks that failed too (rule raised, previous version failed): 503",
    "cache_hits": "Predictions answered from the prediction cache",
    "shadow_predictions": "Shadow predictions scored and logged",
    "shadow_errors": "Shadow model calls that raised",
}


class _ServiceCollector(Collector):
    """Reads the services' counters and gauges when Prometheus scrapes."""

    def __init__(self, services: Mapping[str, Any], in_progress: Callable[[str], int]) -> None:
        self.services = services
        self.in_progress = in_progress

    def collect(self) -> Iterator[Metric]:
        counters = {
            name: CounterMetricFamily(f"fourloops_{name}", help_, labels=["model"])
            for name, help_ in SERVICE_COUNTERS.items()
        }
        lag = GaugeMetricFamily(
            "fourloops_event_log_lag_seconds",
            "Age of the oldest prediction waiting for the event log (0 when none waits)",
            labels=["model"],
        )
        circuit = GaugeMetricFamily(
            "fourloops_circuit_open", "1 while the model's circuit breaker is open", labels=["model"]
        )
        pending = GaugeMetricFamily(
            "fourloops_requests_in_progress", "Prediction requests being answered", labels=["model"]
        )
        for model, service in self.services.items():
            snapshot = dict(service.counters)
            for name, family in counters.items():
                family.add_metric([model], snapshot.get(name, 0))
            lag.add_metric([model], service.event_log_lag())
            circuit.add_metric([model], 0.0 if service.breaker.state == "closed" else 1.0)
            pending.add_metric([model], self.in_progress(model))
        yield from counters.values()
        yield from (lag, circuit, pending)


class ServerMetrics:
    """Every metric of one server process, in its own registry."""

    def __init__(self, services: Mapping[str, Any], in_progress: Callable[[str], int]) -> None:
        self.registry = CollectorRegistry()
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
        self.queue_depth = Gauge(
            "fourloops_queue_depth", "Requests waiting for a micro-batch", ["model"], registry=r
        )
        self.shed = Counter(
            "fourloops_shed", "Requests shed with 503 (too many pending)", ["model"], registry=r
        )
        r.register(_ServiceCollector(services, in_progress))
