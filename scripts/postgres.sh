#!/usr/bin/env bash
# PostgreSQL for the PostgresStore tests: 127.0.0.1:5432, trust auth on loopback, user postgres, database test.
#   scripts/postgres.sh start   start it if none answers (installing Debian's postgresql when missing),
#                               then make sure the test database exists
# Run as root on a throwaway CI machine: when it has to start a server it also sets loopback auth to trust.
set -euo pipefail

HOST=127.0.0.1
PORT=5432

answers () {
  psql -h "$HOST" -p "$PORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1
}

start () {
  if ! answers; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
    fi
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q 'fastify-refresh-auth: trust on loopback' "$hba"; then
      # the first matching line wins: these go before Debian's peer and password lines
      { printf '%s\n' '# fastify-refresh-auth: trust on loopback (throwaway test server)' \
          'local all all trust' 'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust'
        cat "$hba"; } > "$hba.new"
      chown --reference="$hba" "$hba.new"
      chmod --reference="$hba" "$hba.new"
      mv "$hba.new" "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    for _ in $(seq 1 100); do answers && break; sleep 0.1; done
    if ! answers; then
      echo "postgres: no server answers on $HOST:$PORT" >&2
      return 1
    fi
  fi
  if [ "$(psql -h "$HOST" -p "$PORT" -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'test'")" != 1 ]; then
    psql -h "$HOST" -p "$PORT" -U postgres -d postgres -qc 'create database test'
  fi
  echo "postgres: answering on $HOST:$PORT, database test"
}

case "${1:-start}" in
  start) start ;;
  *) echo "usage: $0 [start]" >&2; exit 2 ;;
esac
