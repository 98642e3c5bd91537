"""Ops defined on levels, with torchvision's (and so Pillow's) semantics: invert, solarize,
solarize-add, posterize, equalize and autocontrast.

Float HWC images in [0, 1]; all but solarize-add also take uint8 images (uint8 out), computed
on the levels themselves: the float result on ``q / 255``, times 255 (autocontrast's
truncated). Posterize and equalize are defined on the uint8 quantisation
``q = round(255 clip(x, 0, 1))`` of a float image, and each is a per-channel 256-entry lookup
table, as Pillow applies them: their outputs take only the 256 values ``k / 255``.

Every magnitude may be traced (one per example under `vmap`). A concrete magnitude out of its
range raises; a traced one that is NaN, infinite or out of range at run time makes a float
output NaN (posterize's traced ``bits`` are clamped to [0, 8] instead, as documented there).
Design: docs/design/photometric.md.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _backend, _checks
from jaxreg.augment._dtypes import LEVEL_VALUES, pixel_op
from jaxreg.augment._image_checks import check_image, check_magnitude, nan_if_bad_magnitude

LEVELS = 256


def _check_bits(bits, op: str):
  """An int in [0, 8], or a traced integer scalar (clamped to [0, 8])."""
  if _checks.is_traced(bits):
    if jnp.ndim(bits) != 0 or not jnp.issubdtype(bits.dtype, jnp.integer):
      raise TypeError(f"{op}: `bits` must be an int or a traced integer scalar, got a traced "
                      f"array of dtype {bits.dtype} and shape {jnp.shape(bits)}.")
    return jnp.clip(bits, 0, 8)
  integer_array = (isinstance(bits, (np.ndarray, jax.Array)) and bits.ndim == 0
                   and jnp.issubdtype(bits.dtype, jnp.integer))
  if not (integer_array or (isinstance(bits, (numbers.Integral, np.integer))
                            and not isinstance(bits, (bool, np.bool_)))):
    raise TypeError(f"{op}: `bits` must be an int in [0, 8], got {bits!r} of type "
                    f"{type(bits).__name__}.")
  value = int(bits)
  if not 0 <= value <= 8:
    raise ValueError(f"{op}: `bits` must be in [0, 8], got {bits!r}.")
  return value


# --------------------------------------------------------------------------------------------
# Histograms, lookup tables and levels
# --------------------------------------------------------------------------------------------


def quantize(image):
  """The uint8 quantisation ``round(255 clip(x, 0, 1))``, as float levels 0..255."""
  return jnp.round(jnp.clip(image, 0.0, 1.0) * 255)


def _posterize_levels(levels, bits):
  """``q & ~(2^(8 - bits) - 1)`` on float levels: floor to a multiple of the step."""
  if isinstance(bits, int):
    step = float(2 ** (8 - bits))
  else:  # a power of two built from integers, so exactly representable
    step = jnp.left_shift(jnp.int32(1), (8 - bits).astype(jnp.int32)).astype(levels.dtype)
  return jnp.floor(levels / step) * step


def channel_extremes(image):
  """Per-channel (min, max) of an HWC image, each of shape (C,).

  Reduced over the rows of the (H, W*C) view first: faster on XLA:CPU than reducing the HWC
  array over H and W. Design: docs/design/photometric.md#cpu-formulation.
  """
  height, width, channels = image.shape
  flat = image.reshape(height, width * channels)
  low = jnp.min(flat, axis=0).reshape(width, channels).min(axis=0)
  high = jnp.max(flat, axis=0).reshape(width, channels).max(axis=0)
  return low, high


def histogram_scatter(levels):
  """(H, W, C) float levels -> (C, 256) int32 counts, by one scatter-add. NaN has no level and
  is not counted."""
  channels = levels.shape[-1]
  counted, ones = _countable(levels)
  index = counted.astype(jnp.int32) + LEVELS * jnp.arange(channels, dtype=jnp.int32)
  counts = jnp.zeros(channels * LEVELS, jnp.int32).at[index.reshape(-1)].add(ones.reshape(-1))
  return counts.reshape(channels, LEVELS)


def _countable(levels):
  """(levels with NaN at level 0, 1 per pixel to count: 0 for NaN, which has no level)."""
  if not jnp.issubdtype(levels.dtype, jnp.floating):
    return levels, jnp.ones(levels.shape, jnp.int32)
  nan = jnp.isnan(levels)
  return jnp.where(nan, 0, levels), jnp.where(nan, 0, 1).astype(jnp.int32)


def histogram(levels):
  """`histogram_scatter`, run per example on a CPU: under `vmap`, XLA:CPU's batched scatter-add
  is slower than a loop of unbatched ones. Design: docs/design/photometric.md#cpu-formulation."""
  vectorized = lambda levels, select=False: histogram_scatter(levels)  # noqa: E731
  return _backend.loop_on_cpu(histogram_scatter, vectorized, differentiable=1)(levels)


def equalize_lut(hist):
  """(C, 256) counts -> (C, 256) int32 output levels, as Pillow's ``ImageOps.equalize``.

  ``step = (pixels - count of the highest level present) // 255``; the level ``i`` maps to
  ``(step // 2 + pixels below i) // step``, clamped to 255; ``step == 0`` (one level, or too
  few pixels) keeps the image.
  """
  present = hist > 0
  highest = LEVELS - 1 - jnp.argmax(present[:, ::-1], axis=-1)
  last_count = jnp.take_along_axis(hist, highest[:, None], axis=-1)[:, 0]
  # int32 sums: the default integer is int64 under x64
  step = (jnp.sum(hist, axis=-1, dtype=jnp.int32) - last_count) // 255
  below = jnp.cumsum(hist, axis=-1, dtype=jnp.int32) - hist
  lut = jnp.minimum((step[:, None] // 2 + below) // jnp.maximum(step, 1)[:, None], 255)
  return jnp.where(step[:, None] > 0, lut, jnp.arange(LEVELS, dtype=jnp.int32))


def apply_lut(levels, lut):
  """``lut[c, levels[..., c]]`` for (H, W, C) float levels and a (C, 256) table."""
  channels = levels.shape[-1]
  index = levels.astype(jnp.int32) + LEVELS * jnp.arange(channels, dtype=jnp.int32)
  return jnp.take(lut.reshape(-1), index, mode="clip")


# --------------------------------------------------------------------------------------------
# Kernels: each op's arithmetic on the image in its compute dtype, and on uint8 levels
# --------------------------------------------------------------------------------------------


# uint8 forms of the ops defined on the levels: the same results as the float forms on q / 255
# (times 255; autocontrast's truncated), from a quarter of the bytes.
# Design: docs/design/photometric.md#uint8-images.


def _invert_uint8(q):
  return 255 - q


def _solarize_uint8(q, threshold):
  # The levels inverted are those whose float value q / 255 is >= threshold: counted on the 256
  # levels once, in the float form's own arithmetic, then one integer comparison per pixel.
  # A traced threshold is not checked: below 0 every level is inverted, above 1 or NaN none.
  # The levels' float values are the correctly rounded q / 255 (`LEVEL_VALUES`), as a float
  # image from NumPy or torchvision holds them.
  threshold = jnp.asarray(threshold, jnp.float32)
  ramp = jnp.asarray(LEVEL_VALUES)
  first = jnp.where(jnp.isnan(threshold), LEVELS, jnp.sum(ramp < threshold).astype(jnp.int32))
  return jnp.where(q.astype(jnp.int32) >= first, 255 - q, q)


def _posterize_uint8(q, bits):
  # q & ~(2^(8 - bits) - 1): the mask is 255 with its 8 - bits low bits cleared.
  mask = jnp.left_shift(jnp.int32(255), 8 - jnp.asarray(bits, jnp.int32)) & 255
  return q & mask.astype(jnp.uint8)


def _equalize_uint8(q):
  lut = equalize_lut(histogram(q))
  return apply_lut(q, jnp.sort(lut, axis=-1).astype(jnp.uint8))


def _autocontrast_uint8(q):
  # floor(255 (q - low) / spread) per channel, as Pillow and torchvision on uint8 (which
  # evaluate it in floating point and can land one level low on whole values). XLA divides
  # by a per-channel spread as a product with its reciprocal, which can land just below a
  # whole quotient (245 * 255 / 245 -> 254.99998); one step on whole numbers below 2^16, all
  # exact in float32, moves the floor to the exact quotient's.
  low, high = (v.astype(jnp.float32) for v in channel_extremes(q))
  spread = high - low
  divisor = jnp.where(spread > 0, spread, 1)
  levels = q.astype(jnp.float32)
  numerator = (levels - low) * 255
  guess = jnp.floor(numerator / divisor)
  stretched = (guess + jnp.where(numerator >= (guess + 1) * divisor, 1, 0)
               - jnp.where(numerator < guess * divisor, 1, 0))
  return jnp.where(spread > 0, stretched, levels).astype(jnp.uint8)


@pixel_op(uint8=_invert_uint8)
def _invert(x):
  return 1 - x


@pixel_op(uint8=_solarize_uint8)
def _solarize(x, threshold):
  return jnp.where(x >= jnp.asarray(threshold, x.dtype), 1 - x, x)


@pixel_op
def _solarize_add(x, addition, threshold):
  added = jnp.clip(x + jnp.asarray(addition, x.dtype), 0.0, 1.0)
  return jnp.where(x < jnp.asarray(threshold, x.dtype), added, x)


@pixel_op(uint8=_posterize_uint8)
def _posterize(x, bits):
  return _posterize_levels(quantize(x), bits) / 255


def _equalized(x):
  levels = quantize(x)
  lut = equalize_lut(histogram(levels)).astype(x.dtype)
  # The table is non-decreasing, so sorting it changes nothing; but a sort is never fused, so
  # the 768 entries are computed once instead of once per pixel inside the lookup (an integer
  # division each). Design: docs/design/photometric.md#cpu-formulation.
  out = apply_lut(levels, jnp.sort(lut, axis=-1)) / 255
  return jnp.where(jnp.isnan(x), x, out)  # NaN stays NaN, as in the other level ops


@pixel_op(uint8=_equalize_uint8)
def _equalize(x):
  return _equalized(x)


@pixel_op(uint8=_autocontrast_uint8)
def _autocontrast(x):
  # torchvision: (x - min) / (max - min) per channel over H and W, clamped to [0, 1]; a constant
  # channel is kept (clamped). The maximum maps to exactly 1 by a select: XLA divides by the
  # per-channel spread as a product with its reciprocal, which can give 0.99999994 there
  # (the minimum gives 0 either way). Its gradient is zero, as the stretch's own at the maximum.
  low, high = channel_extremes(x)
  spread = high - low
  stretch = spread > 0
  low = jnp.where(stretch, low, 0)
  out = jnp.clip((x - low) / jnp.where(stretch, spread, 1), 0.0, 1.0)
  return jnp.where(stretch & (x == high), jnp.ones((), x.dtype), out)


# --------------------------------------------------------------------------------------------
# Public ops
# --------------------------------------------------------------------------------------------


def invert(image: jax.typing.ArrayLike) -> jax.Array:
  """``1 - x``: torchvision's ``invert`` on float images, Pillow's ``ImageOps.invert``.

  A uint8 image gives ``255 - q``, as torchvision and Pillow on uint8.

  Args:
    image: HWC float or uint8 image (any number of channels).

  Returns:
    The inverted image, same shape and dtype. Differentiable (the gradient is -1).

  Raises:
    ValueError: not an HWC image.
    TypeError: neither floating point nor uint8.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.invert(jnp.array([[[0.0, 0.25, 1.0]]]))
    Array([[[1.  , 0.75, 0.  ]]], dtype=float32)
  """
  image = check_image(image, "invert", keyed=False, uint8=True)
  return _invert(image)


def solarize(image: jax.typing.ArrayLike, threshold: jax.typing.ArrayLike) -> jax.Array:
  """Inverts the pixels ``>= threshold``: torchvision's ``solarize``, Pillow's
  ``ImageOps.solarize``.

  Each channel value is compared by itself. With ``threshold = t / 255`` on an image of levels
  ``k / 255`` it equals Pillow's ``solarize(image, t)`` exactly. A uint8 image keeps the
  threshold on the [0, 1] scale (``t / 255``, not torchvision's ``t``): its levels ``q`` with
  ``q / 255 >= threshold`` become ``255 - q``, the float result on ``q / 255`` times 255, with
  ``q / 255`` the correctly rounded float32 (NumPy's, torchvision's ``to_dtype``), so that a
  threshold just above a level (a float32 ``0.46666670``, just above 119 / 255) leaves that
  level alone, as torchvision does on uint8 and on float images.

  Args:
    image: HWC float or uint8 image (any number of channels).
    threshold: a scalar in [0, 1]; may be traced (one per example under `vmap`). 1 inverts only
      the pixels equal to 1, as in torchvision. A traced threshold outside [0, 1] or NaN makes
      a float result NaN; on a uint8 image (no NaN) one below 0 inverts every pixel, one above
      1 or NaN none.

  Returns:
    The solarized image, same shape and dtype. Differentiable in the image (gradient 1 or -1);
    not in ``threshold``: its gradient is zero (a step).

  Raises:
    ValueError: ``threshold`` outside [0, 1] or not a scalar; not an HWC image.
    TypeError: neither floating point nor uint8; a non-real ``threshold``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.solarize(jnp.array([[[0.25, 0.5, 0.75]]]), 0.5)
    Array([[[0.25, 0.5 , 0.25]]], dtype=float32)
  """
  op = "solarize"
  image = check_image(image, op, keyed=False, uint8=True)
  check_magnitude(threshold, op, "threshold", lo=0.0, hi=1.0)
  return nan_if_bad_magnitude(threshold, _solarize(image, threshold), lo=0.0, hi=1.0)


def solarize_add(image: jax.typing.ArrayLike, addition: jax.typing.ArrayLike, *,
                 threshold: jax.typing.ArrayLike = 0.5) -> jax.Array:
  """Adds ``addition`` to the pixels below ``threshold``, clipped to [0, 1].

  The ``solarize_add`` op of AutoAugment's original TensorFlow implementation (and timm's
  ``SolarizeAdd``), with uint8 values scaled to [0, 1]: ``addition = a / 255`` and
  ``threshold = t / 255`` give its ``solarize_add(image, a, t)``. torchvision's AutoAugment does
  not use it.

  Args:
    image: HWC float image (any number of channels).
    addition: a scalar in [-1, 1]; may be traced.
    threshold: a scalar in [0, 1]; may be traced. Pixels ``>= threshold`` are kept.

  Returns:
    The image, same shape and dtype. Differentiable in the image and ``addition`` where no
    clipping happens; not in ``threshold`` (zero gradient).

  Raises:
    ValueError: ``addition`` or ``threshold`` out of range or not scalars; not an HWC image.
    TypeError: not floating point; non-real magnitudes.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.solarize_add(jnp.array([[[0.25, 0.5, 0.75]]]), 0.5)
    Array([[[0.75, 0.5 , 0.75]]], dtype=float32)

  References:
    Cubuk et al., "AutoAugment: Learning Augmentation Strategies from Data", CVPR 2019.
  """
  op = "solarize_add"
  image = check_image(image, op, keyed=False)
  check_magnitude(addition, op, "addition", lo=-1.0, hi=1.0)
  check_magnitude(threshold, op, "threshold", lo=0.0, hi=1.0)
  out = nan_if_bad_magnitude(addition, _solarize_add(image, addition, threshold), lo=-1.0, hi=1.0)
  return nan_if_bad_magnitude(threshold, out, lo=0.0, hi=1.0)


def posterize(image: jax.typing.ArrayLike, bits: jax.typing.ArrayLike) -> jax.Array:
  """Keeps the ``bits`` highest bits of each channel's uint8 level, as Pillow and torchvision.

  Defined on the uint8 quantisation ``q = round(255 clip(x, 0, 1))``: the result is
  ``(q & ~(2^(8 - bits) - 1)) / 255``, what torchvision's ``posterize`` and Pillow's
  ``ImageOps.posterize`` give for the uint8 image, scaled back to [0, 1]. (torchvision's float
  path computes ``floor(x 2^bits) / 2^bits`` instead, which differs by up to ``1 - 2^-bits``
  levels; the uint8 definition is the one the augmentation policies were tuned on.) The output
  takes only the values ``k / 255``; ``bits = 8`` returns the quantised image, 0 a black one.
  A uint8 image gives ``q & ~(2^(8 - bits) - 1)`` itself, in uint8.

  Not differentiable: the gradient JAX gives w.r.t. the image is zero (the output is piecewise
  constant).

  Args:
    image: HWC float or uint8 image (any number of channels).
    bits: an int in [0, 8], or a traced integer scalar (one per example under `vmap`), which is
      clamped to [0, 8].

  Returns:
    The posterized image, same shape and dtype.

  Raises:
    ValueError: ``bits`` outside [0, 8]; not an HWC image.
    TypeError: neither floating point nor uint8; ``bits`` not an int (a bool, a float, a traced
      float).

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> out = jr.augment.posterize(jnp.array([[[200 / 255, 100 / 255, 1.0]]]), 2)
    >>> (out * 255).round()
    Array([[[192.,  64., 192.]]], dtype=float32)
    >>> jr.augment.posterize(jnp.array([[[200, 100, 255]]], jnp.uint8), 2)
    Array([[[192,  64, 192]]], dtype=uint8)
  """
  op = "posterize"
  image = check_image(image, op, keyed=False, uint8=True)
  bits = _check_bits(bits, op)
  return _posterize(image, bits)


def equalize(image: jax.typing.ArrayLike) -> jax.Array:
  """Per-channel histogram equalization, exactly as Pillow's ``ImageOps.equalize`` and
  torchvision's ``equalize``.

  Defined on the uint8 quantisation ``q = round(255 clip(x, 0, 1))``: each channel's 256-bin
  histogram gives a lookup table (``step = (pixels - count of the highest level) // 255``; level
  ``i`` maps to ``(step // 2 + pixels below i) // step``, at most 255; a channel with
  ``step = 0`` is kept), and the result is ``lut[q] / 255``. It takes only the values
  ``k / 255``. A uint8 image gives ``lut[q]`` itself, in uint8.

  Not differentiable: the gradient JAX gives w.r.t. the image is zero.

  Args:
    image: HWC float or uint8 image (any number of channels).

  Returns:
    The equalized image, same shape and dtype.

  Raises:
    ValueError: not an HWC image.
    TypeError: neither floating point nor uint8.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.repeat(jnp.array([0, 0, 0, 100, 100, 200]) / 255, 600).reshape(60, 60, 1)
    >>> sorted(set((jr.augment.equalize(image) * 255).round().ravel().tolist()))
    [0.0, 164.0, 255.0]
  """
  image = check_image(image, "equalize", keyed=False, uint8=True)
  return _equalize(image)


def autocontrast(image: jax.typing.ArrayLike) -> jax.Array:
  """Stretches each channel to span [0, 1]: torchvision's ``autocontrast`` on float images.

  ``(x - min) / (max - min)`` with the channel's minimum and maximum over the image; a constant
  channel is kept. Pillow's ``ImageOps.autocontrast`` (and torchvision on uint8) compute the
  same map on the integer levels and truncate: on an image of levels ``k / 255`` it equals
  ``floor(255 autocontrast(x)) / 255``. A uint8 image gives that truncation in uint8, computed
  exactly: ``floor(255 (q - min) / (max - min))``. Pillow and torchvision evaluate it in
  floating point and land one level lower on some of the values where it is a whole number
  (torchvision more often than Pillow; for most spreads its maximum is 254, not 255); on an
  image that already spans 0 to 255 all three agree. Design: docs/design/photometric.md.

  Differentiable almost everywhere (through the minimum and maximum too).

  Args:
    image: HWC float or uint8 image (any number of channels).

  Returns:
    The stretched image, same shape and dtype: clamped to [0, 1] (uint8: levels, truncated);
    an image with no pixels is returned as it is.

  Raises:
    ValueError: not an HWC image.
    TypeError: neither floating point nor uint8.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.autocontrast(jnp.array([[[0.25], [0.5], [0.75]]]))[..., 0]
    Array([[0. , 0.5, 1. ]], dtype=float32)
  """
  image = check_image(image, "autocontrast", keyed=False, uint8=True)
  if image.size == 0:  # no pixels, so no extremes: nothing to stretch
    return image
  return _autocontrast(image)
