"""What the API learns from live traffic: the inference log, drift, the shadow, feedback.

Every prediction route calls `Monitor.answered` once, after its answer is built;
each part costs the request an append or two (see the modules for why), and all
the arithmetic happens at read time: `GET /monitoring`, `GET /metrics`.
"""

import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request

from irisops.config import Settings
from irisops.inference_log import InferenceLog
from irisops.runtime import LoadedModel
from irisops.serving import log_lines
from irisops.serving.drift import DriftWindow
from irisops.serving.feedback import Feedback, Judged
from irisops.serving.shadow import Offer, Shadow
from irisops.serving.store import ModelStore


class Monitor(Collector):
    def __init__(self, settings: Settings, challenger: ModelStore | None) -> None:
        self.settings = settings
        self.log = (
            InferenceLog(
                settings.inference_log_path,
                queue_size=settings.inference_log_queue,
                max_bytes=settings.inference_log_max_bytes,
                max_age=settings.inference_log_max_age,
                keep=settings.inference_log_keep,
            )
            if settings.inference_log
            else None
        )
        self.feedback = Feedback(settings.feedback_capacity, settings.feedback_window)
        self.shadow = (
            None
            if challenger is None
            else Shadow(challenger, settings.shadow_fraction, self._shadow_scored)
        )
        self.drift: DriftWindow | None = None
        self._drift_key: str | None = None
        self._fragments: dict[tuple[str, str], log_lines.Fragments] = {}

    def start(self) -> None:
        for part in (self.log, self.shadow):
            if part is not None:
                part.start()

    def stop(self) -> None:
        for part in (self.shadow, self.log):
            if part is not None:
                part.stop()

    def drift_of(self, model: LoadedModel) -> DriftWindow | None:
        """The window for `model`'s reference: a new model starts a new window."""
        if model.key != self._drift_key:
            reference = model.metadata.reference
            self.drift = (
                None if reference is None else DriftWindow(reference, self.settings.drift_window)
            )
            self._drift_key = model.key
        return self.drift

    def answered(
        self,
        route: str,
        model: LoadedModel,
        rows: Any,
        probabilities: npt.NDArray[np.float32],
        class_ids: Any,
        started: float,
        rid: str | None,
    ) -> None:
        """Called once per answered request with its rows (n x 4), its answer and its id."""
        if (drift := self.drift_of(model)) is not None:
            drift.observe(rows)
        slot = None if rid is None else self.feedback.remember(rid, model.version, class_ids)
        if self.log is not None:
            latency_ms = (time.perf_counter() - started) * 1000
            self.log.record(
                self._line(route, model, rid, rows, probabilities, class_ids, latency_ms)
                or {
                    "kind": "prediction",
                    "time": time.time(),
                    "request_id": rid,
                    "route": route,
                    "model_version": model.version,
                    "features": rows,
                    "probabilities": probabilities,
                    "class_ids": class_ids,
                    "classes": model.metadata.class_names,
                    "feature_names": model.metadata.feature_names,
                    "latency_ms": latency_ms,
                }
            )
        if self.shadow is not None:
            self.shadow.offer(
                Offer(rid, slot, model.version, model.metadata.class_names, rows, probabilities)
            )

    def _line(
        self,
        route: str,
        model: LoadedModel,
        rid: str | None,
        rows: Any,
        probabilities: npt.NDArray[np.float32],
        class_ids: Any,
        latency_ms: float,
    ) -> bytes | None:
        """A single row's log line, made in C (log_lines.py); None for any other record."""
        if not isinstance(rows, list) or len(rows) != 1:
            return None
        key = (route, model.key)
        parts = self._fragments.get(key)
        if parts is None:  # a new model: the old one's fragments are not needed again
            self._fragments = {key: (parts := log_lines.fragments(route, model))}
        row, class_id = rows[0], class_ids[0]
        return log_lines.prediction_line(
            parts, time.time(), rid, row, probabilities, class_id, latency_ms
        )

    def _shadow_scored(
        self,
        offer: Offer,
        version: str,
        probabilities: npt.NDArray[np.float32],
        class_ids: npt.NDArray[np.intp],
    ) -> None:
        if offer.request_id is not None and offer.feedback_slot is not None:
            self.feedback.shadow_scored(offer.feedback_slot, offer.request_id, version, class_ids)
        if self.log is not None:
            self.log.record(
                {
                    "kind": "shadow",
                    "time": time.time(),
                    "request_id": offer.request_id,
                    "model_version": version,
                    "champion_version": offer.champion_version,
                    "probabilities": probabilities,
                    "class_ids": class_ids,
                    "classes": offer.classes,
                }
            )

    def judged(self, judged: list[Judged]) -> None:
        if self.log is None:
            return
        for one in judged:
            self.log.record({"kind": "feedback", "time": time.time(), **asdict(one)})

    # --- reading -----------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The body of `GET /monitoring`."""
        return {
            "drift": self._drift_report(),
            "shadow": self._shadow_report(),
            "feedback": [
                {"role": role, "model_version": version, "accuracy": accuracy, "rows": rows}
                for (role, version), (accuracy, rows) in self.feedback.accuracy().items()
            ],
            "inference_log": None
            if self.log is None
            else {"directory": str(self.log.directory), **asdict(self.log.counts)},
        }

    def _drift_report(self) -> dict[str, Any] | None:
        if self.drift is None:
            return None
        report = self.drift.report()
        psi_limit, ks_limit = self.settings.drift_psi_threshold, self.settings.drift_ks_threshold
        return {
            "window_rows": report.window_rows,
            "out_of_range_share": report.out_of_range_share,
            "out_of_range_rows_total": self.drift.out_of_range_rows,
            "thresholds": {"psi": psi_limit, "ks": ks_limit},
            "features": {
                name: {**asdict(f), "drifting": f.psi > psi_limit or f.ks > ks_limit}
                for name, f in report.features.items()
            },
        }

    def _shadow_report(self) -> dict[str, Any] | None:
        if self.shadow is None:
            return None
        challenger = self.shadow.store.model
        return {
            "challenger_version": None if challenger is None else challenger.version,
            "dropped": self.shadow.dropped,
            "versions": {
                version: {"rows": a.rows, "agreement": a.rate, "mean_probability_gap": a.mean_gap}
                for version, a in list(self.shadow.versions.items())
            },
        }

    def collect(self) -> Iterable[Metric]:
        yield from self._log_metrics()
        yield from self._drift_metrics()
        yield from self._shadow_metrics()
        accuracy = GaugeMetricFamily(
            "irisops_live_accuracy",
            "Accuracy over the last labelled rows (POST /feedback), by role and model version",
            labels=["role", "model_version"],
        )
        for (role, version), (value, _) in self.feedback.accuracy().items():
            accuracy.add_metric([role, version], value)
        yield accuracy

    def _log_metrics(self) -> Iterable[Metric]:
        if self.log is None:
            return
        records = CounterMetricFamily(
            "irisops_inference_log_records",
            "Inference log records, by outcome: written, or dropped and why",
            labels=["outcome"],
        )
        counts = self.log.counts
        records.add_metric(["written"], counts.written)
        records.add_metric(["dropped_full_queue"], counts.dropped_full_queue)
        records.add_metric(["dropped_write_error"], counts.dropped_write_error)
        yield records

    def _drift_metrics(self) -> Iterable[Metric]:
        if self.drift is None:
            return
        report = self.drift.report()
        for name, help_text, value in (
            ("irisops_drift_psi", "Population stability index of live inputs", "psi"),
            ("irisops_drift_ks", "Kolmogorov-Smirnov statistic of live inputs (binned)", "ks"),
        ):
            family = GaugeMetricFamily(name, help_text + " against training", labels=["feature"])
            for feature, drift in report.features.items():
                family.add_metric([feature], getattr(drift, value))
            yield family
        yield GaugeMetricFamily(
            "irisops_drift_window_rows", "Live rows in the drift window", value=report.window_rows
        )
        yield GaugeMetricFamily(
            "irisops_drift_out_of_range_share",
            "Share of the window's rows with a feature outside the training range",
            value=report.out_of_range_share,
        )
        yield CounterMetricFamily(
            "irisops_out_of_range_rows",
            "Rows with a feature outside the training range, since start",
            value=self.drift.out_of_range_rows,
        )

    def _shadow_metrics(self) -> Iterable[Metric]:
        if self.shadow is None:
            return
        rows = CounterMetricFamily(
            "irisops_shadow_rows", "Rows the challenger scored", labels=["challenger_version"]
        )
        agreed = CounterMetricFamily(
            "irisops_shadow_agreements",
            "Rows where the challenger chose the champion's class",
            labels=["challenger_version"],
        )
        gap = GaugeMetricFamily(
            "irisops_shadow_probability_gap_mean",
            "Mean of the largest per-class probability difference, challenger vs champion",
            labels=["challenger_version"],
        )
        for version, a in list(self.shadow.versions.items()):
            rows.add_metric([version], a.rows)
            agreed.add_metric([version], a.agreed)
            gap.add_metric([version], a.mean_gap or 0.0)
        yield from (rows, agreed, gap)
        yield CounterMetricFamily(
            "irisops_shadow_dropped",
            "Shadow offers dropped by a full queue",
            value=self.shadow.dropped,
        )


def monitor_of(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.serving.monitor
    return monitor
