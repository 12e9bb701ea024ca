#!/usr/bin/env bash
# Runs the unpacked image (bundle/rootfs) as uid/gid 1000, root filesystem read-only, /tmp a tmpfs and
# /app/.next/cache a writable bind (the emptyDirs), with the image config's env, cwd and entrypoint+cmd.
set -euo pipefail
cd /tmp/spike12
cfg=bundle/config.json
envargs=(); while IFS= read -r kv; do envargs+=(--setenv "${kv%%=*}" "${kv#*=}"); done < <(jq -r '.process.env[]' "$cfg")
mapfile -t argv < <(jq -r '.process.args[]' "$cfg")
exec ${SETPRIV:-} bwrap --ro-bind bundle/rootfs / --tmpfs /tmp --bind cache /app/.next/cache --proc /proc --dev /dev \
  --unshare-user --uid 1000 --gid 1000 --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try \
  --die-with-parent --new-session --clearenv "${envargs[@]}" \
  --chdir "$(jq -r .process.cwd "$cfg")" "${argv[@]}"
