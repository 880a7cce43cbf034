"""Weight decay, Nesterov and AdamW against PyTorch, weight by weight.

The lecture's 2-2-1 network with bias (tanh, sigmoid, MSE) on the Gaussian
set, batch 16, 20 epochs in the trainer's seeded batch order, from the same
initial weights (bench/lecture/export), ours and PyTorch in float32: max |dw|
per update rule and seed.

Usage: optim_torch.py COORDINATOR EXPORT [WORKDIR]
"""
import json, os, struct, subprocess, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

coord, export = sys.argv[1:3]
os.chdir(sys.argv[3] if len(sys.argv) > 3 else ".")
EPOCHS, BATCH = 20, 16
RULES = [  # name, our flags, PyTorch optimizer
    ("sgd wd 0.01", ["--optimizer", "sgd", "--lr", "0.5", "--weight-decay", "0.01"],
     lambda p: torch.optim.SGD(p, lr=0.5, weight_decay=0.01)),
    ("momentum wd 0.01", ["--optimizer", "momentum", "--lr", "0.1", "--momentum", "0.9", "--weight-decay", "0.01"],
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("nesterov", ["--optimizer", "momentum", "--lr", "0.1", "--momentum", "0.9", "--nesterov"],
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("adamw wd 0.1", ["--optimizer", "adam", "--lr", "0.05", "--weight-decay", "0.1"],
     lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1)),
]


def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    d = b[8 + n:]
    return {k: (v["shape"], struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4), d[v["data_offsets"][0]:v["data_offsets"][1]]))
            for k, v in h.items() if k != "__metadata__"}


worst = {}
for seed in range(1, 6):
    ex = "ex%d" % seed
    subprocess.run([export, "--seed", str(seed), "--epochs", str(EPOCHS), "--hidden", "2", "--bias=true", "--out", ex], check=True, capture_output=True)
    X, y = stio.read_xy(ex + "/train.csv")
    perms = stio.read_perm(ex + "/perm.csv")
    init = load(ex + "/init.safetensors")
    for name, flags, make in RULES:
        out = "ours-%d-%s" % (seed, name.replace(" ", "_"))
        subprocess.run([coord, "--single-process", "--dataset", "gaussian", "--hidden", "2", "--activation", "tanh", "--output", "sigmoid",
                        "--loss", "mse", "--init", "xavier", "--batch", str(BATCH), "--epochs", str(EPOCHS), "--bias=true",
                        "--seed", str(seed), "--log-level", "warn", "--out", out] + flags, check=True, capture_output=True)
        ours = load(out + "/model.safetensors")
        P = {k: torch.tensor(v[1], dtype=torch.float32).reshape(v[0]).requires_grad_() for k, v in init.items()}
        opt = make(list(P.values()))
        Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32).reshape(-1, 1)
        for e in range(EPOCHS):
            perm = perms[e]
            for s in range(0, len(perm), BATCH):
                idx = torch.tensor(perm[s:s + BATCH])
                opt.zero_grad()
                h = torch.tanh(Xt[idx] @ P["layers.0.weight"].T + P["layers.0.bias"])
                o = torch.sigmoid(h @ P["layers.1.weight"].T + P["layers.1.bias"])
                loss = ((o - yt[idx]) ** 2).sum() / len(idx)
                loss.backward()
                opt.step()
        m = max(abs(a - b) for k in P for a, b in zip(ours[k][1], P[k].detach().flatten().tolist()))
        worst[name] = max(worst.get(name, 0.0), m)
        print(seed, name, "%.3g" % m)
print("worst over seeds:", {k: "%.3g" % v for k, v in worst.items()})
