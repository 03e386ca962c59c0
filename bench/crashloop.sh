#!/usr/bin/env bash
# Long crash soak: runs the real arkstate binary on a multi-megabyte input,
# SIGKILLs it N times at random moments, restarts it until it exits 0, and
# checks that every word's committed counts are exactly 1..n and equal an
# uninterrupted run. Usage: bench/crashloop.sh [N] [local|s3|all]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200}"
which="${2:-local}"
case "$which" in
local) run='TestRunCrash_Local$' ;;
s3) run='TestRunCrash_S3$' ;;
all) run='TestRunCrash_' ;;
*) echo "usage: $0 [N] [local|s3|all]" >&2; exit 2 ;;
esac
ARKSTATE_CRASH_KILLS="$n" go test -count=1 -timeout 0 -run "$run" -v ./cmd/arkstate
