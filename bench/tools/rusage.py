#!/usr/bin/python3
"""Run a command; record its wall time, exit status and peak RSS as JSON.

Usage: rusage.py --out FILE -- COMMAND [ARGS...]

Peak RSS is resource.getrusage(RUSAGE_CHILDREN).ru_maxrss after the child
exits: the largest resident set of the command or any descendant it waited
for, in MB (ru_maxrss is KiB on Linux). Exits with the command's status.
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    a = p.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        p.error("no command given after --")
    t0 = time.perf_counter()
    try:
        rc = subprocess.call(cmd)
    except OSError as err:
        print("rusage.py: cannot run %s: %s" % (cmd[0], err), file=sys.stderr)
        rc = 127
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    with open(a.out, "w") as f:
        json.dump({"cmd": cmd, "exit_status": rc, "wall_seconds": wall, "peak_rss_mb": rss}, f, sort_keys=True)
        f.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
