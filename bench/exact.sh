#!/usr/bin/env bash
# bench/exact.sh: what exact reduction costs, side by side in one run, on
# mnist12-256 (MNIST 1 vs 2, 784-1000-1000-1, batch 256, one epoch):
# --reduction fast and --reduction exact, alternating, for
#   - 2 co-located workers (--local-workers 2, the shared-memory ring), the
#     configuration the default is decided on;
#   - the single-process trainer on 1 and 2 threads;
# and the kernels beside each other: FixedGemmTN against Sgemm (the weight
# gradient's shapes), and the shared-memory all-reduce of 7.1 MB as float32
# against the same elements as int64 (14.3 MB).
#
# Usage: bench/exact.sh [REPEATS]   (default 5; the median (and best) of REPEATS per row)
# Needs: Go. Prints Markdown to stdout; raw outputs in bench/results/exact-<stamp>/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
repeats=${1:-5}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${BENCH_RESULTS:-$root/bench/results}/exact-$stamp
mkdir -p "$out"
log() { printf '[exact %s] %s\n' "$(date -u +%T)" "$*" >&2; }

(cd "$root" && CGO_ENABLED=0 go build -o "$out/bin/" ./cmd/coordinator)
bin=$out/bin

# run NAME FLAGS...: one coordinator run of mnist12-256; prints samples/s
# and the model's SHA-256.
run() {
	local name=$1
	shift
	local d="$out/$name.$rep"
	"$bin/coordinator" --dataset mnist-1v2 --batch 256 --epochs 1 --seed 1 --out "$d" \
		--grpc-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 --metrics-addr "" --checkpoint-every 0 "$@" >"$d.log" 2>&1
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["samples_per_second"])' "$d/summary.json"
	sha256sum "$d/model.safetensors" | cut -c1-16 >"$d.sha"
}

rows=(
	"local2-fast|--local-workers 2 --reduction fast"
	"local2-exact|--local-workers 2 --reduction exact"
	"single1-fast|--single-process --threads 1 --reduction fast"
	"single1-exact|--single-process --threads 1 --reduction exact"
	"single2-fast|--single-process --threads 2 --reduction fast"
	"single2-exact|--single-process --threads 2 --reduction exact"
)
declare -A figs
for rep in $(seq "$repeats"); do
	for r in "${rows[@]}"; do
		name=${r%%|*}
		# shellcheck disable=SC2086 # the flags are words
		v=$(run "$name" ${r#*|})
		figs[$name]+="$v "
		log "rep $rep $name: $v samples/s"
	done
done

log "kernels: FixedGemmTN vs Sgemm"
(cd "$root" && go test -run '^$' -bench 'BenchmarkFixedGemmTN' -benchtime 20x ./pkg/linalg) >"$out/kernels.txt" 2>&1 || true
log "all-reduce: shared memory, float32 vs int64"
(cd "$root" && go test -run '^$' -bench 'BenchmarkAllReduce' -benchtime 20x ./pkg/allreduce/shmring) >"$out/allreduce.txt" 2>&1 || true

python3 - "$out" "$repeats" <<'EOF'
import glob, json, os, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
def figs(name):
    return [json.load(open(os.path.join(out, f"{name}.{i}", "summary.json")))["samples_per_second"] for i in range(1, reps + 1)]
def sha(name):
    return sorted({open(p).read().strip() for p in glob.glob(os.path.join(out, f"{name}.*.sha"))})
print(f"### exact reduction on mnist12-256 ({reps} runs each, median (best) samples/s)\n")
print("| configuration | fast | exact | exact / fast | model SHA-256 (fast; exact) |")
print("|---|---:|---:|---:|---|")
for cfg, label in [("local2", "--local-workers 2"), ("single1", "--single-process --threads 1"), ("single2", "--single-process --threads 2")]:
    f, e = figs(cfg + "-fast"), figs(cfg + "-exact")
    mf, me = statistics.median(f), statistics.median(e)
    print(f"| {label} | {mf:,.0f} ({max(f):,.0f}) | {me:,.0f} ({max(e):,.0f}) | {me/mf:.3f} | {','.join(sha(cfg+'-fast'))}; {','.join(sha(cfg+'-exact'))} |")
print()
for name in ("kernels.txt", "allreduce.txt"):
    print(f"```\n{open(os.path.join(out, name)).read().strip()}\n```\n")
EOF
log "raw outputs: $out"
