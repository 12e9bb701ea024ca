#!/usr/bin/env bash
# Builds the Next.js test app (tests/nextjs-app) that tests/nextjs.rs runs behind `knext serve`:
#   copies the app to OUT_DIR/app (outside the source tree), puts knext's generated cache handler
#   (generated/next/cache-handler.cjs) beside next.config.js, runs `npm ci` (versions pinned by the
#   committed package-lock.json) and `next build` (output: 'standalone'), and assembles the
#   standalone server in OUT_DIR/standalone as Next.js's docs say: .next/standalone, plus
#   .next/static and public/ copied in. Start it with `node OUT_DIR/standalone/server.js`.
#
# Usage: scripts/nextjs-test-app.sh [OUT_DIR]     (default target/nextjs-app)
# Cached: nothing is rebuilt while the inputs' hash (the app's files, the lockfile, the cache
# handler, this script, the Node.js version) matches OUT_DIR/inputs.sha256; `npm ci` is skipped
# while the lockfile and Node.js version are unchanged. Concurrent runs on one OUT_DIR take turns
# (flock). Needs node (>= 20.9, as next 16 does) and npm; reaches the npm registry on a cold build.
set -euo pipefail
cd "$(dirname "$0")/.."
src=tests/nextjs-app
handler=generated/next/cache-handler.cjs
out="${1:-target/nextjs-app}"

for tool in node npm flock sha256sum; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: the Next.js test app needs Node.js 20.9+ and npm (apt-get install nodejs npm)" >&2; exit 2; }
done
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 9) ? 0 : 1)' \
  || { echo "node $(node --version) is too old: next 16 needs >= 20.9" >&2; exit 2; }
[[ -f "$handler" ]] || { echo "$handler is missing: run cargo build first" >&2; exit 2; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec 9>"$out/.lock"
flock 9

# The app's own files (never a node_modules/ or .next/ someone made inside the source tree).
app_files() {
  find "$src" -type f -not -path '*/node_modules/*' -not -path '*/.next/*' -not -name cache-handler.cjs | LC_ALL=C sort
}
# Paths relative to the repository root, so the hash does not depend on how the script was called.
inputs="$( { app_files; echo "$handler"; echo scripts/nextjs-test-app.sh; } | xargs sha256sum; node --version)"
hash="$(sha256sum <<<"$inputs" | cut -d' ' -f1)"
lock_hash="$( { sha256sum "$src/package-lock.json"; node --version; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$out/standalone/server.js" && "$(cat "$out/inputs.sha256" 2>/dev/null)" == "$hash" ]]; then
  echo "Next.js test app up to date: $out/standalone" >&2
  exit 0
fi
rm -f "$out/inputs.sha256"

started=$SECONDS
app="$out/app"
mkdir -p "$app"
# Replace the sources, keep node_modules (npm ci below decides whether it is still good).
find "$app" -mindepth 1 -maxdepth 1 -not -name node_modules -exec rm -rf {} +
tar -C "$src" --exclude=./node_modules --exclude=./.next --exclude=./cache-handler.cjs -cf - . | tar -xf - -C "$app"
cp "$handler" "$app/cache-handler.cjs"

export NEXT_TELEMETRY_DISABLED=1 npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
if [[ ! -d "$app/node_modules" || "$(cat "$out/lock.sha256" 2>/dev/null)" != "$lock_hash" ]]; then
  rm -f "$out/lock.sha256"
  (cd "$app" && npm ci --no-audit --no-fund --loglevel=error) >&2
  echo "$lock_hash" >"$out/lock.sha256"
fi
(cd "$app" && ./node_modules/.bin/next build) >&2

# The standalone server: .next/standalone plus the static files it does not copy itself.
rm -rf "$out/standalone"
cp -a "$app/.next/standalone" "$out/standalone"
cp -a "$app/.next/static" "$out/standalone/.next/static"
cp -a "$app/public" "$out/standalone/public"
# The server must load knext's handler: next.config's cacheHandler, traced into the output.
grep -q 'cache-handler.cjs' "$out/standalone/server.js" \
  || { echo "the standalone server.js does not name cache-handler.cjs" >&2; exit 1; }
cmp -s "$handler" "$out/standalone/cache-handler.cjs" \
  || { echo "the standalone output lacks generated/next/cache-handler.cjs" >&2; exit 1; }
echo "$hash" >"$out/inputs.sha256"
echo "Next.js test app built in $((SECONDS - started)) s: $out/standalone" >&2
