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

from jaxreg import _checks
from jaxreg._batch_norm_core import (
    Config,
    axis_size,
    batch_norm_core,
    nan_if_infinite,
    normalize,
    train_forward,
    varying_axes,
)

__all__ = ["BatchNormState", "batch_norm", "batch_norm_init"]

Backward = Literal["custom", "autodiff"]


class BatchNormState(NamedTuple):
  """Running statistics of batch normalization (a pytree: jit, vmap, tree.map, savez all work).

  Attributes:
    mean: running mean, shape = the feature shape (e.g. ``(C,)``), float32 by default.
    var: running (biased, or unbiased with ``unbiased_running_var``) variance, same shape and
      dtype as ``mean``.

  Example:
    >>> import jaxreg as jr
    >>> state = jr.batch_norm_init(3)
    >>> state.mean.shape, state.var.tolist()
    ((3,), [1.0, 1.0, 1.0])
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
# Public op
# --------------------------------------------------------------------------------------------


def _check_param(value, op, name, *, feature_shape, param_shape):
  if value is None:
    return None
  value = _checks.check_float_array(value, op, name)
  if value.shape != feature_shape:
    raise ValueError(f"{op}: `{name}` must have the feature shape {feature_shape}, got "
                     f"{value.shape}.")
  return value.reshape(param_shape)


def _check_mask_sharding(mask, op, *, x, axis_name):
  """A mask must be split over the devices like x: say so instead of a shape error."""
  if axis_name is None:
    return
  x_varying, mask_varying = varying_axes(x), varying_axes(mask)
  if x_varying is None or mask_varying is None:
    return
  extra = [name for name in axis_name if name in mask_varying - x_varying]
  if extra:
    raise ValueError(
        f"{op}: `mask` is split over device axis {extra[0]!r} but x is replicated along it: "
        "each device would count a different mask over the same data. Shard the mask with the "
        "PartitionSpec of x (in_specs of the shard_map).")


def _check_mask(mask, op, *, x, axis_name):
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
  _check_mask_sharding(mask, op, x=x, axis_name=axis_name)
  if broadcast != x.shape:
    raise ValueError(f"{op}: `mask` of shape {mask.shape} would enlarge x's shape {x.shape}.")
  # Broadcast inside the op, where XLA fuses it: a (N, 1) mask is what the backward keeps.
  return mask.reshape((1,) * (x.ndim - mask.ndim) + mask.shape)


def _check_eps(eps, op, *, compute) -> float:
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


def _check_state(state, op, *, feature_shape) -> BatchNormState:
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
  shapes = {"feature_shape": feature_shape, "param_shape": param_shape}
  scale = _check_param(scale, op, "scale", **shapes)
  bias = _check_param(bias, op, "bias", **shapes)
  checked_state = _check_state(state, op, feature_shape=feature_shape)
  # A traced momentum outside [0, 1] makes the new running statistics NaN.
  momentum = _checks.checked_or_nan(momentum, op, "momentum", lo=0.0, hi=1.0)
  compute = _checks.float32_or_wider(x.dtype)
  eps = _check_eps(eps, op, compute=compute)
  unbiased_running_var = _checks.check_bool(unbiased_running_var, op, "unbiased_running_var")
  backward = _checks.check_choice(backward, op, "backward", choices=get_args(Backward))
  # A tuple of names from here on: one name, a list or a tuple of them, as in device_key.
  axis_name = (None if axis_name is None
               else _checks.check_axis_names(axis_name, op, reduces=True))
  keep = _check_mask(mask, op, x=x, axis_name=axis_name)  # checked on both paths; used in training

  if not train:
    return _evaluate(x, scale, bias, checked_state, eps=eps, param_shape=param_shape), state

  static_count = math.prod(x.shape[a] for a in reduce_axes)
  devices = axis_size(axis_name)
  if static_count * devices == 1:
    where = "" if axis_name is None else f" on the one device along axis_name={axis_name!r}"
    raise ValueError(
        f"{op}: a training batch `x` of shape {x.shape}{where} gives one value per feature "
        f"(reducing over axes {reduce_axes}); its variance is 0 and every output would equal "
        "`bias`. Use a larger batch, or train=False."
    )

  config = Config(reduce_axes, eps, axis_name)
  # A custom_vjp cannot be pushed forward (through x, the parameters or, with a mask, the
  # state): say what to use instead of JAX's generic error.
  with _checks.forward_mode_advice(op, _CUSTOM_FORWARD_MODE):
    return _train(x, scale, bias, keep, checked_state, momentum, config=config,
                  backward=backward, unbiased_running_var=unbiased_running_var,
                  feature_shape=feature_shape, param_shape=param_shape)


# The computations behind the checks, jitted: an eager call compiles one program per shape
# and configuration instead of dispatching each step; the checks need the concrete arguments,
# so they stay outside (docs/design/index.md#checks-eagerly-computations-jitted).


def _parameters(scale, bias, param_shape, compute):
  return (jnp.ones(param_shape, compute) if scale is None else scale,
          jnp.zeros(param_shape, compute) if bias is None else bias)


@functools.partial(jax.jit, static_argnames=("eps", "param_shape"))
def _evaluate(x, scale, bias, state, *, eps, param_shape):
  compute = _checks.float32_or_wider(x.dtype)
  scale, bias = _parameters(scale, bias, param_shape, compute)
  mean = jnp.reshape(state.mean, param_shape).astype(compute)
  var = jnp.reshape(state.var, param_shape).astype(compute)
  inv = nan_if_infinite(var, lax.rsqrt(var + eps))
  dev = x.astype(compute) - mean
  return normalize(dev, inv, scale.astype(compute), bias.astype(compute), x.dtype)


@functools.partial(jax.jit, static_argnames=("config", "backward", "unbiased_running_var",
                                             "feature_shape", "param_shape"))
def _train(x, scale, bias, keep, state, momentum, *, config, backward, unbiased_running_var,
           feature_shape, param_shape):
  scale, bias = _parameters(scale, bias, param_shape, _checks.float32_or_wider(x.dtype))
  # A feature with no valid entry is normalized with the running statistics (only a mask can
  # leave one empty).
  running = None if keep is None else tuple(
      v.reshape(param_shape) for v in (state.mean, state.var))
  if backward == "custom":
    y, count, mean, var = batch_norm_core(config, x, scale, bias, keep, running)
  else:
    y, count, mean, var = train_forward(config, x, scale, bias, keep, running)[0]

  count, mean, var = (lax.stop_gradient(v) for v in (count, mean, var))
  if unbiased_running_var:
    var = var * count / jnp.maximum(count - 1, 1)  # used where count > 1 only
  old_mean, old_var = state
  new_mean = momentum * old_mean + (1 - momentum) * mean.reshape(feature_shape)
  new_var = momentum * old_var + (1 - momentum) * var.reshape(feature_shape)
  # A feature with no valid value, or a single one (no variance), keeps its statistics.
  updated = count.reshape(feature_shape) > 1
  new_state = BatchNormState(
      mean=jnp.where(updated, new_mean, old_mean).astype(old_mean.dtype),
      var=jnp.where(updated, new_var, old_var).astype(old_var.dtype),
  )
  return y, new_state
