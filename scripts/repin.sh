#!/usr/bin/env bash
# Re-pins knext's operator image in this checkout: writes REGISTRY/REPO@sha256:DIGEST into Cargo.toml
# (scripts/operator-image.sh --pin), regenerates generated/install.yaml with cargo build, and checks
# that exactly those two files changed and that the bundle now names that image. The release
# workflow's repin job runs it and opens the pull request; scripts/release-local.sh runs it in a
# scratch worktree.
# Usage: scripts/repin.sh REGISTRY/REPO@sha256:DIGEST      (on a checkout without local changes)
set -euo pipefail
cd "$(dirname "$0")/.."
ref="${1:?usage: $0 REGISTRY/REPO@sha256:DIGEST}"
fail() { echo "repin.sh: $*" >&2; exit 1; }
status() { git status --porcelain --untracked-files=all -- . ':!target'; }
[[ -z "$(status)" ]] || fail "the checkout has local changes: $(status)"
scripts/operator-image.sh --pin "$ref"
CI=false cargo build --locked --quiet   # build.rs writes generated/ (with CI set it only compares)
changed="$(status)"
[[ "$changed" == $' M Cargo.toml\n M generated/install.yaml' ]] || fail "want exactly Cargo.toml and generated/install.yaml changed, got: $changed"
images="$(grep -E '^ +(image: |- --knext-image=)' generated/install.yaml | sed -E 's/^ +(image: |- --knext-image=)//' | sort -u)"
[[ "$images" == "$ref" ]] || fail "generated/install.yaml names $images, not $ref"
echo "re-pinned: Cargo.toml and generated/install.yaml name $ref; nothing else changed"
