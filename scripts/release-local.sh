#!/usr/bin/env bash
# A local rehearsal of .github/workflows/release.yml on loopback: the same scripts in the same order,
# and every assertion the workflow makes, minus the steps that need what this machine cannot reach.
#
#   auditable static binary → OCI layout (built twice: one digest) → SBOM (scripts/sbom.sh) →
#   pyspdxtools, ntia-checker, the crate cross-checks (cargo's, Trivy's) → [vulnerability gate: NOT
#   RUN, said plainly] →
#   push to a loopback docker-registry → attach the SBOM to the pushed digest as an OCI referrer and
#   read it back (scripts/oci-sbom.sh) → pull the image, run its own /knext install --image
#   127.0.0.1:PORT/kn-next/knext@DIGEST → conformance of that bundle (../shared/tools/conformance.sh)
#   → re-pin in a scratch worktree (scripts/repin.sh: Cargo.toml and generated/install.yaml, nothing
#   else) → [keyless signing, attestation, verification, the pull request: NOT RUN, said plainly].
#
# Digests are compared end to end: built = built again = pushed = the SBOM's subject = the SBOM
# referrer's subject = the bundle's image.
#
# Usage: scripts/release-local.sh [OUT_DIR]     (default target/release-local)
# Env:   KNEXT_RELEASE_PORT (default 5000): the loopback registry's port.
#        TRIVY_SKIP: Trivy checks to skip in the bundle's conformance (docs/conformance.md's bundle rows).
#        REQUIRE_CONFORMANCE=1: fail when ../shared/tools/conformance.sh is missing (CI); otherwise
#        that step is skipped with a message.
# Needs: what scripts/operator-image.sh needs, docker-registry, skopeo, curl, jq, python3 with venv.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/release-local}"
port="${KNEXT_RELEASE_PORT:-5000}"
repo="127.0.0.1:$port/kn-next/knext"
say() { printf '\n--> %s\n' "$*"; }
fail() { echo "release-local: $*" >&2; exit 1; }

say "pinned tools (scripts/tools.sh)"
PATH="$(scripts/tools.sh | tail -n 1):$PATH"
for tool in docker-registry skopeo umoci curl jq; do
  command -v "$tool" >/dev/null || fail "$tool is missing (Debian: apt-get install docker-registry skopeo umoci curl jq)"
done
rm -rf "$out" && mkdir -p "$out"

say "build: the auditable static binary in a reproducible OCI layout, twice"
built="$(scripts/operator-image.sh "$out/image" | tail -n 1)"
again="$(scripts/operator-image.sh "$out/image-again" 2>/dev/null | tail -n 1)"
[[ "$built" =~ ^sha256:[0-9a-f]{64}$ ]] || fail "no image digest: $built"
[[ "$again" == "$built" ]] || fail "two builds, two digests: $built, $again"
rm -rf "$out/image-again"
echo "built: $built (the same twice)"

say "SBOM: syft, SPDX 2.3; pyspdxtools, ntia-checker, the crate cross-checks (cargo tree, Trivy)"
sbom="$out/sbom.spdx.json"
scripts/sbom.sh generate "$out/image/oci:operator" ghcr.io/kn-next/knext "$sbom"
scripts/sbom.sh validate "$sbom"
scripts/sbom.sh crates "$sbom"
scripts/sbom.sh scanner "$sbom" "$out/image/oci"
subject="$(scripts/sbom.sh subject "$sbom")"
[[ "$subject" == "$built" ]] || fail "the SBOM describes $subject, the build is $built"
echo "the SBOM's subject: $subject"

say "vulnerability gate (Trivy, HIGH and CRITICAL): NOT RUN"
echo "NOT RUN: Trivy's vulnerability database (mirror.gcr.io/aquasec/trivy-db, ghcr.io/aquasecurity/trivy-db)"
echo "cannot be downloaded on this machine. The release workflow's scan job runs the gate, and its push job needs it to pass."
echo "Nothing here counts it as passed."

say "push to a loopback registry ($repo)"
mkdir -p "$out/registry"
cat >"$out/registry/config.yml" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $PWD/$out/registry/data
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$out/registry/config.yml" >"$out/registry/log.txt" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || fail "the registry did not start: $(cat "$out/registry/log.txt")"
skopeo copy --quiet --dest-tls-verify=false --digestfile "$out/pushed-digest" \
  "oci:$out/image/oci:operator" "docker://$repo:rehearsal"
pushed="$(cat "$out/pushed-digest")"
[[ "$pushed" == "$built" ]] || fail "pushed $pushed, built $built"
served="$(skopeo inspect --tls-verify=false "docker://$repo:rehearsal" | jq -r .Digest)"
[[ "$served" == "$built" ]] || fail "the registry serves $served for the tag, built $built"
echo "pushed: $pushed"

say "attach the SBOM to the pushed digest (OCI referrer) and read it back"
artifact="$(scripts/oci-sbom.sh attach "$repo@$pushed" "$sbom")"
found="$(scripts/oci-sbom.sh fetch "$repo@$pushed" "$out/sbom.read-back.json")"
[[ "$found" == "$artifact" ]] || fail "attached artifact $artifact, discovered $found"
cmp "$sbom" "$out/sbom.read-back.json" || fail "the SBOM read back differs from the one attached"
# The SBOM artifact's own digest has no SBOM referring to it: discovery must say so, not return another.
if scripts/oci-sbom.sh fetch "$repo@$artifact" "$out/none.json" 2>"$out/none.err"; then
  fail "an SBOM was found for $artifact, which has none"
fi
[[ ! -e "$out/none.json" ]] || fail "a failed fetch wrote $out/none.json"
echo "SBOM artifact $artifact, discovered from $pushed and read back: the same bytes"

say "pull the image by digest, run its /knext install --image $repo@$pushed"
skopeo copy --quiet --src-tls-verify=false "docker://$repo@$pushed" "oci:$out/pulled:operator"
umoci raw unpack --rootless --image "$out/pulled:operator" "$out/rootfs"
skopeo inspect --tls-verify=false --config "docker://$repo@$pushed" \
  | jq -e '.config.User == "65532:65532" and .config.Entrypoint == ["/knext"] and .os == "linux"' >/dev/null \
  || fail "the image config is not nonroot 65532 with entrypoint /knext"
"$out/rootfs/knext" install --image "$repo@$pushed" >"$out/install.yaml"
# The operator's image, and knext's own for the image-prewarm init container (--knext-image): the same.
images="$(grep -E '^ +(image: |- --knext-image=)' "$out/install.yaml" | sed -E 's/^ +(image: |- --knext-image=)//' | sort -u)"
[[ "$images" == "$repo@$built" ]] || fail "the bundle's images are not exactly $repo@$built: $images"
# The same bundle as the committed one but for the image.
unimaged() { tail -n +2 "$1" | sed -E 's/^( +image: | +- --knext-image=).*/\1IMAGE/'; }
diff <(unimaged generated/install.yaml) <(unimaged "$out/install.yaml") \
  || fail "the bundle differs from generated/install.yaml beyond the image"
echo "the bundle's image: $repo@$built"

say "conformance of that bundle"
if [[ -f ../shared/tools/conformance.sh ]]; then
  TRIVY_SKIP="${TRIVY_SKIP:-}" bash ../shared/tools/conformance.sh --trivy "$out/install.yaml"
elif [[ "${REQUIRE_CONFORMANCE:-}" == 1 ]]; then
  fail "../shared/tools/conformance.sh is missing"
else
  echo "SKIPPED: ../shared/tools/conformance.sh is not beside this checkout"
fi

say "re-pin (the release's last job, up to its pull request) in a scratch worktree of HEAD"
git worktree remove --force "$out/repin" 2>/dev/null || true
git worktree add --quiet --detach "$out/repin" HEAD
ln -s "$PWD/target" "$out/repin/target"   # Cargo gives the checkout the same build-script hash: no rebuild of dependencies
(cd "$out/repin" && scripts/repin.sh "$repo@$built")
git worktree remove --force "$out/repin"

say "keyless signing, SBOM attestation, verification: NOT RUN"
echo "NOT RUN: cosign's keyless signing needs GitHub's OIDC token and Sigstore's Fulcio and Rekor,"
echo "none reachable here. The release workflow's sign, attest and verify jobs run them."

kill $registry_pid && trap - EXIT
echo
echo "release rehearsal passed: built = pushed = SBOM subject = referrer subject = bundle image = $built"
