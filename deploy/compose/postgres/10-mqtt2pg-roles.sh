#!/bin/sh
# deploy/compose/postgres/10-mqtt2pg-roles.sh - runs once, when the database volume is first initialised
# (the image's entrypoint runs /docker-entrypoint-initdb.d/* in name order, after the TimescaleDB image's own
# 000_install_timescaledb.sh has created the extension in $POSTGRES_DB, so `mqtt2pg migrate` builds a
# hypertable). Creates the three roles of README.md "Database" with passwords from the environment:
#   mqtt2pg_owner   owns the database and runs the migrations (no superuser, no CREATEROLE needed since
#                   the two roles below already exist)
#   mqtt2pg_writer  the bridge: not owner, not superuser, not BYPASSRLS
#   mqtt2pg_reader  the group holding the dashboards' SELECT grants; it reads no tenant itself: each dashboard
#                   logs in as its own role, mapped by `mqtt2pg tenant grant-reader SLUG --role R --create`
# It may be sourced rather than executed by the entrypoint, so it sets no shell options and never exits.
# psql quotes the passwords itself (:'name').
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-v owner_password="$MQTT2PG_OWNER_PASSWORD" \
	-v writer_password="$MQTT2PG_WRITER_PASSWORD" \
	-v reader_password="$MQTT2PG_READER_PASSWORD" <<'SQL'
CREATE ROLE mqtt2pg_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE mqtt2pg_writer LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'writer_password';
CREATE ROLE mqtt2pg_reader LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
-- The database owner may create in schema public (PostgreSQL 15: public belongs to pg_database_owner).
ALTER DATABASE :"DBNAME" OWNER TO mqtt2pg_owner;
SQL
