#!/usr/bin/env bash
# Lints the GitHub workflows and the scripts they run: actionlint (with shellcheck on every run:
# block), zizmor (pedantic), shellcheck. Needs the tools of scripts/tools.sh on PATH, and shellcheck.
set -euo pipefail
cd "$(dirname "$0")/../.."
# actionlint runs shellcheck on every run: block. zizmor's pedantic persona: the one finding it would
# report is ignored inline, with its reason, in templates/workflows/release.yml.j2.
actionlint
zizmor --offline --persona pedantic .github/workflows
shellcheck .ci/run scripts/*.sh scripts/ci/*.sh
