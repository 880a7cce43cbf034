"""Minimal safetensors and CSV helpers for the lecture scripts.

Debian ships no python3-safetensors, so the format is read and written by hand:
an 8-byte little-endian header length N, N bytes of JSON
({name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}), then the
raw little-endian tensor bytes. Only F32 is written; F32 and F64 are read.
"""

import json
import struct

import numpy as np


def read_safetensors(path):
    """Return ({name: float32 ndarray}, metadata dict) from a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: %d bytes, shorter than the 8-byte header length" % (path, len(raw)))
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("%s: header length %d runs past the end of the file (%d bytes)" % (path, n, len(raw)))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    body = raw[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dtype = {"F32": "<f4", "F64": "<f8"}.get(info["dtype"])
        if dtype is None:
            raise ValueError("%s: tensor %s has dtype %s, only F32 and F64 are read" % (path, name, info["dtype"]))
        start, end = info["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=dtype).astype(np.float32)
        out[name] = arr.reshape(info["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Write {name: array} as F32 tensors, names sorted, header padded to 8 bytes."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(np.asarray(tensors[name], dtype="<f4"))
        b = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def read_xy(path):
    """Read an x0,...,label CSV with a header into (float32 X, int y)."""
    a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    return a[:, :-1].astype(np.float32), a[:, -1].astype(np.int64)


def read_perm(path):
    """Read perm.csv: one permutation of the training rows per line (epoch)."""
    return [np.array([int(v) for v in line.split(",")], dtype=np.int64)
            for line in open(path) if line.strip()]


def read_metrics(path):
    """Read the trainer's metrics.csv into a list of dicts of floats."""
    rows = []
    with open(path) as f:
        keys = f.readline().strip().split(",")
        for line in f:
            if line.strip():
                rows.append({k: float(v) for k, v in zip(keys, line.strip().split(","))})
    return rows
