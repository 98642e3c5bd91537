"""The study's K seeds in one vmapped step vs K sequential single-seed runs.

    python -m benchmarks.bench_study            # K=8 seeds, 20-step samples, baseline and "all"
    python -m benchmarks.bench_study --smoke    # K=1, 2-step samples, baseline only (CI)

The study's jitted training step (examples/regularization_study.py) compiled once for K seeds
and once for a single seed; compile time excluded. A sample is N steps of the K-seed step
against N steps of each of K single-seed runs, interleaved (A, B, A, B, ...) in one process, and
the ratio is the median over rounds (< 1: the vmapped seeds are faster). Rows:

* the study's network (on the CPU one plain convolution per seed: see `conv` in the study);
* the same with the convolution left to `vmap`'s own rule (a grouped convolution, which
  XLA:CPU runs slowly: the formulation the study used before, for comparison);
* for docs/guides/vmap_seeds_cpu.md: 10 training steps of a two-convolution network in one
  rolled `lax.scan` against 10 calls of the jitted step (one seed).
"""

from __future__ import annotations

import argparse
import contextlib

import jax

from benchmarks import _harness as H  # noqa: N812


@contextlib.contextmanager
def swapped(study, name: str, replacement):
  """``study.<name>`` replaced by ``replacement`` while programs are built and traced."""
  saved = getattr(study, name)
  setattr(study, name, replacement)
  try:
    yield
  finally:
    setattr(study, name, saved)


def build_programs(study, data):
  """The study's compiled programs at this benchmark's settings."""
  return study.build(data, lr=2e-3, batch_size=64, num_classes=10)


def _runner(programs, keys, knobs, steps: int, batch_norm: bool):
  """A zero-argument function that trains ``steps`` more steps of the seeds ``keys``."""
  state = {"train": programs.init(keys), "step": 0}

  def run():
    params, bn, opt = state["train"]
    for s in range(state["step"], state["step"] + steps):
      params, bn, opt, _ = programs.step(params, bn, opt, keys, s, knobs,
                                         batch_norm=batch_norm)
    state["train"], state["step"] = (params, bn, opt), state["step"] + steps
    return params

  return run


def _ratio(programs, cfg, seeds, steps, rounds):
  keys = jax.random.split(jax.random.key(0), seeds)
  knobs = cfg.knobs()
  vmapped = _runner(programs, keys, knobs, steps, cfg.batch_norm)
  singles = [_runner(programs, keys[i:i + 1], knobs, steps, cfg.batch_norm) for i in range(seeds)]
  sequential = lambda: [run() for run in singles]  # noqa: E731
  return H.median_ratio(vmapped, sequential, rounds=rounds)


def _scan_vs_calls(steps, rounds):
  """A rolled lax.scan over training steps of a conv network vs one jitted call per step."""
  import jax.numpy as jnp

  def conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def step(w, x):
    loss = lambda w: jnp.sum(jax.nn.relu(conv(jax.nn.relu(conv(x, w[0])), w[1])) ** 2)  # noqa
    return w - 1e-6 * jax.grad(loss)(w)

  w, x = jnp.full((2, 3, 3, 16, 16), 0.01), jnp.ones((64, 8, 8, 16))
  one = jax.jit(step)
  scanned = jax.jit(lambda w: jax.lax.scan(lambda w, _: (step(w, x), None), w, None,
                                           length=steps)[0])

  def calls():
    v = w
    for _ in range(steps):
      v = one(v, x)
    return v

  return H.median_ratio(lambda: scanned(w), calls, rounds=rounds)


def run(smoke: bool = False) -> list[dict]:
  # The smoke run: one seed, so its vmapped and sequential runs are one compiled program.
  seeds, steps, rounds = (1, 2, 2) if smoke else (8, 20, 9)
  from examples import regularization_study as study  # run from the repository root

  data = study.load_digits_split(300)
  rows = []

  def add(label, result, cfg, key):
    mine, anchor, ratio = result
    rows.append(H.row(f"study '{cfg.name}', {label}: {seeds} seeds vmapped vs {seeds} "
                      f"sequential runs, {steps} steps", f"{seeds}x64 digits", "float32",
                      mine, anchor, ratio, anchor_name="sequential single-seed",
                      key=f"{key}_{cfg.name}", seeds=seeds, steps=steps))

  baseline, every = study.CONFIGS[0], study.CONFIGS[-1]
  programs = build_programs(study, data)
  # The smoke run checks the code paths with the baseline only (the study's tests train "all").
  for cfg in (baseline,) if smoke else (baseline, every):
    add("one conv per seed", _ratio(programs, cfg, seeds, steps, rounds), cfg, "vmapped")
  grouped_cfg = baseline if smoke else every
  with swapped(study, "conv", study._plain_conv):  # the convolution batched by vmap's rule
    grouped = build_programs(study, data)
    add("grouped conv (vmap's rule)", _ratio(grouped, grouped_cfg, seeds, steps, rounds),
        grouped_cfg, "grouped")
  scan_steps = 2 if smoke else 10
  mine, anchor, ratio = _scan_vs_calls(scan_steps, rounds)
  rows.append(H.row(f"2-conv step: {scan_steps} steps in one lax.scan vs {scan_steps} jitted "
                    "calls", "64x8x8x16", "float32", mine, anchor, ratio,
                    anchor_name="jitted calls", key="scan", steps=scan_steps))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
