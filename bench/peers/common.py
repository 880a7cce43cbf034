"""Helpers shared by the peer benchmark scripts (PyTorch side of bench/run.sh).

Nothing here is imported by the Go code or by `go test`; these scripts run with
the Debian interpreter /usr/bin/python3 and Debian's python3-torch.
"""

import ctypes
import json
import os
import platform
import socket


def blas_info():
    """Describe the BLAS kernels this process runs (OpenBLAS core, threads).

    Uses threadpoolctl when installed (Debian's python3-threadpoolctl comes
    with python3-sklearn) and falls back to asking libopenblas directly.
    Call it after `import torch` so torch's libraries are loaded.
    """
    info = {
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    try:
        import threadpoolctl  # noqa: PLC0415 (optional dependency)

        info["threadpools"] = [
            {k: v for k, v in pool.items()
             if k in ("internal_api", "version", "architecture", "num_threads", "threading_layer", "filepath")}
            for pool in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        try:
            lib = ctypes.CDLL("libopenblas.so.0")
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            info["openblas"] = {
                "core": lib.openblas_get_corename().decode(),
                "config": lib.openblas_get_config().decode(),
                "num_threads": lib.openblas_get_num_threads(),
            }
        except OSError as err:
            info["openblas"] = "not found: %s" % err
    return info


def limit_threads(torch, threads):
    """Pin torch's intra-op pool, OpenMP and the BLAS pool to `threads` threads.

    torch.set_num_threads does not reach OpenBLAS's own pthread pool, which
    would otherwise use every core; threadpoolctl (or the OpenBLAS C API)
    limits that one too. Returns an object that must be kept alive.
    """
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # may be set once only, before any inter-op work
    try:
        import threadpoolctl  # noqa: PLC0415

        return threadpoolctl.threadpool_limits(limits=threads)
    except ImportError:
        try:
            lib = ctypes.CDLL("libopenblas.so.0")
            lib.openblas_set_num_threads(threads)
        except OSError:
            pass
        return None


def machine():
    """Small description of the host for the JSON records."""
    return {"host": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count()}


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def emit(record):
    """Print one JSON line and flush, so the harness can read it line by line."""
    print(json.dumps(record, sort_keys=True), flush=True)
