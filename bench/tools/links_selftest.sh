#!/usr/bin/env bash
# bench/tools/links_selftest.sh: quick checks of bench/links.sh, run by
# scripts/test.sh (a few seconds): its syntax (bash -n), that bad arguments
# are refused with exit 2, and, when this runs as root with ip netns and tc,
# that a dry setup/teardown of 2 simulated hosts leaves no namespace behind,
# both when it ends normally and when it is killed with SIGTERM or SIGINT
# while the hosts are up; and the report's unit tests
# (tools/test_links_report.py). Prints SKIPPED (with the reason) for what it
# cannot run here. Runs nothing else: no training, no measurement.
set -euo pipefail
links=$(cd "$(dirname "$0")/.." && pwd)/links.sh
fail() { echo "links selftest FAILED: $*" >&2; exit 1; }

bash -n "$links" || fail "bash -n $links"
echo "ok: bash -n bench/links.sh"
if command -v shellcheck >/dev/null; then
	shellcheck "$links" "$0" || fail "shellcheck"
	echo "ok: shellcheck bench/links.sh bench/tools/links_selftest.sh"
else
	echo "SKIPPED: shellcheck is not installed (apt-get install shellcheck): links.sh not linted"
fi

# The report's arithmetic (bus bandwidth, shares, exposed time, failures).
py=${BENCH_PYTHON:-/usr/bin/python3}
if command -v "$py" >/dev/null; then
	res=$(PYTHONDONTWRITEBYTECODE=1 "$py" "$(dirname "$0")/test_links_report.py" 2>&1) || fail "tools/test_links_report.py: $res"
	echo "ok: tools/test_links_report.py"
else
	echo "SKIPPED: tools/test_links_report.py: no $py"
fi

# Bad arguments: exit 2 with a message naming the problem, before anything
# is built (these run as any user; the argument checks come first).
for args in "1gbit" "1gbyte 2" "1gbit 0" "1gbit x" "1gbit 2 --steps -1" "1gbit 2 --batch 0" "--hold 1gbit 2"; do
	rc=0
	# shellcheck disable=SC2086 # word splitting wanted
	msg=$(bash "$links" $args 2>&1 >/dev/null) || rc=$?
	[[ $rc -eq 2 ]] || fail "bench/links.sh $args: exit $rc, want 2"
	[[ $msg == *"bench/links.sh: "* ]] || fail "bench/links.sh $args: no message naming the problem: $msg"
done
echo "ok: bad arguments are refused with exit 2 and a message"

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIPPED: links.sh namespace setup/teardown checks need root (running as uid $(id -u))"
	exit 0
fi
if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1 || ! command -v tc >/dev/null; then
	echo "SKIPPED: links.sh namespace setup/teardown checks need ip netns and tc, missing here"
	exit 0
fi

# Root in a container without CAP_NET_ADMIN lists namespaces but cannot
# make one: probe with one namespace (and tc inside it) first.
probe=rtlinks-probe-$$
if ! ip netns add "$probe" 2>/dev/null; then
	echo "SKIPPED: links.sh namespace setup/teardown checks: cannot create a network namespace here (no CAP_NET_ADMIN?)"
	exit 0
fi
tc_ok=1
ip netns exec "$probe" tc qdisc add dev lo root tbf rate 1gbit burst 1mb latency 200ms 2>/dev/null || tc_ok=0
ip netns del "$probe"
if ((tc_ok == 0)); then
	echo "SKIPPED: links.sh namespace setup/teardown checks: tc cannot add a tbf qdisc here (sch_tbf missing?)"
	exit 0
fi

# left PID: the namespaces the links.sh run PID left behind.
left() { ip netns list | awk '{print $1}' | grep "^rtlinks-$1-" || true; }

out=$(bash "$links" --dry 1gbit 1 2>&1) || fail "dry run: $out"
pid_ns=$(grep -o 'rtlinks-[0-9]*-sw' <<<"$out" | head -1)
[[ -n $pid_ns ]] || fail "dry run did not say which namespaces it built: $out"
p=${pid_ns#rtlinks-}
p=${p%-sw}
[[ -z $(left "$p") ]] || fail "dry run left namespaces: $(left "$p")"
echo "ok: dry setup/teardown of 2 hosts leaves no namespace"

for sig in TERM INT; do
	tmp=$(mktemp)
	# Job control on for this job: without it bash starts background jobs
	# with SIGINT ignored, and an ignored signal cannot be trapped.
	set -m
	bash "$links" --dry --hold 1gbit 1 >"$tmp" 2>&1 &
	p=$!
	set +m
	deadline=$((SECONDS + 20))
	until grep -q "links: ready" "$tmp"; do
		kill -0 "$p" 2>/dev/null || fail "links.sh --dry --hold ended before it was ready: $(cat "$tmp")"
		((SECONDS < deadline)) || { kill -KILL "$p"; fail "links.sh --dry --hold not ready within 20 s"; }
		sleep 0.1
	done
	[[ $(left "$p" | wc -l) -eq 3 ]] || fail "want 3 namespaces (switch, 2 hosts) while up, have: $(left "$p")"
	kill -"$sig" "$p"
	deadline=$((SECONDS + 20))
	while kill -0 "$p" 2>/dev/null; do
		((SECONDS < deadline)) || { kill -TERM "$p"; fail "links.sh still running 20 s after SIG$sig"; }
		sleep 0.1
	done
	rc=0
	wait "$p" || rc=$?
	want=$([[ $sig == TERM ]] && echo 143 || echo 130)
	[[ $rc -eq $want ]] || fail "links.sh after SIG$sig exited $rc, want $want"
	[[ -z $(left "$p") ]] || fail "links.sh after SIG$sig left namespaces: $(left "$p")"
	rm -f "$tmp"
	echo "ok: SIG$sig while 2 hosts are up: exit $rc, no namespace left"
done
