#!/usr/bin/env bash
# Starts a local redis-server on HOST:PORT unless one already answers there.
set -euo pipefail
host=${1:-127.0.0.1}; port=${2:-6379}
if redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1; then exit 0; fi
dir=${TMPDIR:-/tmp}/fnhost-redis-$port
mkdir -p "$dir"
echo "starting redis-server on $host:$port (data and log in $dir)"
redis-server --bind "$host" --port "$port" --dir "$dir" --daemonize yes \
  --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" --save "" --appendonly no
for _ in $(seq 50); do redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && exit 0; sleep 0.1; done
echo "redis-server did not answer on $host:$port; see $dir/redis.log" >&2
exit 1
