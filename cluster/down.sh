#!/usr/bin/env bash
# make cluster-down: stop exactly the processes cluster/up.sh started.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=${CLUSTER_DIR:-$(pwd)/var/cluster}
[ -f "$DIR/nginx/nginx.pid" ] && nginx -c "$DIR/nginx.conf" -p "$DIR/nginx" -s quit 2>/dev/null
for pidfile in "$DIR"/pids/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null
done
# Graceful first (in-flight requests finish), then make sure.
for _ in $(seq 1 100); do
    alive=0
    for pidfile in "$DIR"/pids/*.pid; do
        [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && alive=1
    done
    [ -f "$DIR/nginx/nginx.pid" ] && alive=1
    [ $alive -eq 0 ] && break
    sleep 0.2
done
for pidfile in "$DIR"/pids/*.pid; do
    [ -f "$pidfile" ] && kill -KILL "$(cat "$pidfile")" 2>/dev/null
    rm -f "$pidfile"
done
rm -f "$DIR/running"
echo "cluster down"
