"""wrk, the HTTP load generator: finding (or installing) it, and one measured run.

Each run gets a Lua script with the server's request and a `done` hook that prints
wrk's own summary as JSON, so nothing is scraped from its human-readable report.
"""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

RESULT_PREFIX = "BENCH-RESULT "

DONE_HOOK = f"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{RESULT_PREFIX}{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "timeout": %d, "status": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Wrk:
    path: str
    version: str
    origin: str  # how it was found, printed so a reader knows which wrk produced the numbers


@dataclass(frozen=True)
class Request:
    """What every connection sends over and over: GET, or POST with a JSON body."""

    name: str  # names the Lua script file
    path: str
    body: bytes | None = None

    def script(self) -> str:
        if self.body is None:
            return DONE_HOOK
        return (
            'wrk.method = "POST"\n'
            f"wrk.body = {lua_string(self.body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n' + DONE_HOOK
        )


@dataclass(frozen=True)
class WrkResult:
    connections: int
    seconds: float
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: int  # connect, read, write and timeout errors
    non_2xx: int  # wrk counts responses with a status of 400 or more; nothing here redirects

    def clean_requests_per_s(self) -> float:
        """The req/s of a run that had to be clean: a socket error or a non-2xx stops the bench."""
        if self.socket_errors or self.non_2xx:
            raise RuntimeError(f"wrk run with errors: {self}")
        return self.requests_per_s


def lua_string(body: bytes) -> str:
    """A Lua string literal for a JSON body (LuaJIT knows only the simple escapes)."""
    text = body.decode("ascii")
    if not text.isprintable():
        raise ValueError("wrk bodies here are printable ASCII JSON")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find_or_install() -> Wrk:
    """wrk from PATH; else, as root on Debian or Ubuntu, the `wrk` package via apt-get."""
    path = shutil.which("wrk")
    origin = "found on PATH"
    if path is None:
        path = _apt_install()
        origin = "installed now with apt-get (Debian package wrk)"
    return Wrk(path=path, version=_version(path), origin=origin)


def _apt_install() -> str:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            "wrk is not installed and cannot be installed here (needs root and apt-get): "
            "install it (Debian/Ubuntu: `apt-get install wrk`, macOS: `brew install wrk`) "
            "and rerun `make bench`"
        )
    print("wrk not found: installing the Debian package with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("apt-get installed wrk, but it is not on PATH")
    return path


def _version(path: str) -> str:
    # wrk prints its version in the usage text and exits 1 when given no URL.
    usage = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+)", usage.stdout + usage.stderr)
    return match.group(1) if match else "unknown"


def run(
    wrk: Wrk,
    base_url: str,
    request: Request,
    *,
    connections: int,
    threads: int,
    seconds: float,
    script_dir: Path,
) -> WrkResult:
    script = script_dir / f"wrk-{request.name}.lua"
    script.write_text(request.script())
    command = [
        wrk.path,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url + request.path,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(
        (x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX)),
        None,
    )
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix(RESULT_PREFIX))
    elapsed = raw["duration_us"] / 1e6
    return WrkResult(
        connections=connections,
        seconds=round(elapsed, 3),
        requests=raw["requests"],
        requests_per_s=raw["requests"] / elapsed,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        non_2xx=raw["status"],
    )
