#!/usr/bin/env bash
# Builds knext's operator image without a Docker engine, as an OCI image layout:
#   a static (musl) knext binary at /knext, built with `cargo auditable` so that its exact crate set
#   is embedded in it (section .dep-v0) for SBOM and vulnerability scanners; /etc/passwd and
#   /etc/group naming the nonroot user (65532, as distroless "nonroot"); USER 65532:65532,
#   ENTRYPOINT ["/knext"], CMD ["operator"]; no base image, no shell. File times, layer and config
#   timestamps come from SOURCE_DATE_EPOCH (default: the last commit's time), so the same binary
#   gives the same digest.
#
# Usage: scripts/operator-image.sh [OUT_DIR]     (default target/operator-image)
#   Writes OUT_DIR/oci (tag "operator") and prints the image manifest digest (sha256:...).
#   Push it with: skopeo copy oci:OUT_DIR/oci:operator docker://REGISTRY/REPO:TAG
#   Pin it with:  scripts/operator-image.sh --pin REGISTRY/REPO@sha256:...   (writes Cargo.toml)
# Needs: rustup (musl target), cargo-auditable (scripts/tools.sh installs the pinned version), musl-tools,
#   umoci, jq (Debian packages: musl-tools umoci jq).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--pin" ]]; then
  ref="${2:?usage: $0 --pin REGISTRY/REPO@sha256:<64 hex>}"
  [[ "$ref" =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]] || { echo "not a digest-pinned reference: $ref" >&2; exit 2; }
  sed -i -E "s|^operator-image = \".*\"$|operator-image = \"$ref\"|" Cargo.toml
  grep -q "^operator-image = \"$ref\"$" Cargo.toml || { echo "Cargo.toml has no operator-image line" >&2; exit 1; }
  echo "Cargo.toml now pins $ref; run cargo build to regenerate generated/install.yaml"
  exit 0
fi

out="${1:-target/operator-image}"
target=x86_64-unknown-linux-musl
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
for tool in umoci jq musl-gcc; do
  command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install umoci jq musl-tools)" >&2; exit 2; }
done
command -v cargo-auditable >/dev/null || { echo "cargo-auditable is missing (scripts/tools.sh installs it)" >&2; exit 2; }
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

# Paths in panic messages and debug info must not depend on where the build ran.
export RUSTFLAGS="--remap-path-prefix=$PWD=/knext --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
cargo auditable build --release --locked --target "$target" --bin knext >&2
bin="target/$target/release/knext"
objdump -h "$bin" | grep -q '\.dep-v0' || { echo "$bin carries no cargo-auditable dependency data" >&2; exit 1; }
file "$bin" 2>/dev/null | grep -q 'static' || ldd "$bin" 2>&1 | grep -qE 'not a dynamic|statically linked' || {
  echo "$bin is not statically linked" >&2; exit 1; }

rm -rf "$out" && mkdir -p "$out"
layout="$out/oci" bundle="$out/bundle"
umoci init --layout "$layout"
umoci new --image "$layout:operator"
umoci unpack --rootless --image "$layout:operator" "$bundle" >/dev/null
rootfs="$bundle/rootfs"
install -m 0555 "$bin" "$rootfs/knext"
mkdir -p "$rootfs/etc"
printf 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'nonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
find "$rootfs" -exec touch -h -d "@$epoch" {} +
umoci repack --image "$layout:operator" --history.created "$created" --history.created_by "scripts/operator-image.sh" "$bundle" >/dev/null
umoci config --image "$layout:operator" --created "$created" --history.created "$created" \
  --history.created_by "scripts/operator-image.sh config" \
  --author "knext" --os linux --architecture amd64 \
  --config.user 65532:65532 --config.entrypoint /knext --config.cmd operator --config.workingdir / \
  --clear config.env --config.env "PATH=/" \
  --config.label "org.opencontainers.image.source=https://github.com/kn-next/knext" \
  --config.label "org.opencontainers.image.version=$(cargo pkgid | sed 's/.*[#@]//')" >/dev/null
umoci gc --layout "$layout"
rm -rf "$bundle"
jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "operator") | .digest' "$layout/index.json"
