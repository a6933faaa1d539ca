#!/bin/sh
# Run once by the postgres image, on the first start with an empty data folder (files in
# /docker-entrypoint-initdb.d/): one role per user of this server, each owning only its own databases.
#
#   temporal     owns temporal and temporal_visibility (Temporal's persistence and visibility); the
#                temporal-schema service sets up and upgrades their schemas as this role
#   refund_desk  owns refund_desk (the ledger); `refund-desk migrate` applies its schema as this role
#
# Neither may create databases or roles. The superuser (POSTGRES_USER, password in postgres_password) is
# left for the operator. Passwords come from the secret files docker-compose.yml mounts at /run/secrets/;
# psql quotes them (:'...'), so any character is safe.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="$(cat /run/secrets/temporal_db_password)" \
    -v refund_desk_password="$(cat /run/secrets/refund_desk_db_password)" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

CREATE ROLE refund_desk LOGIN PASSWORD :'refund_desk_password';
CREATE DATABASE refund_desk OWNER refund_desk;

-- Nobody but a database's owner may connect to it.
REVOKE CONNECT ON DATABASE temporal, temporal_visibility, refund_desk FROM PUBLIC;
SQL
