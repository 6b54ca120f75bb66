#!/usr/bin/env bash
# MariaDB for the MariaDB store of docs/writing-a-store.md: 127.0.0.1:3306, user root with an empty password,
# database test.
#   scripts/mariadb.sh start   start it if none answers (installing Debian's mariadb-server when missing),
#                              then make sure root may sign in over TCP and the test database exists
# Run as root on a throwaway CI machine.
set -euo pipefail

HOST=127.0.0.1
PORT=3306

answers () {
  mariadb -h "$HOST" -P "$PORT" -u root -e 'select 1' >/dev/null 2>&1
}

start () {
  if ! answers; then
    if ! command -v mariadbd >/dev/null 2>&1; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server
    fi
    if ! mariadb -e 'select 1' >/dev/null 2>&1; then
      service mariadb start >/dev/null 2>&1 || { mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld; (mysqld_safe --user=mysql >/dev/null 2>&1 &); }
      for _ in $(seq 1 100); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    # Debian's root signs in through the socket only: let it in over TCP with no password (throwaway server)
    mariadb -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
    if ! answers; then
      echo "mariadb: no server answers on $HOST:$PORT" >&2
      return 1
    fi
  fi
  mariadb -h "$HOST" -P "$PORT" -u root -e 'CREATE DATABASE IF NOT EXISTS test'
  echo "mariadb: answering on $HOST:$PORT, database test"
}

case "${1:-start}" in
  start) start ;;
  *) echo "usage: $0 [start]" >&2; exit 2 ;;
esac
