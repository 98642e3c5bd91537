"""docs/guides/vmap_seeds_cpu.md's other choices for the study, each against the rejected form.

    python -m benchmarks.run --only alternatives_vmap_seeds_cpu     # 8 seeds, 10-step samples
    python -m benchmarks.alternatives.vmap_seeds_cpu --smoke        # 1 seed, 2-step samples

The study's vmapped training step (examples/regularization_study.py), built as bench_study builds
it (the bundled digits, 300 training images, batches of 64, configuration "all", K=8 seeds),
against the same step with one piece replaced, each compiled ahead of time on its own (compile
time excluded): batch norm switched by `lax.cond` on a traced flag (set to on) instead of the
static argument; max pooling by `lax.reduce_window` instead of a reshape and a max; the
convolutions as patches (pad, nine shifted slices, concatenate) and a batched `einsum` instead
of `conv`. A sample is 10 steps continuing the same seeds' training; both forms return the same
per-step losses (checked on the first sample, to 1e-5; the patches to 1e-3: float32 rounding
grown over 10 steps). One row is compile time: the study's vmapped initializer (one normal draw
sliced into the kernels) against one `jax.random.normal` per kernel, each lowered and compiled
afresh (a new `build`) 3 times, interleaved, median seconds; the draws differ, so no value
check. The smoke run checks the code paths with one seed, 2-step samples, one compilation each.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time

import jax
import jax.numpy as jnp
from jax import lax

from benchmarks import _harness as H  # noqa: N812
from benchmarks.alternatives import compare
from benchmarks.bench_study import build_programs, swapped


def _knobs_with_traced_norm(study):
  """`Knobs` whose `_replace` keeps its traced ``batch_norm``: the step's static argument is
  ignored, and `apply_model` switches batch norm with `lax.cond`."""

  class CondNorm(study.Knobs):
    __slots__ = ()

    def _replace(self, **kwargs):
      kwargs.pop("batch_norm", None)
      return super()._replace(**kwargs)

  return CondNorm


def _reduce_window_pool(h):
  return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def _patches_conv(x, w):
  """3x3 'SAME' convolution (NHWC x HWIO) as patches and one matrix product."""
  kh, kw, c, o = w.shape
  height, width = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
  patches = jnp.concatenate([padded[:, i:i + height, j:j + width]
                             for i in range(kh) for j in range(kw)], axis=-1)
  return jnp.einsum("nhwk,ko->nhwo", patches, w.reshape(kh * kw * c, o))


def _init_per_kernel(study):
  """The study's `init_params` with one `jax.random.normal` per kernel (five)."""
  def init_params(key, in_channels, image_hw, num_classes):
    shapes = jax.eval_shape(lambda k: saved(k, in_channels, image_hw, num_classes), key)
    keys = iter(jax.random.split(key, len(shapes["blocks"]) + 3))
    fill = lambda value, ss: [jnp.full(s.shape, value) for s in ss]  # noqa: E731

    def he(s, gain):
      return jax.random.normal(next(keys), s.shape) * (gain * math.sqrt(2.0 / math.prod(
          s.shape[:-1])))

    return {"stem": he(shapes["stem"], 1.0), "blocks": [he(s, 0.5) for s in shapes["blocks"]],
            "bn_scale": fill(1.0, shapes["bn_scale"]), "bn_bias": fill(0.0, shapes["bn_bias"]),
            "hidden": he(shapes["hidden"], 1.0), "hidden_b": jnp.zeros(shapes["hidden_b"].shape),
            "out": he(shapes["out"], 0.1), "out_b": jnp.zeros(shapes["out_b"].shape)}

  saved = study.init_params
  return init_params


def _compiled_step(study, data, keys, knobs, swap=None):
  """The K-seed training step (batch norm on) of a fresh `build`, compiled under ``swap``."""
  with swap or contextlib.nullcontext():
    programs = build_programs(study, data)
    step = programs.step.lower(*programs.init(keys), keys, 0, knobs, batch_norm=True).compile()
  return programs.init, step


def _runner(init, step, keys, knobs, steps):
  """A zero-argument function: ``steps`` more training steps of the seeds ``keys``; returns
  their losses."""
  state = {"train": init(keys), "step": 0}

  def run():
    losses, (params, bn, opt), s0 = [], state["train"], state["step"]
    for s in range(s0, s0 + steps):
      params, bn, opt, loss = step(params, bn, opt, keys, s, knobs)
      losses.append(loss)
    state["train"], state["step"] = (params, bn, opt), s0 + steps
    return losses

  return run


def _compile_seconds(study, data, keys, init_params, reps):
  """Median seconds to lower and compile the K-seed initializer of a fresh `build`, for the
  study's `init_params` and for ``init_params``, interleaved."""
  samples = {"chosen": [], "alternative": []}
  for _ in range(reps):
    for side, fn in (("chosen", study.init_params), ("alternative", init_params)):
      with swapped(study, "init_params", fn):
        programs = build_programs(study, data)
        start = time.perf_counter()
        programs.init.lower(keys).compile()
        samples[side].append(time.perf_counter() - start)
  return statistics.median(samples["alternative"]), statistics.median(samples["chosen"])


def run(smoke: bool = False) -> list[dict]:
  # bench_study's sizes; the smoke run checks the code paths with one seed.
  seeds, steps, rounds, reps = (1, 2, 2, 1) if smoke else (8, 10, 9, 3)
  from examples import regularization_study as study  # run from the repository root

  data = study.load_digits_split(300)
  cfg = study.CONFIGS[-1]  # "all": every part of the step, batch norm on
  keys = jax.random.split(jax.random.key(0), seeds)
  knobs = cfg.knobs()
  shape = f"{seeds}x64 digits"
  chosen_init, chosen_step = _compiled_step(study, data, keys, knobs)
  cond_knobs = _knobs_with_traced_norm(study)(*knobs)
  alternatives = (
      ("batch_norm_in_cond", "batch norm switched by lax.cond on a traced flag (on)",
       "batch norm as a static argument", None, cond_knobs, 1e-5),
      ("reduce_window_max_pool", "max pooling by lax.reduce_window",
       "max_pool_2x2 (a reshape and a max)",
       swapped(study, "max_pool_2x2", _reduce_window_pool), knobs, 1e-5),
      ("patches_einsum_conv", "convolutions as patches + einsum",
       "conv (one plain convolution per seed)", swapped(study, "conv", _patches_conv), knobs,
       1e-3),  # float32 rounding, grown over the sample's steps (measured: 8e-5 after 10)
  )
  rows = []
  for key, label, chosen_name, swap, alt_knobs, tol in alternatives:
    alt = _runner(*_compiled_step(study, data, keys, alt_knobs, swap), keys, alt_knobs, steps)
    chosen = _runner(chosen_init, chosen_step, keys, knobs, steps)  # from the same start
    row = compare(key, f"study step, {seeds} seeds vmapped, {steps} steps: {label}", alt,
                  chosen, chosen_name, shape=shape, dtype="float32", rounds=rounds, rtol=tol,
                  atol=tol, items=seeds * 64 * steps)
    rows.append({**row, "anchor": f"jaxreg study: {chosen_name}", "seeds": seeds,
                 "steps": steps})
  alt_s, chosen_s = _compile_seconds(study, data, keys, _init_per_kernel(study), reps)
  ratio = alt_s / chosen_s
  rows.append(H.row(f"compile: study initializer, {seeds} seeds vmapped: one jax.random.normal "
                    "per kernel (5)", shape, "float32", alt_s, chosen_s, ratio,
                    f"compile seconds, median of {reps}; {ratio:.2f}x the chosen form",
                    anchor_name="jaxreg study: one draw sliced into the kernels",
                    key="initializer_one_draw_per_kernel_compile", seeds=seeds, reps=reps))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
