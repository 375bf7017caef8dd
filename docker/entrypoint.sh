#!/bin/sh
# The app image's entrypoint: one image, four roles. Each role first waits
# (bounded by WAIT_TIMEOUT) for what it needs, then exec's its process so
# that signals (graceful shutdown) reach it directly.
#   web      gunicorn replicas (after the schema is at Alembic's head)
#   migrate  one-shot: migrate to head (advisory lock), demo data if empty
#   worker   Celery worker      beat   Celery beat
# Anything else is run as given (`docker compose run --rm web bash`).
set -eu
INI=${APP_INI:-production.ini}
wait_for() { python /app/docker/wait_for_services.py "$INI" "$@"; }

role=${1:-web}
[ $# -gt 0 ] && shift
case "$role" in
    web)
        wait_for --migrated
        exec gunicorn -c gunicorn.conf.py --paste "$INI" "$@" ;;
    migrate)
        wait_for
        # INITDB_ARGS: options, split on spaces (e.g. --no-demo).
        # shellcheck disable=SC2086
        exec myapp-initdb "$INI" ${INITDB_ARGS:-} "$@" ;;
    worker)
        wait_for --migrated
        exec celery -A myapp.tasks worker --ini "$INI" --loglevel "${LOG_LEVEL:-info}" "$@" ;;
    beat)
        wait_for --migrated
        # The schedule's state file lives in the container (beat is a single
        # replica; losing it only means a periodic task may run early once).
        exec celery -A myapp.tasks beat --ini "$INI" --loglevel "${LOG_LEVEL:-info}" \
            --schedule /tmp/celerybeat-schedule "$@" ;;
    *)
        exec "$role" "$@" ;;
esac
