#!/usr/bin/env bash
# Mutation check of the exactly-once path: applies each deliberate bug in
# bench/mutants/*.patch to a copy of HEAD and runs the tests that guard the
# path. Every mutant must make them fail ("killed"); a mutant that passes
# ("SURVIVED") means the tests cannot see that bug. A patch that no longer
# applies is reported, never skipped: the code moved and the mutant needs
# updating.
#
# Usage: bench/mutants.sh [NAME ...]   (default: every patch)
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# The guards: the lease tests of the store, the pipeline's failure and
# restart tests, and through the real binary the crash matrix, the
# random-kill test, the zombie test and gc in a loop beside a live job.
pkgs_pipeline=(./pkg/pipeline)
run_checkpoint='TestLease|TestBuilder_CommitErrLeaseLost'
run_cmd='TestRunCrashPoints|TestRunCrash_Local$|TestRunCrash_Stdin$|TestRunZombie$|TestRunGCLoop$'

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for p in bench/mutants/*.patch; do names+=("$(basename "$p" .patch)"); done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/arkstate-mutants.XXXXXX")
trap 'rm -rf "$work"' EXIT

printf '| mutant | result | failing tests (first 3) | seconds |\n| --- | --- | --- | --- |\n'
survived=0
for name in "${names[@]}"; do
	patch="$repo/bench/mutants/$name.patch"
	copy="$work/$name"
	mkdir -p "$copy"
	git -C "$repo" archive HEAD | tar -x -C "$copy"
	if ! git -C "$copy" apply "$patch" 2>"$work/$name.apply"; then
		printf '| %s | PATCH DOES NOT APPLY | %s | - |\n' "$name" "$(head -1 "$work/$name.apply")"
		survived=$((survived + 1))
		continue
	fi
	start=$(date +%s)
	log="$work/$name.log"
	(
		cd "$copy" &&
			go test -count=1 -run "$run_checkpoint" ./pkg/checkpoint &&
			go test -count=1 "${pkgs_pipeline[@]}" &&
			go test -count=1 -run "$run_cmd" ./cmd/arkstate
	) >"$log" 2>&1
	status=$?
	secs=$(($(date +%s) - start))
	failing=$(grep -oE -- '--- FAIL: [^ ]+' "$log" | sed 's/--- FAIL: //' | head -3 | paste -sd, -)
	if [ $status -ne 0 ]; then
		printf '| %s | killed | %s | %d |\n' "$name" "${failing:-build or setup failure: see below}" "$secs"
		[ -z "$failing" ] && tail -5 "$log" | sed 's/^/    /'
	else
		printf '| %s | SURVIVED | - | %d |\n' "$name" "$secs"
		survived=$((survived + 1))
	fi
	rm -rf "$copy"
done
if [ $survived -ne 0 ]; then
	echo "$survived mutant(s) survived or did not apply" >&2
	exit 1
fi
