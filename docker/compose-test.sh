#!/usr/bin/env bash
# make compose-test: run docker-compose.yml for real with podman, check it,
# tear it down. No registry is reachable here, so the images are built from
# a local Debian base (docker/ci/base.sh) through docker/compose.ci.yml.
#   1. podman, podman-compose, containers.conf    (docker/ci/podman-setup.sh)
#   2. the base image, cached in /var/cache/conduit-base (docker/ci/base.sh)
#   3. build, then `up -d` (3 web replicas from deploy.replicas)
#   4. the checks (docker/ci/checks.py)
#   5. down: containers, network and volumes, whatever happened before.
# COMPOSE_PGBOUNCER=1 adds docker/compose.pgbouncer.yml: the app reaches
# Postgres through PgBouncer, and the checks prove it.
# nginx is published on 127.0.0.1:$CONDUIT_HTTP_PORT (8088: `make cluster`
# has 8080). Every step is bounded in time; the containers' logs of the
# last run stay in var/compose-test/.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONDUIT_HTTP_PORT=${CONDUIT_HTTP_PORT:-8088}
export COMPOSE_PROJECT=${COMPOSE_PROJECT:-conduit-ci}
export BASE_IMAGE=${CONDUIT_BASE_IMAGE:-localhost/conduit-base:bookworm}
export EXPECTED_WEB_REPLICAS=3
# Docker-format images: the OCI format drops HEALTHCHECK.
export BUILDAH_FORMAT=docker
CACHE=${CONDUIT_BASE_CACHE:-/var/cache/conduit-base}
LABEL="label=com.docker.compose.project=$COMPOSE_PROJECT"
started=$SECONDS
step() { printf '\n==== %s  [%ds]\n' "$*" $((SECONDS - started)); }

work=$(pwd)/var/compose-test
rm -rf "$work" && mkdir -p "$work"
# Settings for this run only: a fresh secret, nothing from a developer's .env.
envfile=$work/env
python3 -c 'import secrets; print("SECRET_KEY=" + secrets.token_urlsafe(48))' > "$envfile"

compose=("$CACHE/podman-compose/bin/podman-compose" --env-file "$envfile"
    -p "$COMPOSE_PROJECT" -f docker-compose.yml -f docker/compose.ci.yml)
services=(migrate nginx mail postgres redis)
if [ "${COMPOSE_PGBOUNCER:-0}" = 1 ]; then
    compose+=(-f docker/compose.pgbouncer.yml)
    services+=(pgbouncer)
    export PGBOUNCER_BASE_IMAGE=$BASE_IMAGE EXPECT_PGBOUNCER=1
fi

# Long steps run as a child the shell waits for: bash runs a trap only once
# its foreground command is over, but interrupts `wait` at once, so an
# interrupted run (Ctrl-C, SIGTERM) stops the step and still tears down.
child=
run() {
    "$@" &
    child=$!
    wait "$child"
}

# `down` only knows the containers the file describes; anything else of the
# project (an interrupted up, replicas added with --scale) goes by label.
# (Errors are expected here: nothing to remove.)
cleanup() {
    timeout 180 "${compose[@]}" down --volumes --timeout 10 > "$work/down.log" 2>&1 || true
    podman ps -aq --filter "$LABEL" | xargs -r podman rm -f -t 5 > /dev/null 2>&1 || true
    podman volume ls -q --filter "$LABEL" | xargs -r podman volume rm -f > /dev/null 2>&1 || true
    podman network ls -q --filter "$LABEL" | xargs -r podman network rm -f > /dev/null 2>&1 || true
    # Images a rebuild superseded (the build cache stays).
    podman image prune -f > /dev/null 2>&1 || true
}

teardown() {
    local rc=$?
    set +e
    if [ -n "$child" ] && kill -TERM "$child" 2> /dev/null; then
        wait "$child"  # timeout passes the signal on to the step
    fi
    # Every container's log is kept; on failure, their tails are shown.
    for name in $(podman ps -a --format '{{.Names}}' --filter "$LABEL"); do
        podman logs "$name" 2>&1 | grep -v 'systemd connection' > "$work/$name.log"
        if ((rc != 0)); then
            echo "---- $name ($(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$name"))"
            tail -n 30 "$work/$name.log"
        fi
    done
    step "down"
    cleanup
    echo "left behind: $(podman ps -aq --filter "$LABEL" | wc -l) containers," \
        "$(podman volume ls -q --filter "$LABEL" | wc -l) volumes"
    rm -f "$envfile"
    step "done: exit $rc in $((SECONDS - started)) s"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "podman setup"
run timeout 600 bash docker/ci/podman-setup.sh

step "base image"
run timeout 900 bash docker/ci/base.sh

cleanup  # a previous run killed before its teardown
if ss -ltnH "sport = :$CONDUIT_HTTP_PORT" | grep -q .; then
    echo "127.0.0.1:$CONDUIT_HTTP_PORT is taken: set CONDUIT_HTTP_PORT to a free port"
    exit 1
fi

# web, worker and beat share migrate's image: build it once.
step "build: ${services[*]} (migrate's image is the app's)"
run timeout 1200 "${compose[@]}" build "${services[@]}" > "$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; exit 1; }
grep -E 'COMMIT' "$work/build.log" | sort -u

# --no-deps: podman-compose turns depends_on into podman's --requires (a
# web replica's restart would start the one-shot migrate again) and waits
# for "stopped" where podman 4.3 says "exited" (forever). The containers
# wait for what they need themselves (docker/entrypoint.sh).
step "up -d --no-deps"
run timeout 300 "${compose[@]}" up -d --no-deps > "$work/up.log" 2>&1 ||
    { grep -v 'systemd connection' "$work/up.log" | tail -40; exit 1; }
podman ps --filter "$LABEL" --format '{{.Names}}  {{.Status}}'

step "checks"
run timeout 600 python3 docker/ci/checks.py
