"""Ratios, targets and the markdown tables, all computed from recorded measurements.

`make bench` renders bench/results/latest.md from its run; `python -m bench.report
[RUN.json]` renders it again from a recorded run (the newest by default) without
measuring anything, for when the report changes but the measurements need not.
"""

import argparse
import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from irisops.runtime import usable_cpus

RESULTS = Path(__file__).resolve().parent / "results"


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
    """The original project description's targets, each a ratio of two measurements of this run."""
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
    took = switched(cost) == {"on": True, "off": False}
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
            kept >= 0.9 and took,
        ),
        *inference_log_target(r),
        *floor_targets(r),
    ]


def inference_log_target(r: dict[str, Any]) -> list[Target]:
    """Target 8, for runs that measured the inference log (older ones did not)."""
    if "inference_log" not in r:
        return []
    over = r["inference_log"]["wrk"]
    kept = over["ratio"]["median"]
    took = switched(over) == {"on": True, "off": False}
    return [
        Target(
            8,
            "`/predict` req/s with the inference log vs without",
            "≥ 90%",
            f"{kept:.0%}",
            kept >= 0.9 and took,
        )
    ]


def peer(r: dict[str, Any], prefix: str) -> dict[str, Any]:
    (name,) = (name for name in r["peers"] if name.startswith(prefix))
    found: dict[str, Any] = r["peers"][name]
    return found


def floor_targets(r: dict[str, Any]) -> list[Target]:
    """Targets 9 to 11, for runs that measured the peers (older ones did not)."""
    if "peers" not in r:
        return []
    ours, theirs = r["servers"]["irisops"], r["servers"]["mlflow"]
    mlflow_batch = theirs["batch"]["10000"]["rows_per_s"]
    batch = ours["batch"]["10000"]["rows_per_s"] / mlflow_batch
    columnar = ours["columnar_batch"]["10000"]["rows_per_s"] / mlflow_batch
    rps = ours["pairs"]["median_requests_per_s"]["predict"]
    vs_mlflow = rps / theirs["predict"]["many"]["requests_per_s"]
    vs_bento = peer(r, "BentoML")["pairs"]["ratio"]["median"]
    vs_ceiling = peer(r, "bare ASGI")["pairs"]["ratio"]["median"]
    n = r["settings"]["connections"]
    return [
        Target(
            9,
            "10,000-row batch rows/s vs MLflow, default answer form",
            "≥ 5x",
            f"{times(batch)} (columnar form {times(columnar)})",
            batch >= 5,
        ),
        Target(
            10,
            f"`/predict` req/s at {n} connections (median of the pairs) vs MLflow",
            "≥ 100x",
            times(vs_mlflow),
            vs_mlflow >= 100,
        ),
        Target(
            10,
            "`/predict` req/s vs BentoML, median of alternating pairs",
            "> 1x",
            times(vs_bento),
            vs_bento > 1,
        ),
        Target(
            11,
            "`/predict` req/s vs a bare ASGI constant answer, same server setup, "
            "median of alternating pairs",
            "≥ 50%",
            f"{vs_ceiling:.0%}",
            vs_ceiling >= 0.5,
        ),
        *backend_targets(r),
    ]


def backend_targets(r: dict[str, Any]) -> list[Target]:
    """Target 12: the forest evaluator in process (bench/backends.py)."""
    forest = r["backends"]["figures"]["forest"]
    one_us, rows_per_s = forest["one_row_us"], forest["batch_one_thread_rows_per_s"]
    return [
        Target(12, "one row through the model in process, µs", "≤ 4", number(one_us), one_us <= 4),
        Target(
            12,
            "10,000 rows through the model in process, one thread, rows/s",
            "≥ 1.5M",
            number(rows_per_s),
            rows_per_s >= 1_500_000,
        ),
    ]


def peers_table(r: dict[str, Any]) -> list[str]:
    """Every server side by side, one worker each unless named, the same single row."""
    ours, theirs = r["servers"]["irisops"], r["servers"]["mlflow"]
    n = r["settings"]["connections"]

    def row(name: str, server: dict[str, Any], ratio: str) -> list[str]:
        many, one = server["predict"]["many"], server["predict"]["one"]
        return [
            name,
            number(many["requests_per_s"]),
            f"{number(one['p50_ms'])} / {number(one['p99_ms'])}",
            f"{server['cold_start_s']:.2f}",
            number(server["peak_rss_mib"]),
            ratio,
        ]

    def paired(server: dict[str, Any]) -> str:
        ratio = server["pairs"]["ratio"]
        return f"{times(ratio['median'])} ({times(ratio['q1'])} to {times(ratio['q3'])})"

    mlflow_ratio = (
        ours["predict"]["many"]["requests_per_s"] / theirs["predict"]["many"]["requests_per_s"]
    )
    rows = [
        [
            "server",
            f"req/s, {n} connections",
            "p50 / p99 ms, 1 connection",
            "cold start, s",
            "peak RSS, MiB",
            "irisops `/predict` ÷ it, median of alternating pairs (quartiles)",
        ],
        row("irisops `/predict`", ours, ""),
        row("`mlflow models serve`", theirs, f"{times(mlflow_ratio)} (one run each)"),
        *(row(name, server, paired(server)) for name, server in r["peers"].items()),
    ]
    return _table(rows)


def batches_paragraph(r: dict[str, Any]) -> str:
    ours, inside = r["servers"]["irisops"], r["batches_in_process"]
    forms, pauses = inside["forms"], inside["gc"]
    rows_ps = ours["batch"]["10000"]["rows_per_s"]
    columnar_ps = ours["columnar_batch"]["10000"]["rows_per_s"]
    frozen, unfrozen = pauses["frozen"], pauses["unfrozen"]
    return (
        f"Batches (target 9): over HTTP, 10,000-row batches answer {number(rows_ps)} rows/s "
        f"in the default form and {number(columnar_ps)} rows/s with `?format=columnar`. "
        f"In process (the ASGI app called directly, {forms['rounds']} alternating rounds): "
        f"{number(forms['median_ms']['rows'])} vs {number(forms['median_ms']['columnar'])} ms "
        f"a request, {forms['bytes']['rows']:,} vs {forms['bytes']['columnar']:,} bytes. "
        f"Garbage collection, the heap frozen once the model is loaded (what the server does) "
        f"vs not, {frozen['requests']} requests each in alternating blocks: p50 "
        f"{number(frozen['p50_ms'])} vs {number(unfrozen['p50_ms'])} ms, p99 "
        f"{number(frozen['p99_ms'])} vs {number(unfrozen['p99_ms'])} ms, max "
        f"{number(frozen['max_ms'])} vs {number(unfrozen['max_ms'])} ms; full collections "
        f"{frozen['full_collections']} taking {number(frozen['full_collection_ms'])} ms vs "
        f"{unfrozen['full_collections']} taking {number(unfrozen['full_collection_ms'])} ms."
    )


def markdown(
    r: dict[str, Any], recorded_runs: list[tuple[str, dict[str, Any]]] | None = None
) -> str:
    """The report of run R, then a row for it and for every run in RECORDED_RUNS.

    RECORDED_RUNS defaults to everything in bench/results/ (R itself among them or not).
    """
    ours, theirs = r["servers"]["irisops"], r["servers"]["mlflow"]
    m, v, s = r["machine"], r["versions"], r["settings"]
    predict, health, invocations = ours["predict"], ours["health"], theirs["predict"]
    n = s["connections"]

    def latency(run: dict[str, Any]) -> str:
        return f"{number(run['p50_ms'])} / {number(run['p99_ms'])}"

    def errors(runs: dict[str, Any]) -> str:
        socket = sum(x["socket_errors"] for x in runs.values())
        return f"{socket} / {sum(x['non_2xx'] for x in runs.values())}"

    def batch(size: str) -> list[list[str]]:
        a, b = ours["batch"][size]["rows_per_s"], theirs["batch"][size]["rows_per_s"]
        ms = ours["batch"][size]["median_ms"], theirs["batch"][size]["median_ms"]
        return [
            [f"{int(size):,}-row batches, rows/s", number(a), "", number(b), times(a / b)],
            [
                f"{int(size):,}-row batch, ms a request, median",
                number(ms[0]),
                "",
                number(ms[1]),
                times(ms[0] / ms[1]),
            ],
        ]

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
        *batch("1000"),
        *batch("10000"),
        [
            "one row in process, µs, median",
            " / ".join(
                f"{number(one_row[key])} ({name})"
                for key, name in (("forest_us", "forest"), ("onnxruntime_us", "onnxruntime"))
                if key in one_row
            ),
            "",
            f"{number(one_row['sklearn_us'])} (scikit-learn)",
            times(one_row.get("forest_us", one_row["onnxruntime_us"]) / one_row["sklearn_us"]),
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
                *([*peers_table(r), "", batches_paragraph(r), ""] if "peers" in r else []),
                telemetry_paragraph(r["telemetry"]),
                "",
                *(
                    [inference_log_paragraph(r["inference_log"]), ""]
                    if "inference_log" in r
                    else []
                ),
                "Answer checks (target 6):",
                "",
                *[f"- {'pass' if ok else '**FAIL**'}: {name}" for ok, name in checks],
                "",
                *history(r, recorded() if recorded_runs is None else recorded_runs),
            ]
        )
        + "\n"
    )


def recorded(directory: Path = RESULTS) -> list[tuple[str, dict[str, Any]]]:
    """Every run recorded in DIRECTORY, oldest first, with the name of its file."""
    runs = [(path.name, json.loads(path.read_text())) for path in directory.glob("*.json")]
    return sorted(runs, key=lambda run: str(run[1]["date"]))


def history(r: dict[str, Any], runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One row per recorded run and for R, oldest first: the ratios every run measured."""
    named = {run["date"]: name for name, run in runs}
    every = sorted([run for _, run in runs if run["date"] != r["date"]] + [r], key=_date)
    rows = [
        [
            "run",
            "wrk",
            "`/predict` req/s, one run",
            "÷ MLflow",
            "÷ `/health`, one run each",
            "÷ `/health`, median of pairs (quartiles)",
            "p50 ms, 1 connection",
            "10,000-row batches ÷ MLflow",
            "telemetry: with ÷ without, median of pairs (quartiles)",
            "telemetry in process, µs with / without",
            "targets met",
        ]
    ]
    for run in every:
        ours, theirs, s = run["servers"]["irisops"], run["servers"]["mlflow"], run["settings"]
        rps = ours["predict"]["many"]["requests_per_s"]
        name = named.get(run["date"], "")
        label = run["date"] + ("" if name[:1].isdigit() or not name else f" ({_prefix(name)})")
        pairs, telemetry = ours.get("pairs"), run.get("telemetry")
        met = [t["passed"] for t in run["targets"]]
        rows.append(
            [
                f"**{label}** (above)" if run is r else label,
                f"{s['connections']} connections, {s['seconds']:g} s",
                number(rps),
                times(rps / theirs["predict"]["many"]["requests_per_s"]),
                f"{rps / ours['health']['many']['requests_per_s']:.0%}",
                _spread(pairs["ratio"], "{:.0%}") if pairs else "",
                number(ours["predict"]["one"]["p50_ms"]),
                times(
                    ours["batch"]["10000"]["rows_per_s"] / theirs["batch"]["10000"]["rows_per_s"]
                ),
                _spread(telemetry["wrk"]["ratio"], "{:.1%}") if telemetry else "",
                _in_process(telemetry["in_process"]) if telemetry else "",
                f"{sum(met)}/{len(met)}",
            ]
        )
    return [
        "### Every recorded run",
        "",
        "One row per JSON in `bench/results/`, oldest first, each measured on the code and "
        "with the settings of its day; the targets as that run scored them. Runs differ in "
        "their code and in the other work that shared the machine.",
        "",
        *_table(rows),
    ]


def _date(run: dict[str, Any]) -> str:
    return str(run["date"])


def _prefix(name: str) -> str:
    """`baseline-before-optimizations-20261126T113252Z.json` -> `baseline before optimizations`."""
    return name.removesuffix(".json").rsplit("-", 1)[0].replace("-", " ")


def _spread(ratio: dict[str, float], form: str) -> str:
    return (
        f"{form.format(ratio['median'])} ({form.format(ratio['q1'])} to {form.format(ratio['q3'])})"
    )


def _in_process(inside: dict[str, Any]) -> str:
    us = inside["median_us"]
    return f"{us['on']:.1f} / {us['off']:.1f} ({inside['extra_us']['median']:+.1f})"


def switched(over: dict[str, Any]) -> dict[str, bool]:
    """Whether each server had the part on (older runs recorded it as request_id_echoed)."""
    took: dict[str, bool] = over.get("switched") or over["request_id_echoed"]
    return took


def telemetry_paragraph(t: dict[str, Any]) -> str:
    took = switched(t["wrk"])
    return switch_paragraph(
        t,
        "Telemetry cost (target 7): `/predict` with the request telemetry (metrics, "
        "X-Request-ID; access log off, the default) and without it "
        f"(`IRISOPS_TELEMETRY=false`; X-Request-ID answered: {took['on']} and {took['off']})",
    )


def inference_log_paragraph(t: dict[str, Any]) -> str:
    took = switched(t["wrk"])
    return switch_paragraph(
        t,
        "Inference log cost (target 8): `/predict` with every answer recorded in the "
        "inference log and without it (`IRISOPS_INFERENCE_LOG=false`; the log reported by "
        f"`GET /monitoring`: {took['on']} and {took['off']})",
    )


def switch_paragraph(t: dict[str, Any], what: str) -> str:
    over, inside = t["wrk"], t["in_process"]
    rps, ratio, extra = over["median_requests_per_s"], over["ratio"], inside["extra_us"]
    return (
        f"{what}, both servers up, {over['pairs']} alternating pairs of "
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Render bench/results/latest.md again from a recorded run; measures nothing."
    )
    parser.add_argument(
        "run", nargs="?", type=Path, help="a bench/results/<time>.json (default: the newest run)"
    )
    args = parser.parse_args()
    runs = recorded()
    path = args.run or RESULTS / runs[-1][0]
    r = json.loads(path.read_text())
    try:
        r["targets"] = [asdict(t) for t in targets(r)]
    except KeyError as missing:
        raise SystemExit(
            f"error: {path} lacks {missing}: an older bench recorded it; run `make bench`"
        ) from None
    (RESULTS / "latest.md").write_text(markdown(r, runs))
    print(f"wrote bench/results/latest.md from {path}")


if __name__ == "__main__":
    main()
