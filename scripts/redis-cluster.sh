#!/usr/bin/env bash
# A throwaway three-primary Redis Cluster on 127.0.0.1:7001-7003 (bus ports 17001-17003) for the RedisStore
# cluster tests. Nothing is kept on disk beyond the nodes' cluster files in a temporary directory.
#   scripts/redis-cluster.sh start   start it unless it already answers with cluster_state:ok (the default)
#   scripts/redis-cluster.sh stop    shut down the nodes this script started and remove their directory
set -euo pipefail

PORTS=(7001 7002 7003)
STATE_FILE="${TMPDIR:-/tmp}/fastify-refresh-auth-redis-cluster.dir"

cluster_ok () {
  redis-cli -h 127.0.0.1 -p "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

start () {
  if cluster_ok; then
    echo "redis-cluster: already answering on 127.0.0.1:${PORTS[0]}"
    return 0
  fi
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/fastify-refresh-auth-redis-cluster.XXXXXX")"
  echo "$dir" > "$STATE_FILE"
  for port in "${PORTS[@]}"; do
    mkdir -p "$dir/$port"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" \
      --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 5000 \
      --dir "$dir/$port" --save "" --appendonly no --logfile "$dir/$port/redis.log"
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  # Nodes left over from an earlier run may hold slots or data: only a fresh set can be joined.
  if ! redis-cli -h 127.0.0.1 -p "${PORTS[0]}" cluster info | grep -q '^cluster_slots_assigned:16384'; then
    local nodes=()
    for port in "${PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  fi
  for _ in $(seq 1 100); do
    if cluster_ok; then
      echo "redis-cluster: cluster_state:ok on 127.0.0.1:${PORTS[*]}"
      return 0
    fi
    sleep 0.1
  done
  echo "redis-cluster: the cluster did not reach cluster_state:ok" >&2
  return 1
}

stop () {
  for port in "${PORTS[@]}"; do redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  if [ -f "$STATE_FILE" ]; then
    rm -rf "$(cat "$STATE_FILE")"
    rm -f "$STATE_FILE"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
