#!/bin/bash
# PgBouncer's configuration from the environment, then PgBouncer itself.
#   DB_HOST, DB_PORT          the Postgres server (postgres:5432)
#   DB_USER, DB_PASSWORD      the one role the app logs in as
#   POOL_SIZE                 server connections per database/user pair:
#                             all that Postgres sees, whatever the replicas
#   MAX_CLIENT_CONN           client connections (the replicas' pools) it accepts
# Transaction pooling: a server connection belongs to a client only for one
# transaction, so the app must keep nothing session-scoped (DB_PGBOUNCER=true
# tells it: docs/database.md, "PgBouncer"); migrations go straight to Postgres.
set -euo pipefail
: "${DB_PASSWORD:?set DB_PASSWORD}"
conf=/etc/pgbouncer
# userlist.txt holds the password in clear: PgBouncer needs it to log in to
# Postgres with SCRAM for the client. Readable by PgBouncer's user only (the
# package made the file group-readable). A " inside a quoted field is doubled.
user=${DB_USER:-conduit}
printf '"%s" "%s"\n' "${user//\"/\"\"}" "${DB_PASSWORD//\"/\"\"}" > "$conf/userlist.txt"
chmod 600 "$conf/userlist.txt"
cat > "$conf/pgbouncer.ini" <<INI
[databases]
* = host=${DB_HOST:-postgres} port=${DB_PORT:-5432}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $conf/userlist.txt
pool_mode = transaction
default_pool_size = ${POOL_SIZE:-20}
max_client_conn = ${MAX_CLIENT_CONN:-1000}
; SHOW STATS/POOLS for the app's role (docker/ci/checks.py reads them); no
; admin_users: the app's credentials must not PAUSE or SHUTDOWN the pooler.
stats_users = $user
INI
exec pgbouncer "$conf/pgbouncer.ini"
