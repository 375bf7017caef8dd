#!/usr/bin/env bash
# make cluster: the compose topology as processes on loopback.
#   nginx on 127.0.0.1:${NGINX_PORT:-8080} -> ${REPLICAS:-3} gunicorn replicas
#   (+ a Celery worker and beat when a broker is configured), against the
#   local Postgres and Redis. Everything started is recorded under
#   ${CLUSTER_DIR:-var/cluster}; cluster/down.sh stops exactly that.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN="$ROOT/.venv/bin"
DIR=${CLUSTER_DIR:-$ROOT/var/cluster}
REPLICAS=${REPLICAS:-3}
BASE_PORT=${BASE_PORT:-6701}
NGINX_PORT=${NGINX_PORT:-8080}
export WEB_CONCURRENCY=${WEB_CONCURRENCY:-2}
export DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/conduit_cluster}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export CACHE_PREFIX=${CACHE_PREFIX:-conduit-cluster:}
export FORWARDED_ALLOW_IPS=127.0.0.1
export BASE_PORT CLUSTER_DIR=$DIR

if [ -e "$DIR/running" ]; then
    echo "a cluster is already running from $DIR (make cluster-down first)" >&2
    exit 1
fi
# Every port must be free: a replica that cannot bind would leave nginx
# sending its traffic to whatever holds the port (a forgotten cluster, say).
for port in $(seq "$BASE_PORT" $((BASE_PORT + REPLICAS - 1))) "$NGINX_PORT"; do
    if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
        echo "port $port on 127.0.0.1 is in use: stop what holds it first" >&2
        exit 1
    fi
done
mkdir -p "$DIR/pids" "$DIR/logs"
# From here on, a failure stops whatever was started (nothing is left behind).
up=0
trap '[ $up = 1 ] || { echo "cluster/up.sh failed: stopping what it started" >&2; cluster/down.sh >&2; }' EXIT
if [ ! -s "$DIR/secret" ]; then
    "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(48))' > "$DIR/secret"
fi
export SECRET_KEY=${SECRET_KEY:-$(cat "$DIR/secret")}

# The database: created if missing, migrated, demo data when empty.
"$BIN/python" - <<PY
from sqlalchemy import create_engine, make_url, text
from myapp.db import normalize_url
url = make_url(normalize_url("$DATABASE_URL"))
admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with admin.connect() as conn:
    if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
PY
"$BIN/myapp-initdb" production.ini ${CLUSTER_INITDB_ARGS:-} >> "$DIR/logs/initdb.log" 2>&1

# The connection budget (myapp.db_budget): every web worker has its own pool,
# and so has each pool process of the Celery worker (and beat), so tell the
# app how many processes share the database; it refuses to start when their
# pools could exceed max_connections (docs/database.md).
jobs_processes=0
if [ "${CLUSTER_JOBS:-1}" = 1 ]; then
    WORKER_CONCURRENCY=${CLUSTER_WORKER_CONCURRENCY:-$(nproc)}
    jobs_processes=$((WORKER_CONCURRENCY + 1))
fi
export DB_EXPECTED_PROCESSES=${DB_EXPECTED_PROCESSES:-$((REPLICAS * WEB_CONCURRENCY + jobs_processes))}

# PGBOUNCER=1: PgBouncer (Debian's package) in transaction pooling between
# the replicas and Postgres, on 127.0.0.1:${PGBOUNCER_PORT:-6432}. Migrations
# (above) went straight to Postgres: they hold a session advisory lock, which
# transaction pooling cannot keep. The app is told (DB_PGBOUNCER): no
# startup options, statement_timeout by SET LOCAL in each transaction.
if [ "${PGBOUNCER:-0}" = 1 ]; then
    command -v pgbouncer > /dev/null || {
        echo "PGBOUNCER=1 needs PgBouncer: apt-get install pgbouncer" >&2
        exit 1
    }
    PGBOUNCER_PORT=${PGBOUNCER_PORT:-6432}
    mkdir -p "$DIR/pgbouncer"
    read -r pg_host pg_port pg_db pg_user pg_url < <("$BIN/python" - <<PY
from sqlalchemy import make_url
url = make_url("$DATABASE_URL")
bouncer = url.set(host="127.0.0.1", port=$PGBOUNCER_PORT)
print(url.host or "127.0.0.1", url.port or 5432, url.database, url.username or "postgres",
      bouncer.render_as_string(hide_password=False))
PY
)
    # Postgres sees at most PGBOUNCER_POOL_SIZE connections from all the
    # replicas together; the replicas' pools (REPLICAS x WEB_CONCURRENCY x
    # (pool_size + max_overflow)) only have to fit in max_client_conn.
    cat > "$DIR/pgbouncer/pgbouncer.ini" <<INI
[databases]
$pg_db = host=$pg_host port=$pg_port dbname=$pg_db

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/pgbouncer/userlist.txt
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = ${PGBOUNCER_MAX_CLIENT_CONN:-1000}
admin_users = $pg_user
stats_users = $pg_user
INI
    # trust on loopback, as the local Postgres itself; a real deployment sets
    # auth_type = scram-sha-256 and a userlist (or auth_query).
    printf '"%s" ""\n' "$pg_user" > "$DIR/pgbouncer/userlist.txt"
    chmod 0755 "$DIR/pgbouncer"
    chmod 0644 "$DIR/pgbouncer/pgbouncer.ini" "$DIR/pgbouncer/userlist.txt"
    # PgBouncer will not run as root: -u drops to postgres after binding.
    user_flag=""
    [ "$(id -u)" = 0 ] && user_flag="-u postgres"
    setsid pgbouncer $user_flag "$DIR/pgbouncer/pgbouncer.ini" \
        >> "$DIR/logs/pgbouncer.log" 2>&1 < /dev/null &
    echo $! > "$DIR/pids/pgbouncer.pid"
    deadline=$((SECONDS + 15))
    until "$BIN/python" -c "import socket; socket.create_connection(('127.0.0.1', $PGBOUNCER_PORT), 1)" 2> /dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "pgbouncer did not start; see $DIR/logs/pgbouncer.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    export DATABASE_URL=$pg_url DB_PGBOUNCER=true
    export DB_PGBOUNCER_MAX_CLIENT_CONN=${PGBOUNCER_MAX_CLIENT_CONN:-1000}
fi

touch "$DIR/running"
upstreams=""
for i in $(seq 1 "$REPLICAS"); do
    port=$((BASE_PORT + i - 1))
    BASE_PORT=$BASE_PORT CLUSTER_DIR=$DIR cluster/replica.sh "$i"
    upstreams="$upstreams server 127.0.0.1:$port max_fails=1 fail_timeout=2s;"
done

# A Celery worker and beat (CLUSTER_JOBS=0: none), on Redis by default. The
# worker writes its metrics next to web-1's, so web-1's /metrics shows its jobs.
# It runs at a lower CPU priority (CLUSTER_WORKER_NICE, default 10; its pool
# processes inherit it): on a shared box a busy worker then takes only the
# CPU the web replicas leave, instead of an equal share of it (bench/README.md,
# "Background jobs", also for the Compose equivalent).
if [ "${CLUSTER_JOBS:-1}" = 1 ]; then
    export CELERY_BROKER_URL=${CELERY_BROKER_URL:-${REDIS_URL%/*}/1}
    PROMETHEUS_MULTIPROC_DIR="$DIR/metrics-1" \
    setsid nice -n "${CLUSTER_WORKER_NICE:-10}" \
        "$BIN/celery" -A myapp.tasks worker --ini production.ini --loglevel INFO \
        --concurrency "$WORKER_CONCURRENCY" --pidfile "$DIR/pids/worker.pid" >> "$DIR/logs/worker.log" 2>&1 < /dev/null &
    setsid "$BIN/celery" -A myapp.tasks beat --ini production.ini --loglevel INFO \
        --schedule "$DIR/beat-schedule" --pidfile "$DIR/pids/beat.pid" \
        >> "$DIR/logs/beat.log" 2>&1 < /dev/null &
fi

mkdir -p "$DIR/nginx"
chmod 0711 "$DIR"
chmod 0777 "$DIR/nginx"  # nginx's workers run as an unprivileged user
NGINX_LISTEN=127.0.0.1:$NGINX_PORT NGINX_UPSTREAMS="$upstreams" \
NGINX_STATIC_ROOT="$ROOT/myapp" NGINX_RUN_DIR="$DIR/nginx" \
    nginx/render.sh > "$DIR/nginx.conf"
nginx -t -q -c "$DIR/nginx.conf" -p "$DIR/nginx"
nginx -c "$DIR/nginx.conf" -p "$DIR/nginx"

# Ready when every replica answers /readyz and nginx answers.
deadline=$((SECONDS + 60))
for i in $(seq 1 "$REPLICAS"); do
    port=$((BASE_PORT + i - 1))
    until curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "replica web-$i did not become ready; see $DIR/logs/web-$i.log" >&2
            exit 1
        fi
        sleep 0.3
    done
done
curl -fsS "http://127.0.0.1:$NGINX_PORT/healthz" > /dev/null
up=1
echo "cluster up: http://127.0.0.1:$NGINX_PORT ($REPLICAS replicas on ports $BASE_PORT+)"
