#!/usr/bin/env bash
# The build-time pin gate: an unpinned operator image (KNEXT_OPERATOR_IMAGE) or an unpinned example
# image fails `cargo build` with the gate's message, and the failed build writes nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
before="$(git status --porcelain --untracked-files=all)"
set +e
KNEXT_OPERATOR_IMAGE=ghcr.io/x/knext:latest cargo build --locked 2>out-gate.txt
rc=$?
set -e
[[ $rc != 0 ]] || { echo "cargo build passed with an unpinned operator image" >&2; exit 1; }
grep -F 'generated/install.yaml: Deployment knext-system/knext-operator: container "operator" (spec.template.spec.containers[0].image): image "ghcr.io/x/knext:latest" uses the mutable "latest" tag; pin it by digest' out-gate.txt \
  || { cat out-gate.txt; echo "the gate's message is missing" >&2; exit 1; }
cp examples/docs-site.yaml out-docs-site.yaml
trap 'mv -f out-docs-site.yaml examples/docs-site.yaml 2>/dev/null || true' EXIT
sed -i -E '0,/^  image: /s|^(  image: [^@]+)@sha256:[0-9a-f]{64}$|\1|' examples/docs-site.yaml
set +e
cargo build --locked 2>out-gate.txt
rc=$?
set -e
mv -f out-docs-site.yaml examples/docs-site.yaml && trap - EXIT
[[ $rc != 0 ]] || { echo "cargo build passed with an unpinned example image" >&2; exit 1; }
grep -E '^error: knext@[^:]+: examples/docs-site.yaml:[0-9]+:[0-9]+: error \[InvalidImage\]: spec.image: image "registry.example.com/web/docs" has no tag or digest' out-gate.txt \
  || { cat out-gate.txt; echo "the example's error is missing" >&2; exit 1; }
rm -f out-gate.txt
[[ "$(git status --porcelain --untracked-files=all)" == "$before" ]] || { git status --short; echo "a failed build wrote files" >&2; exit 1; }
cargo build --locked   # back to the committed state
