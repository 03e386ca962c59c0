#!/usr/bin/env bash
# Word-count throughput, measured in one run against three baselines:
#   1. the same pipeline with checkpoints off (goal: exactly-once with
#      checkpoint_interval_ms 1000 keeps at least 95% of its throughput);
#   2. exactly-once without the transaction log (goal: with the log on,
#      group_commit, at least 90% of its throughput);
#   3. tr | sort | uniq -c on the same input.
# Usage: bench/wordcount.sh [MB] [rounds]   (default 20 MB, 3 rounds; the best round counts)
set -euo pipefail
cd "$(dirname "$0")/.."
mb="${1:-20}"
rounds="${2:-3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/arkstate" ./cmd/arkstate

python3 - "$work/input.txt" "$mb" <<'PY'
import random, sys
random.seed(1)
words = ["w%d" % i for i in range(20000)]
target = int(sys.argv[2]) << 20
with open(sys.argv[1], "w") as f:
    n = 0
    while n < target:
        line = " ".join(random.choice(words) for _ in range(12)) + "\n"
        f.write(line)
        n += len(line)
PY

config() { # $1 = dir, $2 = state block
	mkdir -p "$1"
	ln -sf "$work/input.txt" "$1/input.txt"
	cat >"$1/pipeline.yaml" <<YAML
streams:
  - id: wordcount
    input:  {type: file, path: input.txt}
    pipeline:
      thread_num: 2
      processors:
        - {type: split, field: line, pattern: "[^a-z0-9']+", lowercase: true, as: word}
        - {type: count, key: word}
    output: {type: file, path: out/}
state:
$2
YAML
}

best() { # prints the best wall time in seconds of running "$@" $rounds times, after a reset
	local b=""
	for _ in $(seq "$rounds"); do
		rm -rf "$dir/state" "$dir/out"
		local s e t
		s=$(date +%s.%N)
		"$@" >/dev/null
		e=$(date +%s.%N)
		t=$(echo "$e - $s" | bc -l)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
	done
	echo "$b"
}

config "$work/on" "  enabled: true
  backend_type: local
  path: ./state
  checkpoint_interval_ms: 1000
  retained_checkpoints: 5
  exactly_once: true"
config "$work/txlog" "  enabled: true
  backend_type: local
  path: ./state
  checkpoint_interval_ms: 1000
  retained_checkpoints: 5
  exactly_once: true
  txlog: {enabled: true}"
config "$work/off" "  enabled: false"

dir="$work/on";  t_on=$(best "$work/arkstate" run -c "$work/on/pipeline.yaml")
dir="$work/txlog"; t_log=$(best "$work/arkstate" run -c "$work/txlog/pipeline.yaml")
dir="$work/off"; t_off=$(best "$work/arkstate" run -c "$work/off/pipeline.yaml")
dir="$work";     t_tr=$(best sh -c "tr -cs 'a-z0-9' '\n' < '$work/input.txt' | sort | uniq -c > '$work/uniq.txt'")

printf 'input: %s MB, best of %s rounds\n' "$mb" "$rounds"
printf 'exactly-once, checkpoint every 1000 ms: %6.2f s  %6.1f MB/s\n' "$t_on" "$(echo "$mb / $t_on" | bc -l)"
printf 'exactly-once + transaction log:         %6.2f s  %6.1f MB/s\n' "$t_log" "$(echo "$mb / $t_log" | bc -l)"
printf 'checkpoints off:                        %6.2f s  %6.1f MB/s\n' "$t_off" "$(echo "$mb / $t_off" | bc -l)"
printf 'tr | sort | uniq -c:                    %6.2f s  %6.1f MB/s\n' "$t_tr" "$(echo "$mb / $t_tr" | bc -l)"
printf 'exactly-once / checkpoints off throughput: %.3f\n' "$(echo "$t_off / $t_on" | bc -l)"
printf 'exactly-once / tr|sort|uniq throughput:    %.3f\n' "$(echo "$t_tr / $t_on" | bc -l)"
printf 'with the log / without it throughput:      %.3f\n' "$(echo "$t_on / $t_log" | bc -l)"
