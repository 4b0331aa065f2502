"""One local `docker compose up -d` per test class, in the profile the class names.

The class's `.env` is `.env.example` after following its own instructions for that
profile (uncomment the switch and the block, set the secrets): the settings a user would
have. Everything is stopped afterwards, also when a test fails.
"""

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.compose import ENV_EXAMPLE, dotenv_for, load
from tests.deploy.images import IMAGE_EXTRAS, image_site
from tests.deploy.runner import LocalCompose, StandIn
from tests.deploy.standins import MinioClient, MotoS3, PostgresServer, postgres_unavailable

# URL-safe secrets, as .env.example asks. The s3 profile also switches the API to
# registry mode, the setting .env.example documents for it.
SETTINGS: dict[str | None, dict[str, str]] = {
    None: {},
    "postgres": {"POSTGRES_PASSWORD": "pg-secret-for-tests"},
    "s3": {
        "MINIO_ROOT_PASSWORD": "minio-secret-for-tests",
        "IRISOPS_MODEL_URI": "models:/iris-classifier@champion",
    },
}


@pytest.fixture(scope="session")
def image_sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    return {target: image_site(target, root / target) for target in IMAGE_EXTRAS}


@dataclass
class Deployment:
    compose: LocalCompose
    profile: str | None
    postgres: PostgresServer | None = None
    s3: MotoS3 | None = None
    bucket_job: MinioClient | None = None

    @property
    def api(self) -> str:
        """The API as the seed's curl commands reach it: localhost, published port."""
        return f"http://localhost:{self.compose.port('api', 8000)}"

    @property
    def mlflow(self) -> str:
        return self.compose.url("mlflow", 5000)


@pytest.fixture(scope="class")
def deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    image_sites: dict[str, Path],
) -> Iterator[Deployment]:
    profile: str | None = request.cls.profile
    if profile == "postgres" and (reason := postgres_unavailable()):
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp(f"compose-{profile or 'default'}")
    env_file = workdir / ".env"
    env_file.write_text(dotenv_for(ENV_EXAMPLE.read_text(), profile, **SETTINGS[profile]))
    with ExitStack() as cleanup:
        postgres, s3, bucket_job = None, None, None
        stand_ins: dict[str, StandIn] = {}
        if profile == "postgres":
            postgres = PostgresServer()
            cleanup.callback(postgres.remove)
            stand_ins["postgres"] = postgres
        if profile == "s3":
            s3, bucket_job = MotoS3(workdir / "moto.log"), MinioClient()
            cleanup.callback(s3.close)
            stand_ins |= {"minio": s3, "minio-init": bucket_job}
        compose = LocalCompose(load(env_file=env_file), workdir, image_sites, stand_ins)
        cleanup.callback(compose.down)
        compose.up()
        yield Deployment(compose, profile, postgres, s3, bucket_job)
