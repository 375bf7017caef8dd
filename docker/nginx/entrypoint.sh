#!/bin/sh
# Render the config, wait until the upstream names resolve, run nginx.
#
# Nginx resolves the names in NGINX_UPSTREAMS once, at start: "web" is the
# compose service, which DNS answers with every replica's address. Starting
# before the replicas exist would fail ("host not found in upstream"), so
# wait (bounded by WAIT_TIMEOUT) for the names first. After
# `docker compose up --scale web=N`, restart nginx (or `nginx -s reload`) so
# it picks up the new set.
set -eu
conf_dir=/etc/conduit-nginx
mkdir -p "$NGINX_RUN_DIR"

hosts=$(printf '%s\n' "$NGINX_UPSTREAMS" | tr ';' '\n' |
    sed -n 's/^[[:space:]]*server[[:space:]]\{1,\}\([^:[:space:]]*\).*/\1/p')
deadline=$(( $(date +%s) + ${WAIT_TIMEOUT:-120} ))
for host in $hosts; do
    until getent hosts "$host" > /dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "gave up waiting for $host to resolve" >&2
            exit 1
        fi
        sleep 1
    done
    echo "upstream $host: $(getent ahostsv4 "$host" | awk '{print $1}' | sort -u | tr '\n' ' ')" >&2
done

"$conf_dir/render.sh" > "$NGINX_RUN_DIR/nginx.conf"
# The template logs to files in the run folder: send them to the container's output.
ln -sf /dev/stdout "$NGINX_RUN_DIR/access.log"
ln -sf /dev/stderr "$NGINX_RUN_DIR/error.log"
nginx -t -q -c "$NGINX_RUN_DIR/nginx.conf" -p "$NGINX_RUN_DIR"
exec nginx -c "$NGINX_RUN_DIR/nginx.conf" -p "$NGINX_RUN_DIR" -g 'daemon off;' "$@"
