#!/usr/bin/env bash
set -e
if [[ "${1:-}" == -* || "${1:-}" == *.conf ]]; then set -- redis-server "$@"; fi
if [[ "${1:-}" == redis-server && $(id -u) == 0 ]]; then
    chown -R redis:redis /data
    exec gosu redis "$@"
fi
exec "$@"
