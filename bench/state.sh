#!/usr/bin/env bash
# The state engine's benchmarks with their baselines, in one run, summarised
# by benchstat (go install golang.org/x/perf/cmd/benchstat@latest).
#   Get/Put against a plain map[string][]byte doing the same work;
#   full snapshots of 1 MB and 256 MB; an incremental one with 1% of 256 MB
#   changed (reported as % of a full one); the pause at a barrier.
# Usage: bench/state.sh [count]   (default 6)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-6}"
bin="$(mktemp -d)/state.test"
go test -c -o "$bin" ./pkg/state
out="$(mktemp)"
for _ in $(seq "$count"); do
	# Interleaved rounds, so a noisy neighbour hits every benchmark alike.
	"$bin" -test.run '^$' -test.bench 'ValueGet$|GoMapGet$|ValuePut$|GoMapPut$|SnapshotFull1MB$' -test.benchmem >>"$out"
done
"$bin" -test.run '^$' -test.bench 'SnapshotPause' -test.benchtime 200x >>"$out"
"$bin" -test.run '^$' -test.bench 'SnapshotFull256MB|SnapshotIncremental1Percent' -test.benchtime 3x -test.benchmem >>"$out"
if command -v benchstat >/dev/null; then benchstat "$out"; else grep Benchmark "$out"; fi
