#!/usr/bin/env bash
# Benchmark smoke runs: each benchmark runs once, briefly (BENCHMARKS.md's figures come from the full
# runs, `make bench`). Needs wrk and node for the serve benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
KNEXT_BENCH_APPS=1000 KNEXT_BENCH_RUNS=1 cargo bench --locked --bench render
KNEXT_BENCH_SECS=2 cargo bench --locked --bench serve
