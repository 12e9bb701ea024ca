#!/usr/bin/env bash
# Attaches an SPDX JSON SBOM to an image digest in an OCI registry, and finds it again from that digest.
#
#   scripts/oci-sbom.sh attach REGISTRY/REPO@sha256:DIGEST SBOM.json
#       Pushes the SBOM as an OCI 1.1 artifact whose `subject` is the image manifest DIGEST; prints the
#       artifact manifest's digest. Attaching the same SBOM to the same digest again pushes nothing new
#       and prints the digest of the artifact that is already there.
#   scripts/oci-sbom.sh fetch  REGISTRY/REPO@sha256:DIGEST OUT.json
#       Discovers the artifacts of type application/spdx+json that refer to DIGEST, takes the newest
#       (org.opencontainers.image.created annotation; the others are named on stderr), checks that its
#       manifest's subject.digest is DIGEST and that the blob has the sha256 its descriptor names, then
#       writes the blob to OUT.json and prints the artifact manifest's digest.
#
# Exit status: 0 done; 1 nothing found, a check failed or the registry refused a request; 2 usage error.
# Environment:
#   REGISTRY_USER, REGISTRY_PASSWORD  optional credentials: sent as basic auth when the registry asks for
#                                     it, or traded at the realm of a `WWW-Authenticate: Bearer` challenge
#                                     for a token (ghcr.io, Docker Hub, distribution with token auth).
#                                     Without them, anonymous tokens are asked for (public pulls).
#   SOURCE_DATE_EPOCH                 attach: the artifact's org.opencontainers.image.created (default: now).
#   REGISTRY_SCHEME                   http or https; default http for 127.0.0.0/8, localhost and [::1],
#                                     https otherwise.
# Needs: bash, curl, jq, sha256sum. Credentials and tokens reach curl on its standard input (--config -),
# never on its command line.
#
# Why this format. The SBOM is an OCI 1.1 artifact (image spec 1.1 "artifactType", distribution spec 1.1
# "subject" and referrers): a manifest with artifactType application/spdx+json, the empty config
# (application/vnd.oci.empty.v1+json, "{}"), one application/spdx+json layer holding the SBOM, and a
# `subject` descriptor naming the image manifest. That is the standard way to bind a document to a
# digest: the binding is inside the content-addressed (and signable) artifact manifest, not in a tag name,
# and it is what `oras discover` / `oras pull`, cosign's OCI 1.1 referrers mode (`cosign tree`,
# `cosign download`) and Notation read. Registries that serve the referrers API
# (GET /v2/<name>/referrers/<digest>) index it themselves and say so with an `OCI-Subject` header on the
# manifest PUT. Many do not, among them Debian 12's docker-registry (CNCF distribution 2.8) and ghcr.io;
# for those the distribution spec's "referrers tag schema" fallback applies, which this script keeps
# up to date exactly as the spec tells a client to: the tag `sha256-<hex of DIGEST>` holds an image index
# listing the referrers' descriptors (mediaType, digest, size, artifactType, annotations); attach reads
# it, adds or replaces its artifact's entry and pushes it back; fetch asks the referrers API first and
# reads that tag when the API is missing or lists no SBOM. This is deliberately not cosign's older `sha256-<hex>.sbom` tag
# scheme (`cosign attach sbom`), which cosign has deprecated: it binds only by tag name and overwrites.
# Not covered: Docker Hub's "docker.io" alias (use registry-1.docker.io), deleting artifacts.
set -euo pipefail

readonly SPDX=application/spdx+json
readonly OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
readonly OCI_INDEX=application/vnd.oci.image.index.v1+json
readonly EMPTY_TYPE=application/vnd.oci.empty.v1+json
readonly EMPTY_DIGEST=sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a
readonly CREATED_KEY=org.opencontainers.image.created
# Every manifest type a subject can have: without them distribution 2.8 answers a GET for an OCI
# manifest with MANIFEST_UNKNOWN, rewrites an index to one platform's manifest, or a schema 2 to schema 1.
readonly ACCEPT_ANY="$OCI_MANIFEST, $OCI_INDEX, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

me=oci-sbom
usage() {
  cat >&2 <<EOF
usage: $0 attach REGISTRY/REPO@sha256:DIGEST SBOM.json
       $0 fetch  REGISTRY/REPO@sha256:DIGEST OUT.json
EOF
  exit 2
}
die() { echo "$me: $*" >&2; exit 1; }
usage_error() { echo "$me: $*" >&2; exit 2; }
note() { echo "$me: $*" >&2; }

for tool in curl jq sha256sum; do
  command -v "$tool" >/dev/null || usage_error "$tool is missing (Debian packages: curl jq coreutils)"
done

(($# == 3)) || usage
cmd=$1 ref=$2 file=$3
[[ "$cmd" == attach || "$cmd" == fetch ]] || usage

# REGISTRY/REPO[:TAG]@sha256:HEX; the tag, if any, is ignored: the digest is what SBOMs attach to.
repo_re='[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*'
[[ "$ref" =~ ^([^/@[:space:]]+)/($repo_re)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@(sha256:[0-9a-f]{64})$ ]] \
  || usage_error "not a digest reference REGISTRY/REPO@sha256:<64 hex>: $ref"
registry=${BASH_REMATCH[1]}
name=${BASH_REMATCH[2]}
subject=${BASH_REMATCH[${#BASH_REMATCH[@]} - 1]}
[[ "$registry" == *.* || "$registry" == *:* || "$registry" == localhost ]] \
  || usage_error "$registry is not a registry host (needs a dot or a port, or localhost): $ref"
if [[ "$registry" == \[* ]]; then host=${registry%%]*}]; else host=${registry%%:*}; fi
case "${REGISTRY_SCHEME:-}" in
  http | https) scheme=$REGISTRY_SCHEME ;;
  "") if [[ "$host" == localhost || "$host" == 127.* || "$host" == "[::1]" ]]; then scheme=http; else scheme=https; fi ;;
  *) usage_error "REGISTRY_SCHEME must be http or https, not $REGISTRY_SCHEME" ;;
esac
base="$scheme://$registry"
api="$base/v2/$name"
fallback_tag="sha256-${subject#sha256:}"

if [[ "$cmd" == attach ]]; then
  [[ -f "$file" && -r "$file" ]] || usage_error "no readable SBOM file: $file"
  jq -se 'length == 1 and (.[0] | type == "object")' "$file" >/dev/null 2>&1 || usage_error "$file is not one JSON object"
  jq -e '(.spdxVersion // "") | startswith("SPDX-")' "$file" >/dev/null \
    || note "warning: $file has no spdxVersion \"SPDX-...\"; attaching it as $SPDX anyway"
  if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
    [[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || usage_error "SOURCE_DATE_EPOCH is not a number of seconds: $SOURCE_DATE_EPOCH"
    created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  else
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  fi
  actions=pull,push
else
  out_dir=$(dirname -- "$file")
  [[ -d "$out_dir" && -w "$out_dir" ]] || usage_error "cannot write into $out_dir (for $file)"
  [[ ! -d "$file" ]] || usage_error "$file is a directory"
  actions=pull
fi
if [[ -n "${REGISTRY_USER:-}" || -n "${REGISTRY_PASSWORD:-}" ]]; then
  [[ -n "${REGISTRY_USER:-}" && -n "${REGISTRY_PASSWORD:-}" ]] || usage_error "set both REGISTRY_USER and REGISTRY_PASSWORD, or neither"
  [[ "$REGISTRY_USER$REGISTRY_PASSWORD" != *$'\n'* && "$REGISTRY_USER" != *:* ]] \
    || usage_error "REGISTRY_USER may not hold ':' or a newline, REGISTRY_PASSWORD no newline"
fi

found_by=""
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT

# ---- HTTP -------------------------------------------------------------------------------------------
# auth: a curl config line (`header = "Authorization: Bearer ..."` or `user = "..."`), given to curl on
# its standard input so that no secret shows in ps. Empty until a 401 asks for credentials.
auth=""
curl_quote() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
urlencode() { jq -rn --arg v "$1" '$v | @uri'; }
basic_config() { printf 'user = %s\n' "$(curl_quote "$REGISTRY_USER:$REGISTRY_PASSWORD")"; }

# header NAME: the value of NAME in the last response's headers ($tmp/hdr; the last block after redirects).
header() {
  awk -v want="$(tr '[:upper:]' '[:lower:]' <<<"$1")" '
    /^HTTP\// { v = ""; next }
    { line = $0; sub(/\r$/, "", line); i = index(line, ":"); if (!i) next
      if (tolower(substr(line, 1, i - 1)) == want) { v = substr(line, i + 1); sub(/^[ \t]+/, "", v) } }
    END { print v }' "$tmp/hdr"
}

# registry_error: the registry's error list (distribution spec error codes) or the start of its body.
registry_error() {
  local body=$1 text
  text=$(jq -r '[.errors[]? | .code + ": " + (.message // "") + (if .detail then " (" + (.detail | tostring) + ")" else "" end)] | join("; ")' "$body" 2>/dev/null || true)
  [[ -n "$text" ]] || text=$(head -c 300 "$body" 2>/dev/null | tr -s '\r\n' '  ' || true)
  printf '%s' "$text"
}

# authenticate: answer the WWW-Authenticate challenge of the 401 in $tmp/hdr; fails if it cannot.
authenticate() {
  local challenge kind params realm="" service="" url token_body="$tmp/token.json" st
  challenge=$(header WWW-Authenticate)
  kind=${challenge%% *}
  case "${kind,,}" in
    basic)
      [[ -n "${REGISTRY_USER:-}" ]] || die "$registry wants basic auth: set REGISTRY_USER and REGISTRY_PASSWORD"
      [[ "$auth" != user* ]] || die "$registry refused REGISTRY_USER=$REGISTRY_USER's password (HTTP 401)"
      auth=$(basic_config) ;;
    bearer)
      params=${challenge#* }
      while [[ "$params" =~ ^[[:space:],]*([A-Za-z_]+)=\"([^\"]*)\"(.*)$ ]]; do
        case "${BASH_REMATCH[1],,}" in realm) realm=${BASH_REMATCH[2]} ;; service) service=${BASH_REMATCH[2]} ;; esac
        params=${BASH_REMATCH[3]}
      done
      [[ "$realm" =~ ^https?:// ]] || die "$registry sent a Bearer challenge without a usable realm: $challenge"
      url="$realm"
      if [[ "$url" == *\?* ]]; then url+="&"; else url+="?"; fi
      url+="scope=$(urlencode "repository:$name:$actions")"
      [[ -z "$service" ]] || url+="&service=$(urlencode "$service")"
      local creds=""
      [[ -z "${REGISTRY_USER:-}" ]] || creds=$(basic_config)
      st=$(curl -sS -o "$token_body" -w '%{http_code}' --config - "$url" <<<"$creds") \
        || die "cannot reach the token service $realm"
      [[ "$st" == 200 ]] || die "the token service $realm refused ${REGISTRY_USER:-anonymous} for repository:$name:$actions: HTTP $st: $(registry_error "$token_body")"
      local token
      token=$(jq -r '.token // .access_token // empty' "$token_body" 2>/dev/null || true)
      [[ -n "$token" && "$token" != *[[:space:]\"\\]* ]] || die "the token service $realm answered without a token"
      auth="header = \"Authorization: Bearer $token\"" ;;
    *)
      if [[ -n "${REGISTRY_USER:-}" && "$auth" != user* ]]; then auth=$(basic_config)
      else die "$registry answered HTTP 401 without a challenge this script knows: ${challenge:-none}"; fi ;;
  esac
}

# req METHOD URL BODY_OUT [curl args...]: sets $status and $last_body (= BODY_OUT); headers in $tmp/hdr.
# Retries once after a 401, with the credentials or token its challenge asks for.
status="" last_body=""
req() {
  local method=$1 url=$2 out=$3 attempt
  shift 3
  last_body=$out
  local verb=(-X "$method")
  [[ "$method" != HEAD ]] || verb=(--head)
  for attempt in 1 2; do
    status=$(curl -sS "${verb[@]}" -o "$out" -D "$tmp/hdr" -w '%{http_code}' --config - "$@" -- "$url" <<<"$auth") \
      || die "$method $url: no answer from the registry (curl failed; see above)"
    if [[ "$status" == 401 && $attempt == 1 ]]; then authenticate; continue; fi
    break
  done
  [[ "$status" != 401 || "$auth" != user* ]] || die "$registry refused REGISTRY_USER=$REGISTRY_USER's password (HTTP 401)"
}
# expect WHAT CODES...: dies with the registry's own error text unless $status is one of CODES.
expect() {
  local what=$1 code
  shift
  for code; do [[ "$status" != "$code" ]] || return 0; done
  local hint=""
  [[ ! "$status" =~ ^40[13]$ || -n "${REGISTRY_USER:-}" ]] || hint=" (no credentials given: set REGISTRY_USER and REGISTRY_PASSWORD)"
  die "the registry refused to $what: HTTP $status: $(registry_error "$last_body")$hint"
}

sha256_of() { echo "sha256:$(sha256sum <"$1" | cut -d' ' -f1)"; }
size_of() { wc -c <"$1" | tr -d ' '; }

# get_manifest REF ACCEPT OUT: GETs a manifest; for a digest REF, checks the bytes have that digest.
get_manifest() {
  local ref=$1 accept=$2 out=$3
  req GET "$api/manifests/$ref" "$out" -H "Accept: $accept"
  [[ "$status" != 200 || "$ref" != sha256:* ]] || [[ "$(sha256_of "$out")" == "$ref" ]] \
    || die "$api/manifests/$ref: the registry served a manifest whose sha256 is $(sha256_of "$out")"
}

# push_blob FILE DIGEST: monolithic upload (POST, then PUT to the Location with ?digest=), unless present.
push_blob() {
  local file=$1 digest=$2 location
  req HEAD "$api/blobs/$digest" "$tmp/body"
  [[ "$status" != 200 ]] || return 0
  req POST "$api/blobs/uploads/" "$tmp/body" -H "Content-Length: 0"
  expect "start a blob upload (POST $api/blobs/uploads/)" 202
  location=$(header Location)
  [[ -n "$location" ]] || die "POST $api/blobs/uploads/ answered 202 without a Location"
  case "$location" in
    http://* | https://*) ;;
    //*) location="$scheme:$location" ;;
    /*) location="$base$location" ;;
    *) location="$api/blobs/uploads/$location" ;;
  esac
  if [[ "$location" == *\?* ]]; then location+="&"; else location+="?"; fi
  location+="digest=$(urlencode "$digest")"
  req PUT "$location" "$tmp/body" -H "Content-Type: application/octet-stream" --data-binary "@$file"
  expect "store blob $digest (PUT to the upload location)" 201
}

# put_manifest REF FILE MEDIATYPE [curl args...]: PUT, expecting 201 (and the right digest back).
put_manifest() {
  local ref=$1 file=$2 type=$3 got
  shift 3
  req PUT "$api/manifests/$ref" "$tmp/body" -H "Content-Type: $type" --data-binary "@$file" "$@"
  [[ "$status" == 412 ]] && return 0
  expect "store manifest $ref ($type)" 201
  got=$(header Docker-Content-Digest)
  [[ -z "$got" || "$got" == "$(sha256_of "$file")" ]] \
    || die "PUT $api/manifests/$ref: the registry says it stored $got, not $(sha256_of "$file")"
}

# is_index FILE: the last response, saved in FILE, is an OCI image index (by Content-Type and content).
is_index() {
  local type
  type=$(header Content-Type)
  [[ "${type%%;*}" == "$OCI_INDEX" ]] \
    && jq -e --arg t "$OCI_INDEX" '(.mediaType // $t) == $t and (.manifests | type == "array")' "$1" >/dev/null 2>&1
}
# not_index_error: why the referrers tag is not a referrers list.
not_index_error() {
  echo "the tag $fallback_tag of $registry/$name is not an OCI image index (Content-Type: $(header Content-Type)), so not a referrers list"
}

# ---- Discovery ---------------------------------------------------------------------------------------
# referrers OUT: writes the SPDX referrers of $subject as a JSON array of descriptors, each with .pos (its
# place in the list), from the referrers API or, where that is missing or empty, the fallback tag.
referrers() {
  local out=$1 api_list="[]"
  req GET "$api/referrers/$subject?artifactType=$(urlencode "$SPDX")" "$tmp/referrers.json" -H "Accept: $OCI_INDEX"
  if [[ "$status" == 200 ]] && is_index "$tmp/referrers.json"; then
    api_list=$(jq -c '.manifests' "$tmp/referrers.json")
    found_by="the referrers API"
  fi
  if [[ "$(jq --arg t "$SPDX" '[.[] | select(.artifactType == $t)] | length' <<<"$api_list")" == 0 ]]; then
    get_manifest "$fallback_tag" "$ACCEPT_ANY" "$tmp/referrers.json"
    if [[ "$status" == 200 ]]; then
      is_index "$tmp/referrers.json" || die "$(not_index_error)"
      api_list=$(jq -c '.manifests' "$tmp/referrers.json")
      found_by="the referrers tag $fallback_tag"
    elif [[ "$status" != 404 ]]; then
      expect "serve the referrers tag $fallback_tag" 200
    fi
  fi
  jq --arg t "$SPDX" '[to_entries[] | .value + {pos: .key} | select(.artifactType == $t)]' <<<"$api_list" >"$out"
}

# ---- attach ------------------------------------------------------------------------------------------
attach() {
  local subject_type subject_size sbom_digest sbom_size manifest="$tmp/artifact.json" digest

  get_manifest "$subject" "$ACCEPT_ANY" "$tmp/subject.json"
  [[ "$status" != 404 ]] || die "$registry/$name has no manifest $subject: $(registry_error "$tmp/subject.json")"
  expect "serve the image manifest $subject" 200
  subject_type=$(header Content-Type)
  subject_type=${subject_type%%;*}
  [[ -n "$subject_type" ]] || subject_type=$(jq -r '.mediaType // empty' "$tmp/subject.json")
  [[ -n "$subject_type" ]] || die "$registry/$name@$subject: the registry names no media type for it"
  subject_size=$(size_of "$tmp/subject.json")

  printf '{}' >"$tmp/empty.json"
  [[ "$(sha256_of "$tmp/empty.json")" == "$EMPTY_DIGEST" ]] || die "sha256sum gives a wrong digest for {}"
  sbom_digest=$(sha256_of "$file")
  sbom_size=$(size_of "$file")
  push_blob "$tmp/empty.json" "$EMPTY_DIGEST"
  push_blob "$file" "$sbom_digest"

  # The same SBOM already attached to this digest: that artifact is the answer.
  referrers "$tmp/found.json"
  local existing
  while read -r existing; do
    get_manifest "$existing" "$OCI_MANIFEST" "$tmp/existing.json"
    [[ "$status" == 200 ]] || continue
    if jq -e --arg s "$subject" --arg d "$sbom_digest" --arg t "$SPDX" \
         '.subject.digest == $s and any(.layers[]?; .mediaType == $t and .digest == $d)' "$tmp/existing.json" >/dev/null; then
      note "$file is already attached to $subject as $existing (found by ${found_by:-?})"
      [[ "$found_by" == "the referrers API" ]] || update_fallback "$existing" "$tmp/existing.json"
      echo "$existing"
      return 0
    fi
  done < <(jq -r '.[].digest' "$tmp/found.json")

  jq -cn --arg mt "$OCI_MANIFEST" --arg at "$SPDX" --arg et "$EMPTY_TYPE" --arg ed "$EMPTY_DIGEST" \
    --arg ld "$sbom_digest" --argjson ls "$sbom_size" \
    --arg st "$subject_type" --arg sd "$subject" --argjson ss "$subject_size" \
    --arg ck "$CREATED_KEY" --arg created "$created" '{
      schemaVersion: 2, mediaType: $mt, artifactType: $at,
      config: {mediaType: $et, digest: $ed, size: 2, data: "e30="},
      layers: [{mediaType: $at, digest: $ld, size: $ls}],
      subject: {mediaType: $st, digest: $sd, size: $ss},
      annotations: {($ck): $created}
    }' >"$manifest"
  digest=$(sha256_of "$manifest")
  put_manifest "$digest" "$manifest" "$OCI_MANIFEST"
  [[ "$status" == 201 ]] || die "the registry refused to store the artifact manifest $digest: HTTP $status: $(registry_error "$last_body")"

  local oci_subject
  oci_subject=$(header OCI-Subject)
  if [[ -n "$oci_subject" ]]; then
    [[ "$oci_subject" == "$subject" ]] || die "the registry indexed $digest under the subject $oci_subject, not $subject"
  else
    update_fallback "$digest" "$manifest"
  fi
  echo "$digest"
}

# update_fallback DIGEST MANIFEST_FILE: the referrers tag schema, distribution spec 1.1 "Pushing Manifests with
# Subject": read the index under sha256-<hex> (an empty one if none), put this artifact's descriptor in it
# (replacing one with the same digest), push it back. The tag is read-modify-write: If-Match (the ETag read)
# guards against a concurrent writer where the registry honours it (distribution 2.8 ignores it); the
# read-back after the PUT catches a writer that overwrote the tag in the meantime and retries, but a writer
# that overwrites it after the read-back can still drop this entry: run attaches to one digest one at a time
# (running attach again re-adds a dropped entry).
update_fallback() {
  local digest=$1 manifest=$2 attempt etag desc
  desc=$(jq -c --arg mt "$OCI_MANIFEST" --arg d "$digest" --argjson s "$(size_of "$manifest")" \
    '{mediaType: $mt, digest: $d, size: $s, artifactType: .artifactType}
     + (if .annotations then {annotations: .annotations} else {} end)' "$manifest")
  for attempt in 1 2 3 4 5; do
    ((attempt == 1)) || sleep "0.$((RANDOM % 9 + 1))"
    get_manifest "$fallback_tag" "$ACCEPT_ANY" "$tmp/index.json"
    etag=""
    if [[ "$status" == 200 ]]; then
      is_index "$tmp/index.json" || die "$(not_index_error); not overwriting it"
      etag=$(header ETag)
    elif [[ "$status" == 404 ]]; then
      jq -n --arg t "$OCI_INDEX" '{schemaVersion: 2, mediaType: $t, manifests: []}' >"$tmp/index.json"
    else
      expect "serve the referrers tag $fallback_tag" 200 404
    fi
    if jq -e --argjson d "$desc" 'any(.manifests[]; . == $d)' "$tmp/index.json" >/dev/null; then
      return 0
    fi
    jq -c --argjson d "$desc" '.manifests = [.manifests[] | select(.digest != $d.digest)] + [$d]' \
      "$tmp/index.json" >"$tmp/index.new.json"
    local cond=()
    [[ -z "$etag" ]] || cond=(-H "If-Match: $etag")
    put_manifest "$fallback_tag" "$tmp/index.new.json" "$OCI_INDEX" "${cond[@]}"
    if [[ "$status" == 201 ]]; then
      get_manifest "$fallback_tag" "$ACCEPT_ANY" "$tmp/index.check.json"
      if [[ "$status" == 200 ]] && jq -e --arg d "$digest" 'any(.manifests[]; .digest == $d)' "$tmp/index.check.json" >/dev/null; then
        note "the registry has no referrers API (no OCI-Subject header); the referrers tag $fallback_tag lists $(jq '.manifests | length' "$tmp/index.check.json") referrer(s)"
        return 0
      fi
    fi
    note "the referrers tag $fallback_tag changed while it was updated; again (try $attempt of 5)"
  done
  die "could not add $digest to the referrers tag $fallback_tag (it kept changing)"
}

# ---- fetch -------------------------------------------------------------------------------------------
fetch() {
  local n chosen chosen_size layer ldigest lsize
  referrers "$tmp/found.json"
  n=$(jq length "$tmp/found.json")
  if ((n == 0)); then
    local why=""
    req HEAD "$api/manifests/$subject" "$tmp/body" -H "Accept: $ACCEPT_ANY"
    [[ "$status" != 404 ]] || why="; the repository has no manifest $subject either"
    die "no $SPDX artifact refers to $registry/$name@$subject (asked the referrers API and the tag $fallback_tag)$why"
  fi
  # Newest by the created annotation; equal ones (or none): the later in the list.
  jq -c --arg k "$CREATED_KEY" 'sort_by([(.annotations[$k] // ""), .pos]) | reverse' "$tmp/found.json" >"$tmp/sorted.json"
  chosen=$(jq -r '.[0].digest' "$tmp/sorted.json")
  chosen_size=$(jq -r '.[0].size' "$tmp/sorted.json")
  if ((n > 1)); then
    note "$n SBOMs refer to $subject (by $found_by); taking the newest, $chosen. All, newest first:"
    jq -r --arg k "$CREATED_KEY" '.[] | "  \(.digest)  created \(.annotations[$k] // "?")"' "$tmp/sorted.json" >&2
  fi
  [[ "$chosen" =~ ^sha256:[0-9a-f]{64}$ ]] || die "$found_by lists a referrer with a malformed digest: $chosen"

  get_manifest "$chosen" "$OCI_MANIFEST" "$tmp/artifact.json"
  expect "serve the artifact manifest $chosen (listed by $found_by)" 200
  [[ "$(size_of "$tmp/artifact.json")" == "$chosen_size" ]] \
    || die "the artifact manifest $chosen is $(size_of "$tmp/artifact.json") bytes, not the $chosen_size that $found_by says"
  jq -e --arg s "$subject" '.subject.digest == $s' "$tmp/artifact.json" >/dev/null 2>&1 \
    || die "the artifact $chosen has subject $(jq -c '.subject.digest // null' "$tmp/artifact.json" 2>/dev/null), not $subject"
  jq -e --arg t "$SPDX" '(.artifactType // .config.mediaType) == $t' "$tmp/artifact.json" >/dev/null \
    || die "the artifact $chosen is not of type $SPDX"
  layer=$(jq -c --arg t "$SPDX" '[.layers[]? | select(.mediaType == $t)]' "$tmp/artifact.json")
  [[ "$(jq length <<<"$layer")" != 0 ]] || die "the artifact $chosen has no $SPDX layer"
  [[ "$(jq length <<<"$layer")" == 1 ]] || note "the artifact $chosen has several $SPDX layers; taking the first"
  ldigest=$(jq -r '.[0].digest' <<<"$layer")
  lsize=$(jq -r '.[0].size' <<<"$layer")
  [[ "$ldigest" =~ ^sha256:[0-9a-f]{64}$ ]] || die "the artifact $chosen names a blob digest this script cannot check: $ldigest"

  req GET "$api/blobs/$ldigest" "$tmp/sbom" -L
  expect "serve the SBOM blob $ldigest" 200
  [[ "$(sha256_of "$tmp/sbom")" == "$ldigest" ]] \
    || die "the SBOM blob has sha256 $(sha256_of "$tmp/sbom"), not the $ldigest that $chosen names"
  [[ "$(size_of "$tmp/sbom")" == "$lsize" ]] || die "the SBOM blob is $(size_of "$tmp/sbom") bytes, not the $lsize that $chosen names"

  local part="$file.part.$$"
  { cat "$tmp/sbom" >"$part" && mv -f -- "$part" "$file"; } || { rm -f -- "$part"; die "cannot write $file"; }
  echo "$chosen"
}

"$cmd"
