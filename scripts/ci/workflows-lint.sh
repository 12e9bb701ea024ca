#!/usr/bin/env bash
# Lints the GitHub workflows and the scripts they run: actionlint (with shellcheck on every run:
# block), zizmor (pedantic), shellcheck; knext's own, and an app's image workflow as `knext
# scaffold` writes it, with hadolint on its Dockerfile. Needs the tools of scripts/tools.sh on PATH, shellcheck, and cargo (it runs
# the release build of knext).
set -euo pipefail
cd "$(dirname "$0")/../.."
# actionlint runs shellcheck on every run: block. zizmor's pedantic persona: the one finding it would
# report is ignored inline, with its reason, in templates/workflows/release.yml.j2.
actionlint
zizmor --offline --persona pedantic .github/workflows
shellcheck .ci/run scripts/*.sh scripts/ci/*.sh
# An app's image workflow, as `knext scaffold` writes it into a throwaway app.
app="$(mktemp -d)"
trap 'rm -rf "$app"' EXIT
printf '{"name": "shop", "repository": "github:acme/shop", "scripts": {"build": "next build"}}\n' >"$app/package.json"
printf '{"name": "shop", "lockfileVersion": 3, "packages": {"": {"name": "shop"}}}\n' >"$app/package-lock.json"
cargo run --locked --release --quiet -- scaffold "$app" >/dev/null
(cd "$app" && actionlint .github/workflows/knext-image.yml && zizmor --offline --persona pedantic .github/workflows)
# ... and its Dockerfile (scripts/app-image-local.sh also builds it, and checks the pinned ARG defaults
# hadolint cannot resolve).
hadolint --no-color "$app/Dockerfile"
