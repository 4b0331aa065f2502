#!/usr/bin/env bash
# `make train-ci`: one training run for CI, which never moves `champion`.
#
# Trains with --no-promote (the new version becomes `challenger`), then writes the
# comparison with the champion, in markdown, to $SUMMARY (and to the job summary on
# GitHub). Without MLFLOW_TRACKING_URI (a pull request from a fork has no secrets), a
# throwaway tracking server runs in a temporary directory for the duration.
# TRAIN_ARGS passes hyperparameters to `irisops train`.
set -euo pipefail
bin="${BIN:-.venv/bin}"
summary="${SUMMARY:-train-summary.md}"

if [ -z "${MLFLOW_TRACKING_URI:-}" ]; then
    home="$(mktemp -d)"
    port="$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # A first start creates the database, slower on a busy runner: wait up to ~2 minutes.
    export IRISOPS_HOME="$home" IRISOPS_TRACKING_PORT="$port" IRISOPS_TRACKING_RETRIES="${IRISOPS_TRACKING_RETRIES:-15}"
    export MLFLOW_TRACKING_URI="http://127.0.0.1:$port"
    setsid "$bin/irisops" tracking >"$home/mlflow.log" 2>&1 &
    server=$!
    trap 'kill -- "-$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$home"' EXIT
    echo "No MLFLOW_TRACKING_URI: a throwaway tracking server on $MLFLOW_TRACKING_URI"
fi

# shellcheck disable=SC2086 # TRAIN_ARGS is a list of options
"$bin/irisops" train --no-promote ${TRAIN_ARGS:-}
"$bin/irisops" report --output "$summary"

version="$(sed -n 's/^### .* v\([0-9][0-9]*\) against .*/\1/p' "$summary")"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    cat "$summary" >>"$GITHUB_STEP_SUMMARY"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "version=$version" >>"$GITHUB_OUTPUT"
fi
