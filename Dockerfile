# syntax=docker/dockerfile:1
# Two images from one file, both with the `irisops` CLI as entrypoint:
#
#   api      serving only: FastAPI + onnxruntime + mlflow-skinny (registry mode);
#            no scikit-learn, pandas or full MLflow          docker build --target api .
#   trainer  training and the MLflow tracking server: full MLflow, scikit-learn,
#            and the PostgreSQL and S3 drivers               docker build --target trainer .
#
# Every Python package is pinned by constraints.txt, the build tools below by version. The
# virtualenvs are built in throwaway stages; the final stages copy only the virtualenv, so
# neither pip nor the wheel ships. Pin the base image's digest as well once you can resolve
# it: docker buildx imagetools inspect python:3.11.14-slim-bookworm
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# One fixed non-root uid in both images, so each can read what the other wrote. The volume
# mount points exist here, owned by that uid: Docker copies this ownership into a new
# named volume the first time it is mounted.
RUN groupadd --system --gid 10001 irisops \
    && useradd --system --uid 10001 --gid irisops --create-home --home-dir /home/irisops \
        --shell /usr/sbin/nologin irisops \
    && mkdir -p /data/model_data /data/mlflow_data /data/mlflow_artifacts \
    && chown -R irisops:irisops /data
WORKDIR /home/irisops

FROM base AS wheel
RUN python -m pip install --no-cache-dir pip==26.3 setuptools==84.2.1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# The image's environment: a virtualenv without pip, filled by the build stage's pip.
FROM wheel AS venv-api
COPY constraints.txt /tmp/constraints.txt
RUN python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint /tmp/constraints.txt /wheels/irisops-*.whl

FROM wheel AS venv-trainer
COPY constraints.txt /tmp/constraints.txt
RUN python -m venv --without-pip /opt/venv \
    && wheel="$(echo /wheels/irisops-*.whl)" \
    && python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --constraint /tmp/constraints.txt "${wheel}[train,server]"

FROM base AS api
COPY --from=venv-api /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["irisops"]
CMD ["serve"]

FROM base AS trainer
COPY --from=venv-trainer /opt/venv /opt/venv
USER 10001:10001
EXPOSE 5000
ENTRYPOINT ["irisops"]
CMD ["train"]
