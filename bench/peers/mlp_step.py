#!/usr/bin/python3
"""Peer for config "mlp-step": one PyTorch training epoch of a 784-1000-1000-1 MLP.

Network: Linear(784,1000) ReLU Linear(1000,1000) ReLU Linear(1000,1), sigmoid
output with binary cross-entropy. The loss is computed with the fused
BCEWithLogitsLoss on the last linear output, which is numerically the same
function as sigmoid followed by BCE (only more stable); it is what a PyTorch
user writes. Plain SGD (no momentum, no weight decay), learning rate 0.1,
batch 64 (mean loss over the batch), random inputs in [0,1) and random 0/1
labels. One warm-up epoch, then R timed epochs of 12,800 samples each; prints
the best and the median samples/s as one JSON line.

Run with /usr/bin/python3 (Debian's python3-torch).
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402


def build(dtype):
    """The mlp-step network, in nn.Linear's default initialisation."""
    return nn.Sequential(
        nn.Linear(784, 1000), nn.ReLU(),
        nn.Linear(1000, 1000), nn.ReLU(),
        nn.Linear(1000, 1),
    ).to(dtype)


def epoch(model, opt, loss_fn, xs, ys, batch):
    """One pass over xs/ys in order, one SGD step per batch."""
    for start in range(0, xs.shape[0], batch):
        x = xs[start:start + batch]
        y = ys[start:start + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return float(loss)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", "-R", type=int, default=5, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--samples", type=int, default=12800, help="samples per epoch")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    if a.repeats < 1 or a.samples < a.batch:
        p.error("need --repeats >= 1 and --samples >= --batch")

    keep = common.limit_threads(torch, a.threads)
    dtype = getattr(torch, a.dtype)
    torch.manual_seed(a.seed)
    model = build(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    xs = torch.rand(a.samples, 784, dtype=dtype)
    ys = torch.randint(0, 2, (a.samples, 1)).to(dtype)

    epoch(model, opt, loss_fn, xs, ys, a.batch)  # warm-up
    rates = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        last_loss = epoch(model, opt, loss_fn, xs, ys, a.batch)
        rates.append(a.samples / (time.perf_counter() - t0))

    common.emit({
        "config": "mlp-step",
        "peer": "pytorch",
        "torch": torch.__version__,
        "dtype": a.dtype,
        "threads": a.threads,
        "torch_threads": torch.get_num_threads(),
        "batch": a.batch,
        "samples": a.samples,
        "repeats": a.repeats,
        "samples_per_second_best": max(rates),
        "samples_per_second_median": statistics.median(rates),
        "samples_per_second_runs": rates,
        "last_loss": last_loss,
        "loss": "BCEWithLogitsLoss (fused sigmoid + BCE), mean over batch",
        "blas": common.blas_info(),
        "machine": common.machine(),
    })
    del keep
    return 0


if __name__ == "__main__":
    sys.exit(main())
