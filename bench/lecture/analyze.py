#!/usr/bin/python3
"""Tables and figures for docs/experiments.md from the runs of bench/lecture/run.sh.

Reads only what the trainer wrote (metrics.csv, summary.json, model.safetensors)
and the data split written by bench/lecture/export; prints Markdown tables to
stdout and draws PNG figures into --img. Every number comes from those files.

  /usr/bin/python3 bench/lecture/analyze.py --runs /tmp/lecture-runs --img docs/img
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

REACH = 0.9  # "converged" = running train accuracy of an epoch reaches this


def load_run(d):
    m = stio.read_metrics(os.path.join(d, "metrics.csv"))
    with open(os.path.join(d, "summary.json")) as f:
        s = json.load(f)
    return m, s


def runs(pattern):
    """{seed: (metrics, summary)} for the run directories matching pattern (with _s<seed>)."""
    out = {}
    for d in glob.glob(pattern):
        mm = re.search(r"_s(\d+)$", d)
        if mm and os.path.exists(os.path.join(d, "summary.json")):
            out[int(mm.group(1))] = load_run(d)
    return dict(sorted(out.items()))


def first_epoch(m, key, thr):
    for r in m:
        if r[key] >= thr:
            return int(r["epoch"])
    return None


def stats_row(label, rs):
    te = [m[-1]["test_accuracy"] for m, _ in rs.values()]
    tr = [m[-1]["train_accuracy"] for m, _ in rs.values()]
    tl = [m[-1]["train_loss"] for m, _ in rs.values()]
    reach = [first_epoch(m, "train_accuracy", REACH) for m, _ in rs.values()]
    hit = [e for e in reach if e is not None]
    steps = {s["steps"] for _, s in rs.values()}
    return "| %s | %d | %s | %.3f | %.3f / %.3f / %.3f | %.4f | %d/%d | %s |" % (
        label, len(rs), "/".join(str(x) for x in sorted(steps)), np.mean(tr), np.mean(te), np.min(te), np.max(te),
        np.mean(tl), len(hit), len(rs), ("%g" % np.median(hit)) if hit else "-")


HEAD = ("| run | seeds | updates | train acc (mean) | test acc mean / min / max | train loss (mean) "
        "| seeds reaching %d%% train acc | median epoch to reach it |\n"
        "|---|---|---|---|---|---|---|---|" % int(REACH * 100))


def gaussian_tables(root):
    g = os.path.join(root, "gaussian")
    print("### Bias (SGD lr 0.5, batch 16, 100 epochs)\n")
    print(HEAD)
    for b in ("off", "on"):
        print(stats_row("bias %s" % b, runs(os.path.join(g, "bias", b + "_s*"))))
    print("\n### Learning rate (bias on, SGD, batch 16, 100 epochs)\n")
    print(HEAD)
    for lr in ("0.05", "0.2", "0.5", "1", "2", "5"):
        print(stats_row("lr %s" % lr, runs(os.path.join(g, "lr", "lr%s_s*" % lr))))
    print("\n### Batch modes and shuffling (bias on, SGD, 100 epochs)\n")
    print(HEAD)
    for lr in ("0.05", "0.5"):
        for b, name in (("0", "full batch"), ("1", "single sample"), ("16", "mini-batch 16")):
            print(stats_row("%s, lr %s, shuffle epoch" % (name, lr), runs(os.path.join(g, "batch", "b%s_lr%s_s*" % (b, lr)))))
    for b, name in (("1", "single sample"), ("16", "mini-batch 16")):
        print(stats_row("%s, lr 0.5, shuffle once" % name, runs(os.path.join(g, "shuffle", "once_b%s_s*" % b))))
    print("\n### Optimizers (bias on, batch 16, 100 epochs; momentum 0.9; Adam betas 0.9/0.999)\n")
    print(HEAD)
    for opt in ("sgd", "momentum", "adam"):
        for lr in ("0.05", "0.5"):
            print(stats_row("%s lr %s" % (opt, lr), runs(os.path.join(g, "opt", "%s_lr%s_s*" % (opt, lr)))))
    d = os.path.join(g, "dist", "on_s1_w2")
    if os.path.exists(os.path.join(d, "metrics.csv")):
        a = stio.read_metrics(os.path.join(d, "metrics.csv"))
        b = stio.read_metrics(os.path.join(g, "bias", "on_s1", "metrics.csv"))
        diff = max(abs(x[k] - y[k]) for x, y in zip(a, b)
                   for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"))
        pa, _ = stio.read_safetensors(os.path.join(d, "model.safetensors"))
        pb, _ = stio.read_safetensors(os.path.join(g, "bias", "on_s1", "model.safetensors"))
        wd = max(float(np.max(np.abs(pa[k] - pb[k]))) for k in pa)
        print("\n### 2 workers vs single process (seed 1, bias on)\n")
        print("epochs compared: %d; largest |difference| of any per-epoch loss/accuracy: %.3g; "
              "largest |difference| of a final weight: %.3g; final test accuracy %.3f (2 workers) vs %.3f"
              % (len(a), diff, wd, a[-1]["test_accuracy"], b[-1]["test_accuracy"]))


def net_out(p, X):
    h = X @ p["layers.0.weight"].T
    if "layers.0.bias" in p:
        h = h + p["layers.0.bias"]
    h = np.tanh(h)
    t = h @ p["layers.1.weight"].T
    if "layers.1.bias" in p:
        t = t + p["layers.1.bias"]
    return 1 / (1 + np.exp(-t[:, 0]))


def boundary_figure(plt, root, img, seed=1):
    ex = os.path.join(root, "export_s%d" % seed)
    subprocess.run([os.path.join(root, "bin", "export"), "--seed", str(seed), "--epochs", "1", "--out", ex],
                   check=True, stderr=subprocess.DEVNULL)
    Xtr, ytr = stio.read_xy(os.path.join(ex, "train.csv"))
    Xte, yte = stio.read_xy(os.path.join(ex, "test.csv"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
    lo, hi = np.minimum(Xtr.min(0), Xte.min(0)) - 0.5, np.maximum(Xtr.max(0), Xte.max(0)) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    grid = np.c_[gx.ravel(), gy.ravel()].astype(np.float32)
    for ax, b in zip(axes, ("off", "on")):
        d = os.path.join(root, "gaussian", "bias", "%s_s%d" % (b, seed))
        p, _ = stio.read_safetensors(os.path.join(d, "model.safetensors"))
        m = stio.read_metrics(os.path.join(d, "metrics.csv"))
        z = net_out(p, grid).reshape(gx.shape)
        cs = ax.contourf(gx, gy, z, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
        ax.contour(gx, gy, z, levels=[0.5], colors="k", linewidths=2)
        # The two hidden units' lines W1[j] x + b1[j] = 0.
        W, bb = p["layers.0.weight"], p.get("layers.0.bias", np.zeros(p["layers.0.weight"].shape[0]))
        xs = np.linspace(lo[0], hi[0], 2)
        for j in range(W.shape[0]):
            if abs(W[j, 1]) > 1e-6:
                ax.plot(xs, -(W[j, 0] * xs + bb[j]) / W[j, 1], "--", color="dimgray", lw=1)
        for c, col in ((0, "tab:blue"), (1, "tab:red")):
            ax.scatter(*Xtr[ytr == c].T, s=14, c=col, marker="o", edgecolors="none", label="train class %d" % c)
            ax.scatter(*Xte[yte == c].T, s=40, c=col, marker="x", label="test class %d" % c)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        yd = net_out(p, np.vstack([Xtr, Xte]))
        ax.set_title("bias %s: train acc %.3f, test acc %.3f after epoch %d\noutput y on the 200 samples: %.3f .. %.3f" % (
            b, m[-1]["train_accuracy"], m[-1]["test_accuracy"], int(m[-1]["epoch"]), yd.min(), yd.max()), fontsize=10)
        ax.set_xlabel("x0")
    axes[0].set_ylabel("x1")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.subplots_adjust(top=0.84, left=0.06, right=0.86, wspace=0.08)
    fig.colorbar(cs, cax=fig.add_axes([0.88, 0.11, 0.015, 0.73]),
                 label="network output y (black: y = 0.5; dashed: hidden units' lines)")
    fig.suptitle("2-2-1 tanh/sigmoid/MSE on the Gaussian set, seed %d, SGD lr 0.5, batch 16, 100 epochs" % seed)
    path = os.path.join(img, "gaussian_decision_boundary_seed1.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def overlay_figure(plt, root, img, name, title, series):
    """series: [(label, run dir)]; train loss vs epoch and vs update step, test accuracy vs epoch."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for label, d in series:
        m = stio.read_metrics(os.path.join(root, "gaussian", d, "metrics.csv"))
        ep = [r["epoch"] for r in m]
        axes[0].plot(ep, [r["train_loss"] for r in m], label=label)
        axes[1].plot([r["step"] for r in m], [r["train_loss"] for r in m], label=label)
        axes[2].plot(ep, [r["test_accuracy"] for r in m], label=label)
    axes[0].set(xlabel="epoch", ylabel="train loss (running mean over the epoch)", yscale="log")
    axes[1].set(xlabel="update step", ylabel="train loss", xscale="log", yscale="log")
    axes[2].set(xlabel="epoch", ylabel="test accuracy", ylim=(0.4, 1.0))
    axes[2].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = os.path.join(img, name)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def seeds_figure(plt, root, img):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for b, col in (("off", "tab:red"), ("on", "tab:blue")):
        for i, (seed, (m, _)) in enumerate(runs(os.path.join(root, "gaussian", "bias", b + "_s*")).items()):
            ep = [r["epoch"] for r in m]
            lab = "bias %s" % b if i == 0 else None
            axes[0].plot(ep, [r["train_loss"] for r in m], color=col, alpha=0.6, lw=1, label=lab)
            axes[1].plot(ep, [r["test_accuracy"] for r in m], color=col, alpha=0.6, lw=1, label=lab)
    axes[0].set(xlabel="epoch", ylabel="train loss (MSE)", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="test accuracy")
    axes[1].legend()
    fig.suptitle("10 seeds (data, split, init and order all change with the seed), SGD lr 0.5, batch 16")
    fig.tight_layout()
    path = os.path.join(img, "gaussian_seeds_bias_off_on.png")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def mnist_table(root):
    d = os.path.join(root, "mnist")
    if not os.path.isdir(d):
        return
    print("\n### MNIST 1 vs 2\n")
    print("| run | network | params | epoch 1 test acc | epoch 5 test acc | best test acc (epoch) "
          "| train s/epoch (mean) | samples/s | process wall, max RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("default_e5", "workers2_e5", "hidden16_e5", "linear_e5"):
        rd = os.path.join(d, name)
        if not os.path.exists(os.path.join(rd, "summary.json")):
            continue
        m, s = load_run(rd)
        hidden = [int(h) for h in s["config"]["hidden"].split(",") if h]
        widths = [784] + hidden + [1]
        params = sum(widths[i] * widths[i + 1] + widths[i + 1] for i in range(len(widths) - 1))
        best = max(m, key=lambda r: r["test_accuracy"])
        el = [r["elapsed_seconds"] for r in m]
        per = np.mean(np.diff([0.0] + el))
        tfile = os.path.join(d, name + ".time")
        t = open(tfile).read().strip().splitlines()[-1] if os.path.exists(tfile) else "-"
        print("| %s (world size %d) | %s | %d | %.4f | %.4f | %.4f (%d) | %.2f | %.0f | %s |" % (
            name, s["world_size"], "-".join(map(str, widths)), params, m[0]["test_accuracy"],
            m[-1]["test_accuracy"], best["test_accuracy"], int(best["epoch"]), per, s["samples_per_second"], t))
    a, b = os.path.join(d, "default_e5"), os.path.join(d, "workers2_e5")
    if os.path.exists(os.path.join(a, "metrics.csv")) and os.path.exists(os.path.join(b, "metrics.csv")):
        ma, mb = stio.read_metrics(os.path.join(a, "metrics.csv")), stio.read_metrics(os.path.join(b, "metrics.csv"))
        diff = max(abs(x[k] - y[k]) for x, y in zip(ma, mb)
                   for k in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"))
        pa, _ = stio.read_safetensors(os.path.join(a, "model.safetensors"))
        pb, _ = stio.read_safetensors(os.path.join(b, "model.safetensors"))
        wd = max(float(np.max(np.abs(pa[k] - pb[k]))) for k in pa)
        print("\n1 vs 2 workers over %d epochs: largest |difference| of a per-epoch loss/accuracy %.3g, "
              "of a final weight %.3g" % (len(ma), diff, wd))
    pj = os.path.join(d, "torch_peer.json")
    if os.path.exists(pj):
        for line in open(pj):
            if line.strip().startswith("{"):
                print("\nPyTorch peer (bench/peers/mnist12.py, 1 epoch, 1 thread): " + line.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--img", required=True)
    args = ap.parse_args()
    os.makedirs(args.img, exist_ok=True)
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    gaussian_tables(args.runs)
    mnist_table(args.runs)
    figs = [
        boundary_figure(plt, args.runs, args.img),
        seeds_figure(plt, args.runs, args.img),
        overlay_figure(plt, args.runs, args.img, "gaussian_batch_modes_seed1.png",
                       "batch modes and shuffling, seed 1, bias on, SGD lr 0.5", [
                           ("full batch (1 update/epoch)", "batch/b0_lr0.5_s1"),
                           ("mini-batch 16, shuffle epoch", "batch/b16_lr0.5_s1"),
                           ("mini-batch 16, shuffle once", "shuffle/once_b16_s1"),
                           ("single sample, shuffle epoch", "batch/b1_lr0.5_s1"),
                           ("single sample, shuffle once", "shuffle/once_b1_s1")]),
        overlay_figure(plt, args.runs, args.img, "gaussian_optimizers_seed1.png",
                       "optimizers, seed 1, bias on, batch 16", [
                           ("sgd lr 0.05", "opt/sgd_lr0.05_s1"), ("sgd lr 0.5", "opt/sgd_lr0.5_s1"),
                           ("momentum 0.9 lr 0.05", "opt/momentum_lr0.05_s1"),
                           ("momentum 0.9 lr 0.5", "opt/momentum_lr0.5_s1"),
                           ("adam lr 0.05", "opt/adam_lr0.05_s1"), ("adam lr 0.5", "opt/adam_lr0.5_s1")]),
    ]
    print()
    for f in figs:
        print("wrote", f, file=sys.stderr)


if __name__ == "__main__":
    main()
