#!/usr/bin/python3
"""The lecture's 2-2-1 network on the Gaussian data set: ringtrain vs PyTorch vs scikit-learn.

For every seed, on the very same train/test split (exported by bench/lecture/export):

  ours        ringtrain's coordinator --single-process (tanh hidden, sigmoid output, MSE, SGD)
  torch       PyTorch 1.13, the same network from OUR initial weights, visiting the samples in
              OUR batch order (perm.csv): a replay that must follow the same trajectory up to
              float32 rounding; we report the largest per-epoch loss difference and the
              largest final weight difference
  torch-init  PyTorch's own nn.Linear initialization, written to safetensors by this script and
              loaded by ringtrain with --init-from (interop of the model file); both trained
              the same way, compared the same way
  sk-clf      scikit-learn MLPClassifier(tanh, logistic output, LOG-LOSS: sklearn has no MSE
              classifier), from our initial weights, its own batch order, alpha=0, no momentum
  sk-reg      scikit-learn MLPRegressor(tanh, IDENTITY output, squared error / 2) on 0/1
              targets, thresholded at 0.5, from our initial weights

scikit-learn always has biases, so the sk-* columns are only filled for --bias runs.
Run with Debian's interpreter: /usr/bin/python3 bench/lecture/compare.py --help
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402


def parse_seeds(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-2000:]))
    return r


def ours(args, seed, bias, out, init_from=None):
    cmd = [args.coord, "--single-process", "--dataset", "gaussian", "--hidden", str(args.hidden),
           "--activation", "tanh", "--output", "sigmoid", "--loss", "mse", "--init", "xavier",
           "--lr", repr(args.lr), "--batch", str(args.batch), "--epochs", str(args.epochs),
           "--optimizer", args.optimizer, "--bias=%s" % ("true" if bias else "false"),
           "--seed", str(seed), "--log-level", "warn", "--out", out]
    if init_from:
        cmd += ["--init-from", init_from]
    t0 = time.perf_counter()
    run(cmd)
    wall = time.perf_counter() - t0
    params, _ = stio.read_safetensors(os.path.join(out, "model.safetensors"))
    return stio.read_metrics(os.path.join(out, "metrics.csv")), params, wall, cmd


def torch_replay(torch, args, params, perms, Xtr, ytr, Xte, yte):
    """Train the network from params, visiting rows in perm order; mimic the trainer's metrics."""
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    names = sorted(P)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD([P[k] for k in names], lr=args.lr)
    elif args.optimizer == "momentum":
        opt = torch.optim.SGD([P[k] for k in names], lr=args.lr, momentum=0.9)
    else:
        opt = torch.optim.Adam([P[k] for k in names], lr=args.lr)

    def forward(x):
        h = x @ P["layers.0.weight"].T
        if "layers.0.bias" in P:
            h = h + P["layers.0.bias"]
        h = torch.tanh(h)
        t = h @ P["layers.1.weight"].T
        if "layers.1.bias" in P:
            t = t + P["layers.1.bias"]
        return torch.sigmoid(t)[:, 0]

    Xtr_t, ytr_t = torch.tensor(Xtr), torch.tensor(ytr, dtype=torch.float32)
    Xte_t, yte_t = torch.tensor(Xte), torch.tensor(yte, dtype=torch.float32)
    n = len(ytr)
    B = n if args.batch <= 0 or args.batch >= n else args.batch
    records = []
    for e in range(args.epochs):
        perm = torch.tensor(perms[e])
        loss_sum, correct = 0.0, 0
        for s in range(0, n, B):
            idx = perm[s:s + B]
            y = forward(Xtr_t[idx])
            per = (y - ytr_t[idx]) ** 2          # squared error summed over the 1 output
            loss = per.mean()                    # averaged over the batch, no 1/2
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += float(per.sum())
            correct += int(((y > 0.5).long() == ytr_t[idx].long()).sum())
        with torch.no_grad():
            yt = forward(Xte_t)
            tl = float(((yt - yte_t) ** 2).mean())
            ta = int(((yt > 0.5).long() == yte_t.long()).sum()) / len(yte)  # exact count, as the trainer
        records.append({"train_loss": loss_sum / n, "train_accuracy": correct / n,
                        "test_loss": tl, "test_accuracy": ta})
    final = {k: v.detach().numpy().copy() for k, v in P.items()}
    return records, final


def curve_diff(a, b):
    return max(max(abs(x["train_loss"] - y["train_loss"]), abs(x["test_loss"] - y["test_loss"]))
               for x, y in zip(a, b))


def weight_diff(p, q):
    return max(float(np.max(np.abs(p[k] - q[k]))) for k in p)


def sklearn_runs(args, seed, params, Xtr, ytr, Xte, yte):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    res = {}
    common = dict(hidden_layer_sizes=(args.hidden,), activation="tanh", alpha=0.0,
                  batch_size=(len(ytr) if args.batch <= 0 else args.batch), learning_rate="constant",
                  learning_rate_init=args.lr, shuffle=True, random_state=seed, tol=0.0,
                  n_iter_no_change=args.epochs + 1, warm_start=True)
    if args.optimizer == "adam":
        common["solver"] = "adam"
    else:
        common.update(solver="sgd", momentum=(0.9 if args.optimizer == "momentum" else 0.0),
                      nesterovs_momentum=False)
    for name, cls, target in (("sk-clf", MLPClassifier, ytr), ("sk-reg", MLPRegressor, ytr.astype(np.float64))):
        m = cls(max_iter=1, **common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(Xtr, target)  # only to create the attributes; replaced below
            m.coefs_ = [params["layers.0.weight"].T.astype(np.float64).copy(),
                        params["layers.1.weight"].T.astype(np.float64).copy()]
            m.intercepts_ = [np.zeros(args.hidden), np.zeros(1)]
            if "layers.0.bias" in params:
                m.intercepts_ = [params["layers.0.bias"].astype(np.float64).copy(),
                                 params["layers.1.bias"].astype(np.float64).copy()]
            m.n_iter_, m.t_, m.loss_curve_, m.best_loss_, m._no_improvement_count = 0, 0, [], np.inf, 0
            m.set_params(max_iter=args.epochs)
            m.fit(Xtr, target)
        if name == "sk-clf":
            acc_tr, acc_te = m.score(Xtr, ytr), m.score(Xte, yte)
        else:
            acc_tr = float(np.mean((m.predict(Xtr) > 0.5) == ytr))
            acc_te = float(np.mean((m.predict(Xte) > 0.5) == yte))
        res[name] = {"train_accuracy": float(acc_tr), "test_accuracy": float(acc_te), "epochs": int(m.n_iter_),
                     "final_loss": float(m.loss_curve_[-1])}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--coord", required=True, help="built ringtrain coordinator binary")
    ap.add_argument("--export", required=True, help="built bench/lecture/export binary")
    ap.add_argument("--work", required=True, help="scratch directory for runs")
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=2)
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "momentum", "adam"])
    ap.add_argument("--bias", default="both", choices=["both", "on", "off"])
    ap.add_argument("--json", help="write every result row here (JSON lines)")
    args = ap.parse_args()

    import torch  # noqa: PLC0415 (heavy import after argument parsing)

    torch.set_num_threads(1)
    rows = []
    biases = {"both": [False, True], "on": [True], "off": [False]}[args.bias]
    for bias in biases:
        for seed in parse_seeds(args.seeds):
            d = os.path.join(args.work, "seed%d_bias%s" % (seed, "on" if bias else "off"))
            ex = os.path.join(d, "export")
            run([args.export, "--seed", str(seed), "--epochs", str(args.epochs), "--hidden", str(args.hidden),
                 "--bias=%s" % ("true" if bias else "false"), "--out", ex])
            Xtr, ytr = stio.read_xy(os.path.join(ex, "train.csv"))
            Xte, yte = stio.read_xy(os.path.join(ex, "test.csv"))
            perms = stio.read_perm(os.path.join(ex, "perm.csv"))
            init, _ = stio.read_safetensors(os.path.join(ex, "init.safetensors"))

            m_ours, p_ours, wall, _ = ours(args, seed, bias, os.path.join(d, "ours"))
            t0 = time.perf_counter()
            m_t, p_t = torch_replay(torch, args, init, perms, Xtr, ytr, Xte, yte)
            twall = time.perf_counter() - t0
            row = {"seed": seed, "bias": bias,
                   "ours": {k: m_ours[-1][k] for k in ("train_loss", "train_accuracy", "test_loss", "test_accuracy")},
                   "ours_wall_s": wall,
                   "torch": m_t[-1], "torch_wall_s": twall,
                   "torch_vs_ours_max_loss_diff": curve_diff(m_ours, m_t),
                   "torch_vs_ours_max_weight_diff": weight_diff(p_ours, p_t)}

            # PyTorch's own initialization -> safetensors -> ringtrain --init-from.
            torch.manual_seed(seed)
            l0 = torch.nn.Linear(2, args.hidden, bias=bias)
            l1 = torch.nn.Linear(args.hidden, 1, bias=bias)
            tinit = {"layers.0.weight": l0.weight.detach().numpy(), "layers.1.weight": l1.weight.detach().numpy()}
            if bias:
                tinit["layers.0.bias"] = l0.bias.detach().numpy()
                tinit["layers.1.bias"] = l1.bias.detach().numpy()
            tpath = os.path.join(d, "torch_init.safetensors")
            stio.write_safetensors(tpath, tinit, {"format": "pt", "written_by": "bench/lecture/compare.py"})
            m_oi, p_oi, _, _ = ours(args, seed, bias, os.path.join(d, "ours_torch_init"), init_from=tpath)
            m_ti, p_ti = torch_replay(torch, args, tinit, perms, Xtr, ytr, Xte, yte)
            row["torch_init"] = {"ours_test_accuracy": m_oi[-1]["test_accuracy"],
                                 "torch_test_accuracy": m_ti[-1]["test_accuracy"],
                                 "max_loss_diff": curve_diff(m_oi, m_ti),
                                 "max_weight_diff": weight_diff(p_oi, p_ti)}
            if bias:
                row.update(sklearn_runs(args, seed, init, Xtr, ytr, Xte, yte))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    if args.json:
        with open(args.json, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    # Markdown tables.
    print("config: 2-%d-1 tanh/sigmoid/MSE, xavier init, %s lr %g, batch %d, %d epochs, seeds %s; "
          "torch %s, numpy %s" % (args.hidden, args.optimizer, args.lr, args.batch, args.epochs, args.seeds,
                                   torch.__version__, np.__version__))
    print()
    print("| bias | seed | ours test acc | torch (replay) test acc | max abs loss diff | max abs weight diff "
          "| torch-init: ours / torch test acc | torch-init max loss diff | sk-clf (log-loss) test acc "
          "| sk-reg (MSE, identity out) test acc |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sk = lambda k: ("%.3f" % r[k]["test_accuracy"]) if k in r else "n/a"  # noqa: E731
        ti = r["torch_init"]
        print("| %s | %d | %.3f | %.3f | %.2e | %.2e | %.3f / %.3f | %.2e | %s | %s |" % (
            "on" if r["bias"] else "off", r["seed"], r["ours"]["test_accuracy"], r["torch"]["test_accuracy"],
            r["torch_vs_ours_max_loss_diff"], r["torch_vs_ours_max_weight_diff"],
            ti["ours_test_accuracy"], ti["torch_test_accuracy"], ti["max_loss_diff"], sk("sk-clf"), sk("sk-reg")))
    print()
    print("| bias | column | mean test acc | min | max | mean train acc |")
    print("|---|---|---|---|---|---|")
    for bias in biases:
        rs = [r for r in rows if r["bias"] == bias]
        cols = [("ours", lambda r: r["ours"]), ("torch (replay)", lambda r: r["torch"])]
        if bias:
            cols += [("sk-clf", lambda r: r["sk-clf"]), ("sk-reg", lambda r: r["sk-reg"])]
        for name, get in cols:
            te = [get(r)["test_accuracy"] for r in rs]
            tr = [get(r)["train_accuracy"] for r in rs]
            print("| %s | %s | %.3f | %.3f | %.3f | %.3f |" % ("on" if bias else "off", name, np.mean(te),
                                                              np.min(te), np.max(te), np.mean(tr)))


if __name__ == "__main__":
    main()
