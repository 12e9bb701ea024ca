#!/usr/bin/env bash
# Prints, comma-separated, the validator checks docs/conformance.md skips, each with its reason there:
#   conformance-skips.sh checkov   the checkov table (rendered apps)
#   conformance-skips.sh apps      the Trivy rows that apply to the rendered apps
#   conformance-skips.sh bundle    the Trivy rows that apply to the install bundle
# A skip cannot be added without a reason in that file.
set -euo pipefail
cd "$(dirname "$0")/../.."
case "${1:-}" in
  checkov) prefix=CKV scope='' ;;
  apps | bundle) prefix=KSV scope="[^|]*$1" ;;
  *) echo "usage: $0 checkov|apps|bundle" >&2; exit 2 ;;
esac
{ grep -E "^\| \`${prefix}[-_0-9A-Z]*\` \|$scope" docs/conformance.md || true; } | cut -d'|' -f2 \
  | grep -oE "${prefix}[-_0-9A-Z]+" | paste -sd, -
