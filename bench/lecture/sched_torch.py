"""Learning-rate schedules, warm-up and --accumulate against PyTorch, weight by weight.

The lecture's 2-2-1 network with bias (tanh, sigmoid, MSE) on the Gaussian
set, batch 16 (160 training rows: 10 steps an epoch), 20 epochs (200 steps)
in the trainer's seeded batch order, from the same initial weights
(bench/lecture/export), ours and PyTorch in float32. PyTorch runs its own
schedulers (torch.optim.lr_scheduler), stepped once after every
optimizer.step(), as our schedule advances once per step; a warm-up is
LinearLR(start_factor=1/W, total_iters=W-1) chained with the main schedule
(ChainedScheduler). --accumulate is compared with PyTorch's unsplit batch.
Prints max |dw| per case and seed; the last case is a control that must
differ (our cosine run against PyTorch's constant rate).

Usage: sched_torch.py COORDINATOR EXPORT [WORKDIR]
"""
import os, subprocess, sys

import torch
from torch.optim import lr_scheduler as S

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402


def load(path):
    """{name: (shape, flat float list)} of a safetensors file."""
    t, _ = stio.read_safetensors(path)
    return {k: (list(v.shape), v.flatten().tolist()) for k, v in t.items()}


coord, export = sys.argv[1:3]
os.chdir(sys.argv[3] if len(sys.argv) > 3 else ".")
EPOCHS, BATCH, STEPS_PER_EPOCH = 20, 16, 10
TOTAL = EPOCHS * STEPS_PER_EPOCH
W = 30  # warm-up steps


def warm(o):
    return S.LinearLR(o, start_factor=1 / W, end_factor=1.0, total_iters=W - 1)


CASES = [  # name, our flags, PyTorch optimizer, PyTorch scheduler
    ("sgd step 5 epochs x0.5", ["--optimizer", "sgd", "--lr", "0.5", "--lr-schedule", "step", "--lr-step-epochs", "5", "--lr-gamma", "0.5"],
     lambda p: torch.optim.SGD(p, lr=0.5), lambda o: S.StepLR(o, step_size=5 * STEPS_PER_EPOCH, gamma=0.5)),
    ("sgd cosine", ["--optimizer", "sgd", "--lr", "0.5", "--lr-schedule", "cosine"],
     lambda p: torch.optim.SGD(p, lr=0.5), lambda o: S.CosineAnnealingLR(o, T_max=TOTAL)),
    ("sgd warm-up 30", ["--optimizer", "sgd", "--lr", "0.5", "--warmup-steps", str(W)],
     lambda p: torch.optim.SGD(p, lr=0.5), warm),
    ("momentum warm-up 30 + cosine", ["--optimizer", "momentum", "--lr", "0.1", "--momentum", "0.9", "--lr-schedule", "cosine", "--warmup-steps", str(W)],
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
     lambda o: S.ChainedScheduler([warm(o), S.CosineAnnealingLR(o, T_max=TOTAL)])),
    ("adamw warm-up 30 + step 4 epochs x0.3", ["--optimizer", "adam", "--lr", "0.05", "--weight-decay", "0.1", "--lr-schedule", "step",
                                               "--lr-step-epochs", "4", "--lr-gamma", "0.3", "--warmup-steps", str(W)],
     lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
     lambda o: S.ChainedScheduler([warm(o), S.StepLR(o, step_size=4 * STEPS_PER_EPOCH, gamma=0.3)])),
    ("sgd cosine, --accumulate 4 vs unsplit", ["--optimizer", "sgd", "--lr", "0.5", "--lr-schedule", "cosine", "--accumulate", "4"],
     lambda p: torch.optim.SGD(p, lr=0.5), lambda o: S.CosineAnnealingLR(o, T_max=TOTAL)),
    # Control: our cosine run against PyTorch without a scheduler must differ
    # by far more than the rows above, or the comparison could not fail.
    ("control: cosine vs PyTorch constant", ["--optimizer", "sgd", "--lr", "0.5", "--lr-schedule", "cosine"],
     lambda p: torch.optim.SGD(p, lr=0.5), lambda o: S.LambdaLR(o, lambda t: 1.0)),
]

worst = {}
for seed in range(1, 6):
    ex = "ex%d" % seed
    subprocess.run([export, "--seed", str(seed), "--epochs", str(EPOCHS), "--hidden", "2", "--bias=true", "--out", ex], check=True, capture_output=True)
    X, y = stio.read_xy(ex + "/train.csv")
    perms = stio.read_perm(ex + "/perm.csv")
    init = load(ex + "/init.safetensors")
    assert len(X) == BATCH * STEPS_PER_EPOCH, len(X)
    for name, flags, make, sched in CASES:
        out = "ours-%d-%s" % (seed, "".join(c if c.isalnum() else "_" for c in name))
        subprocess.run([coord, "--single-process", "--dataset", "gaussian", "--hidden", "2", "--activation", "tanh", "--output", "sigmoid",
                        "--loss", "mse", "--init", "xavier", "--batch", str(BATCH), "--epochs", str(EPOCHS), "--bias=true",
                        "--seed", str(seed), "--log-level", "warn", "--out", out] + flags, check=True, capture_output=True)
        ours = load(out + "/model.safetensors")
        P = {k: torch.tensor(v[1], dtype=torch.float32).reshape(v[0]).requires_grad_() for k, v in init.items()}
        opt = make(list(P.values()))
        sch = sched(opt)
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
                sch.step()
        m = max(abs(a - b) for k in P for a, b in zip(ours[k][1], P[k].detach().flatten().tolist()))
        worst[name] = max(worst.get(name, 0.0), m)
        print(seed, name, "%.3g" % m, flush=True)
print("worst over seeds:")
for k, v in worst.items():
    print("  %-40s %.3g" % (k, v))
