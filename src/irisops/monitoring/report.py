"""`irisops monitor`: one HTML page a person can open to judge the model on live traffic.

Live inputs against the training reference, feature by feature; drift over time;
and, per model version, how often the shadow challenger agreed with the champion
and how accurate each was where feedback arrived. The plots are inline PNGs, so
the page is one file that opens anywhere, offline.
"""

import base64
import html
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt

from irisops.profile import ReferenceProfile, ks, psi

CHUNK = 200  # rows per point of the drift-over-time plot


@dataclass
class Evidence:
    """What the log says, gathered in one pass."""

    rows: list[list[float]] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    served: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # id -> version, ids
    agreement: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    accuracy: dict[tuple[str, str], list[bool]] = field(default_factory=lambda: defaultdict(list))


def gather(records: Iterable[dict[str, Any]]) -> Evidence:
    evidence = Evidence()
    for record in records:
        kind = record.get("kind")
        if kind == "prediction":
            evidence.rows.extend(record["features"])
            evidence.times.extend([record["time"]] * len(record["features"]))
            if record.get("request_id"):
                evidence.served[record["request_id"]] = (
                    record["model_version"],
                    record["class_ids"],
                )
        elif kind == "shadow" and (served := evidence.served.get(record.get("request_id") or "")):
            agreed = [a == b for a, b in zip(served[1], record["class_ids"], strict=True)]
            evidence.agreement[record["model_version"]].extend(agreed)
        elif kind == "feedback":
            for role, (version, predicted) in record["answers"].items():
                evidence.accuracy[(role, version)].append(predicted == record["true_class"])
    return evidence


def shares(
    reference: ReferenceProfile, rows: npt.NDArray[np.float32]
) -> list[npt.NDArray[np.float64]]:
    """Per feature, the share of `rows` in each reference bin."""
    out = []
    for i, feature in enumerate(reference.features):
        edges = np.asarray(feature.edges, dtype=np.float32)
        counts = np.bincount(
            np.searchsorted(edges, rows[:, i], side="right"), minlength=len(feature.shares)
        )
        out.append(counts / max(len(rows), 1))
    return out


def png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def histograms(reference: ReferenceProfile, rows: npt.NDArray[np.float32]) -> str:
    figure, axes = plt.subplots(
        1, len(reference.features), figsize=(4 * len(reference.features), 3)
    )
    for axis, feature, live in zip(axes, reference.features, shares(reference, rows), strict=True):
        x = np.arange(len(feature.shares))
        axis.bar(x - 0.2, feature.shares, 0.4, label="training")
        axis.bar(x + 0.2, live, 0.4, label="live")
        axis.set_title(f"{feature.name}: PSI {psi(live, np.asarray(feature.shares)):.3f}")
        axis.set_xlabel("reference bin")
    axes[0].set_ylabel("share of rows")
    axes[0].legend()
    return png(figure)


def drift_over_time(reference: ReferenceProfile, rows: npt.NDArray[np.float32]) -> str:
    figure, axis = plt.subplots(figsize=(10, 3))
    starts = range(0, max(len(rows) - CHUNK + 1, 1), CHUNK)
    for i, feature in enumerate(reference.features):
        values = [
            psi(shares(reference, rows[s : s + CHUNK])[i], np.asarray(feature.shares))
            for s in starts
        ]
        axis.plot(list(starts), values, marker="o", label=feature.name)
    axis.axhline(0.2, color="grey", linestyle="--", label="PSI 0.2")
    axis.set_xlabel(f"live row (windows of {CHUNK})")
    axis.set_ylabel("PSI")
    axis.legend()
    return png(figure)


STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px}img{max-width:100%}"
)


def page(reference: ReferenceProfile | None, evidence: Evidence, title: str) -> str:
    width = 4 if reference is None else len(reference.features)
    rows = np.asarray(evidence.rows, dtype=np.float32).reshape(-1, width)
    span = f", {evidence.times[0]} to {evidence.times[-1]}" if evidence.times else ""
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(rows):,} live rows{html.escape(span)}.</p>",
    ]
    parts += _drift_section(reference, rows)
    parts += ["<h2>Shadow challenger</h2>", _agreement_table(evidence)]
    parts += ["<h2>Live accuracy (where feedback arrived)</h2>", _accuracy_table(evidence)]
    head = f"<meta charset=utf-8><title>{html.escape(title)}</title><style>{STYLE}</style>"
    return f"<!doctype html><html lang=en><head>{head}</head><body>{''.join(parts)}</body></html>"


def _drift_section(reference: ReferenceProfile | None, rows: npt.NDArray[np.float32]) -> list[str]:
    if reference is None:
        return ["<p>The served model carries no training reference: no drift to show.</p>"]
    if not len(rows):
        return ["<p>No live rows yet.</p>"]
    return [
        "<h2>Live inputs against the training data</h2>",
        _drift_table(reference, shares(reference, rows)),
        _image("live and training histograms", histograms(reference, rows)),
        "<h2>Drift over time</h2>",
        _image("PSI over time", drift_over_time(reference, rows)),
    ]


def _image(alt: str, data: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'


def _agreement_table(evidence: Evidence) -> str:
    if not evidence.agreement:
        return "<p>No shadow scoring in the log.</p>"
    rows = [[v, f"{len(a):,}", f"{sum(a) / len(a):.1%}"] for v, a in evidence.agreement.items()]
    return _table(["challenger version", "rows scored", "agreement with the champion"], rows)


def _accuracy_table(evidence: Evidence) -> str:
    if not evidence.accuracy:
        return "<p>No feedback in the log.</p>"
    rows = [
        [role, v, f"{len(o):,}", f"{sum(o) / len(o):.1%}"]
        for (role, v), o in evidence.accuracy.items()
    ]
    return _table(["role", "model version", "labelled rows", "accuracy"], rows)


def _drift_table(reference: ReferenceProfile, drift: list[npt.NDArray[np.float64]]) -> str:
    rows = [
        [f.name, f"{psi(live, np.asarray(f.shares)):.3f}", f"{ks(live, np.asarray(f.shares)):.3f}"]
        for f, live in zip(reference.features, drift, strict=True)
    ]
    return _table(["feature", "PSI", "KS"], rows)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
