"""Runs every family's benchmark and prints one markdown table.

    python -m benchmarks.run                    # full sizes (minutes on a 2-core CPU)
    python -m benchmarks.run --smoke            # tiny sizes, seconds (what CI runs)
    python -m benchmarks.run --steady-malloc    # see below

Needs the `bench` extra (`pip install -e ".[bench]"`): the anchors are measured in the same
process, interleaved with jaxreg, and reported as median ratios.

`--steady-malloc` re-runs the process with glibc told to keep freed memory (large
`MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`). By default every 51 MB output buffer is a
fresh `mmap` whose pages the kernel zeroes on first touch; on the 2-core CPU machine that costs
~11 ms per buffer, 5x the arithmetic of a copy, and both libraries pay it for every output. The
steady setting measures the computation; the default measures what a plain process sees. The
notes report both.
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks import (
    _harness,
    bench_augment,
    bench_batchnorm,
    bench_dropout,
    bench_parallel,
    bench_penalties,
    bench_study,
)

FAMILIES = {
    "dropout": bench_dropout.run,
    "batchnorm": bench_batchnorm.run,
    "penalties": bench_penalties.run,
    "augment": bench_augment.run,
    "study": bench_study.run,
    "parallel": bench_parallel.run,
}
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "8589934592"}


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  parser.add_argument("--only", choices=sorted(FAMILIES), help="one family")
  parser.add_argument("--steady-malloc", action="store_true",
                      help="re-run with glibc keeping freed memory (see the module docstring)")
  args = parser.parse_args(argv)
  if args.steady_malloc and any(os.environ.get(k) != v for k, v in STEADY_MALLOC.items()):
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.run", *(argv or sys.argv[1:])],
              {**os.environ, **STEADY_MALLOC})
  print(f"allocator: {'steady (glibc keeps freed memory)' if args.steady_malloc else 'default'}")
  rows = []
  for name, run in FAMILIES.items():
    if args.only in (None, name):
      rows += run(args.smoke)
  _harness.print_table(rows)
  return rows


if __name__ == "__main__":
  main()
