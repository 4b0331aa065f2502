"""Prometheus metrics of one API instance, rendered by `GET /metrics`.

Each app gets its own `CollectorRegistry` rather than prometheus_client's global one,
so several apps in one process (tests, or an app re-created) never collide on metric
names and each one exports only its own counts.

Recording is on the request path, so it is kept to a few dictionary lookups and
lock-protected additions (about 2 µs a request; docs/operability.md has the
throughput with and without it): the labelled children are looked up once and
cached, and predictions are counted per class with one `numpy.bincount` per request
rather than one increment per row.
"""

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request

from irisops.runtime import LoadedModel

# /predict answers in a fraction of a millisecond and a 10,000-row batch in tens of
# milliseconds: the default buckets (5 ms and up) would put every request in the first.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000)
# Methods are client-chosen text: anything else is counted as OTHER, so no client can
# create new time series at will. Routes are templates for the same reason.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "OTHER"


class ServedModel(Collector):
    """`irisops_model_info` and `irisops_model_loaded`, read at scrape time."""

    def __init__(self) -> None:
        self.model: LoadedModel | None = None

    def collect(self) -> Iterable[Metric]:
        model = self.model
        loaded = GaugeMetricFamily(
            "irisops_model_loaded", "1 while a model is loaded and serving, else 0"
        )
        loaded.add_metric([], 0 if model is None else 1)
        yield loaded
        if model is not None:
            metadata = model.metadata
            yield InfoMetricFamily(
                "irisops_model",
                "The model being served (value always 1)",
                value={
                    "name": metadata.registered_model,
                    "version": model.version,
                    "run_id": metadata.run_id,
                    "sha256": metadata.sha256,
                },
            )


class Metrics:
    """Every metric the API exports, and the calls that record them.

    Also the store's observer (`StoreObserver`): the store reports loads and failed
    reload attempts here without knowing about Prometheus.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process, platform and GC collectors the global registry would have had.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.served = ServedModel()
        self.registry.register(self.served)
        self.requests = Counter(
            "irisops_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "irisops_http_request_duration_seconds",
            "Time from receiving a request to sending the end of its answer",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "irisops_predictions",
            "Rows predicted, by predicted class (all prediction routes)",
            ["class"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "irisops_batch_rows",
            "Rows per batch request, by route",
            ["route"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "irisops_model_reloads",
            "Models loaded and swapped in, the first one included",
            registry=self.registry,
        )
        self.reload_failures = Counter(
            "irisops_model_reload_failures",
            "Failed attempts to check for or load a new model (the previous one keeps serving)",
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._class_children: dict[str, Counter] = {}
        self._batch_children: dict[str, Histogram] = {}

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            label = method if method in METHODS else OTHER
            children = (
                self.requests.labels(label, route, str(status)),
                self.latency.labels(label, route),
            )
            self._request_children[key] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)

    def predicted(self, class_names: Sequence[str], class_ids: npt.ArrayLike) -> None:
        """Count one request's predictions: one increment per class that occurs."""
        counts = np.bincount(np.asarray(class_ids, dtype=np.intp), minlength=len(class_names))
        for name, count in zip(class_names, counts.tolist(), strict=True):
            if count:
                self._class_child(name).inc(count)

    def predicted_one(self, class_name: str) -> None:
        """Count a single-row prediction: one increment, no array."""
        self._class_child(class_name).inc()

    def batch(self, route: str, rows: int) -> None:
        child = self._batch_children.get(route)
        if child is None:
            child = self._batch_children[route] = self.batch_rows.labels(route)
        child.observe(rows)

    def _class_child(self, name: str) -> Counter:
        child = self._class_children.get(name)
        if child is None:
            child = self._class_children[name] = self.predictions.labels(name)
        return child

    # StoreObserver

    def model_loaded(self, model: LoadedModel) -> None:
        self.served.model = model
        self.reloads.inc()
        # Every class exported from the start at 0, so rate() and absent() work at once.
        for name in model.metadata.class_names:
            self._class_child(name)

    def reload_failed(self, reason: str) -> None:
        self.reload_failures.inc()


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics
