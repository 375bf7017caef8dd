#!/usr/bin/env bash
# cluster/replica.sh N: start replica N (gunicorn on BASE_PORT+N-1) in its own
# session, so that it can be stopped (or killed) as one process group.
# Used by up.sh, and by the fault tests to bring a replica back.
# CLUSTER_APP replaces the app (the benchmarks' bare-WSGI ceiling: bench.hello:app).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${CLUSTER_DIR:-$ROOT/var/cluster}
i=$1
port=$((${BASE_PORT:-6701} + i - 1))
mkdir -p "$DIR/metrics-$i" "$DIR/pids" "$DIR/logs"
# Every replica signs tokens with the same secret (up.sh made it).
export SECRET_KEY=${SECRET_KEY:-$(cat "$DIR/secret")}
rm -f "$DIR/metrics-$i"/*
BIND=127.0.0.1:$port REPLICA_NAME=web-$i PROMETHEUS_MULTIPROC_DIR="$DIR/metrics-$i" \
    setsid "$ROOT/.venv/bin/gunicorn" -c gunicorn.conf.py ${CLUSTER_APP:---paste production.ini} \
    --pid "$DIR/pids/web-$i.pid" >> "$DIR/logs/web-$i.log" 2>&1 < /dev/null &
# Recorded now, not when gunicorn gets to write it: a failing up.sh (or a
# test) that stops the cluster a moment later must find every replica.
echo $! > "$DIR/pids/web-$i.pid"
