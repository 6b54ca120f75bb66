#!/usr/bin/env bash
# A throwaway Redis Sentinel setup on loopback for the RedisStore failover test: a primary, a replica and three
# Sentinels (quorum 2, the primary taken as down after 1 s). The primary may be reached through a port of the
# test's own (a TCP proxy that can hold replication back): the replica replicates from it and the Sentinels
# monitor it there, so they never "fix" the replica to bypass it. Nothing persisted; everything in DIR.
#   scripts/redis-sentinel.sh start DIR PRIMARY_PORT REPLICA_PORT PRIMARY_ADDRESS_PORT SENTINEL_PORT x3
#   scripts/redis-sentinel.sh kill-primary DIR    SIGKILL the primary (a crash: nothing saved or sent)
#   scripts/redis-sentinel.sh stop DIR            end every process of DIR
#   scripts/redis-sentinel.sh check               start one on spare ports 7201-7205, wait for it, stop it
#                                                 (.ci/run: proves `redis-server --sentinel` runs here)
set -euo pipefail

NAME=fra-primary

wait_for () { # port command...: until the command's output is non-empty and not an error (bounded: 20 s)
  local port="$1"; shift
  for _ in $(seq 1 200); do
    if out="$(redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null)" && [ -n "$out" ] && [[ "$out" != ERR* ]]; then return 0; fi
    sleep 0.1
  done
  echo "redis-sentinel: 127.0.0.1:$port never answered $*" >&2
  return 1
}

start () {
  local dir="$1" primary="$2" replica="$3" upstream="$4"; shift 4
  local common=(--daemonize yes --bind 127.0.0.1 --save "" --appendonly no --dir "$dir")
  redis-server "${common[@]}" --port "$primary" --pidfile "$dir/primary.pid" --logfile "$dir/primary.log"
  wait_for "$primary" ping
  redis-server "${common[@]}" --port "$replica" --pidfile "$dir/replica.pid" --logfile "$dir/replica.log" \
    --replicaof 127.0.0.1 "$upstream"
  for port in "$@"; do
    cat > "$dir/sentinel-$port.conf" <<CONF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/sentinel-$port.pid
logfile $dir/sentinel-$port.log
dir $dir
sentinel monitor $NAME 127.0.0.1 $upstream 2
sentinel down-after-milliseconds $NAME 1000
sentinel failover-timeout $NAME 5000
sentinel parallel-syncs $NAME 1
CONF
    redis-server "$dir/sentinel-$port.conf" --sentinel
  done
  # ready once the replica has synced and every Sentinel knows it and the two others
  for _ in $(seq 1 200); do
    if redis-cli -h 127.0.0.1 -p "$replica" info replication 2>/dev/null | grep -q '^master_link_status:up'; then break; fi
    sleep 0.1
  done
  for port in "$@"; do
    for _ in $(seq 1 300); do
      local state
      state="$(redis-cli -h 127.0.0.1 -p "$port" sentinel master "$NAME" 2>/dev/null | tr '\n' ' ')"
      if [[ "$state" == *"num-slaves 1 "* && "$state" == *"num-other-sentinels 2 "* ]]; then break; fi
      sleep 0.1
    done
  done
  for port in "$@"; do
    local state
    state="$(redis-cli -h 127.0.0.1 -p "$port" sentinel master "$NAME" | tr '\n' ' ')"
    if [[ "$state" != *"num-slaves 1 "* || "$state" != *"num-other-sentinels 2 "* ]]; then
      echo "redis-sentinel: the Sentinel on $port did not see the replica and the two others within 30 s" >&2
      return 1
    fi
  done
}

kill_primary () {
  kill -9 "$(cat "$1/primary.pid")"
}

stop () {
  for pidfile in "$1"/*.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
}

check () {
  CHECK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/fra-sentinel-check.XXXXXX")"
  trap 'stop "$CHECK_DIR"; rm -rf "$CHECK_DIR"' EXIT
  start "$CHECK_DIR" 7201 7202 7201 7203 7204 7205
  echo "redis-sentinel: a primary, a replica and three Sentinels ran on 127.0.0.1:7201-7205"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  kill-primary) kill_primary "$2" ;;
  stop) stop "$2" ;;
  check) check ;;
  *) echo "usage: $0 start DIR PRIMARY REPLICA UPSTREAM S1 S2 S3 | kill-primary DIR | stop DIR | check" >&2; exit 2 ;;
esac
