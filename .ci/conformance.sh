#!/usr/bin/env bash
# The external RealWorld conformance suites against the live app:
#   1. the Bruno collection in ../shared/realworld/bruno, folder by folder;
#   2. schemathesis, with a bounded number of examples, against the contract
#      ../shared/realworld/openapi.yml.
# The app runs from .ci/conformance.ini (production.ini's settings, waitress on
# 127.0.0.1:6601) on a private Postgres database, conduit_ci_<random>, which
# is dropped at exit, as the server is stopped, whatever happens.
#
# Needs: .venv (`make install`), a Postgres server (CONFORMANCE_PG_SERVER,
# default the local one), node/npm (installed from apt if missing).
# Knobs: SCHEMATHESIS_SEED, CONFORMANCE_MAX_EXAMPLES, BRU_HOME, REALWORLD_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shared/ sits beside the repository (read-only in CI).
REALWORLD=${REALWORLD_DIR:-$(dirname "$ROOT")/shared/realworld}
VENV=${VENV:-$ROOT/.venv}
PORT=6601 # as in .ci/conformance.ini
HOST=http://127.0.0.1:$PORT
PG_SERVER=${CONFORMANCE_PG_SERVER:-postgresql://postgres@127.0.0.1:5432}
BRU_VERSION=4.1.0
# Outside the repository, so that it survives from one run to the next.
BRU_HOME=${BRU_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/conduit-ci/bruno-cli-$BRU_VERSION}
# A fixed seed: a failure reproduces with the same command.
SEED=${SCHEMATHESIS_SEED:-20261125}

section() { printf '\n==== %s ====\n' "$*"; }
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
admin_sql() { psql "$PG_SERVER/postgres" -v ON_ERROR_STOP=1 -qAtc "$1"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/conduit-conformance.XXXXXX")
DB=conduit_ci_$(random_hex 6)
DB_CREATED=
SERVER_PID=

cleanup() {
    local rc=$?
    set +e
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null
    fi
    if ((rc != 0)) && [[ -s $WORK/server.log ]]; then
        echo "---- the app's log, last lines ----"
        tail -n 40 "$WORK/server.log"
    fi
    if [[ -n $DB_CREATED ]]; then
        # Only ever the database this run created.
        admin_sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB'" >/dev/null
        admin_sql "DROP DATABASE IF EXISTS \"$DB\"" && echo "dropped database $DB"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section "conformance: setup"
[[ -x $VENV/bin/pserve ]] || { echo "no $VENV: run 'make install' first"; exit 1; }
[[ -d $REALWORLD/bruno && -f $REALWORLD/openapi.yml ]] || { echo "no RealWorld suite at $REALWORLD"; exit 1; }
if ! cmp -s "$REALWORLD/openapi.yml" "$ROOT/myapp/api/openapi.yml"; then
    echo "warning: myapp/api/openapi.yml (what the app validates with) differs from $REALWORLD/openapi.yml"
fi
if curl -s -o /dev/null --max-time 2 "$HOST/"; then
    echo "something already answers on $HOST: stop it first"
    exit 1
fi

admin_sql "CREATE DATABASE \"$DB\""
DB_CREATED=1
echo "created database $DB"
DATABASE_URL=$PG_SERVER/$DB "$VENV/bin/myapp-initdb" "$ROOT/development.ini" --no-demo \
    >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; exit 1; }
echo "migrated $DB to head"

# Bruno CLI from npm, pinned, installed once into a cache folder.
BRU=$BRU_HOME/node_modules/.bin/bru
if [[ ! -x $BRU || $("$BRU" --version 2>/dev/null) != "$BRU_VERSION" ]]; then
    if ! command -v npm >/dev/null; then
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    mkdir -p "$BRU_HOME"
    npm install --prefix "$BRU_HOME" --no-audit --no-fund --loglevel=error "@usebruno/cli@$BRU_VERSION"
fi
echo "bru $("$BRU" --version), node $(node --version), $("$VENV/bin/schemathesis" --version)"

# The server: production settings, a throwaway secret, our database.
DATABASE_URL=$PG_SERVER/$DB SECRET_KEY=$(random_hex 32) \
    "$VENV/bin/pserve" "$ROOT/.ci/conformance.ini" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 60); do
    curl -fs -o /dev/null --max-time 2 "$HOST/api/tags" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the app exited at start"; exit 1; }
    sleep 1
done
curl -fsS -o /dev/null --max-time 2 "$HOST/api/tags" || { echo "the app does not answer on $HOST"; exit 1; }
echo "app up on $HOST (pid $SERVER_PID)"

section "conformance: Bruno (RealWorld collection, folder by folder)"
# A copy: shared/ is read-only, and the runner must not write into it.
cp -R "$REALWORLD/bruno" "$WORK/bruno"
chmod -R u+w "$WORK/bruno"
mkdir -p "$WORK/reports" "$WORK/logs"
reports=()
for dir in "$WORK"/bruno/*/; do
    folder=$(basename "$dir")
    compgen -G "$dir*.bru" >/dev/null || continue
    [[ $folder == environments ]] && continue
    report=$WORK/reports/$folder.json
    # bru exits non-zero when a request fails: the report says which.
    (cd "$WORK/bruno" && "$BRU" run "$folder" --env local --env-var "host=$HOST" \
        --sandbox safe --reporter-json "$report") >"$WORK/logs/$folder.log" 2>&1 || true
    if [[ ! -s $report ]]; then
        echo "  $folder: bru wrote no report; its output ends with:"
        tail -n 20 "$WORK/logs/$folder.log"
    fi
    reports+=("$report")
done
bruno_rc=0
"$VENV/bin/python" "$ROOT/.ci/bruno_report.py" "$(cat "$ROOT/.ci/bruno-floor")" "${reports[@]}" \
    | tee "$WORK/bruno-summary.txt" || bruno_rc=$?

section "conformance: schemathesis (openapi.yml, seed $SEED)"
# A user of its own, so that operations needing a login are reached.
user=st_$(random_hex 4)
CONDUIT_TOKEN=$(curl -fsS -X POST "$HOST/api/users" -H 'Content-Type: application/json' \
    -d "{\"user\": {\"username\": \"$user\", \"email\": \"$user@example.com\", \"password\": \"password-$user\"}}" |
    "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["user"]["token"])')
export CONDUIT_TOKEN CONDUIT_API_URL=$HOST/api
st_args=(--seed "$SEED")
[[ -n ${CONFORMANCE_MAX_EXAMPLES:-} ]] && st_args+=(--max-examples "$CONFORMANCE_MAX_EXAMPLES")
schemathesis_rc=0
# From the work folder: schemathesis keeps its cache in the current one.
(cd "$WORK" && "$VENV/bin/schemathesis" --no-color --config-file "$ROOT/.ci/schemathesis.toml" \
    run "$REALWORLD/openapi.yml" "${st_args[@]}") | tee "$WORK/schemathesis.log" ||
    schemathesis_rc=$?
st_cases=$(grep -Eo '[0-9]+ generated.*' "$WORK/schemathesis.log" | tail -n 1 || true)

section "conformance: summary"
if ((schemathesis_rc == 0)); then
    echo "schemathesis: passed (${st_cases:-no count}; seed $SEED)"
else
    echo "schemathesis: FAILED (exit $schemathesis_rc; ${st_cases:-no count}; seed $SEED)"
fi
tail -n 1 "$WORK/bruno-summary.txt"
((bruno_rc == 0 && schemathesis_rc == 0))
