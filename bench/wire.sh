#!/usr/bin/env bash
# Config "wire": loopback TCP bandwidth with iperf3 (Debian package iperf3).
# Runs one stream for SECONDS, then --bidir for SECONDS, against an
# iperf3 server on 127.0.0.1 (stopped on exit), and prints one JSON line per run:
#   {"config":"wire","peer":"iperf3","mode":"single"|"bidir","gbits_per_second":...}
# For --bidir, gbits_per_second is the sum of both directions and each
# direction is given too. The raw iperf3 JSON goes to $WIRE_RAW_DIR if set.
# Usage: bench/wire.sh [SECONDS]   (default 3)
set -euo pipefail

seconds="${1:-3}"
py=/usr/bin/python3
command -v iperf3 >/dev/null || { echo "wire.sh: iperf3 is not installed: apt-get install -y iperf3" >&2; exit 2; }
[[ -x "$py" ]] || { echo "wire.sh: $py is missing: apt-get install -y python3" >&2; exit 2; }

if [[ -n "${WIRE_RAW_DIR:-}" ]]; then
	raw="$WIRE_RAW_DIR"
	mkdir -p "$raw"
	tmp=""
else
	raw="$(mktemp -d)"
	tmp="$raw"
fi
server_pid=""
cleanup() {
	if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
	if [[ -n "$tmp" ]]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT

port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# iperf3 -J exits 0 even when it cannot connect, so success is judged by the
# JSON: no "error" key and a received sum.
ok_json() {
	"$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if "error" not in d and "sum_received" in d.get("end",{}) else 1)' "$1" 2>/dev/null
}

iperf3 -s -B 127.0.0.1 -p "$port" >"$raw/iperf3-server.log" 2>&1 &
server_pid=$!

run() { # run MODE [iperf3 client flags...]
	local mode="$1"
	shift
	local deadline=$((SECONDS + 10))
	until iperf3 -c 127.0.0.1 -p "$port" -t "$seconds" -J "$@" >"$raw/iperf3-$mode.json" 2>"$raw/iperf3-$mode.err" && ok_json "$raw/iperf3-$mode.json"; do
		if ((SECONDS >= deadline)); then
			echo "wire.sh: iperf3 client ($mode) failed: $(cat "$raw/iperf3-$mode.err" "$raw/iperf3-$mode.json")" >&2
			exit 1
		fi
		sleep 0.2 # the server is not listening yet; poll until the deadline
	done
	"$py" - "$mode" "$raw/iperf3-$mode.json" <<'PY'
import json, sys
mode, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    end = json.load(f)["end"]
fwd = end["sum_received"]["bits_per_second"] / 1e9
rec = {"config": "wire", "peer": "iperf3", "mode": mode}
if "sum_received_bidir_reverse" in end:
    rev = end["sum_received_bidir_reverse"]["bits_per_second"] / 1e9
    rec.update(gbits_per_second=fwd + rev, forward_gbits_per_second=fwd, reverse_gbits_per_second=rev)
else:
    rec["gbits_per_second"] = fwd
print(json.dumps(rec, sort_keys=True))
PY
}

run single
run bidir --bidir
