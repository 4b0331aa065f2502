# Two images from one file, both with the `irisops` CLI as entrypoint:
#
#   api      serving only: FastAPI + the compiled forest evaluator + onnxruntime +
#            mlflow-skinny (registry mode);
#            no scikit-learn, pandas or full MLflow          docker build --target api .
#   trainer  training and the MLflow tracking server: full MLflow, scikit-learn,
#            and the PostgreSQL and S3 drivers               docker build --target trainer .
#
# Every Python package is pinned by constraints.txt, the build tools below by version. The
# virtualenvs are built in throwaway stages, dependencies first (they change with the pins,
# not with the source), then the irisops wheel; the final stages copy only the virtualenv,
# so neither pip nor the wheel ships. No `# syntax=` line: BuildKit's built-in Dockerfile
# frontend reads this file, so an offline or mirrored build pulls nothing but the base image.
# Pin the base image's digest as well once you can resolve it:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# One fixed non-root uid in both images, so each can read what the other wrote. The volume
# mount points exist here, owned by that uid: Docker copies this ownership into a new
# named volume the first time it is mounted.
RUN groupadd --system --gid 10001 irisops \
    && useradd --system --uid 10001 --gid irisops --create-home --home-dir /home/irisops \
        --shell /usr/sbin/nologin irisops \
    && mkdir -p /data/model_data /data/mlflow_data /data/mlflow_artifacts /data/inference_log \
    && chown -R irisops:irisops /data
WORKDIR /home/irisops

# The build stages' `python` is the base image's, with pip; each venv below has none and is
# filled by that pip through `--python`. PATH gains /opt/venv/bin in the final stages only.
FROM base AS tools
RUN python -m pip install --no-cache-dir pip==26.3 setuptools==84.2.1
COPY pyproject.toml constraints.txt /pins/
COPY deploy/requirements.py /pins/

# The wheel holds three C extensions (the forest evaluator, src/irisops/_forest.c, the
# rows' JSON reader and writer, src/irisops/serving/_rows.c, and the request tallies,
# src/irisops/serving/_tally.c): this stage alone has a compiler and Python's headers
# (the official image has them in /usr/local/include; a Debian python3.11 base needs
# python3.11-dev). The final stages copy only the built virtualenvs, so no compiler
# ships in either image.
FROM tools AS wheel
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && { test -f "$(python -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h" \
        || apt-get install -y --no-install-recommends python3.11-dev; } \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# The API's dependencies, then the trainer's on top of them: pip downloads each package once.
FROM tools AS deps-api
RUN python /pins/requirements.py /pins/pyproject.toml > /pins/api.txt \
    && python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint /pins/constraints.txt --requirement /pins/api.txt

FROM deps-api AS deps-trainer
RUN python /pins/requirements.py /pins/pyproject.toml train server > /pins/trainer.txt \
    && python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint /pins/constraints.txt --requirement /pins/trainer.txt

FROM deps-api AS venv-api
COPY --from=wheel /wheels /wheels
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps \
        /wheels/irisops-*.whl \
    && python -m pip --python /opt/venv/bin/python check

FROM deps-trainer AS venv-trainer
COPY --from=wheel /wheels /wheels
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps \
        /wheels/irisops-*.whl \
    && python -m pip --python /opt/venv/bin/python check

FROM base AS api
COPY --from=venv-api /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["irisops"]
CMD ["serve"]

FROM base AS trainer
COPY --from=venv-trainer /opt/venv /opt/venv
# The image has no git: MLflow's GitPython would warn about it on every run.
ENV PATH=/opt/venv/bin:$PATH \
    GIT_PYTHON_REFRESH=quiet
USER 10001:10001
EXPOSE 5000
ENTRYPOINT ["irisops"]
CMD ["train"]
