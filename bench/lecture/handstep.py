#!/usr/bin/python3
"""Exercise 1 checked numerically: the written-out update rules of the 2-2-1 network.

Applies the six weight-update rules (and the three bias rules with --bias) of
docs/experiments.md, written out weight by weight in plain float64 Python with
no autodiff and no matrices, to the initial weights and the batches that
ringtrain uses (exported by bench/lecture/export), for --steps steps; then runs
ringtrain's coordinator with --steps and compares the final weights.

  /usr/bin/python3 bench/lecture/handstep.py --coord BIN --export BIN --work DIR [--bias] [--steps 5]
"""

import argparse
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def step(w, batch, eta, bias):
    """One SGD step of the lecture's rules on a batch [(x1, x2, t)]; w is a dict of floats."""
    B = len(batch)
    g = {k: 0.0 for k in w}
    for x1, x2, t in batch:
        # Forward: a_j = W1_j1 x1 + W1_j2 x2 (+ b1_j), h_j = tanh(a_j), z = W2_1 h_1 + W2_2 h_2 (+ b2), y = sigma(z).
        a1 = w["W1_11"] * x1 + w["W1_12"] * x2 + (w["b1_1"] if bias else 0.0)
        a2 = w["W1_21"] * x1 + w["W1_22"] * x2 + (w["b1_2"] if bias else 0.0)
        h1, h2 = math.tanh(a1), math.tanh(a2)
        y = sigmoid(w["W2_1"] * h1 + w["W2_2"] * h2 + (w["b2"] if bias else 0.0))
        # Backward, one factor per block of the chain.
        dy = 2 * (y - t) / B          # MSE: d/dy of (1/B) sum (y - t)^2
        dz = dy * y * (1 - y)         # sigmoid'
        da1 = dz * w["W2_1"] * (1 - h1 * h1)   # through W2, then tanh'
        da2 = dz * w["W2_2"] * (1 - h2 * h2)
        g["W2_1"] += dz * h1
        g["W2_2"] += dz * h2
        g["W1_11"] += da1 * x1
        g["W1_12"] += da1 * x2
        g["W1_21"] += da2 * x1
        g["W1_22"] += da2 * x2
        if bias:
            g["b2"] += dz
            g["b1_1"] += da1
            g["b1_2"] += da2
    return {k: w[k] - eta * g[k] for k in w}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coord", required=True)
    ap.add_argument("--export", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--bias", action="store_true")
    args = ap.parse_args()
    b = "true" if args.bias else "false"
    ex = os.path.join(args.work, "export")
    subprocess.run([args.export, "--seed", str(args.seed), "--epochs", "1", "--bias=" + b, "--out", ex], check=True,
                   stderr=subprocess.DEVNULL)
    Xtr, ytr = stio.read_xy(os.path.join(ex, "train.csv"))
    perm = stio.read_perm(os.path.join(ex, "perm.csv"))[0]
    p, _ = stio.read_safetensors(os.path.join(ex, "init.safetensors"))
    W1, W2 = p["layers.0.weight"], p["layers.1.weight"]
    w = {"W1_11": W1[0, 0], "W1_12": W1[0, 1], "W1_21": W1[1, 0], "W1_22": W1[1, 1],
         "W2_1": W2[0, 0], "W2_2": W2[0, 1]}
    if args.bias:
        w.update(b1_1=p["layers.0.bias"][0], b1_2=p["layers.0.bias"][1], b2=p["layers.1.bias"][0])
    w = {k: float(v) for k, v in w.items()}
    B = args.batch
    if args.steps * B > len(perm):
        sys.exit("--steps %d x --batch %d exceeds one epoch (%d rows)" % (args.steps, B, len(perm)))
    for s in range(args.steps):
        idx = perm[s * B:(s + 1) * B]
        w = step(w, [(float(Xtr[i, 0]), float(Xtr[i, 1]), float(ytr[i])) for i in idx], args.lr, args.bias)

    out = os.path.join(args.work, "ours")
    cmd = [args.coord, "--single-process", "--dataset", "gaussian", "--hidden", "2", "--activation", "tanh",
           "--output", "sigmoid", "--loss", "mse", "--init", "xavier", "--lr", repr(args.lr), "--batch", str(B),
           "--bias=" + b, "--seed", str(args.seed), "--steps", str(args.steps), "--log-level", "warn", "--out", out]
    subprocess.run(cmd, check=True)
    q, _ = stio.read_safetensors(os.path.join(out, "model.safetensors"))
    Q1, Q2 = q["layers.0.weight"], q["layers.1.weight"]
    ours = {"W1_11": Q1[0, 0], "W1_12": Q1[0, 1], "W1_21": Q1[1, 0], "W1_22": Q1[1, 1],
            "W2_1": Q2[0, 0], "W2_2": Q2[0, 1]}
    if args.bias:
        ours.update(b1_1=q["layers.0.bias"][0], b1_2=q["layers.0.bias"][1], b2=q["layers.1.bias"][0])
    print("command: " + " ".join(cmd))
    print("seed %d, %d SGD steps of batch %d, lr %g, bias %s\n" % (args.seed, args.steps, B, args.lr, b))
    print("| weight | initial | hand rules (float64) | ringtrain (float32) | abs diff |")
    print("|---|---|---|---|---|")
    init = {"W1_11": W1[0, 0], "W1_12": W1[0, 1], "W1_21": W1[1, 0], "W1_22": W1[1, 1],
            "W2_1": W2[0, 0], "W2_2": W2[0, 1]}
    if args.bias:
        init.update(b1_1=p["layers.0.bias"][0], b1_2=p["layers.0.bias"][1], b2=p["layers.1.bias"][0])
    worst = 0.0
    for k in w:
        d = abs(w[k] - float(ours[k]))
        worst = max(worst, d)
        print("| %s | %.7f | %.7f | %.7f | %.1e |" % (k, float(init[k]), w[k], float(ours[k]), d))
    print("\nlargest difference: %.2e" % worst)
    if worst > 1e-5:
        sys.exit("the written-out rules and the trainer disagree")


if __name__ == "__main__":
    main()
