#!/usr/bin/env bash
# Format check and clippy with warnings as errors, in every feature configuration users build: all
# targets with the defaults, and the library without the operator (users' build scripts depend on
# knext that way), with only `serve`, with only `operator`. build.rs runs here too.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --lib --no-default-features -- -D warnings
cargo clippy --locked --lib --no-default-features --features serve -- -D warnings
cargo clippy --locked --lib --no-default-features --features operator -- -D warnings
