#!/usr/bin/env bash
# Scans the repository's committed files with Trivy's secret and misconfiguration scanners, offline,
# and fails on any finding. Accepted findings live in .trivyignore.yaml, each by id and exact path with
# its reason; any other finding, or the same id in another file, fails.
#
# Offline: no vulnerability database (that scanner is off), no check-bundle download (Trivy logs
# "Falling back to embedded checks" and uses the checks built into the pinned binary), no version
# check, no telemetry; a cache of its own under target/. The skipped directories are gitignored build
# output and installed dependencies, absent from a clean clone.
#
# The flags are spelled out rather than kept in a trivy.yaml: Trivy reads ./trivy.yaml from the working
# directory, so one at the repository root would also change every other Trivy run started there
# (../shared/tools/conformance.sh's among them).
#
# Usage: scripts/trivy-repo.sh      Needs: trivy on PATH (scripts/tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
skip=target,out,examples/user-crate/target,fuzz/target,fuzz/artifacts,fuzz/corpus,fuzz/coverage
skip+=,tests/nextjs-app/node_modules,tests/nextjs-app/.next
trivy fs --quiet --config /dev/null --scanners secret,misconfig \
  --skip-db-update --skip-check-update --skip-version-check --disable-telemetry \
  --cache-dir target/trivy-cache --skip-dirs "$skip" \
  --ignorefile .trivyignore.yaml --exit-code 1 --format table --table-mode detailed .
echo "trivy fs --scanners secret,misconfig: no findings beyond the $(grep -c '^  - id:' .trivyignore.yaml) accepted in .trivyignore.yaml"
