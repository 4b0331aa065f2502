"""The servers irisops is measured against, each started the same way, one worker each.

- BentoML: its documented service for a scikit-learn model (peers/bento_service.py), in a
  virtualenv of its own under .bench/ (its dependencies are not ours), made on first
  use with the same scikit-learn, numpy and scipy as ours, so it loads the same pickle.
- A plain FastAPI app calling scikit-learn (peers/fastapi_sklearn.py): what tutorials ship.
- A bare ASGI app with a constant answer (peers/constant.py): the server's own ceiling.
- The irisops app under `uvicorn --workers 2`, against the same with 1.

Each is given the forest the benchmark registered, pickled from the registry.
"""

import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from bench import workloads
from bench import wrk as wrk_

ROOT = Path(__file__).resolve().parents[1]
BENTOML_VERSION = "1.4.40"
BENTOML_VENV = ROOT / ".bench" / f"bentoml-{BENTOML_VERSION}"
# What the pickle needs to load in BentoML's interpreter exactly as in ours.
SHARED = ("scikit-learn", "numpy", "scipy")
UVICORN = (sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--workers")
SERVER_SETUP = ("--loop", "uvloop", "--http", "httptools", "--no-access-log")


@dataclass(frozen=True)
class Peer:
    name: str
    argv: list[str]
    ready_path: str
    request: wrk_.Request
    env: dict[str, str] = field(default_factory=dict)


def plain_fastapi(port: int, pickled: Path) -> Peer:
    argv = [*UVICORN, "1", "--port", str(port), "bench.peers.fastapi_sklearn:app"]
    request = wrk_.Request("fastapi", "/predict", workloads.OURS_SINGLE)
    return Peer("FastAPI + scikit-learn", argv, "/docs", request, {"PEER_MODEL": str(pickled)})


def constant(port: int) -> Peer:
    argv = [*UVICORN, "1", "--port", str(port), *SERVER_SETUP, "bench.peers.constant:app"]
    request = wrk_.Request("constant", "/predict", workloads.OURS_SINGLE)
    return Peer("bare ASGI, constant answer", argv, "/", request)


def irisops_workers(port: int, workers: int) -> Peer:
    argv = [*UVICORN, str(workers), "--port", str(port), *SERVER_SETUP]
    argv += ["--factory", "irisops.serving.app:create_app"]
    request = wrk_.Request(f"workers{workers}", "/predict", workloads.OURS_SINGLE)
    return Peer(f"irisops, uvicorn --workers {workers}", argv, "/ready", request)


def bentoml(port: int, pickled: Path, home: Path) -> Peer:
    python = bentoml_python()
    env = {"BENTOML_HOME": str(home / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    service = Path(__file__).with_name("peers") / "bento_service.py"
    subprocess.run([str(python), str(service), str(pickled)], env=env, check=True)
    argv = [str(python.with_name("bentoml")), "serve", "bento_service:IrisClassifier"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--working-dir", str(service.parent)]
    body = b'{"input_series":[[5.1,3.5,1.4,0.2]]}'
    request = wrk_.Request("bentoml", "/classify", body)
    return Peer(f"BentoML {BENTOML_VERSION}", argv, "/readyz", request, env)


def bentoml_python() -> Path:
    """BentoML's interpreter, its virtualenv made (once, about a minute) if missing."""
    python, made = BENTOML_VENV / "bin" / "python", BENTOML_VENV / ".made"
    if not made.exists():
        print(f"installing BentoML {BENTOML_VERSION} into {BENTOML_VENV}…", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(BENTOML_VENV)], check=True)
        pins = [f"{package}=={version(package)}" for package in SHARED]
        install = [str(python), "-m", "pip", "install", "-q", f"bentoml=={BENTOML_VERSION}"]
        subprocess.run([*install, *pins], check=True)
        made.touch()
    return python
