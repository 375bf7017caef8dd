#!/usr/bin/env bash
# make compose-test: run docker-compose.yml for real with podman, check it,
# tear it down. No registry is reachable here, so the images are built from
# a local Debian base (docker/ci/base.sh) through docker/compose.ci.yml.
#   1. podman, podman-compose, containers.conf    (docker/ci/podman-setup.sh)
#   2. the base image, cached in /var/cache/conduit-base (docker/ci/base.sh)
#   3. build, then `up -d` (3 web replicas from deploy.replicas)
#   4. the checks (docker/ci/checks.py)
#   5. down: containers, network and volumes, whatever happened before.
# nginx is published on 127.0.0.1:$CONDUIT_HTTP_PORT (8088: `make cluster`
# has 8080). Every step is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONDUIT_HTTP_PORT=${CONDUIT_HTTP_PORT:-8088}
export COMPOSE_PROJECT=${COMPOSE_PROJECT:-conduit-ci}
export BASE_IMAGE=${CONDUIT_BASE_IMAGE:-localhost/conduit-base:bookworm}
export EXPECTED_WEB_REPLICAS=3
# Docker-format images: the OCI format drops HEALTHCHECK.
export BUILDAH_FORMAT=docker
CACHE=${CONDUIT_BASE_CACHE:-/var/cache/conduit-base}
started=$SECONDS
step() { printf '\n==== %s  [%ds]\n' "$*" $((SECONDS - started)); }

step "podman setup"
bash docker/ci/podman-setup.sh

step "base image"
timeout 900 bash docker/ci/base.sh

# Settings for this run only: a fresh secret, nothing from a developer's .env.
work=$(pwd)/var/compose-test  # logs of the last run (var/ is not committed)
rm -rf "$work" && mkdir -p "$work"
envfile=$work/env
printf 'SECRET_KEY=%s\nCONDUIT_HTTP_PORT=%s\n' \
    "$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')" "$CONDUIT_HTTP_PORT" > "$envfile"

compose() {
    local limit=$1
    shift
    timeout "$limit" "$CACHE/podman-compose/bin/podman-compose" --env-file "$envfile" \
        -p "$COMPOSE_PROJECT" -f docker-compose.yml -f docker/compose.ci.yml "$@"
}

teardown() {
    local rc=$?
    set +e
    # Every container's log is kept in $work; on failure, their tails.
    for name in $(podman ps -a --format '{{.Names}}' \
        --filter "label=com.docker.compose.project=$COMPOSE_PROJECT"); do
        podman logs "$name" 2>&1 | grep -v 'systemd connection' > "$work/$name.log"
        if ((rc != 0)); then
            echo "---- $name ($(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$name"))"
            tail -n 30 "$work/$name.log"
        fi
    done
    step "down"
    compose 180 down --volumes --timeout 10 > /dev/null 2>&1
    # Whatever down missed (an interrupted up): by label, containers first.
    podman rm -f -t 5 $(podman ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT") \
        > /dev/null 2>&1
    podman volume rm -f $(podman volume ls -q \
        --filter "label=com.docker.compose.project=$COMPOSE_PROJECT") > /dev/null 2>&1
    podman network rm -f $(podman network ls -q \
        --filter "label=com.docker.compose.project=$COMPOSE_PROJECT") > /dev/null 2>&1
    rm -f "$envfile"
    left=$(podman ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" | wc -l)
    echo "containers left: $left"
    step "done: exit $rc in $((SECONDS - started)) s"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A previous run that was killed before its teardown.
compose 180 down --volumes --timeout 5 > /dev/null 2>&1 || true

# web, worker and beat share migrate's image: build it once.
step "build (app, nginx, mail, postgres, redis)"
compose 1200 build migrate nginx mail postgres redis > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
grep -E '^COMMIT' "$work/build.log" || true

# --no-deps: podman-compose turns depends_on into podman's --requires (a
# web replica's restart would start the one-shot migrate again) and waits
# for "stopped" where podman 4.3 says "exited" (forever). The containers
# wait for what they need themselves (docker/entrypoint.sh).
step "up -d --no-deps"
compose 300 up -d --no-deps > "$work/up.log" 2>&1 || { grep -v 'systemd connection' "$work/up.log" | tail -40; exit 1; }
podman ps --filter "label=com.docker.compose.project=$COMPOSE_PROJECT" --format '{{.Names}}  {{.Status}}'

step "checks"
timeout 600 python3 docker/ci/checks.py
