"""Ratios, targets and the markdown table, all computed from one run's measurements."""

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from irisops.runtime import usable_cpus


@dataclass(frozen=True)
class Target:
    number: int
    name: str
    goal: str
    measured: str  # the ratio as the table shows it
    passed: bool


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        with Path("/proc/cpuinfo").open() as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass  # not Linux: keep platform's answer
    try:
        system = platform.freedesktop_os_release()["PRETTY_NAME"]
    except OSError:
        system = platform.platform()
    return {
        "cpu": cpu,
        "cpus": usable_cpus(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": system,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def times(x: float) -> str:
    """A ratio as people read it: 64.1x above one, 1/9.7 below."""
    if x >= 1:
        return f"{x:,.1f}x" if x < 100 else f"{x:,.0f}x"
    return f"1/{1 / x:,.1f}" if 1 / x < 100 else f"1/{1 / x:,.0f}"


def number(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def no_load_errors(r: dict[str, Any]) -> bool:
    ours = r["servers"]["irisops"]
    runs = [*ours["predict"].values(), *ours["health"].values()]
    return all(run["socket_errors"] == 0 and run["non_2xx"] == 0 for run in runs)


def targets(r: dict[str, Any]) -> list[Target]:
    """The issue's targets, each a ratio of two measurements of this run."""
    ours, theirs = r["servers"]["irisops"], r["servers"]["mlflow"]
    rps = ours["pairs"]["median_requests_per_s"]["predict"]
    vs_mlflow = rps / theirs["predict"]["many"]["requests_per_s"]
    vs_health = ours["pairs"]["ratio"]["median"]
    p99 = ours["predict"]["one"]["p99_ms"] / theirs["predict"]["one"]["p99_ms"]
    batch = ours["batch"]["10000"]["rows_per_s"] / theirs["batch"]["10000"]["rows_per_s"]
    start = ours["cold_start_s"] / theirs["cold_start_s"]
    rss = ours["peak_rss_mib"] / theirs["peak_rss_mib"]
    answers = [c["passed"] for c in r["checks"]] + [r["parity"]["holds"], no_load_errors(r)]
    n = r["settings"]["connections"]
    cost = r["telemetry"]["wrk"]
    kept = cost["ratio"]["median"]
    switched = cost["request_id_echoed"] == {"on": True, "off": False}
    return [
        Target(
            1,
            f"`/predict` req/s at {n} connections (median of the pairs) vs MLflow",
            "≥ 60x",
            times(vs_mlflow),
            vs_mlflow >= 60,
        ),
        Target(
            2,
            f"`/predict` req/s vs our own `/health`, same process, "
            f"median of {ours['pairs']['pairs']} alternating pairs",
            "≥ 75%",
            f"{vs_health:.0%}",
            vs_health >= 0.75,
        ),
        Target(3, "p99 latency at 1 connection vs MLflow", "≤ 1/20", times(p99), p99 <= 1 / 20),
        Target(4, "10,000-row batch rows/s vs MLflow", "≥ 3x", times(batch), batch >= 3),
        Target(5, "cold start to ready vs MLflow", "≤ 1/5", times(start), start <= 1 / 5),
        Target(5, "peak RSS of the process tree vs MLflow", "≤ 1/3", times(rss), rss <= 1 / 3),
        Target(
            6,
            "answers unchanged (checks below)",
            "all hold",
            f"{sum(answers)}/{len(answers)} hold",
            all(answers),
        ),
        Target(
            7,
            "`/predict` req/s with per-request telemetry vs without",
            "≥ 90%",
            f"{kept:.0%}",
            kept >= 0.9 and switched,
        ),
    ]


def markdown(r: dict[str, Any]) -> str:
    ours, theirs = r["servers"]["irisops"], r["servers"]["mlflow"]
    m, v, s = r["machine"], r["versions"], r["settings"]
    predict, health, invocations = ours["predict"], ours["health"], theirs["predict"]
    n = s["connections"]

    def latency(run: dict[str, Any]) -> str:
        return f"{number(run['p50_ms'])} / {number(run['p99_ms'])}"

    def errors(runs: dict[str, Any]) -> str:
        socket = sum(x["socket_errors"] for x in runs.values())
        return f"{socket} / {sum(x['non_2xx'] for x in runs.values())}"

    def batch(size: str) -> list[str]:
        a, b = ours["batch"][size]["rows_per_s"], theirs["batch"][size]["rows_per_s"]
        return [f"{int(size):,}-row batches, rows/s", number(a), "", number(b), times(a / b)]

    rps = [x["many"]["requests_per_s"] for x in (predict, health, invocations)]
    paired = ours["pairs"]
    one_row = r["in_process"]
    rows = [
        ["", "irisops `/predict`", "irisops `/health`", "MLflow `/invocations`", "irisops/MLflow"],
        [f"req/s, {n} connections", *map(number, rps), times(rps[0] / rps[2])],
        [
            f"req/s, {n} connections, median of {paired['pairs']} alternating "
            f"{paired['pair_seconds']:g} s runs",
            *(number(paired["median_requests_per_s"][k]) for k in ("predict", "health")),
            "",
            f"/predict ÷ /health {paired['ratio']['median']:.0%} (quartiles "
            f"{paired['ratio']['q1']:.0%} to {paired['ratio']['q3']:.0%})",
        ],
        [
            "p50 / p99 ms, 1 connection",
            *(latency(x["one"]) for x in (predict, health, invocations)),
            "p99 " + times(predict["one"]["p99_ms"] / invocations["one"]["p99_ms"]),
        ],
        [
            f"p50 / p99 ms, {n} connections",
            *(latency(x["many"]) for x in (predict, health, invocations)),
            "p99 " + times(predict["many"]["p99_ms"] / invocations["many"]["p99_ms"]),
        ],
        ["socket errors / non-2xx", errors(predict), errors(health), errors(invocations), ""],
        [
            "cold start to ready, s",
            f"{ours['cold_start_s']:.2f}",
            "",
            f"{theirs['cold_start_s']:.2f}",
            times(ours["cold_start_s"] / theirs["cold_start_s"]),
        ],
        [
            "peak RSS, process tree, MiB",
            number(ours["peak_rss_mib"]),
            "",
            number(theirs["peak_rss_mib"]),
            times(ours["peak_rss_mib"] / theirs["peak_rss_mib"]),
        ],
        batch("1000"),
        batch("10000"),
        [
            "one row in process, µs, median",
            f"{number(one_row['onnxruntime_us'])} (onnxruntime)",
            "",
            f"{number(one_row['sklearn_us'])} (scikit-learn)",
            times(one_row["onnxruntime_us"] / one_row["sklearn_us"]),
        ],
    ]
    goals = [["#", "target (ratio within this run)", "goal", "this run", "result"]]
    goals += [
        [
            str(t["number"]),
            t["name"],
            t["goal"],
            t["measured"],
            "pass" if t["passed"] else "**FAIL**",
        ]
        for t in r["targets"]
    ]
    checks = [(c["passed"], c["name"]) for c in r["checks"]] + [
        (r["parity"]["holds"], f"export parity: {r['parity']['detail']}"),
        (no_load_errors(r), "no socket errors and no non-2xx in any wrk run against irisops"),
    ]
    return (
        "\n".join(
            [
                f"### Serving benchmark, {r['date']}",
                "",
                f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB RAM, {m['os']} "
                f"(Linux {m['kernel']}), Python {m['python']}. onnxruntime {v['onnxruntime']}, "
                f"FastAPI {v['fastapi']}, uvicorn {v['uvicorn']}, MLflow {v['mlflow']}, "
                f"scikit-learn {v['sklearn']}; wrk {r['wrk']['version']} ({r['wrk']['origin']}).",
                "",
                f"Model: {r['model']}. One server at a time, one worker each, on 127.0.0.1. "
                f"wrk: {s['warmup']:g} s warm-up, then {s['seconds']:g} s at {n} connections and "
                f"{s['seconds']:g} s at 1, {s['wrk_threads']} thread(s). Batches: "
                f"{s['batch_requests']['1000']} x 1,000 and {s['batch_requests']['10000']} x "
                "10,000 rows, the same rows to both, one request at a time.",
                "",
                *_table(rows),
                "",
                *_table(goals, numbers=False),
                "",
                telemetry_paragraph(r["telemetry"]),
                "",
                "Answer checks (target 6):",
                "",
                *[f"- {'pass' if ok else '**FAIL**'}: {name}" for ok, name in checks],
            ]
        )
        + "\n"
    )


def telemetry_paragraph(t: dict[str, Any]) -> str:
    over, inside = t["wrk"], t["in_process"]
    rps, ratio, extra = over["median_requests_per_s"], over["ratio"], inside["extra_us"]
    echoed = over["request_id_echoed"]
    return (
        f"Telemetry cost (target 7): `/predict` with the request telemetry (metrics, "
        f"X-Request-ID; access log off, the default) and without it "
        f"(`IRISOPS_TELEMETRY=false`; X-Request-ID answered: {echoed['on']} and "
        f"{echoed['off']}), both servers up, {over['pairs']} alternating pairs of "
        f"{over['pair_seconds']:g} s wrk runs at {over['connections']} connections: median "
        f"{number(rps['on'])} vs {number(rps['off'])} req/s; with/without per pair: median "
        f"{ratio['median']:.1%} (quartiles {ratio['q1']:.1%} to {ratio['q3']:.1%}). "
        f"In process (the ASGI app called directly, {inside['rounds']} alternating rounds of "
        f"{inside['requests_per_round']} requests): {inside['median_us']['on']:.1f} vs "
        f"{inside['median_us']['off']:.1f} µs a request, {extra['median']:+.1f} µs (quartiles "
        f"{extra['q1']:+.1f} to {extra['q3']:+.1f})."
    )


def _table(rows: list[list[str]], numbers: bool = True) -> list[str]:
    """A markdown table; with NUMBERS, every column after the first is right-aligned."""
    header, *body = rows
    align = ["---", *("---:" if numbers else "---" for _ in header[1:])]
    return [_row(header), _row(align), *(_row(x) for x in body)]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
