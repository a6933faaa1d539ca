#!/bin/sh
# The temporal-schema service (temporalio/admin-tools, one-shot): sets up or upgrades the schemas of
# Temporal's two databases to the versions this admin-tools image ships, before the server (the same
# release) starts. Every step is idempotent, so it runs on every `docker compose up`:
#   setup-schema -v 0.0  creates the version tables if missing and records 0.0 only on an empty database;
#   update-schema        applies the versioned migrations newer than the recorded version.
# The databases themselves are created, owned by the `temporal` role, by deploy/postgres/10-roles.sh;
# `temporal-sql-tool create` is not used because it would need CREATEDB, which that role does not have.
#
# temporal-sql-tool reads SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER and SQL_PASSWORD (tools/sql/main.go in
# temporalio/temporal); the password comes from the secret file.
set -eu

SQL_PASSWORD=$(cat /run/secrets/temporal_db_password)
export SQL_PASSWORD

# The image's schemas (docker/targets/admin-tools.Dockerfile copies them to /etc/temporal/schema).
temporal-sql-tool --db temporal setup-schema -v 0.0
temporal-sql-tool --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
temporal-sql-tool --db temporal_visibility setup-schema -v 0.0
temporal-sql-tool --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
echo "temporal and temporal_visibility are at the schema versions of this admin-tools image"
