#!/usr/bin/env bash
# The SBOM of an image, one piece of the release pipeline (scripts/release-local.sh and
# .github/workflows/release.yml run the same commands):
#
#   scripts/sbom.sh generate LAYOUT:TAG NAME OUT.json
#       syft (pinned in scripts/tools-requirements.txt) scans the OCI image layout LAYOUT, image TAG,
#       into SPDX 2.3 JSON: every crate cargo-auditable embedded in a binary (name, version,
#       pkg:cargo purl) and every regular file of the image with its SHA-1 (SPDX 2.3 requires it) and
#       SHA-256 (syft also lists the directories, with an all-zero SHA-1: dropped). NAME (the image repository)
#       names the document's root package; its version is the image manifest digest, as syft reads
#       it. Then fills in the SPDX `supplier` ("the actual distribution source") that syft leaves as
#       NOASSERTION, from `cargo metadata`: crates.io for crates.io crates, the crate's git or
#       registry source otherwise, and "Organization: kn-next" for knext itself and the image.
#   scripts/sbom.sh validate OUT.json
#       pyspdxtools parses and validates it; ntia-checker requires the NTIA minimum elements.
#   scripts/sbom.sh crates OUT.json
#       Compares its crates with cargo's: every crate linked into the binary (`cargo tree -e
#       normal,no-proc-macro` for the musl target) must be listed, and every listed crate must be
#       compiled for that binary (`cargo tree -e normal`: also the proc macros and their
#       dependencies, which cargo-auditable records when another path reaches them).
#   scripts/sbom.sh scanner OUT.json LAYOUT
#       Lists the image's packages with Trivy (the vulnerability gate's scanner; no database needed for
#       an inventory) and requires the same crates as the SBOM: the gate sees every crate listed.
#   scripts/sbom.sh subject OUT.json
#       Prints the image digest the SBOM describes (its root CONTAINER package).
#
# Needs: the tools of scripts/tools.sh on PATH, jq, cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
supplier="Organization: kn-next"
die() { echo "sbom.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 generate LAYOUT:TAG NAME OUT.json | validate OUT.json | crates OUT.json | scanner OUT.json LAYOUT | subject OUT.json" >&2; exit 2; }

# The image digest of the document's root package (syft: primaryPackagePurpose CONTAINER, version =
# manifest digest).
subject() {
  jq -er '[.packages[] | select(.primaryPackagePurpose == "CONTAINER")] | if length == 1 then .[0].versionInfo else error("want one CONTAINER package, found \(length)") end' "$1"
}

# jq: a pkg:cargo purl as name@version (purl-decoded: 0.9.34%2Bdeprecated → +deprecated); other
# purls give nothing. The one reading of a crate purl, for the SBOM, its suppliers and Trivy's list.
CRATE='def crate: select(startswith("pkg:cargo/")) | ltrimstr("pkg:cargo/") | split("?")[0] | gsub("%2B"; "+");'

# The crates of an SPDX SBOM.
sbom_crates() {
  jq -r "$CRATE"' .packages[].externalRefs[]? | select(.referenceType == "purl") | .referenceLocator | crate' "$1" | sort -u
}

# name@version of the crates `cargo tree` lists for the knext binary on the musl target, with EDGES.
cargo_crates() {
  cargo tree --locked --quiet -e "$1" --target "$target" --prefix none --no-dedupe -f '{p}' \
    | awk 'NF { v = $2; sub(/^v/, "", v); print $1 "@" v }' | sort -u
}

case "${1:-}" in
  generate)
    [[ $# == 4 ]] || usage
    layout="${2%:*}" tag="${2##*:}" name="$3" out="$4"
    [[ -d "$layout" && "$2" == *:* ]] || die "$2: want OCI_LAYOUT_DIR:TAG"
    # One image at a time: syft's oci-dir source reads the layout's only manifest.
    [[ "$(jq '.manifests | length' "$layout/index.json")" == 1 ]] || die "$layout holds more than one image"
    jq -e --arg t "$tag" '.manifests[0].annotations["org.opencontainers.image.ref.name"] == $t' "$layout/index.json" >/dev/null \
      || die "$layout has no image tagged $tag"
    tmp="$(mktemp)"
    trap 'rm -f "$tmp"' EXIT
    SYFT_CHECK_FOR_APP_UPDATE=false SYFT_FILE_METADATA_SELECTION=all SYFT_FILE_METADATA_DIGESTS=sha1,sha256 \
      syft scan "oci-dir:$layout" --source-name "$name" --output "spdx-json@2.3=$tmp" --quiet
    sources="$(cargo metadata --locked --format-version 1 --filter-platform "$target" \
      | jq -c '[.packages[] | {key: "\(.name)@\(.version)", value: .source}] | from_entries')"
    jq --argjson sources "$sources" --arg own "$supplier" "$CRATE"'
      ([.files[]? | select(any(.checksums[]; .algorithm == "SHA1" and (.checksumValue | test("^0+$")))) | .SPDXID]) as $dirs
      | .files |= map(select(.SPDXID as $id | $dirs | index($id) | not))
      | .relationships |= map(select([.spdxElementId, .relatedSpdxElement] - $dirs | length == 2))
      |
      def origin($src):
        if $src == null then $own
        elif $src == "registry+https://github.com/rust-lang/crates.io-index" or ($src | startswith("sparse+https://index.crates.io")) then "Organization: crates.io"
        else "Organization: " + ($src | sub("^[a-z]+\\+"; "") | sub("[?#].*$"; "")) end;
      .packages |= map(
        if .primaryPackagePurpose == "CONTAINER" then .supplier = $own
        else ([.externalRefs[]? | select(.referenceType == "purl") | .referenceLocator | crate][0]) as $key
          | if $key != null and ($sources | has($key)) then .supplier = origin($sources[$key]) else . end
        end)' "$tmp" >"$out.tmp"
    mv "$out.tmp" "$out"
    echo "$out: $(jq '.packages | length' "$out") packages ($(sbom_crates "$out" | wc -l) crates), $(jq '.files | length' "$out") files, image $(subject "$out")" >&2
    ;;
  validate)
    [[ $# == 2 ]] || usage
    pyspdxtools --infile "$2" || die "$2: pyspdxtools found it invalid"
    echo "$2: pyspdxtools: valid SPDX $(jq -r .spdxVersion "$2")"
    report="$(ntia-checker --output json "$2")"
    jq -r '"ntia-checker: NTIA minimum elements: " + (if .isNtiaConformant then "all present" else "MISSING" end)
           + " (\(.totalNumberComponents) components)"' <<<"$report"
    jq -e '.isNtiaConformant == true' <<<"$report" >/dev/null || { ntia-checker "$2" >&2; die "$2 lacks NTIA minimum elements"; }
    ;;
  crates)
    [[ $# == 2 ]] || usage
    listed="$(sbom_crates "$2")"
    linked="$(cargo_crates normal,no-proc-macro)"
    compiled="$(cargo_crates normal)"
    missing="$(comm -13 <(echo "$listed") <(echo "$linked"))"
    extra="$(comm -23 <(echo "$listed") <(echo "$compiled"))"
    [[ -z "$missing" ]] || die "crates linked into the binary but missing from $2: $(tr "\n" " " <<<"$missing")"
    [[ -z "$extra" ]] || die "crates in $2 that cargo does not compile for the binary: $(tr "\n" " " <<<"$extra")"
    macros="$(comm -23 <(echo "$listed") <(echo "$linked") | wc -l)"
    echo "$2: all $(wc -l <<<"$linked") crates linked into knext are listed, with versions; the other $macros listed are its compile-time proc macros and their dependencies; none unknown to cargo"
    ;;
  scanner)
    [[ $# == 3 && -d "$3" ]] || usage
    seen="$(trivy image --quiet --input "$3" --format cyclonedx --skip-version-check --disable-telemetry \
      --cache-dir target/trivy-cache | jq -r "$CRATE"' .components[]?.purl // empty | crate' | sort -u)"
    listed="$(sbom_crates "$2")"
    [[ "$seen" == "$listed" ]] || die "Trivy and $2 disagree on the crates of $3: $(diff <(echo "$listed") <(echo "$seen") | grep '^[<>]' | tr '\n' ' ')"
    echo "$2: Trivy, the vulnerability gate's scanner, reads the same $(wc -l <<<"$seen") crates from the image"
    ;;
  subject)
    [[ $# == 2 ]] || usage
    subject "$2"
    ;;
  *) usage ;;
esac
