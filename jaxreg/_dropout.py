"""The dropout family: dropout, channel dropout and drop-path (stochastic depth); DropBlock,
in `jaxreg._drop_block`, applies its masks the same way.

Every op has the same shape, ``op(key, x, rate, *, train, ...)``:

* ``rate`` is the probability of DROPPING (not keeping) an element, channel, example or block.
* With ``train=True`` the op multiplies by a random keep-mask and rescales the survivors so the
  expectation of the output is ``x`` (inverted dropout): the scale is the inverse of the keep
  probability the mask really has, not of ``1 - rate`` (see below).
* With ``train=False`` it returns ``x`` itself, the expectation of the training path, and needs no
  key (``key=None`` is allowed).

How the mask is made (and why it is cheaper than ``flax.linen.Dropout``): flax draws one float32
uniform per element, which costs one Threefry-2x32 hash per element, and on CPU JAX evaluates
that hash as a rolled loop whose state goes through memory five times. A hash yields 64 random
bits, and a keep decision needs only 16 of them to reach a keep probability within 2**-17 of
``1 - rate`` (exact when ``rate`` is a multiple of 2**-16, e.g. 0.5 or 0.125); the survivors are
scaled by the inverse of that realised probability, so the output stays unbiased. So here one hash
decides 4 elements; the hash is written out in ``jax.numpy`` (straight-line code instead of the
rolled loop), and the decisions are packed 32 to a uint32 word by a reduction that XLA fuses
the hash into, on every backend: the random words are never written out, and the consumer
unpacks a bit per element where it applies the mask. The mask is applied through a checkpoint
that saves the packed bits, so a backward pass keeps 1 bit per element of the mask, where a
boolean mask keeps 1 byte (also under `jax.vjp` or `lax.scan`). It is the same Threefry-2x32 that
``jax.random`` uses, bit for bit, so masks depend only on the key and the mask shape (eager or
jitted, on any backend).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _backend, _checks
from jaxreg._prng import CODE_BITS, keep_bits, keep_mask, unpack_keep_bits

__all__ = [
    "channel_dropout",
    "drop_path",
    "drop_path_rates",
    "dropout",
]


class _MaskSpec(NamedTuple):
  """Everything static about a keep-mask (hashable: a custom_vjp nondiff argument)."""

  shape: tuple[int, ...]
  impl: str  # the PRNG implementation's name, to rebuild typed keys from raw key data

  def key(self, key_data: jax.Array) -> jax.Array:
    """The typed key back from raw key data (raw so that custom_vjp can carry it)."""
    return jax.random.wrap_key_data(key_data, impl=self.impl)

  def bits(self, key_data: jax.Array, threshold: jax.Array) -> jax.Array:
    """The packed keep decisions (see `keep_bits`)."""
    return keep_bits(self.key(key_data), math.prod(self.shape), threshold)

  def keep(self, key_data: jax.Array, threshold: jax.Array) -> jax.Array:
    """The boolean keep-mask (see `keep_mask`)."""
    return keep_mask(self.key(key_data), self.shape, threshold)


def apply_mask(x: jax.Array, keep: jax.Array, scale: jax.Array) -> jax.Array:
  """``x * scale`` where ``keep`` (which broadcasts against ``x``), else 0.

  ``scale`` is float32 or wider. The product is taken in its dtype and rounded once to
  ``x.dtype``: a half-precision scale would be rounded first (bf16 keeps 8 bits, which biases
  the output by up to 0.4%) and overflows float16 at 2**16, the largest scale there is. The
  casts fuse into the multiply.
  """
  scaled = (x.astype(scale.dtype) * scale).astype(x.dtype)
  # `where`, not `x * keep * scale`: a dropped inf/NaN becomes 0 and the gradient of a dropped
  # element is exactly 0, never 0 * inf.
  return jnp.where(keep, scaled, jnp.zeros((), x.dtype))


@functools.partial(jax.checkpoint, static_argnums=(3,), prevent_cse=False)
def apply_packed_mask(x: jax.Array, bits: jax.Array, scale: jax.Array,
                       shape: tuple[int, ...]) -> jax.Array:
  """`apply_mask` with the mask given as packed bits, unpacked here.

  A checkpoint, so that what differentiation keeps for the backward is the packed bits (1 bit
  per mask element) and not the unpacked boolean mask (1 byte): the unpacking, a shift and a
  compare, is redone where the backward applies the mask. This holds wherever JAX saves
  residuals (`jax.vjp`, `lax.scan`, a jit boundary), not only where XLA fuses a whole step.
  Forward mode (jvp, hessian) works as with any function.
  """
  return apply_mask(x, unpack_keep_bits(bits, shape), scale)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _masked_recompute(spec: _MaskSpec, x, key_data, threshold, scale):
  return apply_mask(x, spec.keep(key_data, threshold), scale)


def _masked_recompute_fwd(spec, x, key_data, threshold, scale):
  y = apply_mask(x, spec.keep(key_data, threshold), scale)
  return y, (key_data, threshold, scale)  # a few scalars: the mask itself is not kept


def _masked_recompute_bwd(spec, residuals, g):
  key_data, threshold, scale = residuals
  key_data, g = _backend.after((key_data, g))  # regenerate once the cotangent is ready
  return apply_mask(g, spec.keep(key_data, threshold), scale), None, None, None


_masked_recompute.defvjp(_masked_recompute_fwd, _masked_recompute_bwd)


def valid_traced_rate(rate: jax.Array) -> jax.Array:
  """Whether a traced rate lies in [0, 1]: a boolean scalar, False for NaN."""
  return _checks.traced_in_interval(jnp.asarray(rate, jnp.float32), lo=0.0, hi=1.0)


def _concrete_threshold(rate: float) -> int:
  """``round((1 - rate) * 2**16)`` as a Python int (half to even, as `jnp.round`)."""
  return round((1.0 - rate) * 2**CODE_BITS)


def threshold_and_scale(rate, concrete_rate: float | None, dtype) -> tuple[jax.Array, jax.Array]:
  """The keep-mask threshold and the survivors' scale for a drop ``rate``.

  An element is kept when its 16-bit code is below ``threshold = round((1 - rate) * 2**16)``,
  i.e. with probability ``threshold / 2**16``, and the survivors are scaled by the inverse of
  that realised probability, ``2**16 / threshold``, not by ``1 / (1 - rate)``: the two differ by
  up to ``2**-17 / (1 - rate)`` relatively, which at rate 0.99999 is a bias of 53%. Threshold 0
  (rates of ``1 - 2**-17`` and above) drops everything, with scale 0; threshold ``2**16``
  (rates up to ``2**-17``) keeps everything, with scale 1.

  A traced rate cannot be checked at trace time, so one outside [0, 1] or NaN keeps everything
  (threshold ``2**16``) with a NaN scale: every output is NaN rather than silently wrong.

  Args:
    rate: the drop probability as given (a Python number or a traced scalar).
    concrete_rate: ``rate`` as a checked float, or None when it is traced.
    dtype: dtype of the scale, float32 or wider.

  Returns:
    ``(threshold, scale)``: a uint32 scalar and a ``dtype`` scalar.
  """
  full = 2**CODE_BITS
  if concrete_rate is not None:
    threshold = _concrete_threshold(concrete_rate)
    return jnp.uint32(threshold), jnp.asarray(full / threshold if threshold else 0.0, dtype)
  valid = valid_traced_rate(rate)
  keep_prob = 1.0 - lax.stop_gradient(jnp.asarray(rate, jnp.float32))
  # The select comes before the cast: a negative or NaN float has no uint32 value.
  threshold = jnp.where(valid, jnp.round(keep_prob * full), full).astype(jnp.uint32)
  # max(threshold, 1): the unused branch of the select must not divide by 0 either.
  scale = jnp.where(threshold > 0, full / jnp.maximum(threshold, 1).astype(dtype), 0)
  return threshold, jnp.where(valid, scale, jnp.nan).astype(dtype)


_RECOMPUTE_FORWARD_MODE = (
    "`recompute_mask`=True regenerates the mask in a hand-written custom_vjp backward, which "
    "supports reverse mode only; forward mode (jax.jvp, jax.jacfwd, jax.hessian) needs the "
    "default recompute_mask=False (which keeps the mask as packed bits).")


def _inverted_dropout(op, key, x, rate, mask_shape, *, train, recompute_mask):
  """Inverted dropout of ``x`` with a keep-mask of ``mask_shape`` broadcast against ``x``.

  The single implementation behind dropout, channel_dropout and drop_path.
  """
  concrete_rate = _checks.check_rate(rate, op)  # None when traced
  recompute_mask = _checks.check_bool(recompute_mask, op, "recompute_mask")
  if not train or concrete_rate == 0.0:
    return x
  if concrete_rate == 1.0:
    return jnp.zeros_like(x)  # constant: gradient 0, no 1/0 anywhere
  key = _checks.as_key(key, op, has_train=True)

  # Constant outputs where the quantised keep probability is 0 or 1: no mask, and no 1/0.
  if concrete_rate is not None:
    concrete_threshold = _concrete_threshold(concrete_rate)
    if concrete_threshold == 0:
      return jnp.zeros_like(x)  # rate >= 1 - 2**-17: no 16-bit code is below 0
    if concrete_threshold == 2**CODE_BITS:
      return x  # rate <= 2**-17: every code is kept, with scale 1
  threshold, scale = threshold_and_scale(rate, concrete_rate, _checks.float32_or_wider(x.dtype))

  spec = _MaskSpec(tuple(mask_shape), str(jax.random.key_impl(key)))
  key_data = jax.random.key_data(key)
  if recompute_mask:
    with _checks.forward_mode_advice(op, _RECOMPUTE_FORWARD_MODE):
      return _recomputed_dropout(spec, x, key_data, threshold, scale)
  return _packed_dropout(spec, x, key_data, threshold, scale)


# The computations behind the checks, jitted: an eager call compiles one program per shape and
# mask instead of dispatching each step; the checks need the concrete arguments, so they stay
# outside (docs/design/index.md#checks-eagerly-computations-jitted).
_recomputed_dropout = jax.jit(_masked_recompute, static_argnums=0)


@functools.partial(jax.jit, static_argnums=0)
def _packed_dropout(spec: _MaskSpec, x, key_data, threshold, scale):
  # Plain autodiff through a checkpoint: the backward keeps the packed mask (1 bit per
  # element), and forward-mode differentiation (jvp, hessian) works as well.
  return apply_packed_mask(x, spec.bits(key_data, threshold), scale, spec.shape)


def _check_x_and_train(x, op: str, *, train):
  train = _checks.check_train(train, op)
  x = _checks.check_float_array(x, op)
  return x, train


# --------------------------------------------------------------------------------------------
# Public ops
# --------------------------------------------------------------------------------------------


def dropout(
    key: jax.Array | None,
    x: jax.typing.ArrayLike,
    rate: float | jax.Array,
    *,
    train: bool,
    broadcast_dims: int | Sequence[int] = (),
    recompute_mask: bool = False,
) -> jax.Array:
  """Inverted dropout: zeroes each element with probability ``rate``, rescales the rest.

  On the training path each element of ``x`` is kept with probability ``q`` and multiplied by
  ``1 / q``, so ``E[dropout(key, x, rate)] == x`` exactly (up to the float rounding of the
  scale); the test path returns ``x`` unchanged. The keep decision compares a 16-bit random code
  with ``round((1 - rate) * 2**16)``, so ``q = round((1 - rate) * 2**16) / 2**16`` is within
  ``2**-17`` of ``1 - rate`` (exact when ``rate`` is a multiple of 2**-16, e.g. 0.5, 0.25,
  0.125), and the survivors are scaled by ``1 / q``, not ``1 / (1 - rate)``, which differ at high
  rates (by 0.7% at rate 0.999). Rates of ``1 - 2**-17`` and above drop everything (``q = 0``);
  rates up to ``2**-17`` keep everything. The product ``x * (1 / q)`` is computed in float32 for
  half-precision ``x`` and rounded once, so it overflows float16 only where the result does.

  Args:
    key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``). May be None when
      ``train=False``.
    x: floating-point array of any shape.
    rate: probability of DROPPING an element, in [0, 1]. A Python float or a (traced) JAX
      scalar, e.g. a jit argument or a schedule value. ``0`` returns ``x``; ``1`` returns zeros
      whose gradient is zero (never NaN). A traced rate outside [0, 1] (or NaN) gives NaN,
      since it cannot be checked at trace time.
    train: keyword-only, required. True applies the random mask; False returns ``x``.
    broadcast_dims: axes along which the mask is shared (e.g. ``(1,)`` for one mask per
      example of a ``(N, T, D)`` sequence shared over time, as in variational dropout).
    recompute_mask: if True, the backward pass regenerates the mask from the key instead of
      storing it (a ``jax.custom_vjp`` that saves only the key and two scalars), trading a
      second pass of PRNG work for the stored mask, 1 bit per element per layer (the default
      keeps the mask packed). Reverse-mode only: ``jax.jvp`` / ``jax.hessian`` need the
      default ``False`` (with True they raise a TypeError that says so). A Python bool.

  Returns:
    An array with the shape and dtype of ``x``.

  Raises:
    ValueError: ``rate`` outside [0, 1] (when known at trace time); bad ``broadcast_dims``;
      ``key`` missing on the training path.
    TypeError: ``x`` not floating point; ``train`` or ``recompute_mask`` not a Python bool
      (a traced flag included); ``key`` not a PRNG key; forward-mode differentiation with
      ``recompute_mask=True``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> x = jnp.ones((2, 4))
    >>> y = jr.dropout(jax.random.key(0), x, 0.5, train=True)
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    >>> bool((jr.dropout(None, x, 0.5, train=False) == x).all())
    True

  References:
    Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting",
    JMLR 2014.
  """
  op = "dropout"
  x, train = _check_x_and_train(x, op, train=train)
  dims = _checks.normalize_axes(broadcast_dims, op, "broadcast_dims", ndim=x.ndim)
  mask_shape = tuple(1 if axis in dims else size for axis, size in enumerate(x.shape))
  return _inverted_dropout(
      op, key, x, rate, mask_shape, train=train, recompute_mask=recompute_mask
  )


def channel_dropout(
    key: jax.Array | None,
    x: jax.typing.ArrayLike,
    rate: float | jax.Array,
    *,
    train: bool,
    channel_axis: int = -1,
    recompute_mask: bool = False,
) -> jax.Array:
  """Channel (spatial) dropout: drops whole feature maps, independently per example.

  For NHWC input each ``(example, channel)`` pair is kept with probability ``1 - rate`` and the
  whole ``H x W`` map is zeroed or rescaled by the inverse of the keep probability together (the
  realised one, within 2**-17 of ``1 - rate``, so the expectation is ``x``; see `dropout`). This
  is PyTorch's ``Dropout2d`` / Keras' ``SpatialDropout2D``: neighbouring activations are strongly
  correlated, so element-wise dropout barely regularizes convolutional features. Axis 0 is the
  batch axis; every axis other than the batch and channel axes shares the mask.

  Args:
    key: a PRNG key; may be None when ``train=False``.
    x: floating-point array with at least 3 dimensions, batch first: ``(N, ..., C)`` for
      the default ``channel_axis=-1`` (NHWC, NWC, NDHWC), or e.g. NCHW with ``channel_axis=1``.
    rate: probability of dropping a channel, in [0, 1]; a float or a traced scalar. A traced
      rate outside [0, 1] (or NaN) gives NaN, since it cannot be checked at trace time.
    train: keyword-only, required. False returns ``x``.
    channel_axis: the feature axis, one int (not 0, which is the batch axis).
    recompute_mask: regenerate the mask in the backward instead of storing it (see `dropout`);
      a Python bool.

  Returns:
    An array with the shape and dtype of ``x``.

  Raises:
    ValueError: ``x`` with fewer than 3 dimensions, ``channel_axis`` out of range or equal to
      the batch axis, ``rate`` outside [0, 1].
    TypeError: non-floating ``x``, non-bool ``train`` or ``recompute_mask``, a
      ``channel_axis`` that is not one int (a tuple of axes, say), bad ``key``; forward-mode
      differentiation with ``recompute_mask=True``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> x = jnp.ones((2, 5, 5, 8))  # NHWC
    >>> y = jr.channel_dropout(jax.random.key(0), x, 0.5, train=True)
    >>> bool((y.min(axis=(1, 2)) == y.max(axis=(1, 2))).all())  # maps kept or dropped whole
    True

  References:
    Tompson et al., "Efficient Object Localization Using Convolutional Networks", CVPR 2015.
  """
  op = "channel_dropout"
  x, train = _check_x_and_train(x, op, train=train)
  _checks.check_ndim(x, op, min_ndim=3, layout="batch first, e.g. NHWC")
  if isinstance(channel_axis, bool) or not isinstance(channel_axis, (numbers.Integral,
                                                                      np.integer)):
    raise TypeError(f"{op}: `channel_axis` must be one int (the feature axis), got "
                    f"{channel_axis!r}.")
  (axis,) = _checks.normalize_axes(channel_axis, op, "channel_axis", ndim=x.ndim)
  if axis == 0:
    raise ValueError(
        f"{op}: `channel_axis`={channel_axis} is the batch axis (axis 0); pass the feature axis, "
        "e.g. -1 for NHWC or 1 for NCHW."
    )
  mask_shape = tuple(size if i in (0, axis) else 1 for i, size in enumerate(x.shape))
  return _inverted_dropout(
      op, key, x, rate, mask_shape, train=train, recompute_mask=recompute_mask
  )


def drop_path(
    key: jax.Array | None,
    x: jax.typing.ArrayLike,
    rate: float | jax.Array,
    *,
    train: bool,
) -> jax.Array:
  """Drop-path (stochastic depth): drops a residual branch for whole examples.

  Apply it to the output of a residual branch before the skip connection,
  ``y = shortcut + drop_path(key, branch(x), rate, train=train)``. Each example (axis 0) keeps
  its whole branch output with probability ``1 - rate``, scaled by the inverse of that
  probability, or loses it (the keep probability is quantised as in `dropout`, and the scale is
  the inverse of the realised one, so the expectation is ``x``). At test time the branch is
  kept unscaled (the expectation), so a network trained with stochastic depth is evaluated at
  full depth.

  Args:
    key: a PRNG key; may be None when ``train=False``.
    x: floating-point array with at least 1 dimension; axis 0 indexes examples.
    rate: probability of dropping the branch for an example, in [0, 1]; see `drop_path_rates`
      for the usual per-block schedule. A traced rate outside [0, 1] (or NaN) gives NaN, since
      it cannot be checked at trace time.
    train: keyword-only, required. False returns ``x``.

  Returns:
    An array with the shape and dtype of ``x``.

  Raises:
    ValueError: scalar ``x``, ``rate`` outside [0, 1].
    TypeError: non-floating ``x``, non-bool ``train``, bad ``key``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> branch = jnp.ones((4, 3, 3, 2))
    >>> y = jr.drop_path(jax.random.key(1), branch, 0.5, train=True)
    >>> per_example = y.reshape(4, -1)
    >>> bool((per_example.min(1) == per_example.max(1)).all())
    True

  References:
    Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016.
  """
  op = "drop_path"
  x, train = _check_x_and_train(x, op, train=train)
  _checks.check_ndim(x, op, min_ndim=1, layout="examples on axis 0")
  mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
  # The mask has one entry per example, so storing it costs nothing worth recomputing.
  return _inverted_dropout(op, key, x, rate, mask_shape, train=train, recompute_mask=False)


def drop_path_rates(max_rate: float, depth: int) -> tuple[float, ...]:
  """Per-block drop-path rates rising linearly from 0 (first block) to ``max_rate`` (last).

  The linear decay rule of stochastic depth: early blocks compute low-level features that every
  later block needs, so they are dropped least. Returned as Python floats, so each block's rate
  is a trace-time constant (rate 0 then costs nothing). Same values as
  ``numpy.linspace(0, max_rate, depth)``; a single block gets rate 0.

  Args:
    max_rate: drop rate of the last block, in [0, 1].
    depth: number of residual blocks, >= 1.

  Returns:
    A tuple of ``depth`` floats.

  Raises:
    ValueError: ``max_rate`` outside [0, 1] or ``depth`` < 1.
    TypeError: non-numeric ``max_rate`` or non-int ``depth``.

  Example:
    >>> import jaxreg as jr
    >>> jr.drop_path_rates(0.5, 3)
    (0.0, 0.25, 0.5)

  References:
    Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016 (Sec. 3, linear decay).
  """
  op = "drop_path_rates"
  rate = _checks.check_rate(max_rate, op, name="max_rate")
  if rate is None:
    raise TypeError(f"{op}: `max_rate` must be a concrete number, got a traced value.")
  depth = _checks.check_positive_int(depth, op, "depth")
  if depth == 1:
    return (0.0,)
  return tuple(float(r) for r in np.linspace(0.0, rate, depth))
