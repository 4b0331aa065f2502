#!/usr/bin/env bash
# Seconds from `make run` in a fresh clone to the first answered /predict.
#   bash bench/first_start.sh          # with the package cache as it is (warm)
#   bash bench/first_start.sh --cold   # with uv's package cache emptied first
# Appends one line of JSON to bench/results/first-start.jsonl.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
clone="$(mktemp -d)"
trap 'kill -- "-$stack" 2>/dev/null || true; rm -rf "$clone"' EXIT
if [ "${1:-}" = "--cold" ]; then
    rm -rf "${XDG_CACHE_HOME:-$HOME/.cache}/uv"
fi
git clone -q "$repo" "$clone/irisops"
cd "$clone/irisops"
api_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mlflow_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
start="$(date +%s.%N)"
IRISOPS_API_PORT="$api_port" IRISOPS_TRACKING_PORT="$mlflow_port" setsid make run >run.log 2>&1 &
stack=$!
until curl -sf -X POST "localhost:$api_port/predict" -d '{"features":[5.1,3.5,1.4,0.2]}' >/dev/null; do
    kill -0 "$stack" 2>/dev/null || { tail -20 run.log; exit 1; }
    sleep 0.5
done
seconds="$(python3 -c "print(round($(date +%s.%N) - $start, 1))")"
cache="$([ "${1:-}" = "--cold" ] && echo cold || echo warm)"
echo "{\"date\": \"$(date -u +%FT%TZ)\", \"commit\": \"$(git rev-parse --short HEAD)\", \"cache\": \"$cache\", \"seconds_to_first_prediction\": $seconds}" \
    | tee -a "$repo/bench/results/first-start.jsonl"
