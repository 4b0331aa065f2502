"""`make bench`: irisops's API against `mlflow models serve`, on one registered model.

One run trains and registers a model (a real tracking server, the real trainer),
then serves that same registered version with each server in turn, one worker
each, on loopback, and measures both the same way. Every ratio is computed within
the run, so the comparison holds on whatever machine it runs on. The table goes to
stdout and bench/results/latest.md, everything measured to bench/results/<time>.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import backends as backends_
from bench import batches as batches_
from bench import pairs, peer_servers, report, servers, switches, workloads
from bench import wrk as wrk_
from irisops.bundle import ModelFiles, read_current
from irisops.runtime import usable_cpus
from tests.processes import environment, free_port, irisops, running

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "iris-classifier"
BATCH_REQUESTS = {1_000: 20, 10_000: 10}
PAIRS = 10  # /predict against /health, alternating (target 2)
VERSIONS = {
    "onnxruntime": "onnxruntime",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "mlflow": "mlflow",
    "sklearn": "scikit-learn",
}


@dataclass(frozen=True)
class Load:
    """How wrk loads every endpoint."""

    wrk: wrk_.Wrk
    connections: int
    seconds: float
    warmup: float
    threads: int
    script_dir: Path


@dataclass(frozen=True)
class Stack:
    """The tracking server's environment and the version it registered."""

    home: Path
    env: dict[str, str]
    version: str
    class_names: list[str]
    files: ModelFiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of each wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="wrk warm-up per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    wrk = wrk_.find_or_install()
    print(f"wrk {wrk.version}: {wrk.path} ({wrk.origin})", flush=True)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="irisops-bench-") as tmp:
        # The servers answer on one thread: wrk gets the other CPUs (one at least, four at most).
        threads = max(1, min(4, usable_cpus() - 1))
        load = Load(wrk, args.connections, args.seconds, args.warmup, threads, Path(tmp))
        result = measure(Path(tmp), load)
    result["date"] = f"{started:%Y-%m-%d %H:%M} UTC"
    result["targets"] = [asdict(t) for t in report.targets(result)]
    table = report.markdown(result)
    print("\n" + table)
    RESULTS.mkdir(exist_ok=True)
    stamp = f"{started:%Y%m%dT%H%M%SZ}"
    (RESULTS / f"{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(table)
    print(f"wrote bench/results/{stamp}.json and bench/results/latest.md")


def measure(home: Path, load: Load) -> dict[str, Any]:
    port = free_port()
    tracking_uri = f"http://127.0.0.1:{port}"
    env = environment(home, IRISOPS_TRACKING_PORT=str(port))
    print("starting a tracking server and training one model…", flush=True)
    with running("tracking", env=env, url=tracking_uri, log=home / "tracking.log"):
        model_dir = home / "model_data"
        env |= {"MLFLOW_TRACKING_URI": tracking_uri, "IRISOPS_MODEL_DIR": str(model_dir)}
        trained = irisops("train", env=env)
        if trained.returncode != 0:
            raise SystemExit(f"training failed:\n{trained.stdout}\n{trained.stderr}")
        _, metadata, files = read_current(model_dir)
        stack = Stack(home, env, metadata.version or "unregistered", metadata.class_names, files)
        latency, parity = in_process(stack)
        pickled = pickle_forest(stack)
        ours, checks = serve_ours(stack, load)
        others = serve_peers(stack, load, pickled)
        in_batches = batches_.measure(model_dir)
        print("the backends in process…", flush=True)
        in_backends = backends_.measure()
        settings = (load.wrk, load.connections, load.threads, load.warmup)
        telemetry_cost = switches.cost(switches.TELEMETRY, env, home, settings, model_dir)
        log_cost = switches.cost(switches.INFERENCE_LOG, env, home, settings, model_dir)
        return {
            "machine": report.machine(),
            "versions": {name: version(package) for name, package in VERSIONS.items()},
            "wrk": asdict(load.wrk),
            "model": f"{MODEL} v{stack.version}, RandomForest of 100 trees",
            "settings": {
                "connections": load.connections,
                "seconds": load.seconds,
                "warmup": load.warmup,
                "wrk_threads": load.threads,
                "batch_requests": {str(k): v for k, v in BATCH_REQUESTS.items()},
            },
            "in_process": latency,
            "parity": parity,
            "servers": {"irisops": ours, "mlflow": serve_mlflow(stack, load)},
            "peers": others,
            "batches_in_process": in_batches,
            "backends": in_backends,
            "telemetry": telemetry_cost,
            "inference_log": log_cost,
            "checks": checks,
        }


def in_process(stack: Stack) -> tuple[dict[str, float], dict[str, Any]]:
    """One row through scikit-learn (what MLflow runs) and through our runtime; parity."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd

    from irisops.runtime import ForestClassifier, OnnxClassifier
    from irisops.tracking import configure_client
    from irisops.training import data
    from irisops.training.export import ParityError, check_parity

    print("in-process single-row latency and export parity…", flush=True)
    configure_client()
    mlflow.set_tracking_uri(stack.env["MLFLOW_TRACKING_URI"])
    forest = mlflow.sklearn.load_model(f"models:/{MODEL}/{stack.version}")
    classifier = OnnxClassifier(stack.files.onnx)
    frame = pd.DataFrame([workloads.SEED_ROW], columns=workloads.FEATURES)
    array = np.asarray([workloads.SEED_ROW], dtype=np.float32)
    latency = {
        "sklearn_us": workloads.median_call_us(
            lambda: forest.predict_proba(frame), calls=500, budget_s=8
        ),
        "onnxruntime_us": workloads.median_call_us(
            lambda: classifier.predict_proba(array), calls=20_000, budget_s=4
        ),
    }
    if stack.files.forest is not None:
        walker = ForestClassifier(stack.files.forest)
        latency["forest_us"] = workloads.median_call_us(
            lambda: walker.predict_proba(array), calls=20_000, budget_s=4
        )
    try:
        report_ = check_parity(forest, stack.files, data.load(), seed=42)
    except ParityError as exc:
        return latency, {"holds": False, "detail": str(exc)}
    detail = (
        f"{report_.rows:,} rows, max |Δp| {report_.max_probability_diff:.1e}, "
        f"{report_.class_mismatches} class mismatches"
    )
    return latency, {"holds": True, "detail": detail}


def pickle_forest(stack: Stack) -> Path:
    """The registered forest as a pickle, for the peers that serve scikit-learn themselves."""
    import pickle

    import mlflow.sklearn

    forest = mlflow.sklearn.load_model(f"models:/{MODEL}/{stack.version}")
    path = stack.home / "forest.pkl"
    path.write_bytes(pickle.dumps(forest))
    return path


def serve_ours(stack: Stack, load: Load) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = stack.env | {"IRISOPS_API_PORT": str(port)}
    print("irisops serve…", flush=True)
    log = stack.home / "api.log"
    with servers.started(
        "irisops serve", servers.IRISOPS_SERVE, env=env, url=url, ready_path="/ready", log=log
    ) as (server):
        predict = wrk_.Request("ours", "/predict", workloads.OURS_SINGLE)
        health = wrk_.Request("health", "/health")
        measured = {
            "predict": wrk_load(load, url, predict),
            "health": wrk_load(load, url, health),
            "pairs": predict_vs_health(load, url, predict, health),
            "batch": batches(f"{url}/predict/batch", workloads.ours_batch),
            "columnar_batch": batches(f"{url}/predict/batch?format=columnar", workloads.ours_batch),
        }
        checks = workloads.answer_checks(url, stack.version, stack.class_names)
        return with_server(measured, server), [asdict(c) for c in checks]


def serve_mlflow(stack: Stack, load: Load) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    model_uri = f"models:/{MODEL}/{stack.version}"
    argv = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    argv += ["-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
    # It starts `uvicorn` by name, so the venv's bin must come first on PATH.
    env = stack.env | {"PATH": f"{bin_dir}:{stack.env.get('PATH', '')}"}
    print("mlflow models serve…", flush=True)
    log = stack.home / "mlflow-serve.log"
    with servers.started(
        "mlflow models serve", argv, env=env, url=url, ready_path="/ping", log=log
    ) as (server):
        invocations = wrk_.Request("mlflow", "/invocations", workloads.MLFLOW_SINGLE)
        measured = {
            "predict": wrk_load(load, url, invocations),
            "batch": batches(f"{url}/invocations", workloads.mlflow_batch),
        }
        return with_server(measured, server)


def serve_peers(stack: Stack, load: Load, pickled: Path) -> dict[str, Any]:
    """Each peer beside `irisops serve`: its own load, then the two in alternating pairs."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = stack.env | {"IRISOPS_API_PORT": str(port)}
    predict = wrk_.Request("ours", "/predict", workloads.OURS_SINGLE)
    measured: dict[str, Any] = {}
    with servers.started(
        "irisops serve",
        servers.IRISOPS_SERVE,
        env=env,
        url=url,
        ready_path="/ready",
        log=stack.home / "api-peers.log",
    ):
        for make in (
            peer_servers.constant,
            partial(peer_servers.plain_fastapi, pickled=pickled),
            partial(peer_servers.bentoml, pickled=pickled, home=stack.home),
            partial(peer_servers.irisops_workers, workers=2),
        ):
            peer = make(free_port())
            measured[peer.name] = serve_peer(stack, load, peer, (url, predict))
    return measured


def serve_peer(
    stack: Stack, load: Load, peer: peer_servers.Peer, ours: tuple[str, wrk_.Request]
) -> dict[str, Any]:
    url = "http://127.0.0.1:" + peer.argv[peer.argv.index("--port") + 1]
    print(f"{peer.name}…", flush=True)
    log = stack.home / f"peer-{peer.request.name}.log"
    with servers.started(
        peer.name, peer.argv, env=stack.env | peer.env, url=url, ready_path=peer.ready_path, log=log
    ) as server:
        measured = {
            "predict": wrk_load(load, url, peer.request),
            "pairs": alternating(load, {"irisops": ours, "peer": (url, peer.request)}),
        }
        return with_server(measured, server)


def wrk_load(load: Load, url: str, request: wrk_.Request) -> dict[str, Any]:
    """A warm-up, then `load.connections` connections, then one, each for `load.seconds`."""

    def run(connections: int, seconds: float) -> wrk_.WrkResult:
        return wrk_.run(
            load.wrk,
            url,
            request,
            connections=connections,
            threads=load.threads,
            seconds=seconds,
            script_dir=load.script_dir,
        )

    run(load.connections, load.warmup)
    many, one = run(load.connections, load.seconds), run(1, load.seconds)
    print(
        f"  {request.path}: {many.requests_per_s:,.0f} req/s at {load.connections} "
        f"connections, p99 {one.p99_ms:.2f} ms at 1",
        flush=True,
    )
    return {"many": asdict(many), "one": asdict(one)}


def predict_vs_health(
    load: Load, url: str, predict: wrk_.Request, health: wrk_.Request
) -> dict[str, Any]:
    """/predict against /health in alternating short runs: steadier than one run of each."""
    return alternating(load, {"predict": (url, predict), "health": (url, health)})


def alternating(load: Load, two: dict[str, tuple[str, wrk_.Request]]) -> dict[str, Any]:
    """The first of TWO (name: where and what to load) against the second, in PAIRS pairs."""

    def run(url: str, request: wrk_.Request) -> float:
        return wrk_.run(
            load.wrk,
            url,
            request,
            connections=load.connections,
            threads=load.threads,
            seconds=pairs.PAIR_SECONDS,
            script_dir=load.script_dir,
        ).clean_requests_per_s()

    measured = pairs.alternate({name: partial(run, *where) for name, where in two.items()}, PAIRS)
    first, second = two
    ratio = pairs.ratios(measured, first, second)
    print(f"  {first} ÷ {second}, median of {PAIRS} pairs: {ratio.median:.0%}", flush=True)
    return {
        "pairs": PAIRS,
        "pair_seconds": pairs.PAIR_SECONDS,
        "requests_per_s": measured,
        "median_requests_per_s": {k: statistics.median(v) for k, v in measured.items()},
        "ratio": asdict(ratio),
    }


def batches(url: str, encode: Callable[[list[list[float]]], bytes]) -> dict[str, Any]:
    """Both servers get the same rows and answer {"predictions": [one per row]}."""
    measured = {}
    for size, requests in BATCH_REQUESTS.items():
        body = encode(workloads.rows(size))
        batch = workloads.batch_throughput(url, body, size, requests)
        print(f"  {size:,}-row batches: {batch.rows_per_s:,.0f} rows/s", flush=True)
        measured[str(size)] = asdict(batch)
    return measured


def with_server(measured: dict[str, Any], server: servers.Server) -> dict[str, Any]:
    # Read after the load: the peak covers the whole run, warm-up and batches included.
    print(f"  ready in {server.cold_start_s:.2f} s, peak RSS {server.peak_rss_mib:.0f} MiB")
    return measured | {"cold_start_s": server.cold_start_s, "peak_rss_mib": server.peak_rss_mib}


if __name__ == "__main__":
    main()
