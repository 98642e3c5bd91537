"""docs/design/batch_norm.md's training core against the alternatives it rejects, on the CPU.

    python -m benchmarks.run --only alternatives_batch_norm          # 64x56x56x64 float32
    python -m benchmarks.alternatives.batch_norm --smoke             # 8x8x8x16, seconds

Each timed row is forward+backward (y, the statistics, and the gradients of x, scale and bias for
a cotangent of y) of jaxreg's `batch_norm_core` against a copy of it with one piece replaced (the
copy with none replaced compiles to the same program): the statistics, the backward's two sums,
or the arithmetic. Float32 NHWC, mean 3 and standard deviation 2, statistics over N, H and W, at
bench_batchnorm's CPU size (batch 256 on an accelerator) and, as there, each sample after one
untimed call of its own step (lead_calls=1). The masked rows leave the last quarter of the
examples out, with finite padding (NaN would poison a float mask) and a cotangent of 0 there.
The values are checked to be jaxreg's within float32 rounding. Two rows are memory: XLA's
temporary bytes of bench_batchnorm's training step, 8 x (Dense -> BatchNorm -> ReLU) at 512x1024,
when the forward keeps x - mean for the backward instead of x, in float32 and bfloat16.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812
from benchmarks.alternatives import compare
from benchmarks.bench_batchnorm import _mlp_step, mlp_inputs, mlp_sizes
from jaxreg import _batch_norm_core as C  # noqa: N812
from jaxreg._backend import cpu_barrier

EPS = 1e-5
F32 = jnp.float32


def _config(x):
  return C.Config(tuple(range(x.ndim - 1)), EPS, None)  # the features on the last axis


def _chosen(x, *args):
  return C.batch_norm_core(_config(x), x, *args)


def _sum(v):  # over all but the feature axis
  return jnp.sum(v, tuple(range(v.ndim - 1)), keepdims=True)


def _chunks(v, size):
  return v.reshape(v.shape[0] // size, size, *v.shape[1:])


# Statistics: (x, keep, running) -> per-feature (count, mean, biased variance).


def _chosen_statistics(x, keep, running):
  count, mean, _, var = C.batch_statistics(x, keep, running, _config(x))
  return count, mean, var


def _masked_statistics(valid_sum):
  """jaxreg's masked two passes, ``valid_sum(keep, v)`` summing v where the (N, 1, 1, 1) keep
  is True, each sum with its own copy of keep (a shared full-size broadcast is written out)."""

  def statistics(x, keep, running):
    x32, (keep_mean,) = x.astype(F32), cpu_barrier((keep,))
    count = _sum(jnp.broadcast_to(keep, x.shape).astype(F32))
    mean = valid_sum(keep_mean, x32) / jnp.maximum(count, 1)
    mean_var, keep_var = cpu_barrier((mean, keep))
    var = valid_sum(keep_var, jnp.square(x32 - mean_var)) / jnp.maximum(count, 1)
    seen = count > 0
    return count, jnp.where(seen, mean, running[0]), jnp.where(seen, var, running[1])

  return statistics


def _shifted_statistics(x, keep, running):
  """One pass: the sums of d and d**2, d = x - (each feature's first value). Each sum computes
  its own d behind a barrier: XLA:CPU does not fuse sibling reductions, and would write d out."""
  x32, n = x.astype(F32), x.size // x.shape[-1]
  shift = x32[(slice(0, 1),) * (x.ndim - 1)]
  mean_d = _sum(x32 - cpu_barrier((shift,))[0]) / n
  var = _sum(jnp.square(x32 - cpu_barrier((shift, shift))[0])) / n - jnp.square(mean_d)
  return jnp.full_like(shift, n), shift + mean_d, var


def _scaled_statistics(x, keep, running):
  """Two passes, the deviations scaled by a per-feature power of two from max|x| before
  squaring (docs/design/edge_cases.md): exact, and finite up to float32's largest value."""
  x32, n = x.astype(F32), x.size // x.shape[-1]
  mean = _sum(x32) / n
  top = jnp.max(jnp.abs(x32), tuple(range(x.ndim - 1)), keepdims=True)
  power = jnp.exp2(-jnp.floor(jnp.log2(jnp.maximum(top, jnp.finfo(F32).tiny))))
  mean_2, power_2 = cpu_barrier((mean, power))
  var = _sum(jnp.square((x32 - mean_2) * power_2)) / n / jnp.square(power_2)
  return jnp.full_like(mean, n), mean, var


def _chunked_statistics(size):
  """Two passes over each chunk of ``size`` examples (from cache), combined by Chan's formula."""

  def statistics(x, keep, running):
    def one(chunk):
      mean = _sum(chunk) / (chunk.size // chunk.shape[-1])
      return mean, _sum(jnp.square(chunk - mean))

    means, squares = lax.map(one, _chunks(x.astype(F32), size))
    n, mean = x.size // x.shape[-1], jnp.mean(means, 0)
    # M2 = the chunks' M2 summed + sum over the chunks of count * (chunk mean - mean)**2
    spread = jnp.sum(jnp.square(means - mean), 0) * (n // means.shape[0])
    return jnp.full_like(mean, n), mean, (jnp.sum(squares, 0) + spread) / n

  return statistics


# Backward sums: (x, dy, mean, inv) -> (sum(dy), sum(dy * (x - mean))), unmasked.


def _chosen_sums(x, dy, mean, inv):  # jaxreg's: each pass behind its own barriers
  (dy_1,) = cpu_barrier((dy,))
  x_2, dy_2 = cpu_barrier((x, dy))
  mean_2, _ = cpu_barrier((mean, inv))
  return _sum(dy_1.astype(F32)), _sum(dy_2.astype(F32) * (x_2.astype(F32) - mean_2))


def _one_reduction(reduce_both):
  """Both sums from one reduction, ``reduce_both(dy, x - mean)``, that reads dy once."""

  def sums(x, dy, mean, inv):
    x_2, dy_2 = cpu_barrier((x, dy))
    mean_2, _ = cpu_barrier((mean, inv))
    return reduce_both(dy_2.astype(F32), x_2.astype(F32) - mean_2)

  return sums


def _variadic(dy, dev):
  zero, add = np.float32(0), lambda a, b: (a[0] + b[0], a[1] + b[1])
  both = lax.reduce((dy, dy * dev), (zero, zero), add, tuple(range(dy.ndim - 1)))
  return tuple(s.reshape((1,) * (dy.ndim - 1) + s.shape) for s in both)


def _concatenated(dy, dev):
  return tuple(jnp.split(_sum(jnp.concatenate([dy, dy * dev], -1)), 2, -1))


def _complex(dy, dev):
  both = _sum(lax.complex(dy, dy * dev))
  return both.real, both.imag


def _broadcast_weighted(dy, dev):  # (2, N, H, W, C): dy weighted by 1 and by x - mean
  weighted = jnp.stack([jnp.ones_like(dev), dev]) * dy
  return tuple(jnp.sum(weighted, tuple(range(1, dy.ndim)), keepdims=True))


def _chunked_sums(size):
  def sums(x, dy, mean, inv):
    def one(chunk):
      d = chunk[1].astype(F32)
      return _sum(d), _sum(d * (chunk[0].astype(F32) - mean))

    return tuple(jnp.sum(s, 0) for s in lax.map(one, (_chunks(x, size), _chunks(dy, size))))

  return sums


def _core(statistics=_chosen_statistics, sums=None, fold=False, keep_dev=False):
  """jaxreg's `batch_norm_core` with ``statistics`` for its own. Its backward, unless ``sums``
  (the two sums), ``fold`` (per-feature coefficients, y = a x + b and dx = a dy + b x + c) or
  ``keep_dev`` (x - mean kept for the backward instead of x) replaces a piece; then unmasked."""

  def forward(x, scale, bias, keep, running):
    count, mean, var = statistics(x, keep, running)
    inv = C.nan_if_infinite(var, lax.rsqrt(var + EPS))
    if keep is not None:
      inv = jnp.where(count == 1, jnp.nan, inv)
    x32, scale32, bias32 = x.astype(F32), scale.astype(F32), bias.astype(F32)
    if fold:
      y = (x32 * (inv * scale32) + (bias32 - mean * (inv * scale32))).astype(x.dtype)
    else:
      y = C.normalize(x32 - mean, inv, scale32, bias32, x.dtype)
    kept = x32 - mean if keep_dev else x
    return (y, count, mean, var), (kept, mean, inv, count, scale, bias, keep, running)

  def backward(residuals, cotangents):
    if sums is None and not fold and not keep_dev:
      return C.batch_norm_core_bwd(_config(residuals[0]), residuals, cotangents)
    x, mean, inv, count, scale, bias, _, _ = residuals  # x is x - mean with keep_dev
    dy = cotangents[0]
    dy32, x32, gain = dy.astype(F32), x.astype(F32), scale.astype(F32) * inv
    sum_dy, sum_dy_dev = ((_sum(dy32), _sum(dy32 * x)) if keep_dev
                          else (sums or _chosen_sums)(x, dy, mean, inv))
    per_dev, offset = inv * (inv * sum_dy_dev / count), sum_dy / count
    if fold:
      a, b, c = cpu_barrier((gain, -gain * per_dev, gain * (mean * per_dev - offset)))
      dx = a * dy32 + b * x32 + c
    elif keep_dev:
      dx = gain * (dy32 - (offset + x * per_dev))
    else:
      mean_3, gain, per_dev, offset = cpu_barrier((mean, gain, per_dev, offset))
      dx = gain * (dy32 - (offset + (x32 - mean_3) * per_dev))
    return (dx.astype(dy.dtype), (sum_dy_dev * inv).astype(scale.dtype),
            sum_dy.astype(bias.dtype), None, None)

  core = jax.custom_vjp(lambda *args: forward(*args)[0])
  core.defvjp(forward, backward)
  return core


def _alternatives():
  """(key, label, the chosen form's name, core, masked) of each timed row."""
  select, two_pass = "one select, read by both statistics", "two-pass statistics"
  sums = "two backward sums, each pass behind its own barriers"
  return [
      ("float_mask_multiply", "masked statistics: multiply by a float mask", select,
       _core(_masked_statistics(lambda keep, v: _sum(v * keep.astype(F32)))), True),
      ("two_selects", "masked statistics: one select for each statistic", select,
       _core(_masked_statistics(lambda keep, v: _sum(jnp.where(keep, v, 0)))), True),
      ("shifted_one_pass_variance", "statistics: one pass, shifted by each feature's first "
       "value", two_pass, _core(_shifted_statistics), False),
      ("scaled_deviations", "statistics: deviations scaled by a power of two from max(abs(x))",
       two_pass, _core(_scaled_statistics), False),
      *((f"chunked_statistics_{k}", f"statistics: lax.map over {k} examples, Chan's formula",
         two_pass, _core(_chunked_statistics(k)), False) for k in (2, 8)),
      *((f"backward_sums_{key}", f"backward sums: {label}", sums,
         _core(sums=_one_reduction(reduce_both)), False) for key, label, reduce_both in (
             ("variadic_reduce", "one variadic lax.reduce", _variadic),
             ("concatenated", "one sum of [dy, dy (x - mean)] concatenated", _concatenated),
             ("complex", "one sum of the complex dy + i dy (x - mean)", _complex),
             ("broadcast_weighted", "one sum of dy * stack([1, x - mean])",
              _broadcast_weighted))),
      *((f"chunked_backward_sums_{k}", f"backward sums: lax.map over {k} examples", sums,
         _core(sums=_chunked_sums(k)), False) for k in (2, 8)),
      ("per_feature_coefficients", "per-feature coefficients: y = a x + b, dx = a dy + b x + c",
       "(x - mean) * (inv scale) + bias; gain * (dy - ...)", _core(fold=True), False)]


def _step(core):
  """Forward+backward: the outputs and the gradients of x, scale and bias for cotangent g."""

  @jax.jit
  def step(x, scale, bias, keep, running, g):
    out, vjp = jax.vjp(lambda x, s, b: core(x, s, b, keep, running), x, scale, bias)
    return out, vjp((g, *map(jnp.zeros_like, out[1:])))

  return step


def _layer(core):
  """``core`` as `jr.batch_norm(..., train=True)` on (N, D) input, jitted as jaxreg's is."""

  def apply(x, scale, bias, state):
    y, _, mean, var = core(x, scale.reshape(1, -1), bias.reshape(1, -1), None, None)
    new = (0.9 * old + 0.1 * lax.stop_gradient(v).reshape(-1)
           for old, v in zip(state, (mean, var), strict=True))
    return y, jr.BatchNormState(*new)

  return jax.jit(apply)


def _memory_rows(smoke):
  blocks, batch, width = mlp_sizes(smoke)
  rows = []
  for dtype in (jnp.float32, jnp.bfloat16):
    params, states, x = mlp_inputs(blocks, batch, width, dtype)
    alt, mine = (H.temp_bytes(_mlp_step(_layer(core), blocks), params, states, x)
                 for core in (_core(keep_dev=True), _chosen))
    name = jnp.dtype(dtype).name
    rows.append(H.row(f"x - mean kept for the backward instead of x: {blocks}-block MLP step "
                      f"temp bytes, {name}", f"{batch}x{width}", name, None, None, alt / mine,
                      anchor_name="jaxreg: x kept, x - mean recomputed",
                      key=f"residual_deviations_temp_bytes_{name}", temp_bytes=alt,
                      anchor_temp_bytes=mine, temp_ratio=alt / mine))
  return rows


def run(smoke: bool = False) -> list[dict]:
  batch = 64 if jax.devices()[0].platform == "cpu" else 256
  shape = (8, 8, 8, 16) if smoke else (batch, 56, 56, 64)
  rounds, lead_calls = (3, 0) if smoke else (15, 1)
  x = jax.random.normal(jax.random.key(0), shape) * 2 + 3
  g = jax.random.normal(jax.random.key(1), shape)
  n, c = shape[0], shape[-1]
  scale, bias = jnp.ones((1, 1, 1, c)), jnp.zeros((1, 1, 1, c))
  keep = (jnp.arange(n) < n - n // 4).reshape(n, 1, 1, 1)
  masked = (x, scale, bias, keep, (jnp.zeros_like(scale), jnp.ones_like(scale)), g * keep)
  unmasked = (x, scale, bias, None, None, g)
  # The gradients of scale and bias are float32 sums of n * H * W terms of about 1, which a
  # reordered sum rounds differently: by up to about 1e-7 times the count (measured: 0.006).
  atol = 1e-7 * (x.size // c)
  chosen, rows = _step(_chosen), []
  for key, label, chosen_name, core, with_mask in _alternatives():
    alt, args = _step(core), masked if with_mask else unmasked
    rows.append(compare(key, label, lambda a=alt, args=args: a(*args),
                        lambda args=args: chosen(*args), chosen_name,
                        shape="x".join(map(str, shape)), dtype="float32", rounds=rounds,
                        rtol=1e-5, atol=atol, lead_calls=lead_calls))
  return rows + _memory_rows(smoke)


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
