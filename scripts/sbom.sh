#!/usr/bin/env bash
# The SBOM of an image, one piece of the image pipeline: knext's own release (scripts/release-local.sh,
# .github/workflows/release.yml) and an app's image (`knext scaffold` copies this file to the app's
# .knext/; its .github/workflows/knext-image.yml and scripts/app-image-local.sh run it):
#
#   sbom.sh generate LAYOUT:TAG NAME OUT.json
#       syft (pinned in tools-requirements.txt) scans the OCI image layout LAYOUT, image TAG, into SPDX
#       2.3 JSON: every crate cargo-auditable embedded in a binary (name, version, pkg:cargo purl),
#       every npm package whose package.json the image holds (pkg:npm), binaries syft recognises
#       (node: pkg:generic), and every regular file with its SHA-1 (SPDX 2.3 requires it) and SHA-256
#       (syft also lists the directories, with an all-zero SHA-1: dropped). NAME (the image
#       repository) names the document's root package; its version is the image manifest digest, as
#       syft reads it. Then fills in the SPDX `supplier` ("the actual distribution source") that syft
#       leaves as NOASSERTION:
#         - crates: from `cargo metadata` when run in knext's repository (crates.io, or the crate's git
#           or registry source); elsewhere crates.io, except knext itself;
#         - npm packages: the registry host package-lock.json resolved them from (a package vendored
#           inside another, like next/dist/compiled/*, takes its container's); the app itself and
#           linked packages: the image's own supplier;
#         - node: the OpenJS Foundation (nodejs.org);
#         - knext (its crate) "Organization: kn-next"; the image: $SBOM_SUPPLIER (default
#           "Organization: kn-next"; an app's workflow sets its GitHub owner).
#       A package none of these rules covers keeps NOASSERTION, and `validate` fails on it.
#   sbom.sh validate OUT.json
#       pyspdxtools parses and validates it; ntia-checker requires the NTIA minimum elements.
#   sbom.sh crates OUT.json                      (knext's repository only: needs cargo)
#       Compares its crates with cargo's: every crate linked into the binary (`cargo tree -e
#       normal,no-proc-macro` for the musl target) must be listed, and every listed crate must be
#       compiled for that binary (`cargo tree -e normal`: also the proc macros and their
#       dependencies, which cargo-auditable records when another path reaches them).
#   sbom.sh npm OUT.json package-lock.json
#       Compares its npm packages with the app's lock: `next` is listed at the lock's version, every
#       package installed under node_modules has the lock's version there, and none is unknown to it
#       (packages vendored inside another, like next/dist/compiled/*, are counted, not compared).
#   sbom.sh scanner OUT.json LAYOUT
#       Lists the image's packages with Trivy (the vulnerability gate's scanner; no database needed for
#       an inventory) and requires the same crates as the SBOM, and every npm package Trivy sees to be
#       listed: the gate sees nothing the SBOM does not.
#   sbom.sh subject OUT.json
#       Prints the image digest the SBOM describes (its root CONTAINER package).
#
# Run from the repository root or anywhere: it works from the directory above its own (knext's
# repository, or the app's). Needs: the tools of tools.sh on PATH, jq; cargo for `crates`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
supplier="${SBOM_SUPPLIER:-Organization: kn-next}"
die() { echo "sbom.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 generate LAYOUT:TAG NAME OUT.json | validate OUT.json | crates OUT.json | npm OUT.json package-lock.json | scanner OUT.json LAYOUT | subject OUT.json" >&2; exit 2; }

# The image digest of the document's root package (syft: primaryPackagePurpose CONTAINER, version =
# manifest digest).
subject() {
  jq -er '[.packages[] | select(.primaryPackagePurpose == "CONTAINER")] | if length == 1 then .[0].versionInfo else error("want one CONTAINER package, found \(length)") end' "$1"
}

# jq: a pkg:cargo purl as name@version (purl-decoded: 0.9.34%2Bdeprecated → +deprecated); other
# purls give nothing. The one reading of a crate purl, for the SBOM, its suppliers and Trivy's list.
CRATE='def crate: select(startswith("pkg:cargo/")) | ltrimstr("pkg:cargo/") | split("?")[0] | gsub("%2B"; "+");'

# jq: where syft found an npm package (its sourceInfo ends with the package.json path), and that path
# as package-lock.json keys it: "node_modules/a/node_modules/b" for /app/node_modules/a/node_modules/b,
# "" for the app's own package.json (the directory holding the image's top node_modules).
NPM='def manifest: .sourceInfo // "" | capture(": (?<p>/[^ ]*package\\.json)$").p;
     def lockkey: manifest | if test("/node_modules/") then sub("^.*?/node_modules/"; "node_modules/") | sub("/package\\.json$"; "") else "" end;
     def npm: [.externalRefs[]? | select(.referenceType == "purl") | .referenceLocator | select(startswith("pkg:npm/"))] | length > 0;'

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
    # Crate sources from cargo in knext's repository, npm sources from package-lock.json (an app's).
    sources='{}' lock='{}'
    if grep -qx 'name = "knext"' Cargo.toml 2>/dev/null; then
      sources="$(cargo metadata --locked --format-version 1 --filter-platform "$target" \
        | jq -c '[.packages[] | {key: "\(.name)@\(.version)", value: .source}] | from_entries')"
    fi
    [[ ! -f package-lock.json ]] || lock="$(jq -c '.packages // {}' package-lock.json)"
    # A lock entry without `resolved` comes from the registry npm is configured with (npm's default
    # unless NPM_CONFIG_REGISTRY or the repository's .npmrc says otherwise).
    registry="${NPM_CONFIG_REGISTRY:-}"
    if [[ -z "$registry" && -f .npmrc ]]; then
      registry="$(sed -n 's/^[[:space:]]*registry[[:space:]]*=[[:space:]]*//p' .npmrc | tail -n 1)"
    fi
    registry="${registry:-https://registry.npmjs.org/}"
    jq --argjson sources "$sources" --argjson lock "$lock" --arg own "$supplier" --arg registry "$registry" "$CRATE $NPM"'
      ([.files[]? | select(any(.checksums[]; .algorithm == "SHA1" and (.checksumValue | test("^0+$")))) | .SPDXID]) as $dirs
      | .files |= map(select(.SPDXID as $id | $dirs | index($id) | not))
      | .relationships |= map(select([.spdxElementId, .relatedSpdxElement] - $dirs | length == 2))
      # syft copies a package.json "repository" shorthand (vercel/next.js) as the download location,
      # which SPDX does not allow: NOASSERTION instead of a guessed URL.
      | .packages |= map(if (.downloadLocation // "NOASSERTION") | test("^(NONE|NOASSERTION|[a-z][a-z0-9+.-]*://|git\\+)") then . else .downloadLocation = "NOASSERTION" end)
      |
      def origin($src):
        if $src == null then $own
        elif $src == "registry+https://github.com/rust-lang/crates.io-index" or ($src | startswith("sparse+https://index.crates.io")) then "Organization: crates.io"
        else "Organization: " + ($src | sub("^[a-z]+\\+"; "") | sub("[?#].*$"; "")) end;
      # The lock entry holding an npm package: its own key, or the nearest enclosing one (vendored).
      def holder($key): [$lock | keys[] | . as $k | select($k != "" and ($key == $k or ($key | startswith($k + "/"))))] | max_by(length);
      def npm_origin:
        lockkey as $key
        | if $key == "" then $own
          else holder($key) as $h
          | if $h == null then null
            else $lock[$h] as $e
            | if $e.link then $own
              else ($e.resolved // $registry) as $url
              | if $url | test("^[a-z+]+://") then "Organization: " + ($url | sub("^[a-z+]+://"; "") | sub("[/:].*$"; "") | sub("^.*@"; ""))
                else $own end
              end
            end
          end;
      .packages |= map(
        ([.externalRefs[]? | select(.referenceType == "purl") | .referenceLocator][0] // "") as $purl
        | if .primaryPackagePurpose == "CONTAINER" then .supplier = $own
          elif ($purl | startswith("pkg:cargo/knext@")) then .supplier = "Organization: kn-next"
          elif ($purl | startswith("pkg:cargo/")) then ($purl | crate) as $key
            | .supplier = (if $sources == {} then "Organization: crates.io"
                           elif $sources | has($key) then origin($sources[$key]) else .supplier end)
          elif npm then (npm_origin // null) as $o | if $o != null then .supplier = $o else . end
          elif ($purl | startswith("pkg:generic/node@")) then .supplier = "Organization: OpenJS Foundation (nodejs.org)"
          else . end)' "$tmp" >"$out.tmp"
    mv "$out.tmp" "$out"
    echo "$out: $(jq '.packages | length' "$out") packages ($(sbom_crates "$out" | wc -l) crates, $(jq "$NPM"' [.packages[] | select(npm)] | length' "$out") npm), $(jq '.files | length' "$out") files, image $(subject "$out")" >&2
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
  npm)
    [[ $# == 3 && -f "$3" ]] || usage
    # Each npm package of the SBOM: in the lock (by its node_modules path), installed but unknown to
    # the lock (its path has a node_modules/NAME shape), or vendored inside a package (any other path).
    jq -er --slurpfile lockfile "$3" "$NPM"'
      ($lockfile[0].packages // error("no packages map (lockfileVersion 2 or 3)")) as $lock
      | ($lock["node_modules/next"].version // error("the lock has no next")) as $next
      | [.packages[] | select(npm) | lockkey as $k | select($k != "")
         | {key: $k, version: .versionInfo,
            kind: (if $lock | has($k) then "locked" elif $k | test("(^|/)node_modules/(@[^/]+/)?[^/]+$") then "unknown" else "vendored" end)}] as $listed
      | [$listed[] | select(.kind == "locked")] as $locked
      | [$locked[] | select(.key == "node_modules/next" and .version == $next)] as $nexts
      | [$locked[] | select(.version != $lock[.key].version) | "\(.key)@\(.version) (lock: \($lock[.key].version))"] as $wrong
      | [$listed[] | select(.kind == "unknown") | .key] as $unknown
      | if ($nexts | length) != 1 then error("next@\($next), the lock'"'"'s, is not listed")
        elif ($wrong | length) > 0 then error("listed at another version than the lock'"'"'s: \($wrong | join(", "))")
        elif ($unknown | length) > 0 then error("installed but not in the lock: \($unknown | join(", "))")
        else "next@\($next) and all \($locked | length) installed npm packages are listed at the lock'"'"'s versions; \([$listed[] | select(.kind == "vendored")] | length) more are vendored inside them" end
    ' "$2" || die "$2 and $3 disagree on the app's npm packages"
    ;;
  scanner)
    [[ $# == 3 && -d "$3" ]] || usage
    inventory="$(trivy image --quiet --input "$3" --format cyclonedx --skip-version-check --disable-telemetry \
      --cache-dir "${TRIVY_CACHE_DIR:-target/trivy-cache}")"
    seen="$(jq -r "$CRATE"' .components[]?.purl // empty | crate' <<<"$inventory" | sort -u)"
    listed="$(sbom_crates "$2")"
    [[ "$seen" == "$listed" ]] || die "Trivy and $2 disagree on the crates of $3: $(diff <(echo "$listed") <(echo "$seen") | grep '^[<>]' | tr '\n' ' ')"
    # npm: name@version, purl-decoded (%40scope → @scope), without qualifiers.
    npm_purls() { sed -e 's/[?#].*//' -e 's/%40/@/g' | grep '^pkg:npm/.*@' | sort -u || true; }
    npm_seen="$(jq -r '.components[]?.purl // empty' <<<"$inventory" | npm_purls)"
    npm_listed="$(jq -r '.packages[].externalRefs[]? | select(.referenceType == "purl") | .referenceLocator' "$2" | npm_purls)"
    unlisted="$(comm -23 <(echo "$npm_seen") <(echo "$npm_listed") | grep . || true)"
    [[ -z "$unlisted" ]] || die "npm packages Trivy finds in $3 but $2 does not list: $(tr '\n' ' ' <<<"$unlisted")"
    echo "$2: Trivy, the vulnerability gate's scanner, reads the same $(grep -c . <<<"$seen" || true) crates from the image, and $(grep -c . <<<"$npm_seen" || true) npm packages, all listed"
    ;;
  subject)
    [[ $# == 2 ]] || usage
    subject "$2"
    ;;
  *) usage ;;
esac
