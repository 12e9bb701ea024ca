#!/usr/bin/env bash
# The snapshot check: every snapshot matches and no .snap file is orphaned
# (cargo insta test --check --unreferenced=reject). Every snapshot assertion is a library test.
# Installs the pinned cargo-insta when another version (or none) is on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
INSTA_VERSION=1.49.0
[[ "$(cargo insta --version 2>/dev/null)" == "cargo-insta $INSTA_VERSION" ]] \
  || cargo install cargo-insta --locked --version "$INSTA_VERSION" --quiet
cargo insta test --check --unreferenced=reject --lib
