#!/usr/bin/env bash
# End to end, from a clean work dir: loopback registry -> knext image pushed -> node stand-in built and pushed
# -> buildah bud of the app's Dockerfile (vfs, chroot isolation) -> push -> config checks -> oci-dir + umoci
# unpack -> run as uid 1000 with a read-only root (bwrap) -> curl through knext serve -> syft -> hadolint.
# Needs (Debian 12, root): apt-get install -y buildah skopeo umoci docker-registry bubblewrap jq curl
# Inputs: KNEXT_OCI (an OCI layout with tag "operator", from scripts/operator-image.sh), APP (the app with its
# Dockerfile), NODE_BIN (the node binary for the stand-in), SYFT, HADOLINT.
set -euo pipefail
W=${W:-/tmp/spike12/e2e}
KNEXT_OCI=${KNEXT_OCI:-/tmp/spike12/knext-img/oci}
APP=${APP:-/tmp/spike12/app}
PORT=${REG_PORT:-5077}
REG=127.0.0.1:$PORT
SYFT=${SYFT:-/work/main/target/tools/bin/syft}
HADOLINT=${HADOLINT:-/tmp/spike12/venv/bin/hadolint}
B=(buildah --root "$W/storage" --runroot "$W/runroot" --storage-driver vfs)
t() { local s=$SECONDS; "$@"; echo "    [$(( SECONDS - s )) s] $*" | cut -c1-140 >&2; }
step() { printf '\n== %s\n' "$*" >&2; }

rm -rf "$W" && mkdir -p "$W/registry" "$W/cache"
step "registry on $REG"
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$W/registry/data" "$REG" >"$W/registry/config.yml"
docker-registry serve "$W/registry/config.yml" >"$W/registry/log.txt" 2>&1 &
reg_pid=$!
run_pid=
cleanup() { [[ -n "$run_pid" ]] && kill "$run_pid" 2>/dev/null; kill "$reg_pid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 50); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.2; done

step "push the knext image"
t skopeo copy --quiet --dest-tls-verify=false --digestfile "$W/knext.digest" "oci:$KNEXT_OCI:operator" "docker://$REG/kn-next/knext:spike"

step "node stand-in"
ctr="$("${B[@]}" from scratch)"
root="$("${B[@]}" mount "$ctr")"
mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64,local/bin,local/lib/node_modules} "$root"/{etc,home/node,root,tmp,var/tmp,opt}
ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp" "$root/var/tmp"; chmod 0700 "$root/root"
node_bin=${NODE_BIN:-/usr/bin/node}
install -m 0755 "$node_bin" "$root/usr/local/bin/node"
bins=("$node_bin")
for f in $(dpkg -L dash coreutils grep bash libc-bin | grep -E '^/(usr/)?s?bin/'); do
  [[ -f "$f" && ! -L "$f" ]] || continue
  install -m 0755 "$f" "$root/usr/bin/${f##*/}"; bins+=("$f")
done
ln -sf dash "$root/usr/bin/sh"
for lib in $(for b in "${bins[@]}"; do ldd "$b" 2>/dev/null; done | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
  case "$lib" in
    /lib64/*) install -m 0755 "$(readlink -f "$lib")" "$root/usr/lib64/${lib##*/}" ;;
    *)        install -m 0644 "$(readlink -f "$lib")" "$root/usr/lib/x86_64-linux-gnu/${lib##*/}" ;;
  esac
done
cp -a /usr/lib/node_modules/npm /usr/lib/node_modules/corepack "$root/usr/local/lib/node_modules/"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
ln -s ../lib/node_modules/corepack/dist/corepack.js "$root/usr/local/bin/corepack"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\nnode:x:1000:\n' >"$root/etc/group"
chown 1000:1000 "$root/home/node"
extra_env=()
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" ]]; then   # an egress that re-signs TLS: npm ci must trust its CA
  mkdir -p "$root/etc/ssl/certs" && install -m 0644 "$NODE_EXTRA_CA_CERTS" "$root/etc/ssl/certs/ca-certificates.crt"
  extra_env=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi
"${B[@]}" umount "$ctr" >/dev/null
"${B[@]}" config --os linux --arch amd64 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$("$node_bin" --version | tr -d v)" "${extra_env[@]}" --cmd node "$ctr"
t "${B[@]}" commit --quiet --timestamp 0 "$ctr" stand-in-node >/dev/null
"${B[@]}" rm "$ctr" >/dev/null
t "${B[@]}" push --quiet --tls-verify=false --digestfile "$W/node.digest" stand-in-node "docker://$REG/stand-in/node:22-bookworm-slim"

step "buildah bud"
t "${B[@]}" bud --quiet --isolation chroot --tls-verify=false \
  --build-arg "NODE_IMAGE=$REG/stand-in/node@$(cat "$W/node.digest")" \
  --build-arg "KNEXT_IMAGE=$REG/kn-next/knext@$(cat "$W/knext.digest")" \
  -f "$APP/Dockerfile" -t app:spike "$APP" >"$W/bud.log" 2>&1 || { tail -30 "$W/bud.log"; exit 1; }
t "${B[@]}" push --quiet --tls-verify=false --digestfile "$W/app.digest" app:spike "docker://$REG/spike/app:spike"
img="docker://$REG/spike/app@$(cat "$W/app.digest")"
skopeo inspect --tls-verify=false --config "$img" | jq -e '.config
  | .User == "1000:1000" and .Entrypoint == ["/knext","serve","--"] and .Cmd == ["node","server.js"]
    and (.Env | index("PORT=3000")) != null' >/dev/null && echo "config: user, entrypoint, cmd, env as expected"

step "unpack and run as uid 1000, read-only root"
t skopeo copy --quiet --src-tls-verify=false "$img" "oci:$W/oci:app"
t umoci unpack --image "$W/oci:app" "$W/bundle" >/dev/null
chmod 0755 "$W/bundle"; mkdir -p "$W/bundle/rootfs/app/.next/cache" "$W/bundle/rootfs/proc" "$W/bundle/rootfs/dev"; chown 1000:1000 "$W/cache"
cfg=$W/bundle/config.json
envargs=(); while IFS= read -r kv; do envargs+=(--setenv "${kv%%=*}" "${kv#*=}"); done < <(jq -r '.process.env[]' "$cfg")
mapfile -t argv < <(jq -r '.process.args[]' "$cfg")
setpriv --reuid=1000 --regid=1000 --clear-groups \
  bwrap --ro-bind "$W/bundle/rootfs" / --tmpfs /tmp --bind "$W/cache" /app/.next/cache --proc /proc --dev /dev \
    --unshare-user --uid 1000 --gid 1000 --unshare-pid --unshare-ipc --unshare-uts --die-with-parent \
    --clearenv "${envargs[@]}" --chdir "$(jq -r .process.cwd "$cfg")" "${argv[@]}" >"$W/run.log" 2>&1 &
run_pid=$!
s=$SECONDS; for _ in $(seq 300); do curl -fsS -o /dev/null http://127.0.0.1:8080/ 2>/dev/null && break; sleep 0.1; done
curl -fsS http://127.0.0.1:8080/ | grep -q 'knext test app' && echo "GET / through knext serve: 200, the page ($(( SECONDS - s )) s after start)"
curl -fsS http://127.0.0.1:8080/api/health; echo
curl -fsS http://127.0.0.1:9464/metrics | grep -c '^kn_next_http_requests_total'
kill -TERM "$(pgrep -f '^/knext serve' | head -1)"; wait "$run_pid" || true; run_pid=
tail -1 "$W/run.log"

step "syft"
SYFT_CHECK_FOR_APP_UPDATE=false t "$SYFT" scan "oci-dir:$W/oci" -o "syft-json=$W/sbom.json" --quiet
jq -r '.artifacts | group_by(.foundBy)[] | "\(length) \(.[0].foundBy)"' "$W/sbom.json"
jq -r '.artifacts[] | select(.name=="next" or .name=="knext" or .name=="tokio" or .name=="node") | "\(.type) \(.name)@\(.version) \(.locations[0].path)"' "$W/sbom.json"

step "hadolint"
t "$HADOLINT" "$APP/Dockerfile" && echo "hadolint: no findings"
