"""Batch norm's training path: global statistics and the custom_vjp with the hand-derived
backward (the formulas are in `jaxreg._batch_norm`'s docstring).

`batch_norm_core` is the `jax.custom_vjp`; `train_forward` the same forward, which
``backward="autodiff"`` differentiates with JAX's autodiff. Design: docs/design/batch_norm.md.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxreg import _backend, _checks

# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


class Config(NamedTuple):
  """Static configuration of the training-path core (hashable: a custom_vjp nondiff arg)."""

  reduce_axes: tuple[int, ...]
  eps: float
  axis_name: tuple | None  # device axis names, checked


def _unbound(axis_name):
  return ValueError(
      f"batch_norm: `axis_name`={axis_name!r} is not bound here. It names the device axis "
      "of an enclosing `shard_map`, `pmap` or `vmap(..., axis_name=...)`; under plain `jit` "
      "over sharded arrays pass axis_name=None (statistics are global already)."
  )


def _psum(value, axis_name):
  if axis_name is None:
    return value
  try:
    return lax.psum(value, axis_name)
  except NameError as err:
    raise _unbound(axis_name) from err


def axis_size(axis_name) -> int:
  """The number of devices along the named axes (1 without any)."""
  if axis_name is None:
    return 1
  try:
    return math.prod(lax.axis_size(name) for name in axis_name)
  except NameError as err:
    raise _unbound(axis_name) from err


def varying_axes(value):
  """The device axes ``value`` varies over under `shard_map`, or None where JAX tracks none."""
  aval = jax.typeof(value)
  manual = getattr(aval, "manual_axis_type", None)  # JAX >= 0.9; older: `aval.vma`
  return manual.varying if manual is not None else getattr(aval, "vma", None)


def _as_cotangent_of(cotangent, primal, axis_name):
  """Sums a per-device parameter gradient over the devices a replicated parameter spans.

  Under `shard_map`, JAX types every value as varying or invariant across each device axis;
  the gradient of an invariant (replicated) ``scale``/``bias`` must be the invariant total, i.e.
  the sum of the per-device contributions. Where JAX tracks no such type (a named `vmap`,
  whose own transpose sums over the batch), the local contribution is the right cotangent.
  """
  if axis_name is None:
    return cotangent
  varying = varying_axes(primal)
  if varying is None:
    return cotangent
  missing = tuple(name for name in axis_name if name not in varying)
  return lax.psum(cotangent, missing) if missing else cotangent



def batch_statistics(x, keep, running, config: Config):
  """Per-feature count, mean, deviations ``x - mean`` and biased variance, global over devices.

  Two passes: the mean first, then the mean squared deviation from it. Unlike the one-pass
  E[x^2] - E[x]^2, this keeps its precision when the mean is large compared with the spread.
  Sums and counts (not means) are reduced across devices, so devices holding different numbers
  of valid values are weighted correctly. Computed in float32 or wider for any input dtype. The
  deviations are returned for the normalization, into which XLA fuses them.

  A sum of squared deviations past the dtype's largest value is inf (see `nan_if_infinite`).

  With a mask, a feature may have no valid value at all; it has no batch statistics, and its
  entries are normalized with the running ``(mean, var)`` instead (rsqrt(0 + eps) would scale
  them by 316 and overflow float16).
  """
  axes = config.reduce_axes
  compute = _checks.float32_or_wider(x.dtype)
  x32 = x.astype(compute)
  if keep is None:
    count = jnp.asarray(math.prod(x.shape[a] for a in axes), compute)
    valid_x = x32
  else:
    keep = jnp.broadcast_to(keep, x.shape)
    count = jnp.sum(keep, axes, keepdims=True, dtype=compute)
    # A select, not a multiply by the mask, so that NaN or inf in padding stays out of the
    # statistics. XLA:CPU's reduction fusions take no select: this one copy is written out,
    # and both sums read it.
    valid_x = jnp.where(keep, x32, 0)
  total = jnp.sum(valid_x, axes, keepdims=True)
  count = _psum(count, config.axis_name)
  mean = _psum(total, config.axis_name) / jnp.maximum(count, 1)
  # x - mean is computed inside the variance's reduction. (x itself stays out of the barrier
  # here: with it, a bfloat16 network kept an extra activation per block;
  # docs/design/batch_norm.md#fusion-barriers-on-the-cpu.)
  (mean_var,) = _backend.cpu_barrier((mean,))
  sq_dev = jnp.square(valid_x - mean_var)
  if keep is not None:  # valid_x is finite where keep is False, so the multiply is safe
    sq_dev = sq_dev * keep.astype(compute)
  sq = _psum(jnp.sum(sq_dev, axes, keepdims=True), config.axis_name)
  var = sq / jnp.maximum(count, 1)
  if keep is not None:
    seen = count > 0
    mean = jnp.where(seen, mean, running[0].astype(compute))
    var = jnp.where(seen, var, running[1].astype(compute))
  return jnp.broadcast_to(count, mean.shape), mean, x32 - mean, var


# --------------------------------------------------------------------------------------------
# Training-path core with the hand-derived backward
# --------------------------------------------------------------------------------------------


def normalize(dev, inv, scale, bias, dtype):
  return (dev * (inv * scale) + bias).astype(dtype)


def nan_if_infinite(var, inv):
  """``inv``, NaN where the variance is inf: rsqrt(inf) = 0 would make every output ``bias``.

  The squared deviations of a feature overflow float32 once ``n * max|x - mean|**2`` passes
  3.4e38 (``|x|`` around 1e16 for a million values); a running variance that took in such a
  batch is inf too. Scaling the deviations before squaring would avoid the overflow, but
  needs max|x| first: one more read of x (docs/design/edge_cases.md).
  """
  return jnp.where(jnp.isinf(var), jnp.nan, inv)


def train_forward(config: Config, x, scale, bias, keep, running):
  count, mean, dev, var = batch_statistics(x, keep, running, config)
  inv = nan_if_infinite(var, lax.rsqrt(var + config.eps))
  if keep is not None:
    # One valid value has no variance (PyTorch refuses such a batch; unmasked, so does
    # batch_norm): its feature's outputs are NaN, never `bias` in silence.
    inv = jnp.where(count == 1, jnp.nan, inv)
  y = normalize(dev, inv, scale.astype(dev.dtype), bias.astype(dev.dtype), x.dtype)
  # Keep x itself, not the deviations, and recompute x - mean in the backward (one fused
  # subtraction). Keeping the deviations forces XLA to write them out as a second full-size
  # buffer that lives until the backward; x is alive anyway where the caller keeps it, and in
  # half precision it is half the bytes. Design: docs/design/batch_norm.md.
  # The mask is kept as passed (e.g. (N, 1)), not broadcast to x's size.
  return (y, count, mean, var), (x, mean, inv, count, scale, bias, keep, running)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def batch_norm_core(config: Config, x, scale, bias, keep, running):
  return train_forward(config, x, scale, bias, keep, running)[0]


def _batch_norm_core_fwd(config, x, scale, bias, keep, running):
  return train_forward(config, x, scale, bias, keep, running)


def batch_norm_core_bwd(config, residuals, cotangents):
  x, mean, inv, count, scale, bias, keep, running = residuals
  dy = cotangents[0]  # the statistics are returned under stop_gradient: no cotangent flows
  axes = config.reduce_axes
  compute = mean.dtype
  # Each pass converts its own dy and x (see _backend.cpu_barrier).
  (dy_1,) = _backend.cpu_barrier((dy,))
  sum_dy = jnp.sum(dy_1.astype(compute), axes, keepdims=True)  # local to this device: dbias
  x_2, dy_2 = _backend.cpu_barrier((x, dy))
  mean_2, _ = _backend.cpu_barrier((mean, inv))  # not (mean,): that barrier is the variance's
  dev_2 = x_2.astype(compute) - mean_2
  dy_dev = dy_2.astype(compute) * dev_2
  if keep is not None:
    # A padded position whose output the loss ignores (dy == 0) adds nothing, also when its x
    # is NaN or inf (0 * NaN would spread NaN into dscale and every dx of its feature). Where
    # the loss does use a padded output, its term stays: the gradient is exact either way.
    dy_dev = jnp.where(keep | (dy_2 != 0), dy_dev, 0)
  sum_dy_dev = jnp.sum(dy_dev, axes, keepdims=True)  # local: dscale / inv
  # The statistics were global, so the terms through them use the global sums.
  global_dy = _psum(sum_dy, config.axis_name)
  global_dy_dev = _psum(sum_dy_dev, config.axis_name)
  # dx = gain * (dy - (global_dy + dev * inv**2 * global_dy_dev) / n), written with per-feature
  # coefficients that are ready before the pass (with scale=None, XLA:CPU otherwise made dx
  # an XNNPACK pass over a full-size broadcast of inv; see _backend.cpu_barrier). gain
  # multiplies the whole bracket, not each coefficient: folded into them, XLA:GPU scheduled a
  # bfloat16 network's weight gradients after the whole backward (more memory held).
  # Design: docs/design/batch_norm.md.
  gain = scale.astype(compute) * inv
  n = jnp.maximum(count, 1)
  # inv * (inv * ...): inv**2 would underflow to 0 for a standard deviation past 1e19.
  per_dev = inv * (inv * global_dy_dev / n)
  offset = global_dy / n
  mean_3, gain, per_dev, offset = _backend.cpu_barrier((mean, gain, per_dev, offset))
  correction = offset + (x.astype(compute) - mean_3) * per_dev
  if keep is not None:
    correction = jnp.where(keep, correction, 0)
  dx = gain * (dy.astype(compute) - correction)
  dscale = (sum_dy_dev * inv).reshape(scale.shape).astype(scale.dtype)
  dbias = sum_dy.reshape(bias.shape).astype(bias.dtype)
  dscale = _as_cotangent_of(dscale, scale, config.axis_name)
  dbias = _as_cotangent_of(dbias, bias, config.axis_name)
  d_running = None
  if running is not None:
    # A feature with no valid entry was normalized with the running statistics,
    # y = (x - m) * rsqrt(v + eps) * scale + bias, so y depends on them there (and only there).
    unseen = count == 0
    scale_c = scale.astype(compute)
    d_mean = jnp.where(unseen, -(scale_c * inv) * sum_dy, 0)
    d_var = jnp.where(unseen, -0.5 * scale_c * inv**3 * sum_dy_dev, 0)
    d_running = tuple(_as_cotangent_of(d.astype(r.dtype), r, config.axis_name)
                      for d, r in zip((d_mean, d_var), running, strict=True))
  return dx.astype(dy.dtype), dscale, dbias, None, d_running  # dy has x's dtype, like y


batch_norm_core.defvjp(_batch_norm_core_fwd, batch_norm_core_bwd)
