#!/usr/bin/env bash
# Sourced by the entrypoint on first start (PGUSER is the superuser).
set -e
for db in template1 "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"; do
    psql -v ON_ERROR_STOP=1 --dbname "${db}" -q \
        -c "CREATE EXTENSION IF NOT EXISTS postgis" -c "CREATE EXTENSION IF NOT EXISTS postgis_topology"
done
