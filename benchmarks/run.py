"""Runs every family's benchmark and prints one markdown table.

    python -m benchmarks.run            # full sizes (minutes on a 2-core CPU)
    python -m benchmarks.run --smoke    # tiny sizes, seconds (what CI runs)

Needs the `bench` extra (`pip install -e ".[bench]"`): the anchors are measured in the same
process, interleaved with jaxreg, and reported as median ratios.
"""

from __future__ import annotations

import argparse

from benchmarks import _harness, bench_dropout

FAMILIES = {"dropout": bench_dropout.run}


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  parser.add_argument("--only", choices=sorted(FAMILIES), help="one family")
  args = parser.parse_args(argv)
  rows = []
  for name, run in FAMILIES.items():
    if args.only in (None, name):
      rows += run(args.smoke)
  _harness.print_table(rows)
  return rows


if __name__ == "__main__":
  main()
