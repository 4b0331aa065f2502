"""`python -m bench.ab`: two servers in alternating wrk runs, with the CPU each spent a request.

For a change to the server: both servers run at once and are loaded in turn, the order
alternating as in pairs.py, and around each run the server's CPU time (user and
system, summed over its process tree and every thread) is read. Each run then gives
the server's CPU per request besides its req/s, which says where a difference goes
(Python or the kernel) and does not depend on wrk's share of the CPUs. On a shared
machine it drifts about as much as req/s does, so only the per-pair ratios compare.

    python -m bench.ab 'log=python -m irisops serve' \\
        'no log=IRISOPS_INFERENCE_LOG=false python -m irisops serve'

Each side is NAME=COMMAND, run by the shell with PORT (and IRISOPS_API_PORT) set to a
free port; it must answer GET /ready with 200 once up, and POST /predict with the
original project description's body.
The medians and the per-pair ratios are printed and kept in bench/results/ab/<time>.json.
"""

import argparse
import json
import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from bench import pairs, servers, workloads
from bench import wrk as wrk_
from tests.processes import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "ab"
PREDICT = wrk_.Request("ab", "/predict", workloads.OURS_SINGLE)


@dataclass(frozen=True)
class Side:
    name: str
    command: str
    server: servers.Server


@dataclass(frozen=True)
class Run:
    requests_per_s: float
    user_us: float  # server CPU a request, in user mode
    system_us: float  # and in the kernel

    @property
    def cpu_us(self) -> float:
        return self.user_us + self.system_us


def tree_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and its descendants, all threads."""
    user = system = 0.0
    for process in servers.process_tree(pid):
        with suppress(psutil.NoSuchProcess):  # a child that exited since
            times = process.cpu_times()
            user, system = user + times.user, system + times.system
    return user, system


def one_run(wrk: wrk_.Wrk, side: Side, args: argparse.Namespace, script_dir: Path) -> Run:
    user0, system0 = tree_cpu(side.server.process.pid)
    result = wrk_.run(
        wrk,
        side.server.url,
        PREDICT,
        connections=args.connections,
        threads=1,
        seconds=args.seconds,
        script_dir=script_dir,
    )
    user1, system1 = tree_cpu(side.server.process.pid)
    if result.socket_errors or result.non_2xx:
        raise SystemExit(
            f"{side.name}: {result.socket_errors} socket errors, {result.non_2xx} non-2xx"
        )
    per_request = 1e6 / max(result.requests, 1)
    return Run(
        result.clean_requests_per_s(),
        (user1 - user0) * per_request,
        (system1 - system0) * per_request,
    )


@contextmanager
def started(specs: list[str], home: Path) -> Iterator[list[Side]]:
    with ExitStack() as stack:
        sides: list[Side] = []
        for spec in specs:
            name, _, command = spec.partition("=")
            port = free_port()
            env = os.environ | {"PORT": str(port), "IRISOPS_API_PORT": str(port)}
            server = stack.enter_context(
                servers.started(
                    name,
                    ["/bin/sh", "-c", command],
                    env=env,
                    url=f"http://127.0.0.1:{port}",
                    ready_path="/ready",  # a constant answer answers it too
                    log=home / f"ab-{len(sides)}.log",
                )
            )
            sides.append(Side(name, command, server))
        yield sides


def summary(runs: dict[str, list[Run]]) -> dict[str, Any]:
    first, second = runs
    out: dict[str, Any] = {
        name: {
            "requests_per_s": statistics.median(r.requests_per_s for r in each),
            "cpu_us": statistics.median(r.cpu_us for r in each),
            "user_us": statistics.median(r.user_us for r in each),
            "system_us": statistics.median(r.system_us for r in each),
        }
        for name, each in runs.items()
    }
    pair = list(zip(runs[second], runs[first], strict=True))
    out["ratio"] = {
        f"{second} / {first}": {
            "requests_per_s": asdict(
                pairs.spread([b.requests_per_s / a.requests_per_s for b, a in pair])
            ),
            "cpu_us": asdict(pairs.spread([b.cpu_us / a.cpu_us for b, a in pair])),
        }
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sides", nargs=2, metavar="NAME=COMMAND")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=pairs.PAIR_SECONDS)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if any("=" not in spec for spec in args.sides):
        parser.error("each side is NAME=COMMAND")
    wrk = wrk_.find_or_install()
    started_at = datetime.now(UTC)
    with (
        tempfile.TemporaryDirectory(prefix="irisops-ab-") as tmp,
        started(args.sides, Path(tmp)) as sides,
    ):
        load = {side.name: partial(one_run, wrk, side, args, Path(tmp)) for side in sides}
        for warm_up in load.values():
            warm_up()
        measured = pairs.alternate(load, args.pairs)
    result = {
        "date": f"{started_at:%Y-%m-%d %H:%M} UTC",
        "sides": {side.name: side.command for side in sides},
        "settings": {"pairs": args.pairs, "seconds": args.seconds, "connections": args.connections},
        "runs": {name: [asdict(r) for r in each] for name, each in measured.items()},
        "summary": summary(measured),
    }
    print(json.dumps(result["summary"], indent=2))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{started_at:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(RESULTS.parents[2])}")


if __name__ == "__main__":
    main()
