#!/usr/bin/env bash
# The linear scaling rule (Goyal et al. 2017) measured on ten-digit MNIST:
# 784-1000-1000-10 ReLU, softmax cross-entropy, SGD, 5 epochs, for several
# global batches with the learning rate left alone, scaled with the batch,
# and scaled with one epoch of linear warm-up. The batches above 256 run
# with --accumulate, so that the memory is that of a 256-row micro-batch.
#
#   bench/lecture/scaling.sh [OUT]        (default OUT: /tmp/scaling-runs)
#
# Writes OUT/<run>/ (metrics.csv, summary.json, ...), OUT/commands.txt and
# OUT/table.md (the table of docs/experiments.md). About 15 s an epoch per
# run with --threads 1 on a loaded 2-core machine: about 25 minutes in all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-/tmp/scaling-runs}
SEEDS=${SCALING_SEEDS:-"1 2"}
THREADS=${SCALING_THREADS:-1}
mkdir -p "$OUT/bin"
(cd "$ROOT" && go build -o "$OUT/bin/coordinator" ./cmd/coordinator)
touch "$OUT/commands.txt"

# run NAME FLAGS...: one single-process run into $OUT/NAME (a diverged run,
# which exits 1 on a non-finite loss, is kept and reported as such). A run
# whose log exists is not run again (remove OUT to start over).
run() {
	local name=$1
	shift
	[ -e "$OUT/$name.log" ] && return 0
	local cmd=(coordinator --single-process --threads "$THREADS" --dataset mnist --hidden 1000,1000 --epochs 5
		--checkpoint-every 0 --log-level warn --out "$OUT/$name" "$@")
	echo "${cmd[*]}" >>"$OUT/commands.txt"
	"$OUT/bin/${cmd[0]}" "${cmd[@]:1}" >"$OUT/$name.log" 2>&1 || echo "exit $?" >>"$OUT/$name.log"
}

for s in $SEEDS; do
	run "b64_lr0.1_s$s" --batch 64 --lr 0.1 --seed "$s"
	run "b256_lr0.1_s$s" --batch 256 --lr 0.1 --seed "$s"
	run "b256_lr0.4_s$s" --batch 256 --lr 0.4 --seed "$s"
	run "b512_lr0.1_s$s" --batch 512 --lr 0.1 --accumulate 2 --seed "$s"
	run "b512_lr0.8_s$s" --batch 512 --lr 0.8 --accumulate 2 --seed "$s"
	run "b512_lr0.8_warm118_s$s" --batch 512 --lr 0.8 --accumulate 2 --warmup-steps 118 --seed "$s"
	run "b1024_lr1.6_s$s" --batch 1024 --lr 1.6 --accumulate 4 --seed "$s"
	run "b1024_lr1.6_warm59_s$s" --batch 1024 --lr 1.6 --accumulate 4 --warmup-steps 59 --seed "$s"
	run "b2048_lr0.1_s$s" --batch 2048 --lr 0.1 --accumulate 8 --seed "$s"
	run "b2048_lr3.2_s$s" --batch 2048 --lr 3.2 --accumulate 8 --seed "$s"
	run "b2048_lr3.2_warm30_s$s" --batch 2048 --lr 3.2 --accumulate 8 --warmup-steps 30 --seed "$s"
done

# table.md: per run, the test accuracy and loss after each epoch (or how it ended).
{
	echo "| run | seed | steps | test accuracy, epochs 1..5 | final test loss | final train loss |"
	echo "|---|---|---|---|---|---|"
	for s in $SEEDS; do
		for r in b64_lr0.1 b256_lr0.1 b256_lr0.4 b512_lr0.1 b512_lr0.8 b512_lr0.8_warm118 b1024_lr1.6 b1024_lr1.6_warm59 \
			b2048_lr0.1 b2048_lr3.2 b2048_lr3.2_warm30; do
			m=$OUT/${r}_s$s/metrics.csv
			if ! grep -q '^exit ' "$OUT/${r}_s$s.log"; then
				awk -F, -v r="$r" -v s="$s" 'NR > 1 { acc = acc sep sprintf("%.4f", $7); sep = ", "; st = $2; tl = $6; trl = $4 }
					END { printf "| %s | %s | %s | %s | %.4f | %.4f |\n", r, s, st, acc, tl, trl }' "$m"
			else
				echo "| $r | $s | | diverged: $(grep -o 'err="[^"]*' "$OUT/${r}_s$s.log" | head -1 | cut -c6-) | | |"
			fi
		done
	done
} >"$OUT/table.md"
cat "$OUT/table.md"
