"""Runs every family's benchmark, prints one markdown table and writes the results files.

    python -m benchmarks.run                    # full sizes (minutes on a 2-core CPU)
    python -m benchmarks.run --only policies    # one family
    python -m benchmarks.run --smoke            # tiny sizes, seconds (what CI runs)
    python -m benchmarks.run --steady-malloc    # see below
    python -m benchmarks.run --huge-pages       # see below

Needs the `bench` extra (`pip install -e ".[bench]"`): the anchors are measured in the same
process, interleaved with jaxreg, and reported as median ratios.

`--steady-malloc` re-runs the process with glibc told to keep freed memory (large
`MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`). By default every 51 MB output buffer is a
fresh `mmap` whose pages the kernel zeroes on first touch; on the 2-core CPU machine that costs
several times the arithmetic of a copy (the dropout family's `copy` row, default against
steady), and both libraries pay it for every output. The steady setting measures the
computation; the default measures what a plain process sees.

`--huge-pages` re-runs the process with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`: glibc asks for
transparent huge pages on its large `mmap`s, so the kernel zeroes an output in 2 MB pages
instead of 4 KB ones: far fewer page faults. It is one environment variable any user can set
(glibc 2.35 or newer, with the kernel's transparent huge pages set to `madvise` or `always`).
docs/design/measuring.md explains the three settings.

Each family run writes `benchmarks/results/<family>[-<setting>].json` (`-steady`,
`-huge-pages`; `-<platform>` on an accelerator): the command, the date, the machine, the
device, the versions and every row's raw numbers under a stable key (`benchmarks/_results.py`).
docs/performance.md and the other pages render their figures from these files. `--smoke` writes
none unless `--results-dir` says where.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks import (
    _harness,
    _results,
    bench_augment,
    bench_batchnorm,
    bench_dropout,
    bench_geometric,
    bench_grain,
    bench_parallel,
    bench_penalties,
    bench_photometric,
    bench_policies,
    bench_study,
    bench_targets,
)
from benchmarks.alternatives import batch_norm as alternatives_batch_norm
from benchmarks.alternatives import dropout_mask as alternatives_dropout_mask
from benchmarks.alternatives import geometric as alternatives_geometric
from benchmarks.alternatives import photometric as alternatives_photometric
from benchmarks.alternatives import vmap_seeds_cpu as alternatives_vmap_seeds_cpu

FAMILIES = {
    "dropout": bench_dropout.run,
    "batchnorm": bench_batchnorm.run,
    "penalties": bench_penalties.run,
    "augment": bench_augment.run,
    "geometric": bench_geometric.run,
    "photometric": bench_photometric.run,
    "policies": bench_policies.run,
    "targets": bench_targets.run,
    "study": bench_study.run,
    "parallel": bench_parallel.run,
    "grain": bench_grain.run,
    # the alternatives the design pages reject, each against the chosen form
    # (benchmarks/alternatives/)
    "alternatives_batch_norm": alternatives_batch_norm.run,
    "alternatives_dropout_mask": alternatives_dropout_mask.run,
    "alternatives_geometric": alternatives_geometric.run,
    "alternatives_photometric": alternatives_photometric.run,
    "alternatives_vmap_seeds_cpu": alternatives_vmap_seeds_cpu.run,
}
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "8589934592"}
HUGE_PAGES = "glibc.malloc.hugetlb=1"
ALLOCATORS = {"default": "default", "steady": "steady (glibc keeps freed memory)",
              "huge pages": "huge pages (glibc.malloc.hugetlb=1)"}


def _with_huge_pages(environ) -> dict:
  tunables = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t]
  return {**environ, "GLIBC_TUNABLES": ":".join([*tunables, HUGE_PAGES])}


def results_name(family: str, allocator: str, platform: str = "cpu") -> str:
  """``<family>[-<setting>][-<platform>].json``: one file per family and setting."""
  setting = {"default": "", "steady": "-steady", "huge pages": "-huge-pages"}[allocator]
  return f"{family}{setting}{'' if platform == 'cpu' else '-' + platform}.json"


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  parser.add_argument("--only", choices=sorted(FAMILIES), help="one family")
  parser.add_argument("--steady-malloc", action="store_true",
                      help="re-run with glibc keeping freed memory (see the module docstring)")
  parser.add_argument("--huge-pages", action="store_true",
                      help="re-run with glibc asking for huge pages (see the module docstring)")
  parser.add_argument("--results-dir", default=None,
                      help="where to write the results files (default: benchmarks/results; "
                           "with --smoke, none unless given)")
  args = parser.parse_args(argv)
  if args.steady_malloc and args.huge_pages:
    parser.error("--steady-malloc and --huge-pages are separate settings; pick one")
  environ = dict(os.environ)
  if args.steady_malloc:
    environ.update(STEADY_MALLOC)
  elif args.huge_pages and HUGE_PAGES not in environ.get("GLIBC_TUNABLES", ""):
    environ = _with_huge_pages(environ)
  if environ != dict(os.environ):  # glibc reads these at process start: start again with them
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.run", *(argv or sys.argv[1:])],
              environ)
  allocator = "steady" if args.steady_malloc else "huge pages" if args.huge_pages else "default"
  print(f"allocator: {ALLOCATORS[allocator]}")
  results_dir = args.results_dir or (None if args.smoke else _results.RESULTS_DIR)
  argv = sys.argv[1:] if argv is None else argv
  rows = []
  for name, run in FAMILIES.items():
    if args.only not in (None, name):
      continue
    start = time.perf_counter()
    family_rows = run(args.smoke)
    wall = time.perf_counter() - start
    _results.check_keys(family_rows)
    rows += family_rows
    if results_dir:
      meta = _results.metadata(["-m", "benchmarks.run", *argv], wall_seconds=wall)
      path = os.path.join(results_dir,
                          results_name(name, allocator, meta["device"]["platform"]))
      _results.write(path, {**meta, "family": name, "smoke": args.smoke,
                            "allocator": ALLOCATORS[allocator], "rows": family_rows})
      print(f"wrote {os.path.relpath(path)} ({wall:.0f} s)")
  _harness.print_table(rows)
  return rows


if __name__ == "__main__":
  main()
