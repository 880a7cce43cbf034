#!/usr/bin/python3
"""Peer for config "allreduce": torch.distributed.all_reduce over gloo on loopback.

For each N in --ranks (default 2 and 4) spawns N processes (1 thread each)
that join a gloo process group on 127.0.0.1 and, for each buffer size in
--mb (default 1, 7.1, 14.3, 64; 1 MB = 1e6 bytes, float32), run warm-up
all-reduces (SUM, in place) and then timed iterations between barriers.
The iteration count adapts so one size takes about --target seconds.

Reports per (N, size) one JSON line, the way nccl-tests defines the figures:
time = seconds per all-reduce (the slowest rank's mean), algBW = bytes / time,
busBW = algBW * 2(N-1)/N, both in GB/s (1e9 bytes/s).
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def worker(rank, n, port, args, queue):
    """One rank: time all_reduce for every size; rank 0 puts the records on queue."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    keep = common.limit_threads(torch, 1)
    dist.init_process_group("gloo", rank=rank, world_size=n)
    try:
        for mb in args.mb:
            nbytes = int(round(mb * 1e6))
            buf = torch.ones(nbytes // 4, dtype=torch.float32)
            t0 = time.perf_counter()
            for _ in range(args.warmup):
                dist.all_reduce(buf)
            # Every rank must run the same count: agree on the slowest rank's estimate.
            est = torch.tensor([(time.perf_counter() - t0) / max(args.warmup, 1)], dtype=torch.float64)
            dist.all_reduce(est, op=dist.ReduceOp.MAX)
            iters = max(args.min_iters, min(args.max_iters, math.ceil(args.target / max(float(est), 1e-9))))
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                dist.all_reduce(buf)
            mine = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
            dist.all_reduce(mine, op=dist.ReduceOp.MAX)
            sec = float(mine)
            if rank == 0:
                alg = nbytes / sec / 1e9
                queue.put({
                    "config": "allreduce",
                    "peer": "gloo",
                    "torch": torch.__version__,
                    "n": n,
                    "mb": mb,
                    "bytes": buf.numel() * 4,
                    "iters": iters,
                    "time_s": sec,
                    "algbw_gbs": alg,
                    "busbw_gbs": alg * 2 * (n - 1) / n,
                })
        if rank == 0:
            queue.put(None)
    finally:
        dist.destroy_process_group()
        del keep


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[2, 4], help="process counts N")
    p.add_argument("--mb", type=float, nargs="+", default=[1, 7.1, 14.3, 64], help="buffer sizes, 1 MB = 1e6 bytes")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-iters", type=int, default=5)
    p.add_argument("--max-iters", type=int, default=200)
    p.add_argument("--target", type=float, default=1.0, help="seconds of timed iterations per size")
    args = p.parse_args(argv)
    if any(n < 2 for n in args.ranks):
        p.error("--ranks: every N must be >= 2")
    ctx = mp.get_context("spawn")
    for n in args.ranks:
        queue = ctx.SimpleQueue()
        mp.spawn(worker, args=(n, common.free_port(), args, queue), nprocs=n, join=True)
        while True:
            rec = queue.get()
            if rec is None:
                break
            common.emit(rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
