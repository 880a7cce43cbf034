#!/usr/bin/python3
"""Turn the raw outputs of bench/run.sh into Markdown tables.

Usage:
  report.py machine DIR             the machine section (DIR/machine.json)
  report.py CONFIG DIR              one config's section from DIR/CONFIG/
  report.py gobench FILE            parse `go test -bench` output to JSON lines

Files read in DIR/CONFIG/ (written by run.sh):
  commands.txt       the exact commands, one a line
  notes.txt          free-form notes (e.g. "our side missing: ...")
  ours*.txt|json     our side's raw output, peer*.json the peer's JSON lines
Ratios are ours / peer: above 1 means we are faster (or, for RSS and
seconds, bigger / slower).
"""

import json
import os
import re
import statistics
import sys

BENCH_LINE = re.compile(r"^(Benchmark\S*)\s+(\d+)\s+(.*)$")
RESULT_ONLY = re.compile(r"^\s*(\d+)\s+(\d.*)$")
PROCS = re.compile(r"-(\d+)$")


def parse_gobench(text):
    """Parse `go test -bench` output into dicts {name, procs, iterations, metrics}.

    Handles result lines split from their name line (a benchmark that logs
    prints its name first under -v), ignores every other line, and strips the
    -GOMAXPROCS suffix from the name into procs.
    """
    out = []
    pending = None
    for line in text.splitlines():
        line = line.rstrip()
        m = BENCH_LINE.match(line)
        if m:
            name, iters, rest = m.groups()
        else:
            r = RESULT_ONLY.match(line)
            if pending and r:
                name, (iters, rest) = pending, r.groups()
            else:
                if re.match(r"^Benchmark\S*$", line.strip()):
                    pending = line.strip()
                continue
        pending = None
        fields = rest.split()
        metrics = {}
        for i in range(0, len(fields) - 1, 2):
            try:
                metrics[fields[i + 1]] = float(fields[i])
            except ValueError:
                break
        if not metrics:
            continue
        procs = None
        pm = PROCS.search(name)
        if pm:
            procs = int(pm.group(1))
            name = name[:pm.start()]
        out.append({"name": name, "procs": procs, "iterations": int(iters), "metrics": metrics})
    return out


def read_json_lines(path):
    """All JSON objects in a file of JSON lines; [] if the file is missing."""
    if not os.path.isfile(path):
        return []
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    return recs


def read_json(path):
    """One JSON object, or None if the file is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    """A file's text, or "" if it cannot be read."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def fmt(v, digits=3):
    """Format a number for a table cell; None -> 'n/a'."""
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    return ("{:.%dg}" % digits).format(v)


def ratio(ours, peer):
    """ours / peer to two decimals, 'n/a' when either side is missing."""
    if ours is None or peer in (None, 0):
        return "n/a"
    return "%.2f" % (ours / peer)


def table(rows):
    """rows: (row, metric, ours, peer) -> Markdown lines."""
    lines = ["| row | metric | ours | peer | ours / peer |", "|---|---|---:|---:|---:|"]
    for row, metric, ours, peer in rows:
        lines.append("| %s | %s | %s | %s | %s |" % (row, metric, fmt(ours), fmt(peer), ratio(ours, peer)))
    return lines


def section(config, d, rows, extra=None):
    """A config's Markdown: heading, table, notes, extra lines, commands."""
    lines = ["### %s" % config, ""]
    lines += table(rows)
    notes = read_text(os.path.join(d, "notes.txt")).strip()
    if notes:
        lines += ["", "Notes:", ""] + ["- " + n for n in notes.splitlines() if n.strip()]
    if extra:
        lines += [""] + extra
    cmds = read_text(os.path.join(d, "commands.txt")).strip()
    lines += ["", "Commands run (in this order, from the repository root):", "", "```sh", cmds, "```", ""]
    return lines


def mlp_step(d):
    results = [r for r in parse_gobench(read_text(os.path.join(d, "ours.txt")))
               if r["name"] == "BenchmarkMLPStep" and "samples/s" in r["metrics"]]
    ours = [r["metrics"]["samples/s"] for r in results]
    peers = {r["dtype"]: r for r in read_json_lines(os.path.join(d, "peer.json"))}
    p32 = peers.get("float32", {})
    p64 = peers.get("float64", {})
    kernel = sorted(set(re.findall(r": kernel (\S+)", read_text(os.path.join(d, "ours.txt")))))
    rows = [
        ("BenchmarkMLPStep vs PyTorch float32, 1 thread", "samples/s, best of %d / %d" % (len(ours), p32.get("repeats", 0)),
         max(ours) if ours else None, p32.get("samples_per_second_best")),
        ("", "samples/s, median", statistics.median(ours) if ours else None, p32.get("samples_per_second_median")),
    ]
    if p64:
        rows.append(("PyTorch float64, 1 thread (information: ours is float32)", "samples/s, best",
                     None, p64.get("samples_per_second_best")))
    blas = p32.get("blas") or {}
    kern = ["%s %s (%s), %s thread(s)" % (t.get("internal_api"), t.get("version"), t.get("architecture"), t.get("num_threads"))
            for t in blas.get("threadpools", []) if t.get("internal_api") == "openblas"]
    extra = ["PyTorch BLAS: %s. Our kernel (benchmark log): %s." % ("; ".join(kern) or json.dumps(blas), ", ".join(kernel) or "not logged"),
             "Our runs (samples/s): %s." % (", ".join(fmt(x) for x in ours) or "none")]
    return section("mlp-step", d, rows, extra)


def mnist_rows(d, variants, metric_rows):
    """Rows for the MNIST configs: ours from summary.json and the rusage wrapper,
    the peer from its JSON line and the same wrapper."""
    rows = []
    for label, ours_name, peer_name in variants:
        ru = read_json(os.path.join(d, ours_name + ".rusage.json")) or {}
        s = read_json(os.path.join(d, ours_name, "summary.json")) or {}
        if ru.get("exit_status") != 0:
            s, ru = {}, {}  # a failed run's summary (e.g. 0 samples/s) is no figure
        p = (read_json_lines(os.path.join(d, peer_name + ".json")) or [{}])[0]
        pru = read_json(os.path.join(d, peer_name + ".rusage.json")) or {}
        for metric, okey, pkey in metric_rows:
            o = ru.get(okey[3:]) if okey.startswith("ru.") else s.get(okey)
            q = pru.get(pkey[3:]) if pkey.startswith("ru.") else p.get(pkey)
            rows.append((label, metric, o, q))
            label = ""
    return rows


MNIST_METRICS = [
    ("test accuracy", "test_accuracy", "test_accuracy"),
    ("samples/s (training)", "samples_per_second", "samples_per_second"),
    ("training seconds (ours: summary wall_seconds)", "wall_seconds", "train_seconds"),
    ("whole command seconds", "ru.wall_seconds", "ru.wall_seconds"),
    ("peak RSS MB (largest process)", "ru.peak_rss_mb", "ru.peak_rss_mb"),
]


def mnist12(d):
    variants = [("coordinator vs PyTorch, 1 process", "ours-single", "peer-single"),
                ("--local-workers 1 vs DDP gloo 1 rank", "ours-lw1", "peer-ddp1"),
                ("--local-workers 2 vs DDP gloo 2 ranks", "ours-lw2", "peer-ddp2")]
    return section("mnist12", d, mnist_rows(d, variants, MNIST_METRICS))


def mnist12_256(d):
    variants = [("--local-workers 1 vs DDP gloo 1 rank", "ours-lw1", "peer-ddp1"),
                ("--local-workers 2 vs DDP gloo 2 ranks", "ours-lw2", "peer-ddp2")]
    rows = mnist_rows(d, variants, MNIST_METRICS[:2])

    def eff(ours_or_peer):
        r = [x[2 if ours_or_peer else 3] for x in rows if x[1].startswith("samples/s")]
        if len(r) == 2 and r[0] and r[1]:
            return r[1] / (2 * r[0])
        return None

    rows.append(("scaling 1 -> 2", "efficiency = sps(2) / (2 x sps(1))", eff(True), eff(False)))
    return section("mnist12-256", d, rows)


def allreduce(d):
    ours = {}
    for r in parse_gobench(read_text(os.path.join(d, "ours.txt"))):
        m = re.match(r"^BenchmarkAllReduce/transport=grpc/n=(\d+)/mb=([0-9.]+)$", r["name"])
        if m and "busGB/s" in r["metrics"]:
            ours[(int(m.group(1)), round(float(m.group(2)), 3))] = r["metrics"]
    rows = []
    for p in read_json_lines(os.path.join(d, "peer.json")):
        key = (p["n"], round(float(p["mb"]), 3))
        o = ours.pop(key, {})
        rows.append(("N=%d, %g MB" % key, "busBW GB/s", o.get("busGB/s"), p["busbw_gbs"]))
    for key, o in sorted(ours.items()):
        rows.append(("N=%d, %g MB" % key, "busBW GB/s (no peer row)", o.get("busGB/s"), None))
    extra = ["busBW = algBW x 2(N-1)/N, algBW = bytes / time, 1 GB = 1e9 bytes (nccl-tests). "
             "Peer time is the slowest rank's mean over the timed iterations."]
    return section("allreduce", d, rows, extra)


def wire(d):
    rows = []
    for p in read_json_lines(os.path.join(d, "peer.json")):
        rows.append(("iperf3 %s, 127.0.0.1" % p["mode"], "Gbit/s", None, p["gbits_per_second"]))
        if "forward_gbits_per_second" in p:
            rows.append(("", "Gbit/s each way", None, "%.1f + %.1f" % (p["forward_gbits_per_second"], p["reverse_gbits_per_second"])))
    return section("wire", d, rows, ["Peer only: the loopback ceiling that the all-reduce's wire traffic runs against."])


def machine(d):
    m = read_json(os.path.join(d, "machine.json")) or {}
    lines = ["## Machine", ""]
    for k in ("date", "cpu", "cores", "kernel", "go", "torch", "openblas", "git"):
        if k in m:
            lines.append("- %s: %s" % (k, m[k]))
    return lines + [""]


SECTIONS = {"mlp-step": mlp_step, "mnist12": mnist12, "mnist12-256": mnist12_256,
            "allreduce": allreduce, "wire": wire}


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    what, path = argv[1], argv[2]
    if what == "gobench":
        for r in parse_gobench(read_text(path)):
            print(json.dumps(r, sort_keys=True))
        return 0
    if what == "machine":
        print("\n".join(machine(path)))
        return 0
    if what not in SECTIONS:
        print("report.py: unknown config %r (want one of %s)" % (what, ", ".join(SECTIONS)), file=sys.stderr)
        return 2
    print("\n".join(SECTIONS[what](os.path.join(path, what))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
