#!/usr/bin/python3
"""Raw outputs of bench/links.sh -> Markdown (stdout).

Usage: links_report.py RESULTS_DIR [COORDINATOR FLAGS...]

RESULTS_DIR holds one folder per link rate and worker count (<rate>-w<N>),
each with meta.json, ours/ (exit_code, coordinator.log as JSON lines,
out/summary.json, out/model.safetensors) and ddp/ (exit_code, rank0.json),
or ours.K/ and ddp.K/ for repeats K = 1, 2, ...: the table then shows the
median of each figure over the repeats (ours / DDP: of the medians).

Per step, ours: compute and all-reduce are the coordinator's
"distributed run" log line (the slowest worker's compute and all-reduce,
averaged over the steps); exposed all-reduce is a *_ms_per_step key of that
line containing "exposed", else allreduce_exposed_seconds of summary.json
(seconds over the run) divided by the steps, else n/a.
Bus bandwidth as nccl-tests defines it: busBW = 2(N-1)/N x bytes / time.
"wire" uses the bytes a worker really sent per step (payload, no headers),
which is 2(N-1)/N x the buffer for an f32 ring; "f32-equivalent" uses the
whole f32 gradient buffer (parameters of model.safetensors + 3 trailing
scalars, see pkg/engine.Trailing), so it exceeds the wire figure (even the
link rate) when the wire carries fewer bytes (--wire bf16,
--skip-zero-inputs). The share divides by the tbf rate. With buckets
all-reduced during backward, the all-reduce time is the span from the first
bucket's start to the last one's end, which includes the wire's waits for
backward: then busBW is a lower bound of the rate the wire ran at.
"""

import json
import math
import os
import re
import struct
import sys

TRAILING = 3  # pkg/engine.Trailing: loss sum, correct count, sample count


def read_json(path):
    """The JSON object in path, or None when the file is missing or corrupt."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def last_json_line(path):
    """The last line of path that parses as a JSON object, or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            return rec
    return None


def exit_code(path):
    """The exit code written by links.sh, or None."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def dist_line(log):
    """The coordinator's "distributed run" log record (JSON logs), or {}."""
    try:
        with open(log) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("msg") == "distributed run":
                    return rec
    except OSError:
        pass
    return {}


def why(path, limit=240, last=False):
    """The line of a failed run's log that says why, shortened to limit
    characters: the first line naming an error (a Go flag error comes before
    the usage text), else (or with last, for Python's tracebacks) the last
    line; '' when there is none."""
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return ""
    for line in ([] if last else lines):
        low = line.lower()
        if any(w in low for w in ("error", "invalid", "not defined", "failed", "cannot", "traceback")):
            return line[:limit]
    return lines[-1][:limit] if lines else ""


def param_count(path):
    """Number of elements over the tensors of a safetensors file, or None."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 << 20:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error):
        return None
    total = 0
    for name, t in header.items():
        if name == "__metadata__":
            continue
        total += math.prod(t["shape"])
    return total


def exposed_ms(line, summary):
    """Exposed all-reduce ms per step, or None when the run does not report it."""
    for k, v in line.items():
        if "exposed" in k and k.endswith("_ms_per_step") and isinstance(v, (int, float)):
            return float(v)
    if summary and isinstance(summary.get("allreduce_exposed_seconds"), (int, float)) and summary.get("steps"):
        return 1e3 * summary["allreduce_exposed_seconds"] / summary["steps"]
    return None


def fmt(v, spec, suffix=""):
    return "n/a" if v is None else format(v, spec) + suffix


def measure(d, ours_dir, ddp_dir, n, rate_bps):
    """The figures of one repeat (our run in d/ours_dir, DDP's in d/ddp_dir)
    as a dict (None where a figure is missing) and its notes."""
    ours, ddp = os.path.join(d, ours_dir), os.path.join(d, ddp_dir)
    notes = []
    summary = None
    if exit_code(os.path.join(ours, "exit_code")) == 0:
        summary = read_json(os.path.join(ours, "out", "summary.json"))
    else:
        log = os.path.join(ours, "coordinator.log")
        notes.append("ours failed (exit %s): see %s; it says: `%s`" % (
            exit_code(os.path.join(ours, "exit_code")), log, why(log)))
    peer = None
    if exit_code(os.path.join(ddp, "exit_code")) == 0:
        peer = last_json_line(os.path.join(ddp, "rank0.json"))
    else:
        said = ""
        errs = sorted(e for e in os.listdir(ddp) if re.fullmatch(r"rank[0-9]+\.err", e)) if os.path.isdir(ddp) else []
        for e in errs:
            w = why(os.path.join(ddp, e), last=True)
            if w:
                said = "; %s says: `%s`" % (e[:-4].replace("rank", "rank "), w)
                break
        notes.append("DDP failed (exit %s): see %s%s" % (exit_code(os.path.join(ddp, "exit_code")), ddp, said))
    line = dist_line(os.path.join(ours, "coordinator.log")) if summary else {}
    v = {
        "ours": summary.get("samples_per_second") if summary else None,
        "ddp": peer.get("samples_per_second") if peer else None,
        "compute": line.get("compute_ms_per_step"),
        "allreduce": line.get("allreduce_ms_per_step"),
        "sent": line.get("bytes_sent_per_worker_per_step"),
        "exposed": exposed_ms(line, summary) if summary else None,
        "wire_bw": None,
        "grad_bw": None,
    }
    ar = v["allreduce"]
    if ar and n > 1:
        if v["sent"]:
            v["wire_bw"] = 8 * v["sent"] / (ar / 1e3)
        params = param_count(os.path.join(ours, "out", "model.safetensors"))
        if params:
            v["grad_bw"] = 2 * (n - 1) / n * 4 * (params + TRAILING) * 8 / (ar / 1e3)
    if summary:
        notes.append("ours: %s steps, %s samples, test accuracy %.4f" % (
            summary.get("steps"), summary.get("samples"), summary.get("test_accuracy", float("nan"))))
    if peer:
        notes.append("DDP: %s steps, %s samples, test accuracy %.4f" % (
            peer.get("steps"), peer.get("samples_trained"), peer.get("test_accuracy", float("nan"))))
    return v, notes


def repeats(d):
    """The (ours, ddp) folder pairs of d: ours/ddp, or ours.K/ddp.K for K = 1, 2, ..."""
    if os.path.isdir(os.path.join(d, "ours")) or os.path.isdir(os.path.join(d, "ddp")):
        return [("ours", "ddp")]
    ks = sorted(int(e.split(".", 1)[1]) for e in os.listdir(d) if re.fullmatch(r"(ours|ddp)\.[0-9]+", e))
    return [("ours.%d" % k, "ddp.%d" % k) for k in sorted(set(ks))]


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def row(d):
    """One table row (the median over the repeats) and its notes for the folder d."""
    meta = read_json(os.path.join(d, "meta.json")) or {}
    n, rate_bps = meta.get("workers", 0), meta.get("rate_bps", 0)
    runs = [measure(d, o, p, n, rate_bps) for o, p in repeats(d)]
    tag = "%s, %s worker%s" % (meta.get("rate"), n, "" if n == 1 else "s")
    notes = []
    for i, (_, ns) in enumerate(runs):
        notes += ["%s%s: %s" % (tag, " (repeat %d)" % (i + 1) if len(runs) > 1 else "", x) for x in ns]
    m = {k: median(v[k] for v, _ in runs) for k in (runs[0][0] if runs else {})}
    if len(runs) > 1:
        notes.append("%s: samples/s of the %d repeats, ours %s, DDP %s (the table shows medians)" % (
            tag, len(runs), ", ".join(fmt(v["ours"], ",.0f") for v, _ in runs),
            ", ".join(fmt(v["ddp"], ",.0f") for v, _ in runs)))
    if not runs:
        notes.append("%s: no runs in %s" % (tag, d))
    ours_sps, ddp_sps = m.get("ours"), m.get("ddp")
    ratio = ours_sps / ddp_sps if ours_sps and ddp_sps else None
    wire_bw, grad_bw, sent = m.get("wire_bw"), m.get("grad_bw"), m.get("sent")
    share = (lambda bw: 100 * bw / rate_bps if bw and rate_bps else None)
    cells = [
        meta.get("rate", os.path.basename(d)), str(n),
        fmt(ours_sps, ",.0f"), fmt(ddp_sps, ",.0f"), fmt(ratio, ".2f", "x"),
        fmt(m.get("compute"), ".1f"), fmt(m.get("allreduce"), ".1f"), fmt(m.get("exposed"), ".1f"),
        fmt(sent / 1e6 if sent else None, ".2f"),
        fmt(wire_bw / 1e9 if wire_bw else None, ".2f") + " (" + fmt(share(wire_bw), ".0f", "%") + ")",
        fmt(grad_bw / 1e9 if grad_bw else None, ".2f") + " (" + fmt(share(grad_bw), ".0f", "%") + ")",
    ]
    return "| " + " | ".join(cells) + " |", notes


def main(argv):
    if len(argv) < 2 or not os.path.isdir(argv[1]):
        print("usage: links_report.py RESULTS_DIR [COORDINATOR FLAGS...]", file=sys.stderr)
        return 2
    out = argv[1]
    dirs = [os.path.join(out, e) for e in os.listdir(out) if os.path.isfile(os.path.join(out, e, "meta.json"))]
    dirs.sort(key=lambda d: ((read_json(os.path.join(d, "meta.json")) or {}).get("rate_bps", 0),
                             (read_json(os.path.join(d, "meta.json")) or {}).get("workers", 0)))
    if not dirs:
        print("links_report.py: no <rate>-w<N>/meta.json under %s" % out, file=sys.stderr)
        return 1
    meta0 = read_json(os.path.join(dirs[0], "meta.json")) or {}
    print("## Links: ours vs PyTorch DDP on simulated hosts (tbf)\n")
    print("mnist12, batch %s, %s; our coordinator on host 0, a worker on each of hosts 1..N (%s thread each), "
          "DDP gloo one rank on each of hosts 1..N; extra coordinator flags: %s\n" % (
              meta0.get("batch"), "the first %s steps" % meta0["steps"] if meta0.get("steps") else "one epoch",
              meta0.get("threads"), " ".join(argv[2:]) or "none"))
    print("| link | workers | ours samples/s | DDP samples/s | ours / DDP | compute ms/step | all-reduce ms/step "
          "| exposed all-reduce ms/step | MB sent per worker per step | busBW Gbit/s, wire (share of link) "
          "| busBW Gbit/s, f32-equivalent (share of link) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for d in dirs:
        r, n = row(d)
        print(r)
        notes += n
    print()
    try:
        with open(os.path.join(out, "notes.txt")) as f:
            notes += [line.lstrip("# ").rstrip() for line in f if line.strip()]
    except OSError:
        pass
    for n in notes:
        print("- " + n)
    print("- raw outputs: " + out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
