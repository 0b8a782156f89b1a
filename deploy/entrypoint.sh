#!/bin/sh
# Entry point of the acav_assets image: refuse to start with a database password that is empty,
# the example's, or short, then run the service's command.
set -eu
check() {
    name=$1
    value=$2
    case "$value" in
        change-me|changeme|password|dagster|postgres|secret)
            echo "acav: refusing to start: $name is the example value '$value'; set a strong one in deploy/.env (e.g. openssl rand -base64 24)" >&2
            exit 2 ;;
    esac
    if [ "${#value}" -lt 12 ]; then
        echo "acav: refusing to start: $name has ${#value} characters, fewer than 12; set a strong one in deploy/.env (e.g. openssl rand -base64 24)" >&2
        exit 2
    fi
}
# compose (deploy/dagster.yaml) passes DAGSTER_POSTGRES_PASSWORD, Dagster's Helm chart DAGSTER_PG_PASSWORD
if [ -n "${DAGSTER_POSTGRES_USER:-}" ] || [ -n "${DAGSTER_POSTGRES_PASSWORD+x}" ]; then
    check DAGSTER_POSTGRES_PASSWORD "${DAGSTER_POSTGRES_PASSWORD:-}"
fi
if [ -n "${DAGSTER_PG_PASSWORD+x}" ]; then
    check DAGSTER_PG_PASSWORD "$DAGSTER_PG_PASSWORD"
fi
exec "$@"
