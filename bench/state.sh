#!/usr/bin/env bash
# The state engine's benchmarks with their baselines, in one run, summarised
# by benchstat (go install golang.org/x/perf/cmd/benchstat@latest).
#   Get/Put against a plain map[string][]byte doing the same work;
#   full snapshots of 1 MB (against compressing the same bytes with zstd on
#   one goroutine, BenchmarkCompress1MB) and 256 MB; an incremental one with 1% of 256 MB
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
	"$bin" -test.run '^$' -test.bench 'ValueGet$|GoMapGet$|ValuePut$|GoMapPut$|SnapshotFull1MB$|Compress1MB$' -test.benchmem >>"$out"
done
"$bin" -test.run '^$' -test.bench 'SnapshotPause' -test.benchtime 200x >>"$out"
"$bin" -test.run '^$' -test.bench 'SnapshotFull256MB|SnapshotIncremental1Percent' -test.benchtime 3x -test.benchmem >>"$out"
if command -v benchstat >/dev/null; then benchstat "$out"; else grep Benchmark "$out"; fi
# The same-run ratios the targets are stated in, from the medians.
awk '$1 ~ /^Benchmark/ && $4 == "ns/op" { name = $1; sub(/-[0-9]+$/, "", name); v[name] = v[name] " " $3 }
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
END {
	g = median(v["BenchmarkValueGet"]); mg = median(v["BenchmarkGoMapGet"])
	p = median(v["BenchmarkValuePut"]); mp = median(v["BenchmarkGoMapPut"])
	s = median(v["BenchmarkSnapshotFull1MB"]); c = median(v["BenchmarkCompress1MB"])
	printf "\nGet: %.2f of the plain map speed; Put: %.2f\n", mg / g, mp / p
	printf "Full 1 MB snapshot: %.2f ms, %.2f x compressing the same bytes on one goroutine (%.2f ms)\n", s / 1e6, s / c, c / 1e6
}' "$out"
