#!/usr/bin/env bash
# The official postgres image's entrypoint contract (the parts compose files use).
set -Eeuo pipefail
if [[ "${1:-}" == -* ]]; then set -- postgres "$@"; fi

if [[ "${1:-}" == postgres && $(id -u) == 0 ]]; then
    mkdir -p "${PGDATA}" /var/run/postgresql
    chown -R postgres:postgres "${PGDATA}" /var/run/postgresql
    chmod 700 "${PGDATA}"
    exec gosu postgres "$0" "$@"
fi

if [[ "${1:-}" == postgres && ! -s "${PGDATA}/PG_VERSION" ]]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set (the database is reachable over the network)}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-${user}}"
    initdb --username="${user}" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD}") \
        --auth-local=trust --auth-host=scram-sha-256 -D "${PGDATA}" >/dev/null
    echo "host all all all scram-sha-256" >> "${PGDATA}/pg_hba.conf"
    echo "listen_addresses = '*'" >> "${PGDATA}/postgresql.conf"
    pg_ctl -D "${PGDATA}" -o "-c listen_addresses=''" -w start >/dev/null
    export PGUSER="${user}"
    if [[ "${db}" != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --dbname postgres -q -c "CREATE DATABASE \"${db}\""
    fi
    for script in /docker-entrypoint-initdb.d/*; do
        case "${script}" in
            *.sh) echo "running ${script}"; . "${script}" ;;
            *.sql) echo "running ${script}"; psql -v ON_ERROR_STOP=1 --dbname "${db}" -f "${script}" ;;
        esac
    done
    pg_ctl -D "${PGDATA}" -m fast -w stop >/dev/null
    unset PGUSER
    echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
