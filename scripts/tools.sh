#!/usr/bin/env bash
# Installs the pinned release tools and prints the directory that holds them (last line of stdout):
#   - the Python ones of scripts/tools-requirements.txt (syft, pyspdxtools, ntia-checker, actionlint,
#     zizmor, trivy) into the venv target/tools, rebuilt only when that file changes;
#   - cargo-auditable (CARGO_AUDITABLE_VERSION below) with cargo install --locked, unless that
#     version is already installed.
# Usage: PATH="$(scripts/tools.sh [all|python|cargo] | tail -n 1):$PATH"
#   all (default): both; python: only the venv; cargo: only cargo-auditable (prints cargo's bin dir).
# Needs: python3 with venv (all, python), cargo. Reaches PyPI and crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_AUDITABLE_VERSION=0.7.7

mode="${1:-all}"
[[ "$mode" =~ ^(all|python|cargo)$ ]] || { echo "usage: $0 [all|python|cargo]" >&2; exit 2; }
venv=target/tools
req=scripts/tools-requirements.txt
stamp="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ "$mode" != cargo && "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --requirement "$req" >&2
  echo "$stamp" >"$venv/.stamp"
fi
if [[ "$mode" != python ]] && ! cargo install --list | grep -qx "cargo-auditable v$CARGO_AUDITABLE_VERSION:"; then
  cargo install --locked --quiet --version "$CARGO_AUDITABLE_VERSION" cargo-auditable >&2
fi
if [[ "$mode" == cargo ]]; then echo "${CARGO_HOME:-$HOME/.cargo}/bin"; else echo "$PWD/$venv/bin"; fi
