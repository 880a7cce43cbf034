#!/usr/bin/python3
"""Unit tests of links_report.py (standard library only; run by links_selftest.sh).

  /usr/bin/python3 bench/tools/test_links_report.py
"""

import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import links_report as lr  # noqa: E402


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def safetensors(path, shapes):
    """A safetensors file with F32 tensors of the given shapes (zeros)."""
    header, off = {"__metadata__": {"net": "test"}}, 0
    for i, shape in enumerate(shapes):
        n = 1
        for s in shape:
            n *= s
        header["t%d" % i] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * n]}
        off += 4 * n
    raw = json.dumps(header).encode()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"\0" * off)


class ExposedTest(unittest.TestCase):
    def test_table(self):
        cases = [
            ("nothing reported", {}, {"steps": 30}, None),
            ("log key", {"allreduce_exposed_ms_per_step": 3.5}, {"steps": 30}, 3.5),
            ("other log key naming exposed", {"exposed_ms_per_step": 2}, {}, 2.0),
            ("summary seconds over the run", {}, {"allreduce_exposed_seconds": 0.3, "steps": 30}, 10.0),
            ("log key wins over summary", {"allreduce_exposed_ms_per_step": 1.0},
             {"allreduce_exposed_seconds": 0.3, "steps": 30}, 1.0),
            ("summary without steps", {}, {"allreduce_exposed_seconds": 0.3}, None),
            ("non-numeric log value", {"allreduce_exposed_ms_per_step": "x"}, {}, None),
        ]
        for name, line, summary, want in cases:
            with self.subTest(name):
                got = lr.exposed_ms(line, summary)
                if want is None:
                    self.assertIsNone(got)
                else:
                    self.assertAlmostEqual(got, want)


class ParamCountTest(unittest.TestCase):
    def test_table(self):
        with tempfile.TemporaryDirectory() as tmp:
            good = os.path.join(tmp, "m.safetensors")
            safetensors(good, [[3, 2], [3], [1, 3], [1]])
            short = os.path.join(tmp, "short.safetensors")
            write(short, "abc")
            junk = os.path.join(tmp, "junk.safetensors")
            with open(junk, "wb") as f:
                f.write(struct.pack("<Q", 5) + b"{nope")
            cases = [("four tensors", good, 13), ("missing", os.path.join(tmp, "none"), None),
                     ("too short", short, None), ("bad header", junk, None)]
            for name, path, want in cases:
                with self.subTest(name):
                    self.assertEqual(lr.param_count(path), want)


class WhyTest(unittest.TestCase):
    def test_table(self):
        with tempfile.TemporaryDirectory() as tmp:
            flag = os.path.join(tmp, "flag.log")
            write(flag, "flag provided but not defined: -wire\nUsage of coordinator:\n  -activation string\n")
            tb = os.path.join(tmp, "tb.err")
            write(tb, "Traceback (most recent call last):\n  File x\nRuntimeError: Connection refused\n")
            cases = [("go flag error", flag, False, "flag provided but not defined: -wire"),
                     ("python traceback", tb, True, "RuntimeError: Connection refused"),
                     ("missing file", os.path.join(tmp, "none"), False, "")]
            for name, path, last, want in cases:
                with self.subTest(name):
                    self.assertEqual(lr.why(path, last=last), want)


class RowTest(unittest.TestCase):
    def run_dir(self, tmp, n, rate_bps, allreduce_ms, sent, ours_sps=3000.0, ddp_sps=2000.0):
        d = os.path.join(tmp, "r-w%d" % n)
        write(os.path.join(d, "meta.json"), json.dumps(
            {"rate": "1gbit", "rate_bps": rate_bps, "workers": n, "threads": 1, "batch": 256, "steps": 30}))
        write(os.path.join(d, "ours", "exit_code"), "0\n")
        write(os.path.join(d, "ours", "out", "summary.json"), json.dumps(
            {"samples_per_second": ours_sps, "steps": 30, "samples": 7680, "test_accuracy": 0.99}))
        write(os.path.join(d, "ours", "coordinator.log"), "\n".join([
            json.dumps({"msg": "outputs written"}),
            json.dumps({"msg": "distributed run", "compute_ms_per_step": 9.5,
                        "allreduce_ms_per_step": allreduce_ms, "bytes_sent_per_worker_per_step": sent}),
        ]) + "\n")
        # 997 parameters + 3 trailing scalars = a 4000-byte f32 buffer.
        safetensors(os.path.join(d, "ours", "out", "model.safetensors"), [[997]])
        write(os.path.join(d, "ddp", "exit_code"), "0\n")
        write(os.path.join(d, "ddp", "rank0.json"), json.dumps(
            {"samples_per_second": ddp_sps, "steps": 30, "samples_trained": 7680, "test_accuracy": 0.98}) + "\n")
        return d

    def test_bus_bandwidth_and_ratio(self):
        with tempfile.TemporaryDirectory() as tmp:
            # 2 workers send 4000 bytes each (the whole f32 buffer: 2(N-1)/N = 1)
            # in 0.032 ms: 1 Gbit/s on a 1 Gbit/s link.
            row, notes = lr.row(self.run_dir(tmp, 2, 1e9, 0.032, 4000))
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertEqual(cells[:8], ["1gbit", "2", "3,000", "2,000", "1.50x", "9.5", "0.0", "n/a"])
            self.assertEqual(cells[9], "1.00 (100%)")
            self.assertEqual(cells[10], "1.00 (100%)")
            self.assertEqual(len(notes), 2)
            # A wire of half the bytes (bf16): the wire share halves, the f32 one stays.
            row, _ = lr.row(self.run_dir(tmp, 2, 1e9, 0.032, 2000))
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertEqual(cells[9], "0.50 (50%)")
            self.assertEqual(cells[10], "1.00 (100%)")
            # 4 workers: each sends 2(N-1)/N = 1.5 x the buffer.
            row, _ = lr.row(self.run_dir(tmp, 4, 10e9, 0.048, 6000))
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertEqual(cells[9], "1.00 (10%)")
            self.assertEqual(cells[10], "1.00 (10%)")

    def test_repeats_show_medians(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = os.path.join(tmp, "r-w2")
            # Three repeats: ours 3000, 1000, 2000 samples/s; DDP 1000, 4000, 2000;
            # all-reduce 0.032, 0.064, 0.016 ms for 4000 bytes.
            for k, (o, p, ar) in enumerate([(3000.0, 1000.0, 0.032), (1000.0, 4000.0, 0.064),
                                            (2000.0, 2000.0, 0.016)], 1):
                src = self.run_dir(os.path.join(tmp, "k%d" % k), 2, 1e9, ar, 4000, ours_sps=o, ddp_sps=p)
                os.makedirs(d, exist_ok=True)
                os.replace(os.path.join(src, "ours"), os.path.join(d, "ours.%d" % k))
                os.replace(os.path.join(src, "ddp"), os.path.join(d, "ddp.%d" % k))
                os.replace(os.path.join(src, "meta.json"), os.path.join(d, "meta.json"))
            self.assertEqual(lr.repeats(d), [("ours.1", "ddp.1"), ("ours.2", "ddp.2"), ("ours.3", "ddp.3")])
            row, notes = lr.row(d)
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertEqual(cells[2:5], ["2,000", "2,000", "1.00x"])
            self.assertEqual(cells[9], "1.00 (100%)")  # the median of 1, 0.5 and 2 Gbit/s
            self.assertIn("ours 3,000, 1,000, 2,000, DDP 1,000, 4,000, 2,000", notes[-1])

    def test_one_worker_has_no_bus_bandwidth(self):
        with tempfile.TemporaryDirectory() as tmp:
            row, _ = lr.row(self.run_dir(tmp, 1, 1e9, 0.01, 0))
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertEqual(cells[9], "n/a (n/a)")

    def test_failed_run_shows_na_and_why(self):
        with tempfile.TemporaryDirectory() as tmp:
            d = self.run_dir(tmp, 2, 1e9, 0.032, 4000)
            write(os.path.join(d, "ours", "exit_code"), "2\n")
            write(os.path.join(d, "ours", "coordinator.log"), "flag provided but not defined: -wire\nUsage:\n")
            row, notes = lr.row(d)
            cells = [c.strip() for c in row.strip("|").split("|")]
            self.assertEqual(cells[2], "n/a")
            self.assertEqual(cells[3], "2,000")
            self.assertEqual(cells[4], "n/a")
            self.assertIn("flag provided but not defined: -wire", notes[0])
            # A DDP rank other than 0 fails: its message is the one shown.
            write(os.path.join(d, "ddp", "exit_code"), "3\n")
            write(os.path.join(d, "ddp", "rank0.err"), "")
            write(os.path.join(d, "ddp", "rank1.err"), "Traceback\nRuntimeError: rank 1 broke\n")
            _, notes = lr.row(d)
            self.assertIn("rank 1 says: `RuntimeError: rank 1 broke`", " ".join(notes))


if __name__ == "__main__":
    unittest.main()
