#!/usr/bin/env bash
# A local rehearsal of an app image: `knext scaffold`'s Dockerfile, built with buildah (no Docker
# daemon) for the real Next.js test app (tests/nextjs-app), then taken apart and run. It proves that
# what the scaffold writes builds here into a non-root image that serves the app through `knext serve`:
#
#   knext's image (KNEXT_OCI, or scripts/operator-image.sh) and a stand-in Node.js base
#   (scripts/standin-node.sh) pushed to a loopback docker-registry → the app's sources copied, `knext
#   scaffold` run on them (it must find the app's own next.config.js complete) → hadolint, and every
#   ARG *_IMAGE default pinned by digest → the image workflow's build and push: buildah bud (NODE_IMAGE
#   and KNEXT_IMAGE pointing at the loopback digests) and push into the OCI layout
#   OUT_DIR/image/oci:app, skopeo copy to the registry, the same digest → the image config (user
#   1000:1000, entrypoint, cmd) → /knext is knext's static binary, no shell and no package manager →
#   unpacked and run as uid 1000 on a
#   read-only root with only the emptyDirs of `knext render`'s Knative Service writable: GET / through
#   knext serve, an unauthenticated invalidation refused, SIGTERM and exit 0 → the workflow's SBOM
#   steps with the app's .knext/ scripts (knext's crates and the app's npm packages listed), the SBOM
#   attached as a referrer → [vulnerability gate, signing: NOT RUN, said plainly].
#
# The official Node.js images cannot be pulled here: the base is a stand-in with the same user and
# paths, built from this machine's node and npm. What differs from a real build is that base only.
#
# Usage: scripts/app-image-local.sh [OUT_DIR]     (default target/app-image-local; emptied first)
# Env:   KNEXT_OCI (default target/release-local/image/oci:operator): knext's image as LAYOUT:TAG,
#        what scripts/release-local.sh leaves; when the layout is missing, scripts/operator-image.sh
#        builds one into OUT_DIR/knext-image.
#        KNEXT_APP_IMAGE_PORT (default 5077): the loopback registry's port (release-local uses 5000).
# Needs: root (buildah's chroot isolation, umoci unpack keeping owners); buildah, bubblewrap, umoci,
#        skopeo, docker-registry, binutils (readelf), util-linux (setpriv, nsenter), curl, jq, node
#        and npm (Debian packages); syft and hadolint from scripts/tools.sh; reaches npm and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/app-image-local}"
port="${KNEXT_APP_IMAGE_PORT:-5077}"
knext_oci="${KNEXT_OCI:-target/release-local/image/oci:operator}"
reg="127.0.0.1:$port"
app_repo="$reg/rehearsal/app"

timings=() step_name="" step_start=$SECONDS started=$SECONDS
lap() { [[ -z "$step_name" ]] || timings+=("$(printf '%5d s  %s' $((SECONDS - step_start)) "$step_name")"); }
say() { lap; step_name="$1" step_start=$SECONDS; printf '\n--> %s\n' "$*"; }
fail() { echo "app-image-local: $*" >&2; exit 1; }
registry_pid="" run_pid=""
cleanup() {
  local rc=$?
  [[ -z "$run_pid" ]] || kill -KILL "$run_pid" 2>/dev/null || true
  [[ -z "$registry_pid" ]] || kill "$registry_pid" 2>/dev/null || true
  lap && step_name=""
  printf '\ntimings:\n'; printf '%s\n' "${timings[@]}"; printf '%5d s  in all\n' $((SECONDS - started))
  ((rc == 0)) || echo "app-image-local: FAILED (exit $rc); the work is in $out" >&2
}
trap cleanup EXIT

say "tools"
[[ "$(id -u)" == 0 ]] || fail "run as root: buildah's chroot isolation and umoci unpack (which keeps the image's owners) need it"
PATH="$(scripts/tools.sh python | tail -n 1):$PATH"
for tool in buildah:buildah bwrap:bubblewrap umoci:umoci skopeo:skopeo docker-registry:docker-registry \
            readelf:binutils setpriv:util-linux nsenter:util-linux curl:curl jq:jq node:nodejs npm:npm; do
  command -v "${tool%%:*}" >/dev/null || fail "${tool%%:*} is missing (Debian: apt-get install ${tool#*:})"
done
for tool in syft hadolint; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/tools.sh python installs it)"
done
mkdir -p "$out" && out="$(cd "$out" && pwd)"
# A killed buildah run can leave bind mounts (/proc, /dev) inside its storage: never rm -rf through them.
if awk -v d="$out/" 'index($2, d) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
  fail "mounts are left under $out (see findmnt -R $out): unmount them first"
fi
rm -rf "$out" && mkdir -p "$out"
B=(buildah --root "$out/buildah/root" --runroot "$out/buildah/runroot" --storage-driver vfs)

say "knext's image: $knext_oci"
layout="${knext_oci%:*}" tag="${knext_oci##*:}"
if [[ ! -f "$layout/index.json" ]]; then
  echo "no OCI layout at $layout: building one with scripts/operator-image.sh"
  PATH="$(scripts/tools.sh cargo | tail -n 1):$PATH" scripts/operator-image.sh "$out/knext-image" >/dev/null
  layout="$out/knext-image/oci" tag=operator
fi
knext_built="$(jq -r --arg t "$tag" \
  '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")"
[[ "$knext_built" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "$layout has no image tagged $tag"
echo "knext: $layout:$tag, $knext_built"

say "loopback registry ($reg)"
mkdir -p "$out/registry"
cat >"$out/registry/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $out/registry/data
http:
  addr: $reg
YAML
docker-registry serve "$out/registry/config.yml" >"$out/registry/log.txt" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://$reg/v2/" >/dev/null || fail "the registry did not start on $reg (KNEXT_APP_IMAGE_PORT): $(cat "$out/registry/log.txt")"
skopeo copy --quiet --dest-tls-verify=false --digestfile "$out/knext.digest" \
  "oci:$layout:$tag" "docker://$reg/kn-next/knext:rehearsal"
[[ "$(cat "$out/knext.digest")" == "$knext_built" ]] || fail "pushed knext as $(cat "$out/knext.digest"), built $knext_built"
knext_image="$reg/kn-next/knext@$knext_built"
echo "knext: $knext_image"

say "the stand-in Node.js base (scripts/standin-node.sh)"
node_digest="$(scripts/standin-node.sh "$out/buildah" "docker://$reg/stand-in/node:24-bookworm-slim" | tail -n 1)"
node_image="$reg/stand-in/node@$node_digest"
echo "node: $node_image (node $(node --version))"

say "knext scaffold on a copy of tests/nextjs-app (sources only)"
app="$out/app"
mkdir -p "$app"
tar -C tests/nextjs-app --exclude=./node_modules --exclude=./.next --exclude=./cache-handler.cjs -cf - . \
  | tar -xf - -C "$app"
cargo build --release --locked --quiet --bin knext
target/release/knext scaffold "$app" --image-repo "$app_repo" | tee "$out/scaffold.txt" \
  || fail "knext scaffold failed on the test app"
for f in Dockerfile .dockerignore nextapp.yaml cache-handler.cjs; do
  [[ -s "$app/$f" ]] || fail "knext scaffold did not write $f"
done
[[ ! -e "$app/next.config.mjs" ]] || fail "knext scaffold wrote next.config.mjs beside the app's own next.config.js"
# The app has its own next.config.js, with every setting knext needs: scaffold leaves it alone and says so.
grep -qx 'your next.config.js is yours, left as it is: it has what knext needs' "$out/scaffold.txt" \
  || fail "knext scaffold did not recognise the app's next.config.js as complete: $(cat "$out/scaffold.txt")"

say "hadolint on the scaffolded Dockerfile; every ARG *_IMAGE default pinned by digest"
hadolint --no-color "$app/Dockerfile" || fail "hadolint reports the findings above on the scaffolded Dockerfile"
# hadolint does not resolve FROM ${ARG}: the defaults of the image ARGs are checked here.
mapfile -t image_args < <(grep -E '^ARG [A-Za-z0-9_]+_IMAGE(=|$)' "$app/Dockerfile")
((${#image_args[@]})) || fail "the scaffolded Dockerfile declares no ARG *_IMAGE"
declare -A pinned=() stages=()
for a in "${image_args[@]}"; do
  [[ "$a" =~ ^ARG\ ([A-Za-z0-9_]+_IMAGE)=[^[:space:]@]+@sha256:[0-9a-f]{64}$ ]] || fail "not pinned by digest: $a"
  pinned["${BASH_REMATCH[1]}"]=1
done
while read -r _ base _ alias; do
  if [[ "$base" == scratch || "$base" == *@sha256:* || -n "${stages[$base]:-}" ]]; then :
  elif [[ "$base" =~ ^\$\{([A-Za-z0-9_]+)\}$ ]]; then
    [[ -n "${pinned[${BASH_REMATCH[1]}]:-}" ]] || fail "FROM $base: not one of the pinned ARG *_IMAGE"
  else fail "FROM $base: neither pinned by digest nor an earlier stage"; fi
  [[ -z "$alias" ]] || stages["$alias"]=1
done < <(grep -iE '^FROM ' "$app/Dockerfile")
printf '%s\n' "${image_args[@]}"

say "buildah bud and push into an OCI layout, then skopeo to the registry: the image workflow's build and push"
# As knext-image.yml's build job (vfs storage, chroot isolation, layer timestamps zeroed, pushed into
# the OCI layout the later jobs use), with NODE_IMAGE and KNEXT_IMAGE on loopback ...
"${B[@]}" bud --isolation chroot --tls-verify=false --timestamp 0 \
  --build-arg "NODE_IMAGE=$node_image" --build-arg "KNEXT_IMAGE=$knext_image" \
  -f "$app/Dockerfile" -t localhost/rehearsal/app "$app" >"$out/bud.log" 2>&1 \
  || { tail -n 40 "$out/bud.log" >&2; fail "buildah bud failed (the whole log: $out/bud.log)"; }
mkdir -p "$out/image"
"${B[@]}" push --quiet localhost/rehearsal/app "oci:$out/image/oci:app"
app_digest="$(jq -r '.manifests[0].digest' "$out/image/oci/index.json")"
[[ "$app_digest" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "buildah push wrote no image into $out/image/oci"
# ... and as its push job: skopeo copies the layout to the registry, and the pushed digest is the built one.
skopeo copy --quiet --dest-tls-verify=false --digestfile "$out/app.digest" "oci:$out/image/oci:app" "docker://$app_repo:rehearsal"
[[ "$(cat "$out/app.digest")" == "$app_digest" ]] || fail "pushed $(cat "$out/app.digest"), built $app_digest"
echo "app: $out/image/oci:app = $app_repo@$app_digest"

say "the image config: user 1000:1000, entrypoint /knext serve --, cmd node server.js"
config="$(skopeo inspect --tls-verify=false --config "docker://$app_repo@$app_digest")"
user="$(jq -r '.config.User // ""' <<<"$config")"
[[ -n "$user" ]] || fail "the image config names no user: it would run as root"
[[ ! "$user" =~ ^(0|root)(:|$) ]] || fail "the image config's user is $user: root"
[[ "$user" == 1000:1000 ]] || fail "the image config's user is $user, not 1000:1000"
entrypoint="$(jq -c '.config.Entrypoint' <<<"$config")" cmd="$(jq -c '.config.Cmd' <<<"$config")"
[[ "$entrypoint" == '["/knext","serve","--"]' ]] || fail "the image's entrypoint is $entrypoint, not [\"/knext\",\"serve\",\"--\"]"
[[ "$cmd" == '["node","server.js"]' ]] || fail "the image's cmd is $cmd, not [\"node\",\"server.js\"]"
echo "user $user, entrypoint $entrypoint, cmd $cmd"

say "the image's files: /knext is knext's static binary; no shell, no package manager"
umoci unpack --image "$out/image/oci:app" "$out/bundle" >/dev/null
rootfs="$out/bundle/rootfs"
[[ -f "$rootfs/knext" ]] || fail "the image has no /knext"
readelf -lW "$rootfs/knext" >"$out/knext.readelf" 2>&1 || fail "/knext is not an ELF file: $(head -n 3 "$out/knext.readelf")"
! grep -q 'INTERP' "$out/knext.readelf" || fail "/knext asks for a program interpreter: it is not statically linked"
readelf -dW "$rootfs/knext" >>"$out/knext.readelf" 2>&1 || fail "readelf -d failed on /knext"
! grep -q '(NEEDED)' "$out/knext.readelf" || fail "/knext needs shared libraries: it is not statically linked"
umoci raw unpack --rootless --image "$layout:$tag" "$out/knext-rootfs" >"$out/knext-unpack.log" 2>&1 \
  || fail "umoci could not unpack knext's image $layout:$tag: $(cat "$out/knext-unpack.log")"
cmp -s "$rootfs/knext" "$out/knext-rootfs/knext" || fail "/knext differs from the binary of knext's image ($knext_built)"
found="$(find "$rootfs" \( -name sh -o -name bash -o -name dash -o -name ash -o -name zsh -o -name busybox \
  -o -name npm -o -name npx -o -name corepack -o -name yarn -o -name yarnpkg -o -name pnpm \
  -o -name apt -o -name apt-get -o -name dpkg -o -name apk \) -printf '/%P\n' | sort)"
[[ -z "$found" ]] || fail "a shell or package manager is in the final image: $(echo "$found" | tr '\n' ' ')"
echo "/knext: static, the same bytes as in knext's image; $(find "$rootfs" -type f | wc -l) files, none a shell or package manager"

say "run it: /knext serve -- node server.js as uid 1000, read-only root, the renderer's emptyDirs writable"
# The NextApp the scaffold wrote, with the digest just pushed: knext render says what the pod mounts.
sed -E "s|^(  image: ).*|\\1$app_repo@$app_digest|" "$app/nextapp.yaml" >"$out/nextapp.yaml"
target/release/knext render "$out/nextapp.yaml" -o "$out/rendered" >/dev/null
ksvc="$(find "$out/rendered" -name knative-service.yaml)"
[[ -f "$ksvc" ]] || fail "knext render wrote no Knative Service for the scaffolded nextapp.yaml"
for want in 'readOnlyRootFilesystem: true' 'runAsUser: 1000' 'runAsGroup: 1000'; do
  grep -qE "^ +$want$" "$ksvc" || fail "the rendered Knative Service lacks $want, which the image is built for"
done
mapfile -t writable < <(sed -nE 's/^ +- mountPath: (.*)$/\1/p' "$ksvc")
((${#writable[@]})) || fail "the rendered Knative Service mounts no emptyDir"
cfg="$out/bundle/config.json"
chmod 0755 "$out/bundle"
mkdir -p "$rootfs/proc" "$rootfs/dev"   # mountpoints a container runtime makes; a scratch image has none
mounts=() i=0
for p in "${writable[@]}"; do
  i=$((i + 1)) && mkdir -p "$out/emptydir/$i" "$rootfs$p" && chown 1000:1000 "$out/emptydir/$i"
  mounts+=(--bind "$out/emptydir/$i" "$p")
done
envs=()
while IFS= read -r kv; do envs+=(--setenv "${kv%%=*}" "${kv#*=}"); done < <(jq -r '.process.env[]' "$cfg")
mapfile -t argv < <(jq -r '.process.args[]' "$cfg")
[[ "${argv[*]}" == "/knext serve -- node server.js" ]] || fail "umoci's config runs ${argv[*]}"
# As a pod would: uid 1000 with no capabilities (setpriv, then an unprivileged user namespace), its own
# network (loopback only; probed through nsenter), pid, ipc and uts namespaces.
sandbox=(setpriv --reuid=1000 --regid=1000 --clear-groups
  bwrap --unshare-all --uid 1000 --gid 1000 --die-with-parent --new-session
  --ro-bind "$rootfs" / --proc /proc --dev /dev "${mounts[@]}"
  --clearenv "${envs[@]}" --chdir "$(jq -r .process.cwd "$cfg")")
# shellcheck disable=SC2016 # JavaScript template literals
probe='const fs = require("fs"); const bad = [];
if (process.getuid() !== 1000 || process.getgid() !== 1000) bad.push(`runs as ${process.getuid()}:${process.getgid()}`);
for (const f of ["/probe", "/app/probe", "/app/.next/probe", "/etc/probe"]) {
  try { fs.writeFileSync(f, "x"); bad.push(`${f} is writable`); } catch (e) { if (e.code !== "EROFS") bad.push(`${f}: ${e.code}`); }
}
for (const d of process.argv.slice(1)) {
  try { fs.writeFileSync(`${d}/probe`, "x"); fs.unlinkSync(`${d}/probe`); } catch (e) { bad.push(`${d} is not writable: ${e.code}`); }
}
if (bad.length) { console.error(bad.join("; ")); process.exit(1); }'
"${sandbox[@]}" /usr/local/bin/node -e "$probe" "${writable[@]}" \
  || fail "the sandbox is not what a pod gets (uid 1000, read-only root, writable emptyDirs ${writable[*]})"
echo "uid 1000:1000; the root read-only; writable: ${writable[*]}"
"${sandbox[@]}" --as-pid-1 --info-fd 3 "${argv[@]}" 3>"$out/sandbox.json" >"$out/serve.log" 2>&1 &
run_pid=$!
for _ in $(seq 100); do jq -e '."child-pid"' "$out/sandbox.json" >/dev/null 2>&1 && break; sleep 0.1; done
child="$(jq -r '."child-pid"' "$out/sandbox.json" 2>/dev/null)" || fail "the sandbox did not start: $(cat "$out/serve.log")"
http() { nsenter --target "$child" --net -- curl -sS --max-time 10 "$@"; }
for _ in $(seq 300); do http -fo /dev/null http://127.0.0.1:8080/ 2>/dev/null && break; sleep 0.1; done
page="$(http -f http://127.0.0.1:8080/)" || fail "GET / through knext serve failed: $(tail -n 20 "$out/serve.log")"
grep -q 'knext test app' <<<"$page" || fail "GET / answered without the app's page text (knext test app): ${page:0:300}"
echo "GET / through knext serve: the app's page ($((SECONDS - step_start)) s into this step)"
status="$(http -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' \
  --data '{"tags":["any"]}' http://127.0.0.1:8080/api/cache/invalidate)"
[[ "$status" == 401 ]] || fail "POST /api/cache/invalidate without a token answered $status, not 401"
echo "POST /api/cache/invalidate without a token: 401"
kill -TERM "$child"
for _ in $(seq 300); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$run_pid" 2>/dev/null && fail "knext serve still runs 30 s after SIGTERM: $(tail -n 5 "$out/serve.log")"
rc=0 && wait "$run_pid" || rc=$?
run_pid=""
((rc == 0)) || fail "knext serve exited $rc after SIGTERM, not 0: $(tail -n 5 "$out/serve.log")"
echo "SIGTERM: exit 0 ($(tail -n 1 "$out/serve.log" | cut -c1-160))"

say "SBOM: the app's .knext/sbom.sh (knext's scripts/sbom.sh, as the image workflow runs it): knext's crates and the app's npm packages"
sbom="$out/sbom.spdx.json"
(cd "$app" && SBOM_SUPPLIER="Organization: rehearsal" .knext/sbom.sh generate "$out/image/oci:app" "$app_repo" "$sbom")
(cd "$app" && .knext/sbom.sh validate "$sbom" && .knext/sbom.sh npm "$sbom" package-lock.json \
  && .knext/sbom.sh scanner "$sbom" "$out/image/oci")
[[ "$(cd "$app" && .knext/sbom.sh subject "$sbom")" == "$app_digest" ]] || fail "the SBOM describes another image than $app_digest"
purls="$(jq -r '.packages[].externalRefs[]? | select(.referenceType == "purl") | .referenceLocator' "$sbom")"
crates="$(grep -c '^pkg:cargo/' <<<"$purls" || true)"
grep -q '^pkg:cargo/knext@' <<<"$purls" || fail "the SBOM lists no pkg:cargo/knext (cargo-auditable's data in /knext)"
grep -q '^pkg:cargo/tokio@' <<<"$purls" || fail "the SBOM lists no pkg:cargo/tokio"
((crates > 200)) || fail "the SBOM lists $crates crates, knext links more than 200"
for pkg in next react; do
  version="$(jq -r --arg p "node_modules/$pkg" '.packages[$p].version // empty' tests/nextjs-app/package-lock.json)"
  [[ -n "$version" ]] || fail "tests/nextjs-app/package-lock.json pins no $pkg"
  grep -qx "pkg:npm/$pkg@$version" <<<"$purls" || fail "the SBOM lists no pkg:npm/$pkg@$version (the app's lockfile)"
done
echo "$crates crates, $(grep -c '^pkg:npm/' <<<"$purls" || true) npm packages; knext, tokio, next and react among them"

say "the SBOM attached to the pushed digest as an OCI referrer (.knext/oci-sbom.sh) and read back"
(cd "$app" && .knext/oci-sbom.sh attach "$app_repo@$app_digest" "$sbom" && .knext/oci-sbom.sh fetch "$app_repo@$app_digest" "$out/sbom.read-back.json")
cmp -s "$sbom" "$out/sbom.read-back.json" || fail "the SBOM read back from $app_repo@$app_digest differs from the one attached"
echo "attached to and read back from $app_repo@$app_digest"

say "vulnerability gate (Trivy), keyless signing and attestation: NOT RUN"
echo "NOT RUN: Trivy's database and Sigstore (GitHub's OIDC token, Fulcio, Rekor) cannot be reached from"
echo "this machine; the image workflow runs them. Nothing here counts them as passed."
echo
echo "app image rehearsal passed: $app_repo@$app_digest (in $out/image/oci:app)"
