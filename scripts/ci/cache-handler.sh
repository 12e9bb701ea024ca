#!/usr/bin/env bash
# The Next.js cache handler knext ships (generated/next/cache-handler.cjs) against a real Redis on
# loopback (port 6390), and `knext cache-handler` printing the same file. Needs redis-server, redis-cli, node.
set -euo pipefail
cd "$(dirname "$0")/../.."
redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no >out-redis.log 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
KNEXT_CACHE_HANDLER="$PWD/generated/next/cache-handler.cjs" REDIS_URL=redis://127.0.0.1:6390/0 \
  node --test tests/cache-handler/
kill $redis_pid && trap - EXIT && rm -f out-redis.log
# `knext cache-handler` prints what build.rs rendered from templates/.
diff <(cargo run --locked --quiet -- cache-handler) generated/next/cache-handler.cjs
