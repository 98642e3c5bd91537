"""The study's K seeds in one vmapped step vs K sequential single-seed runs.

    python -m benchmarks.bench_study            # K=8 seeds, 200 steps, the "all" configuration
    python -m benchmarks.bench_study --smoke    # K=2, 5 steps (CI)

Same jitted training step (examples/regularization_study.py), compiled once for a batch of K
seeds and once for a single seed; compile time excluded, steps timed after a warm-up.
"""

from __future__ import annotations

import argparse
import time

import jax

from benchmarks import _harness as H  # noqa: N812


def _train_seconds(step, init, keys, steps):
  params, bn, opt = init(keys)
  params, bn, opt, loss = step(params, bn, opt, keys, 0)  # compile + warm up
  jax.block_until_ready(loss)
  start = time.perf_counter()
  for s in range(1, steps + 1):
    params, bn, opt, loss = step(params, bn, opt, keys, s)
  jax.block_until_ready(loss)
  return time.perf_counter() - start


def run(smoke: bool = False) -> list[dict]:
  seeds, steps = (2, 5) if smoke else (8, 200)
  from examples import regularization_study as study  # run from the repository root

  data = study.load_digits_split(300)
  rows = []
  for cfg in (study.CONFIGS[0], study.CONFIGS[-1]):
    init, step, _, _, _ = study.build(cfg, data, lr=2e-3, batch_size=64, num_classes=10)
    keys = jax.random.split(jax.random.key(0), seeds)
    vmapped = _train_seconds(step, init, keys, steps)
    sequential = sum(_train_seconds(step, init, keys[i:i + 1], steps) for i in range(seeds))
    rows.append(H.row(f"study '{cfg.name}': {seeds} seeds vmapped vs {seeds} sequential runs, "
                      f"{steps} steps", f"{seeds}x64 digits", "float32", vmapped, sequential,
                      vmapped / sequential, anchor_name="sequential single-seed"))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
