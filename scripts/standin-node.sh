#!/usr/bin/env bash
# Builds a stand-in for the official Node.js image (node:24-bookworm-slim, the scaffold's default) from this machine's own
# files, pulling nothing, and pushes it: the public base images cannot be pulled here, and the
# scaffolded Dockerfile takes its base through `--build-arg NODE_IMAGE=...`.
#
#   buildah from scratch → buildah mount → copy files → buildah config → commit (--timestamp 0) → push
#
# What the scaffolded Dockerfile relies on is where the official image has it: node at
# /usr/local/bin/node, npm and corepack under /usr/local/lib/node_modules (links in /usr/local/bin),
# the `node` user and group 1000:1000 with home /home/node, a merged /usr, /tmp 1777; /bin/sh (dash),
# coreutils, grep, bash and ldd (libc-bin) for its RUN lines (the runtime-root stage runs ldd on
# node); and the shared libraries of all of them (ldd on the host). node and npm are the machine's
# (`command -v node`, `npm root -g`), or NODE_BIN's. Where this machine's egress re-signs TLS
# (NODE_EXTRA_CA_CERTS set), that CA bundle goes into /etc/ssl/certs and NODE_EXTRA_CA_CERTS into the
# image config, or `npm ci` in the build stage fails with SELF_SIGNED_CERT_IN_CHAIN; the scaffold's
# final stage starts FROM scratch and inherits none of it.
#
# Usage: scripts/standin-node.sh STORAGE_DIR DEST
#   STORAGE_DIR: buildah's storage (vfs driver: STORAGE_DIR/root, STORAGE_DIR/runroot);
#   DEST: where to push, e.g. docker://127.0.0.1:5077/stand-in/node:24-bookworm-slim (plain HTTP).
#   Prints the pushed manifest digest (sha256:...) as the last line of stdout.
# Env:   NODE_BIN: the node binary to use (default: the one on PATH).
# Needs: a Debian host (dpkg -L finds the shell and its tools), buildah, node and npm, run as root.
set -euo pipefail
storage="${1:?usage: $0 STORAGE_DIR DEST}"
dest="${2:?usage: $0 STORAGE_DIR DEST}"
fail() { echo "standin-node: $*" >&2; exit 1; }
for tool in buildah dpkg ldd node npm; do
  command -v "$tool" >/dev/null || fail "$tool is missing (Debian: apt-get install buildah nodejs npm)"
done
B=(buildah --root "$storage/root" --runroot "$storage/runroot" --storage-driver vfs)

node_bin="$(readlink -f "${NODE_BIN:-$(command -v node)}")"
npm_dir="$(npm root -g)/npm"
[[ -f "$npm_dir/bin/npm-cli.js" && -d "$npm_dir/node_modules" ]] \
  || fail "$npm_dir is not a self-contained npm (npm's own package, as npm install -g npm or NodeSource's nodejs have it)"
corepack_dir="$(npm root -g)/corepack"

ctr="$("${B[@]}" from scratch)"
trap '"${B[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
root="$("${B[@]}" mount "$ctr")"

# The merged-/usr layout of Debian 12, as the official image has it.
mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64,local/bin,local/lib/node_modules} \
         "$root"/{etc,home/node,root,tmp,var/tmp,opt}
ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp" "$root/var/tmp"; chmod 0700 "$root/root"

install -m 0755 "$node_bin" "$root/usr/local/bin/node"
bins=("$node_bin")
while read -r f; do
  [[ -f "$f" && ! -L "$f" ]] || continue
  install -m 0755 "$f" "$root/usr/bin/${f##*/}"; bins+=("$f")
done < <(dpkg -L dash coreutils grep bash libc-bin | grep -E '^/(usr/)?s?bin/')
ln -sf dash "$root/usr/bin/sh"
# Their shared libraries, the loader in /usr/lib64 as on Debian.
while read -r lib; do
  case "$lib" in
    /lib64/*|/usr/lib64/*) install -m 0755 "$(readlink -f "$lib")" "$root/usr/lib64/${lib##*/}" ;;
    *)                     install -m 0644 "$(readlink -f "$lib")" "$root/usr/lib/x86_64-linux-gnu/${lib##*/}" ;;
  esac
done < <(for b in "${bins[@]}"; do ldd "$b" 2>/dev/null || true; done | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)

cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
if [[ -f "$corepack_dir/dist/corepack.js" ]]; then
  cp -a "$corepack_dir" "$root/usr/local/lib/node_modules/corepack"
  ln -s ../lib/node_modules/corepack/dist/corepack.js "$root/usr/local/bin/corepack"
fi

printf '%s\n' 'root:x:0:0:root:/root:/bin/bash' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' \
  'node:x:1000:1000::/home/node:/bin/bash' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'node:x:1000:' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chown 1000:1000 "$root/home/node"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
extra_env=()
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" ]]; then
  mkdir -p "$root/etc/ssl/certs"
  install -m 0644 "$NODE_EXTRA_CA_CERTS" "$root/etc/ssl/certs/ca-certificates.crt"
  extra_env=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi
"${B[@]}" umount "$ctr" >/dev/null

"${B[@]}" config --os linux --arch amd64 \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$("$node_bin" --version | tr -d v)" "${extra_env[@]}" --cmd node \
  --label org.opencontainers.image.description="stand-in for node:24-bookworm-slim (scripts/standin-node.sh)" "$ctr"
"${B[@]}" commit --quiet --format oci --timestamp 0 "$ctr" localhost/stand-in/node >/dev/null
"${B[@]}" push --quiet --tls-verify=false --digestfile "$storage/standin-node.digest" localhost/stand-in/node "$dest"
digest="$(cat "$storage/standin-node.digest")"
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "buildah push wrote no digest: $digest"
echo "$digest"
