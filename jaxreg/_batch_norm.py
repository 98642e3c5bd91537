"""Batch normalization with explicit running statistics and a hand-derived backward pass.

``batch_norm(x, scale, bias, state, *, train)`` returns ``(y, new_state)``: the running mean and
variance are a `BatchNormState` pytree that goes in and comes out, never mutated, so a training
step is a pure function of ``(params, bn_state, opt_state, batch)``.

Training path: normalize with the batch mean and (biased) variance, computed in float32 or wider
for any input dtype, and blend them into the running statistics::

    running = momentum * running + (1 - momentum) * batch_statistic

(A feature that a mask leaves without any valid entry has no batch statistics: it is normalized
with its running statistics, which it keeps.)

Test path: ``(x - running_mean) * rsqrt(running_var + eps) * scale + bias``.

Momentum conventions differ between libraries. Here (as in the CS231n formulation and flax)
``momentum`` is the weight of the OLD running value: 0.9 by default; flax's default is 0.99.
PyTorch's ``momentum`` is the weight of the NEW batch value: PyTorch ``momentum=0.1`` is
``momentum=0.9`` here (``ours = 1 - torch``). PyTorch also blends the unbiased batch variance
(``n / (n - 1)`` times the biased one) into its running variance: pass
``unbiased_running_var=True`` for that.

The gradient of the training path is supplied by a `jax.custom_vjp` whose backward is derived
by hand. With ``xhat = (x - mean) * inv_std`` and ``n`` the number of (unmasked) values per
feature::

    dbias  = sum(dy)                 dscale = sum(dy * xhat)
    dx     = scale * inv_std * (dy - m * (sum(dy) + xhat * sum(dy * xhat)) / n)

where ``m`` is the mask (1 without one) and the sums run over every position the output was
computed at, except masked-out positions whose cotangent is 0 (so NaN or inf padding stays out).
The forward keeps ``x``, per-feature vectors (mean, inverse standard deviation, count, and the
running statistics when there is a mask) and the mask as passed; ``xhat`` is recomputed in the
backward instead of being stored.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Hashable, Sequence
from typing import Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _backend, _checks

__all__ = ["BatchNormState", "batch_norm", "batch_norm_init"]

Backward = Literal["custom", "autodiff"]


class BatchNormState(NamedTuple):
  """Running statistics of batch normalization (a pytree: jit, vmap, tree.map, savez all work).

  Attributes:
    mean: running mean, shape = the feature shape (e.g. ``(C,)``), float32 by default.
    var: running (biased, or unbiased with ``unbiased_running_var``) variance, same shape and
      dtype as ``mean``.
  """

  mean: jax.Array  # (*feature_shape,), float32
  var: jax.Array  # (*feature_shape,), float32


def batch_norm_init(
    num_features_or_shape: int | Sequence[int],
    *,
    dtype: jnp.dtype = jnp.float32,
) -> BatchNormState:
  """Initial running statistics: mean 0, variance 1.

  Args:
    num_features_or_shape: number of features (``C`` for NHWC input normalized over ``axis=-1``),
      or the feature shape when ``batch_norm`` normalizes over several feature axes.
    dtype: floating dtype of the running statistics (float32 by default, also for bfloat16
      models: running statistics accumulate small updates and need the precision).

  Returns:
    A `BatchNormState` with ``mean = zeros(shape)`` and ``var = ones(shape)``.

  Raises:
    TypeError: a shape that is not an int or a sequence of ints, or a non-floating dtype.
    ValueError: a negative dimension.

  Example:
    >>> import jaxreg as jr
    >>> state = jr.batch_norm_init(64)
    >>> state.mean.shape, state.var.dtype
    ((64,), dtype('float32'))
  """
  op = "batch_norm_init"
  if isinstance(num_features_or_shape, (numbers.Integral, np.integer)) and not isinstance(
      num_features_or_shape, bool):
    shape = (int(num_features_or_shape),)
  else:
    try:
      shape = tuple(num_features_or_shape)
    except TypeError as err:
      raise TypeError(f"{op}: `num_features_or_shape` must be an int or a sequence of ints, "
                      f"got {num_features_or_shape!r}.") from err
    if not all(isinstance(d, (numbers.Integral, np.integer)) and not isinstance(d, bool)
               for d in shape):
      raise TypeError(f"{op}: `num_features_or_shape` must contain ints, got "
                      f"{num_features_or_shape!r}.")
    shape = tuple(int(d) for d in shape)
  if any(d < 0 for d in shape):
    raise ValueError(f"{op}: `num_features_or_shape` must be >= 0 in every dimension, got "
                     f"{num_features_or_shape!r}.")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{op}: `dtype` must be a floating dtype, got {dtype}.")
  return BatchNormState(mean=jnp.zeros(shape, dtype), var=jnp.ones(shape, dtype))


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


class _Config(NamedTuple):
  """Static configuration of the training-path core (hashable: a custom_vjp nondiff arg)."""

  reduce_axes: tuple[int, ...]
  eps: float
  axis_name: tuple | None  # device axis names, checked


def _unbound(axis_name, err):
  return ValueError(
      f"batch_norm: `axis_name`={axis_name!r} is not bound here. It names the device axis "
      "of an enclosing `shard_map`, `pmap` or `vmap(..., axis_name=...)`; under plain `jit` "
      "over sharded arrays pass axis_name=None (statistics are global already)."
  )


def _psum(value, axis_name, reduce=lax.psum):
  if axis_name is None:
    return value
  try:
    return reduce(value, axis_name)
  except NameError as err:
    raise _unbound(axis_name, err) from err


def _axis_size(axis_name) -> int:
  """The number of devices along the named axes (1 without any)."""
  if axis_name is None:
    return 1
  try:
    return math.prod(lax.axis_size(name) for name in axis_name)
  except NameError as err:
    raise _unbound(axis_name, err) from err


def _varying_axes(value):
  """The device axes ``value`` varies over under `shard_map`, or None where JAX tracks none."""
  aval = jax.typeof(value)
  manual = getattr(aval, "manual_axis_type", None)  # JAX >= 0.9; older: `aval.vma`
  return manual.varying if manual is not None else getattr(aval, "vma", None)


def _check_mask_sharding(mask, x, axis_name, op):
  """A mask must be split over the devices like x: say so instead of a shape error."""
  if axis_name is None:
    return
  x_varying, mask_varying = _varying_axes(x), _varying_axes(mask)
  if x_varying is None or mask_varying is None:
    return
  extra = [name for name in axis_name if name in mask_varying - x_varying]
  if extra:
    raise ValueError(
        f"{op}: `mask` is split over device axis {extra[0]!r} but x is replicated along it: "
        "each device would count a different mask over the same data. Shard the mask with the "
        "PartitionSpec of x (in_specs of the shard_map).")


def _as_cotangent_of(cotangent, primal, axis_name):
  """Sums a per-device parameter gradient over the devices a replicated parameter spans.

  Under `shard_map`, JAX types every value as varying or invariant across each device axis;
  the gradient of an invariant (replicated) ``scale``/``bias`` must be the invariant total, i.e.
  the sum of the per-device contributions. Where JAX tracks no such type (a named `vmap`,
  whose own transpose sums over the batch), the local contribution is the right cotangent.
  """
  if axis_name is None:
    return cotangent
  varying = _varying_axes(primal)
  if varying is None:
    return cotangent
  missing = tuple(name for name in axis_name if name not in varying)
  return lax.psum(cotangent, missing) if missing else cotangent



def _batch_statistics(x, keep, running, config: _Config):
  """Per-feature count, mean, deviations ``x - mean`` and biased variance, global over devices.

  Two passes: the mean first, then the mean squared deviation from it. Unlike the one-pass
  E[x^2] - E[x]^2, this keeps its precision when the mean is large compared with the spread.
  Sums and counts (not means) are reduced across devices, so devices holding different numbers
  of valid values are weighted correctly. Computed in float32 or wider for any input dtype. The
  deviations are returned for the normalization, into which XLA fuses them.

  A sum of squared deviations past the dtype's largest value is inf (see `_nan_if_infinite`).

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


def _normalize(dev, inv, scale, bias, dtype):
  return (dev * (inv * scale) + bias).astype(dtype)


def _nan_if_infinite(var, inv):
  """``inv``, NaN where the variance is inf: rsqrt(inf) = 0 would make every output ``bias``.

  The squared deviations of a feature overflow float32 once ``n * max|x - mean|**2`` passes
  3.4e38 (``|x|`` around 1e16 for a million values); a running variance that took in such a
  batch is inf too. Scaling the deviations before squaring would avoid the overflow, but
  needs max|x| first: one more read of x (docs/design/edge_cases.md).
  """
  return jnp.where(jnp.isinf(var), jnp.nan, inv)


def _train_forward(config: _Config, x, scale, bias, keep, running):
  count, mean, dev, var = _batch_statistics(x, keep, running, config)
  inv = _nan_if_infinite(var, lax.rsqrt(var + config.eps))
  if keep is not None:
    # One valid value has no variance (PyTorch refuses such a batch; unmasked, so does
    # batch_norm): its feature's outputs are NaN, never `bias` in silence.
    inv = jnp.where(count == 1, jnp.nan, inv)
  y = _normalize(dev, inv, scale.astype(dev.dtype), bias.astype(dev.dtype), x.dtype)
  # Keep x itself, not the deviations, and recompute x - mean in the backward (one fused
  # subtraction). Keeping the deviations forces XLA to write them out as a second full-size
  # buffer that lives until the backward; x is alive anyway where the caller keeps it, and in
  # half precision it is half the bytes. Design: docs/design/batch_norm.md.
  # The mask is kept as passed (e.g. (N, 1)), not broadcast to x's size.
  return (y, count, mean, var), (x, mean, inv, count, scale, bias, keep, running)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _batch_norm_core(config: _Config, x, scale, bias, keep, running):
  return _train_forward(config, x, scale, bias, keep, running)[0]


def _batch_norm_core_fwd(config, x, scale, bias, keep, running):
  return _train_forward(config, x, scale, bias, keep, running)


def _batch_norm_core_bwd(config, residuals, cotangents):
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
  # bfloat16 network's weight gradients after the whole backward (18% more temporary memory).
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


_batch_norm_core.defvjp(_batch_norm_core_fwd, _batch_norm_core_bwd)


# --------------------------------------------------------------------------------------------
# Public op
# --------------------------------------------------------------------------------------------


def _check_param(value, name, feature_shape, param_shape, op):
  if value is None:
    return None
  value = _checks.check_float_array(value, op, name)
  if value.shape != feature_shape:
    raise ValueError(f"{op}: `{name}` must have the feature shape {feature_shape}, got "
                     f"{value.shape}.")
  return value.reshape(param_shape)


def _check_mask(mask, x, axis_name, op):
  """The mask as a boolean array of x's rank (not broadcast to x's size), or None."""
  if mask is None:
    return None
  if isinstance(mask, (str, bytes)):
    raise TypeError(f"{op}: `mask` must be a boolean array, got {mask!r}.")
  mask = jnp.asarray(mask)
  if mask.dtype != jnp.bool_:
    raise TypeError(f"{op}: `mask` must be a boolean array, got dtype {mask.dtype}.")
  try:
    broadcast = jnp.broadcast_shapes(mask.shape, x.shape)
  except ValueError as err:
    hint = "e.g. use (N, 1) for (N, D) input"
    if axis_name is not None:
      hint += (f"; under axis_name={axis_name!r} both are this device's shards: a mask must "
               "be sharded like x (the same PartitionSpec), not passed whole (replicated) "
               "or split along another axis")
    raise ValueError(f"{op}: `mask` of shape {mask.shape} does not broadcast to x's shape "
                     f"{x.shape} ({hint}).") from err
  _check_mask_sharding(mask, x, axis_name, op)
  if broadcast != x.shape:
    raise ValueError(f"{op}: `mask` of shape {mask.shape} would enlarge x's shape {x.shape}.")
  # Broadcast inside the op, where XLA fuses it: a (N, 1) mask is what the backward keeps.
  return mask.reshape((1,) * (x.ndim - mask.ndim) + mask.shape)


def _check_eps(eps, compute, op) -> float:
  """``eps`` as a Python float that is a normal number of the compute dtype."""
  if _checks.check_interval(eps, op, "eps", lo=0.0, lo_open=True) is None:
    raise TypeError(f"{op}: `eps` must be a Python number (it is part of the compiled "
                    "computation), got a traced value.")
  eps = float(eps)
  info = jnp.finfo(compute)
  if eps < float(info.tiny):
    raise ValueError(f"{op}: `eps`={eps!r} is subnormal in {info.dtype} (its smallest normal "
                     f"number is {float(info.tiny)!r}); XLA flushes subnormals to 0, and "
                     "rsqrt(0) is inf. Use e.g. 1e-5.")
  if eps > float(info.max):
    raise ValueError(f"{op}: `eps`={eps!r} overflows {info.dtype} (largest {float(info.max)!r}).")
  return eps


_CUSTOM_FORWARD_MODE = (
    "the default `backward`='custom' is a hand-written custom_vjp: reverse mode, of any order, "
    "and forward mode over it (jax.hessian, jax.jvp of jax.grad) work, but forward mode "
    "applied to batch_norm itself (jax.jvp, jax.jacfwd, or applying the function "
    "jax.linearize returns) does not. Pass backward='autodiff' for that.")


def _check_state(state, feature_shape, op) -> BatchNormState:
  if not isinstance(state, BatchNormState):
    raise TypeError(f"{op}: `state` must be a BatchNormState (see batch_norm_init), got "
                    f"{type(state).__name__}.")
  checked = []
  for name, value in zip(("mean", "var"), state, strict=True):
    value = _checks.check_float_array(value, op, f"state.{name}")
    if value.shape != feature_shape:
      raise ValueError(f"{op}: `state.{name}` must have the feature shape {feature_shape}, "
                       f"got {value.shape}. (Was it made by batch_norm_init for this layer?)")
    checked.append(value)
  return BatchNormState(*checked)


def batch_norm(
    x: jax.typing.ArrayLike,
    scale: jax.typing.ArrayLike | None,
    bias: jax.typing.ArrayLike | None,
    state: BatchNormState,
    *,
    train: bool,
    momentum: float = 0.9,
    eps: float = 1e-5,
    axis: int | Sequence[int] = -1,
    axis_name: Hashable | Sequence[Hashable] | None = None,
    mask: jax.typing.ArrayLike | None = None,
    unbiased_running_var: bool = False,
    backward: Backward = "custom",
) -> tuple[jax.Array, BatchNormState]:
  """Batch normalization over every axis but ``axis``, with running statistics as state.

  ``(N, D)`` input with ``axis=-1`` is the classic dense case; NHWC input with ``axis=-1`` is
  spatial batch norm (per-channel statistics over N, H and W).

  Args:
    x: floating-point input. bfloat16/float16 input is normalized with float32 statistics and
      returned in its own dtype. A batch with no values (a zero-size reduction) gives an empty
      ``y`` and leaves the state unchanged.
    scale: per-feature scale (gamma) of the feature shape, or None for 1.
    bias: per-feature offset (beta) of the feature shape, or None for 0.
    state: the running statistics, a `BatchNormState` from `batch_norm_init`.
    train: keyword-only, required. True normalizes with the batch statistics and returns the
      updated state; False normalizes with the running statistics and returns ``state`` as is.
    momentum: weight of the old running value, in [0, 1] (PyTorch's 0.1 is 0.9 here; flax's
      default is 0.99). A traced momentum outside [0, 1] (or NaN) cannot be checked at trace
      time and makes the new running statistics NaN.
    eps: added to the variance inside the square root, a Python number > 0 that is a normal
      number of the compute dtype (float32 or wider): a subnormal eps such as 1e-45 would be
      flushed to 0.
    axis: the feature axis or axes; statistics reduce over all the others. With several
      feature axes the feature shape follows their order in ``x``: ``axis=(3, 1)`` and
      ``(1, 3)`` both mean parameters of shape ``(x.shape[1], x.shape[3])``.
    axis_name: under `shard_map`, `pmap` or a named `vmap`, the device axis to compute global
      statistics over (from global sums and counts, so unequal per-device counts are weighted
      right): a name, or a tuple or list of names for several axes. Not needed under plain
      `jit` over sharded arrays, where reductions are global.
    mask: optional boolean array broadcastable to ``x`` (e.g. ``(N, 1)`` for ``(N, D)``
      input, ``(N, 1, 1, 1)`` for NHWC); False entries are left out of the statistics. They are
      still normalized (with the statistics of the others), and may hold anything, NaN and inf
      included: the statistics, the running state and the gradients of the valid entries stay
      finite as long as the loss ignores the padded outputs. A feature with no valid entry is
      normalized with its running statistics, which it keeps. A feature with exactly one valid
      value (counted over every device of ``axis_name``) has no variance: an unmasked batch
      like that raises (as PyTorch refuses it), and since a mask's count is known only at run
      time, that feature's outputs are NaN (never a silent ``bias``) and it keeps its running
      statistics, with or without ``unbiased_running_var``. Checked but unused on the test
      path.
    unbiased_running_var: blend ``n / (n - 1)`` times the batch variance into the running
      variance, as PyTorch does. The batch itself is always normalized with the biased
      variance. A Python bool.
    backward: ``"custom"`` (default) uses the hand-derived backward (`jax.custom_vjp`).
      Reverse mode of any order works (grad of grad, Hessian-vector products by double
      `jax.grad`), and so does forward mode over reverse mode (`jax.hessian`, `jax.jvp` of
      `jax.grad`); forward mode applied to the op itself (`jax.jvp`, `jax.jacfwd`) raises a
      TypeError that says to pass ``"autodiff"`` (`jax.linearize` succeeds, and its linear
      function raises JAX's own forward-mode error when applied); with a ``mask`` that
      includes forward mode with respect to ``state`` (the running statistics normalize a
      feature with no valid entry, so they are an input of the custom_vjp). ``"autodiff"``
      differentiates the same forward with JAX's autodiff and supports every mode, with one
      difference: NaN or inf in masked-out entries makes its gradients NaN.

  Returns:
    ``(y, new_state)``: ``y`` with the shape and dtype of ``x``; on the training path the updated
    running statistics (not differentiated), on the test path ``state`` itself.

  Range: the statistics are computed in float32 (or float64 for float64 input), so a feature
  whose sum of ``x`` or of squared deviations ``(x - mean)**2`` passes the dtype's largest
  value (float32: 3.4e38, e.g. ``|x|`` around 1e16 with a million values per feature, or
  ``x * 1e30``) has an infinite variance. Its outputs are then NaN, never the ``bias`` that
  ``rsqrt(inf) = 0`` would give in silence, and its running variance becomes inf, for which
  the test path gives NaN as well. Rescale such input (or use float64) before normalizing.

  Raises:
    ValueError: a training batch with a single value per feature, counted over every device
      of ``axis_name`` (its variance is 0 and the output would silently equal ``bias``);
      wrong shapes of ``scale``/``bias``/``state``/``mask``; ``axis`` out of range or covering
      every axis; ``momentum`` outside [0, 1]; ``eps <= 0``, not finite, or subnormal or
      overflowing in the compute dtype; an unbound or empty ``axis_name``; under
      ``axis_name``, a ``mask`` that is not sharded like ``x`` (passed whole while x is split,
      or split while x is not); an unknown ``backward``.
    TypeError: non-floating ``x`` or state arrays; non-bool ``train``, ``mask`` or
      ``unbiased_running_var`` (a traced flag included); a ``state`` that is not a
      `BatchNormState`; a traced ``eps``; an ``axis_name`` that is no axis name (a number,
      which JAX's collectives read as an array axis, a set, bytes, None inside a tuple);
      forward-mode differentiation of the ``"custom"`` backward (see ``backward``).

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> x = jax.random.normal(jax.random.key(0), (8, 4, 4, 3)) * 5 + 2
    >>> state = jr.batch_norm_init(3)
    >>> y, state = jr.batch_norm(x, jnp.ones(3), jnp.zeros(3), state, train=True)
    >>> bool(jnp.allclose(y.mean((0, 1, 2)), 0, atol=1e-5))
    True
    >>> y_test, same = jr.batch_norm(x, jnp.ones(3), jnp.zeros(3), state, train=False)
    >>> same is state
    True

  References:
    Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
    Internal Covariate Shift", ICML 2015.
  """
  op = "batch_norm"
  train = _checks.check_train(train, op)
  x = _checks.check_float_array(x, op)
  _checks.check_ndim(x, op, min_ndim=1)
  feature_axes = _checks.normalize_axes(axis, op, "axis", ndim=x.ndim)
  reduce_axes = tuple(a for a in range(x.ndim) if a not in feature_axes)
  if not reduce_axes:
    raise ValueError(f"{op}: `axis`={axis!r} covers every axis of x (shape {x.shape}); "
                     "statistics need at least one axis to reduce over.")
  feature_shape = tuple(x.shape[a] for a in feature_axes)
  param_shape = tuple(x.shape[a] if a in feature_axes else 1 for a in range(x.ndim))
  scale = _check_param(scale, "scale", feature_shape, param_shape, op)
  bias = _check_param(bias, "bias", feature_shape, param_shape, op)
  checked_state = _check_state(state, feature_shape, op)
  # A traced momentum outside [0, 1] makes the new running statistics NaN.
  momentum = _checks.checked_or_nan(momentum, op, "momentum", lo=0.0, hi=1.0)
  compute = _checks.float32_or_wider(x.dtype)
  eps = _check_eps(eps, compute, op)
  unbiased_running_var = _checks.check_bool(unbiased_running_var, op, "unbiased_running_var")
  backward = _checks.check_choice(backward, op, "backward", choices=get_args(Backward))
  # A tuple of names from here on: one name, a list or a tuple of them, as in device_key.
  axis_name = (None if axis_name is None
               else _checks.check_axis_names(axis_name, op, reduces=True))
  keep = _check_mask(mask, x, axis_name, op)  # checked on both paths; used by training only

  ones = lambda: jnp.ones(param_shape, compute)  # noqa: E731
  scale_ = ones() if scale is None else scale
  bias_ = jnp.zeros(param_shape, compute) if bias is None else bias

  if not train:
    mean = jnp.reshape(checked_state.mean, param_shape).astype(compute)
    var = jnp.reshape(checked_state.var, param_shape).astype(compute)
    inv = _nan_if_infinite(var, lax.rsqrt(var + eps))
    dev = x.astype(compute) - mean
    return _normalize(dev, inv, scale_.astype(compute), bias_.astype(compute), x.dtype), state

  static_count = math.prod(x.shape[a] for a in reduce_axes)
  devices = _axis_size(axis_name)
  if static_count * devices == 1:
    where = "" if axis_name is None else f" on the one device along axis_name={axis_name!r}"
    raise ValueError(
        f"{op}: a training batch `x` of shape {x.shape}{where} gives one value per feature "
        f"(reducing over axes {reduce_axes}); its variance is 0 and every output would equal "
        "`bias`. Use a larger batch, or train=False."
    )

  config = _Config(reduce_axes, eps, axis_name)
  # A feature with no valid entry is normalized with the running statistics (only a mask can
  # leave one empty).
  running = None if keep is None else tuple(
      v.reshape(param_shape) for v in (checked_state.mean, checked_state.var))
  if backward == "custom":
    # A custom_vjp cannot be pushed forward (through x, the parameters or, with a mask, the
    # state): say what to use instead of JAX's generic error.
    with _checks.forward_mode_advice(op, _CUSTOM_FORWARD_MODE):
      y, count, mean, var = _batch_norm_core(config, x, scale_, bias_, keep, running)
  else:
    y, count, mean, var = _train_forward(config, x, scale_, bias_, keep, running)[0]

  count, mean, var = (lax.stop_gradient(v) for v in (count, mean, var))
  if unbiased_running_var:
    var = var * count / jnp.maximum(count - 1, 1)  # used where count > 1 only
  old_mean, old_var = checked_state
  new_mean = momentum * old_mean + (1 - momentum) * mean.reshape(feature_shape)
  new_var = momentum * old_var + (1 - momentum) * var.reshape(feature_shape)
  # A feature with no valid value, or a single one (no variance), keeps its statistics.
  updated = count.reshape(feature_shape) > 1
  new_state = BatchNormState(
      mean=jnp.where(updated, new_mean, old_mean).astype(old_mean.dtype),
      var=jnp.where(updated, new_var, old_var).astype(old_var.dtype),
  )
  return y, new_state
