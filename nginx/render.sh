#!/bin/sh
# Render nginx.conf.template with envsubst. Only our NGINX_* variables are
# replaced:
# nginx's own $variables stay as they are.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${NGINX_AUTH_RATE:=20}"
# "off" turns the micro-cache off (benchmarks measuring the app behind Nginx).
: "${NGINX_MICROCACHE:=micro}"
export NGINX_AUTH_RATE NGINX_MICROCACHE
envsubst '${NGINX_LISTEN} ${NGINX_UPSTREAMS} ${NGINX_STATIC_ROOT} ${NGINX_RUN_DIR} ${NGINX_AUTH_RATE} ${NGINX_MICROCACHE}' \
    < "${NGINX_TEMPLATE:-$here/nginx.conf.template}"
