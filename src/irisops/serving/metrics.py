"""Prometheus metrics of one API instance, rendered by `GET /metrics`.

Each app gets its own `CollectorRegistry` rather than prometheus_client's global one,
so several apps in one process (tests, or an app re-created) never collide on metric
names and each one exports only its own counts.

Request counts and latencies are recorded on every request, so they are not kept in
prometheus_client's `Counter` and `Histogram`: those take a lock for every addition
(three per request), which made recording cost 2.6 µs. `RequestStats` keeps them in
C (_tally.c), one call that runs no Python function of ours, and builds the metric
families at scrape time. It needs no lock: the GIL is held through each C call, and
the request middleware and `GET /metrics` both run on the event loop's thread anyway.
Prediction and batch counts stay in prometheus_client's locked types: batches are
predicted in worker threads. docs/operability.md has what the whole of the telemetry
costs a request.
"""

import itertools
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
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.requests import Request

from irisops.runtime import LoadedModel
from irisops.serving._tally import Requests

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
                    "backend": model.backend,
                },
            )


class RequestStats(Collector):
    """`irisops_http_requests_total` and `irisops_http_request_duration_seconds`.

    One series per (method, route, status) is all a request touches; the latency
    histogram, labelled by method and route only, is summed over statuses at scrape
    time.
    """

    def __init__(self) -> None:
        self.tally = Requests(LATENCY_BUCKETS, METHODS, OTHER)
        # The C method itself, so that recording a request calls no Python function.
        self.record = self.tally.record

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "irisops_http_requests",
            "HTTP requests answered, by method, route template and status code",
            labels=["method", "route", "status"],
        )
        routes: dict[tuple[str, str], tuple[list[int], float]] = {}
        for (method, route, status), counts, seconds in self.tally.series():
            requests.add_metric([method, route, str(status)], sum(counts))
            merged, total = routes.get((method, route), ([0] * len(counts), 0.0))
            merged = [a + b for a, b in zip(merged, counts, strict=True)]
            routes[method, route] = merged, total + seconds
        yield requests
        latency = HistogramMetricFamily(
            "irisops_http_request_duration_seconds",
            "Time from receiving a request to sending the end of its answer",
            labels=["method", "route"],
        )
        bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
        for labels, (counts, seconds) in routes.items():
            buckets = list(zip(bounds, itertools.accumulate(counts), strict=True))
            latency.add_metric(list(labels), buckets, seconds)
        yield latency


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
        self.requests = RequestStats()
        self.registry.register(self.requests)
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
        self._class_children: dict[str, Counter] = {}
        self._batch_children: dict[str, Histogram] = {}

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
    metrics: Metrics = request.app.state.serving.metrics
    return metrics
