#!/usr/bin/env bash
# Every invalid fixture: `knext render` exits 1 or 2, names file:line:column, never panics, and writes
# nothing into an existing output directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --quiet --bin knext
mkdir -p out/untouched && echo keep > out/untouched/user.txt
for f in snapshots/inputs/invalid/*.yaml; do
  set +e
  ./target/release/knext render "$f" -o out/untouched 2>out/err.txt
  rc=$?
  set -e
  [[ $rc == 1 || $rc == 2 ]] || { echo "$f: exit $rc, want 1 or 2" >&2; cat out/err.txt; exit 1; }
  grep -qE "^$f:[0-9]+:[0-9]+: error" out/err.txt || { echo "$f: no file:line:column" >&2; cat out/err.txt; exit 1; }
  grep -q panicked out/err.txt && { echo "$f: panic" >&2; exit 1; }
done
[[ "$(find out/untouched -type f)" == out/untouched/user.txt ]] || { echo "invalid input wrote files" >&2; exit 1; }
