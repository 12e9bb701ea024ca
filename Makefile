# knext task runner (make is on every machine; just is not).

.PHONY: build generate test lint fmt bless render conformance bench fuzz ci install operator-image release-local app-image-local lint-workflows

# regenerate generated/ (build.rs renders the install bundle, the CRD, examples/, the JSON Schema and the cache handler); commit the result
generate:
	cargo build

# build the CLI (release)
build:
	cargo build --release

# run the whole test suite
test:
	cargo test

# format check and clippy with warnings as errors in every feature configuration, as CI runs them
lint:
	scripts/ci/lint.sh

# format the code
fmt:
	cargo fmt --all

# accept changed snapshots after reviewing them (then commit snapshots/)
bless:
	INSTA_UPDATE=always cargo test
	git status --short snapshots/

# print knext's install bundle (operator + CRD)
install:
	cargo run --release --quiet -- install

# build the operator image as an OCI layout (no Docker engine needed; cargo-auditable from scripts/tools.sh); prints its digest
operator-image:
	scripts/tools.sh cargo >/dev/null && scripts/operator-image.sh target/operator-image

# rehearse the release on loopback: auditable binary, OCI layout, SBOM and its validations, push to a
# local docker-registry, SBOM referrer, knext install with the pushed digest, the bundle's conformance
# (Trivy's vulnerability gate and keyless signing run in .github/workflows/release.yml only)
release-local:
	TRIVY_SKIP="$$(scripts/ci/conformance-skips.sh bundle)" scripts/release-local.sh

# rehearse an app image on loopback (as root): knext scaffold's Dockerfile for tests/nextjs-app built with buildah on a
# stand-in Node.js base, its config and files checked, run as uid 1000 on a read-only root, syft, hadolint
# (reuses make release-local's knext image when there is one; Trivy's gate and signing run in GitHub Actions only)
app-image-local:
	scripts/app-image-local.sh

# lint the GitHub workflows and scripts (actionlint, zizmor, shellcheck) and scan the repository (trivy fs: secrets, misconfigurations)
lint-workflows:
	PATH="$$(scripts/tools.sh python | tail -n 1):$$PATH" && scripts/ci/workflows-lint.sh && scripts/trivy-repo.sh

# render the bundled examples into out/examples
render:
	cargo run --release -- render examples/ -o out/examples

# run the independent validators (with Trivy) on the rendered examples; the skips are docs/conformance.md's
conformance: render
	CHECKOV_SKIP="$$(scripts/ci/conformance-skips.sh checkov)" TRIVY_SKIP="$$(scripts/ci/conformance-skips.sh apps)" \
	  bash ../shared/tools/conformance.sh --trivy out/

# the benchmarks: rendering 10,000 apps, the operator, knext serve (needs wrk and node); figures go to BENCHMARKS.md
bench:
	cargo bench --bench render
	cargo bench --bench operator
	cargo bench --bench serve

# fuzz the emitter, the YAML fast path and the whole pipeline, FUZZ_SECONDS each (needs cargo-fuzz)
FUZZ_SECONDS ?= 180
fuzz:
	cargo install cargo-fuzz --locked --version 0.13.2
	mkdir -p fuzz/corpus/render_pipeline fuzz/corpus/yaml_fast_path
	cp examples/*.yaml snapshots/inputs/valid/*.yaml snapshots/inputs/invalid/*.yaml fuzz/corpus/render_pipeline/
	cp examples/*.yaml snapshots/inputs/valid/*.yaml fuzz/corpus/yaml_fast_path/
	for t in emit_roundtrip yaml_fast_path render_pipeline; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) -max_len=8192 || exit 1; done

# everything CI runs
ci:
	bash .ci/run
