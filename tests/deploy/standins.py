"""Stand-ins for the images that cannot run here: PostgreSQL, MinIO and MinIO's `mc`.

Each plays its compose service from that service's own settings (its interpolated
environment and command), so what is tested is still what compose.yaml says:
- `postgres` is a real PostgreSQL 15 server (Debian's, the same major version as the
  pinned image), initialised as the image's entrypoint does from POSTGRES_USER,
  POSTGRES_PASSWORD and POSTGRES_DB, and health-checked with the service's own
  `pg_isready` command.
- `minio` is moto's S3 server on loopback: no MinIO binary installs here, and moto is the
  closest real S3 API server that does. It does not check credentials, and its
  healthcheck (`mc ready local`) needs MinIO's image, so readiness is an S3 request.
- `minio-init` runs its `mc mb [--ignore-existing] ALIAS/BUCKET` command through boto3,
  with ALIAS read from `MC_HOST_<alias>` the way mc reads it.
"""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import httpx
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from tests.deploy.compose import Service
from tests.deploy.runner import check
from tests.processes import Service as Process
from tests.processes import spawn, wait_http

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGRES_PORT = 5432
S3_PORT = 9000


def postgres_unavailable() -> str | None:
    """Why a PostgreSQL 15 server cannot be started here, or None if it can."""
    if not (PG_BIN / "initdb").is_file():
        return f"no PostgreSQL 15 in {PG_BIN} (Debian: apt-get install postgresql-15)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    return None


class PostgresServer:
    """Stands in for the `postgres` image, on a cluster kept in a directory of its own.

    The directory plays the postgres_data volume: it outlives `stop` (a compose down), so
    the next `start` finds the initialised cluster, as the image would.
    """

    def __init__(self) -> None:
        # Not under pytest's tmp_path: that is private to root, and the server runs as
        # the `postgres` user when the tests run as root.
        self.root = Path(tempfile.mkdtemp(prefix="irisops-postgres-"))
        self.data = self.root / "data"
        self.port: int | None = None
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *argv: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        command = [*as_postgres, str(PG_BIN / argv[0]), *argv[1:]]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")

    def start(
        self, service: Service, env: Mapping[str, str], ports: Mapping[int, int]
    ) -> "PostgresServer":
        self.port = ports[POSTGRES_PORT]
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh:
            self._initialise(env)
        self._run(
            "pg_ctl",
            "--pgdata",
            str(self.data),
            "--log",
            str(self.root / "postgres.log"),
            "--options",
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}",
            "--wait",
            "start",
        )
        database = env.get("POSTGRES_DB") or env["POSTGRES_USER"]
        if fresh and database != "postgres":
            user = env["POSTGRES_USER"]
            socket = str(self.root)
            self._run("createdb", "-h", socket, "-p", str(self.port), "-U", user, database)
        return self

    def _initialise(self, env: Mapping[str, str]) -> None:
        """What the image's entrypoint does on an empty volume."""
        password = env.get("POSTGRES_PASSWORD", "")
        if not password:
            raise RuntimeError("POSTGRES_PASSWORD is empty: the postgres image refuses to start")
        pwfile = self.root / "pwfile"
        pwfile.write_text(password)
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        try:
            self._run(
                "initdb",
                "--pgdata",
                str(self.data),
                "--username",
                env.get("POSTGRES_USER", "postgres"),
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
            )
        finally:
            pwfile.unlink()

    def poll(self) -> int | None:
        return None if (self.data / "postmaster.pid").exists() else 0

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "--pgdata", str(self.data), "--mode=fast", "--wait", "stop")

    def healthcheck(self, command: Sequence[str], env: Mapping[str, str]) -> bool:
        """The service's own `pg_isready ...`, pointed at this server over TCP."""
        local = {
            **env,
            "PATH": f"{PG_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
        }
        return check(command, local)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class MotoS3:
    """Stands in for `minio`: moto's S3 API server on the service's loopback port.

    moto keeps objects in memory, so the server stays up across a simulated down/up
    (where MinIO would keep them in the minio_data volume); `close` stops it.
    """

    log: Path
    process: Process | None = None

    @property
    def endpoint(self) -> str:
        assert self.process is not None, "not started"
        return self.process.url

    def start(self, service: Service, env: Mapping[str, str], ports: Mapping[int, int]) -> "MotoS3":
        if self.process is None or self.process.process.poll() is not None:
            url = f"http://127.0.0.1:{ports[S3_PORT]}"
            argv = [
                sys.executable,
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                str(ports[S3_PORT]),
            ]
            self.process = Process(spawn(argv, os.environ, self.log), url, self.log)
            wait_http(self.process, "/moto-api/")
        return self

    def poll(self) -> int | None:
        return None if self.process is None else self.process.process.poll()

    def stop(self) -> None:
        """Kept running: its memory is the volume (see the class docstring)."""

    def healthcheck(self, command: Sequence[str], env: Mapping[str, str]) -> bool:
        try:
            return httpx.get(self.endpoint + "/moto-api/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()

    def client(self) -> Any:
        """moto checks no credentials; any will do."""
        return s3_client(self.endpoint, "test", "test")


def s3_client(endpoint: str, access_key: str, secret_key: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )


@dataclass
class Exited:
    """A one-shot container after it ran."""

    code: int

    def poll(self) -> int | None:
        return self.code

    def stop(self) -> None:
        pass

    def healthcheck(self, command: Sequence[str], env: Mapping[str, str]) -> bool:
        return False


@dataclass
class MinioClient:
    """Stands in for `minio-init` (the mc image): runs its `mb` command through boto3."""

    outcomes: list[str] = field(default_factory=list)

    def start(self, service: Service, env: Mapping[str, str], ports: Mapping[int, int]) -> Exited:
        code = self.make_bucket(list(service.command or ()), env)
        return Exited(code)

    def make_bucket(self, argv: list[str], env: Mapping[str, str]) -> int:
        if not argv or argv[0] != "mb":
            raise NotImplementedError(f"only `mc mb` is played here, not {argv}")
        ignore_existing = "--ignore-existing" in argv
        target = next(arg for arg in argv[1:] if not arg.startswith("-"))
        alias, _, bucket = target.partition("/")
        host = urlsplit(env[f"MC_HOST_{alias}"])
        endpoint = f"{host.scheme}://{host.hostname}:{host.port}"
        client = s3_client(endpoint, host.username or "", host.password or "")
        # Only to report what happened: moto, like AWS in us-east-1, accepts re-creating a
        # bucket you own, where MinIO answers BucketAlreadyOwnedByYou (handled as mc does).
        existed = any(b["Name"] == bucket for b in client.list_buckets().get("Buckets", []))
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if ignore_existing and code in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                self.outcomes.append("exists")
                return 0
            self.outcomes.append(f"failed: {code}")
            return 1
        self.outcomes.append("exists" if existed else "created")
        return 0
