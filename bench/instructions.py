#!/usr/bin/env python3
"""Instructions the fnhost host process executes per no-op task, counted by valgrind's callgrind.

Unlike a time, an instruction count barely moves on a busy or shared machine, so two builds can be
compared from one run each. For each build: fill a private redis-server with N1, then N2 no-op
tasks (results ignored), drain each with `fnhost serve` run under callgrind, and print
(instructions(N2) - instructions(N1)) / (N2 - N1): the start-up and shutdown cancel out. Only the
host is counted (its worker processes are not traced). See bench/README.md.

    bench/instructions.py .build/release/fnhost [OTHER_BUILD/fnhost ...]
"""

import argparse, os, shutil, subprocess, sys, tempfile  # noqa: E401
from pathlib import Path

import bench


def count(fnhost: Path, rs, args, n: int, scratch: Path) -> int:
    """Total instructions of one `fnhost serve` under callgrind that drains n tasks."""
    out = scratch / f"callgrind.{n}.out"
    wrapper = scratch / "fnhost"  # bench.spawn runs `<fnhost> serve ...`: run it under callgrind
    wrapper.write_text(f"#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} {scratch / 'fnhost.bin'} \"$@\" 2>/dev/null\n")
    wrapper.chmod(0o755)
    saved, args.fnhost = args.fnhost, str(wrapper)
    try:
        _, _, procs = bench.drain("fnhost", args, rs, n, False, Path(scratch / "host.log"))
        bench.stop(procs[0])
    finally:
        args.fnhost = saved
    return next(int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("summary:"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("builds", nargs="+", help="fnhost executables (fnhost-worker must be next to each)")
    p.add_argument("--functions", default=str(bench.REPO / "functions"), help="where libmath.so is")
    p.add_argument("--n1", type=int, default=1000)
    p.add_argument("--n2", type=int, default=5000)
    a = p.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed: apt-get install valgrind")
    args = argparse.Namespace(fnhost=a.builds[0], functions=a.functions, concurrency=2)
    args.dirs = bench.build_dirs(args)
    rs = bench.RedisServer()
    try:
        for build in a.builds:
            build = Path(build).resolve()
            with tempfile.TemporaryDirectory(prefix="fnhost-instructions-") as d:
                scratch = Path(d)
                # valgrind cannot read the DWARF of Swift 6 binaries: count a copy without it.
                subprocess.run(["strip", "--strip-debug", str(build), "-o", str(scratch / "fnhost.bin")], check=True)
                shutil.copy2(build.parent / "fnhost-worker", scratch / "fnhost-worker")
                i1, i2 = count(build, rs, args, a.n1, scratch), count(build, rs, args, a.n2, scratch)
            print(f"{build}: {(i2 - i1) / (a.n2 - a.n1):,.0f} instructions per no-op task in the host "
                  f"(callgrind, Redis, results ignored, drains of {a.n1} and {a.n2})", flush=True)
    finally:
        rs.stop()
        shutil.rmtree(args.dirs["math"].parent, ignore_errors=True)


if __name__ == "__main__":
    main()
