#!/usr/bin/env bash
# Installs the pinned tools the test suite runs and prints the directory that holds them (last line of
# stdout): those of scripts/test-requirements.txt (moto_server, the S3-compatible server the operator's
# cleanup tests run on loopback) into the venv target/test-tools, from scripts/test-requirements.lock:
# every package, dependencies included, pinned by version and sha256 (pip --require-hashes); rebuilt
# only when the lock changes. After editing the .txt, regenerate the lock with pip-tools:
#   pip-compile --generate-hashes --allow-unsafe --no-emit-find-links --strip-extras \
#     --output-file=scripts/test-requirements.lock scripts/test-requirements.txt
# Usage: PATH="$(scripts/test-tools.sh | tail -n 1):$PATH" cargo test
# Needs: python3 with venv. Reaches PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/test-tools
req=scripts/test-requirements.txt
lock=scripts/test-requirements.lock
# The lock must hold exactly the pins of the .txt (extras dropped: pip-compile --strip-extras).
while read -r pin; do
  grep -qx "${pin/\[*\]/} \\\\" "$lock" || { echo "$lock does not pin $pin: regenerate it (see the top of $0)" >&2; exit 1; }
done < <(sed -E 's/[[:space:]]*#.*//' "$req" | grep .)
stamp="$(sha256sum "$lock" | cut -d' ' -f1)"
if [[ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: \
    --requirement "$lock" >&2
  echo "$stamp" >"$venv/.stamp"
fi
echo "$PWD/$venv/bin"
