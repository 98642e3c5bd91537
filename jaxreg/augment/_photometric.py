"""Photometric ops with torchvision's (and so Pillow's) semantics, on float HWC images in [0, 1].

Greyscale, invert, solarize (and AutoAugment's solarize-add), posterize, equalize,
autocontrast, sharpness, Gaussian blur, and Pillow's brightness / contrast / colour enhancers.
Invert, solarize, posterize, equalize and autocontrast also take uint8 images (uint8 out).
Every magnitude may be traced (one per example under `vmap`). A concrete magnitude out of its
range raises; a traced one that is NaN, infinite or out of range at run time makes the whole
output NaN (posterize's traced ``bits`` are clamped to [0, 8] instead, as documented there).

Three kinds of op:

* Blends, ``clip(f x + (1 - f) degenerate(x), 0, 1)``, as torchvision's ``_blend`` and Pillow's
  ``ImageEnhance``: brightness (black), contrast (the mean grey level), colour (the greyscale
  image), sharpness (the 3x3 ``SMOOTH``-filtered image, borders kept).
* Ops defined on the uint8 quantisation ``q = round(255 clip(x, 0, 1))`` of the image, whose
  output takes only the 256 values ``k / 255``: posterize and equalize. Each is a per-channel
  256-entry lookup table, as Pillow applies them.
* Elementwise or stencil ops on the float values: greyscale, invert, solarize, solarize-add,
  autocontrast, Gaussian blur.
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _backend, _checks
from jaxreg.augment._color_space import LEVEL_VALUES, compute_dtype
from jaxreg.augment._image_checks import (
  check_image,
  check_probability,
  nan_if_bad_magnitude,
  nan_if_bad_probability,
  pair,
)

# ITU-R 601-2 luma, the weights of Pillow's RGB -> "L" conversion (torchvision rounds the red
# weight to 0.2989).
LUMA = (0.299, 0.587, 0.114)
LEVELS = 256


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _check_rgb(image, op: str) -> None:
  if image.shape[-1] != 3:
    raise ValueError(f"{op}: `image` must be RGB (3 channels last), got shape {image.shape}.")


def _check_scalar(value, op: str, name: str, *, lo: float = -math.inf,
                  hi: float = math.inf) -> None:
  """A real scalar in [lo, hi] when concrete; a traced one is checked for shape and dtype."""
  if isinstance(value, (np.ndarray, jax.Array)) and not jnp.issubdtype(value.dtype, jnp.number):
    raise TypeError(f"{op}: `{name}` must be a real number, got dtype {value.dtype}.")
  _checks.check_interval(value, op, name, lo=lo, hi=hi)


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


def _check_kernel_size(kernel_size, image_shape, op: str) -> tuple[int, int]:
  sizes = pair(kernel_size, op, "kernel_size")
  if not all(k % 2 for k in sizes):
    raise ValueError(f"{op}: `kernel_size` must be odd (a centred kernel), got {kernel_size!r}.")
  for k, side, axis in zip(sizes, image_shape[:2], ("height", "width"), strict=True):
    if k // 2 >= side:
      raise ValueError(f"{op}: `kernel_size` {kernel_size!r} needs a reflect padding of {k // 2} "
                       f"pixels, which must be smaller than the image {axis} {side} (as in "
                       f"torchvision).")
  return sizes


def _check_sigma(sigma, op: str) -> tuple:
  """A positive scalar or a (height, width) pair of them; each may be traced."""
  if isinstance(sigma, (tuple, list)) or (isinstance(sigma, (np.ndarray, jax.Array))
                                          and jnp.ndim(sigma) == 1):
    items = tuple(sigma[i] for i in range(len(sigma)))
    if len(items) != 2:
      raise ValueError(f"{op}: `sigma` must be a number or an (height, width) pair, got "
                       f"{sigma!r} ({len(items)} items).")
  else:
    items = (sigma, sigma)
  for s in items:
    _check_scalar(s, op, "sigma")
    concrete = _checks.concrete_scalar(s, op, "sigma")
    if concrete is not None and not concrete > 0:
      raise ValueError(f"{op}: `sigma` must be > 0, got {sigma!r}.")
  return items


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def _gray(image):
  """(..., H, W, 3) -> (..., H, W, 1) luma."""
  r, g, b = image[..., 0:1], image[..., 1:2], image[..., 2:3]
  return r * LUMA[0] + g * LUMA[1] + b * LUMA[2]


def _blend(image, degenerate, factor):
  """``clip(f x + (1 - f) d, 0, 1)``: torchvision's ``_blend``, Pillow's ``blend(d, x, f)``."""
  factor = jnp.asarray(factor, image.dtype)
  return jnp.clip(degenerate + factor * (image - degenerate), 0.0, 1.0)


def _mean_gray(image):
  """The mean luma of an HWC RGB image, shape (1, 1, 1), as one matrix-vector product.

  XLA:CPU reduces the luma over H and W 15x slower than this product (JAX 0.10.2).
  """
  height, width, channels = image.shape
  weights = jnp.tile(jnp.asarray(LUMA, image.dtype), width)
  rows = jnp.dot(image.reshape(height, width * channels), weights,
                 precision=jax.lax.Precision.HIGHEST)
  return (jnp.sum(rows) / (height * width)).reshape(1, 1, 1)


def _channel_extremes(image):
  """Per-channel (min, max) of an HWC image, each of shape (C,).

  Reduced over the rows of the (H, W*C) view first: 3x faster on XLA:CPU than reducing the
  HWC array over H and W (JAX 0.10.2).
  """
  height, width, channels = image.shape
  flat = image.reshape(height, width * channels)
  low = jnp.min(flat, axis=0).reshape(width, channels).min(axis=0)
  high = jnp.max(flat, axis=0).reshape(width, channels).max(axis=0)
  return low, high


def _smooth(image):
  """Pillow's 3x3 ``SMOOTH`` filter (weights 1, centre 5, over 13) on an HWC image; border
  pixels kept.

  Computed on the (H, W*C) view, where a step along W is a step of C along the minor axis:
  XLA:CPU vectorizes those slices, 5x faster than slicing the HWC array (JAX 0.10.2).
  """
  height, width, channels = image.shape
  if height <= 2 or width <= 2:  # no interior (torchvision returns such images unchanged)
    return image
  flat = image.reshape(height, width * channels)
  total = sum(flat[i:height - 2 + i, channels * j:channels * (width - 2 + j)]
              for i in range(3) for j in range(3))
  interior = (total + 4 * flat[1:-1, channels:-channels]) / 13
  return flat.at[1:-1, channels:-channels].set(interior).reshape(height, width, channels)


def _levels(image):
  """The uint8 quantisation ``round(255 clip(x, 0, 1))``, as float levels 0..255."""
  return jnp.round(jnp.clip(image, 0.0, 1.0) * 255)


def _histogram_scatter(levels):
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


def _histogram(levels):
  """`_histogram_scatter`, run per example on a CPU: under `vmap`, XLA:CPU's batched
  scatter-add is 6x slower than a loop of unbatched ones (JAX 0.10.2)."""
  vectorized = lambda levels, select=False: _histogram_scatter(levels)  # noqa: E731
  return _backend.loop_on_cpu(_histogram_scatter, vectorized, differentiable=1)(levels)


def _equalize_lut(hist):
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


def _apply_lut(levels, lut):
  """``lut[c, levels[..., c]]`` for (H, W, C) float levels and a (C, 256) table."""
  channels = levels.shape[-1]
  index = levels.astype(jnp.int32) + LEVELS * jnp.arange(channels, dtype=jnp.int32)
  return jnp.take(lut.reshape(-1), index, mode="clip")


def _posterize_levels(levels, bits):
  """``q & ~(2^(8 - bits) - 1)`` on float levels: floor to a multiple of the step."""
  if isinstance(bits, int):
    step = float(2 ** (8 - bits))
  else:  # a power of two built from integers, so exactly representable
    step = jnp.left_shift(jnp.int32(1), (8 - bits).astype(jnp.int32)).astype(levels.dtype)
  return jnp.floor(levels / step) * step


def _gaussian_weights(size: int, sigma, dtype):
  # torchvision's kernel: exp(-x^2 / (2 sigma^2)) at x = -(size - 1)/2 ... (size - 1)/2, summed to 1
  x = jnp.arange(size, dtype=dtype) - (size - 1) / 2
  pdf = jnp.exp(-0.5 * jnp.square(x / jnp.asarray(sigma, dtype)))
  return pdf / jnp.sum(pdf)


def _correlate_rows(rows, weights, size: int):
  """Valid correlation along axis 0: (R, L) -> (R - size + 1, L)."""
  count = rows.shape[0] - size + 1
  return sum(weights[i] * rows[i:i + count] for i in range(size))


def _blur_rows(rows, weights, size: int):
  """Correlation along axis 0 of an (R, L) array with reflect padding, same shape.

  The padded array is never formed: the interior rows come from the rows themselves and only
  the ``size // 2`` rows at each end from small reflected strips. A padded copy fused into the
  taps makes XLA:CPU branch on every element (4-5x slower, JAX 0.10.2).
  """
  half = size // 2
  count = rows.shape[0]
  if half == 0:
    return rows
  if count <= 2 * half:  # too short for separate strips
    return _correlate_rows(jnp.pad(rows, ((half, half), (0, 0)), mode="reflect"), weights, size)
  top = jnp.concatenate([rows[half:0:-1], rows[:2 * half]])
  bottom = jnp.concatenate([rows[count - 2 * half:], rows[count - 2:count - half - 2:-1]])
  return jnp.concatenate([_correlate_rows(top, weights, size),
                          _correlate_rows(rows, weights, size),
                          _correlate_rows(bottom, weights, size)])


# --------------------------------------------------------------------------------------------
# Kernels: each op's arithmetic, jitted as one function of the image in its compute dtype
# --------------------------------------------------------------------------------------------


def _kernel(fn=None, *, static_argnames=(), loop_on_cpu=False, uint8=None):
  """``fn(x, *magnitudes)`` on the image in its compute dtype, rounded back once, as one jitted
  function: an eager call compiles one kernel per shape and dtype instead of dispatching each
  step (equalize's first call: 1.5 s instead of 6 s on the 2-core CPU).

  ``loop_on_cpu``: under `vmap` on a CPU, run the examples one after another
  (`_backend.loop_on_cpu`; the magnitudes must be floats): the blur is 1.4x faster with the
  image in cache (JAX 0.10.2). ``uint8``: the op's form for uint8 images, ``uint8(q,
  *magnitudes)`` on the levels themselves, returning uint8 (the float form on ``q / 255``,
  times 255; autocontrast's truncated). Design: docs/design/photometric.md.
  """
  if fn is None:
    return functools.partial(_kernel, static_argnames=static_argnames, loop_on_cpu=loop_on_cpu,
                             uint8=uint8)

  def run(image, *args, **kwargs):
    def compute(image, *args):
      if image.dtype == jnp.uint8:
        return uint8(image, *args, **kwargs)
      return fn(image.astype(compute_dtype(image)), *args, **kwargs).astype(image.dtype)

    if not loop_on_cpu:
      return compute(image, *args)
    vectorized = lambda *values, select=False: compute(*values)  # noqa: E731
    return _backend.loop_on_cpu(compute, vectorized, differentiable=1 + len(args))(image, *args)

  run.__name__ = run.__qualname__ = fn.__name__  # names the compiled module: jit__equalize
  return jax.jit(run, static_argnames=static_argnames)


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
  lut = _equalize_lut(_histogram(q))
  return _apply_lut(q, jnp.sort(lut, axis=-1).astype(jnp.uint8))


def _autocontrast_uint8(q):
  # floor(255 (q - low) / spread) per channel, as Pillow and torchvision on uint8 (which
  # evaluate it in floating point and can land one level low on whole values). XLA divides
  # by a per-channel spread as a product with its reciprocal, which can land just below a
  # whole quotient (245 * 255 / 245 -> 254.99998); one step on whole numbers below 2^16, all
  # exact in float32, moves the floor to the exact quotient's.
  low, high = (v.astype(jnp.float32) for v in _channel_extremes(q))
  spread = high - low
  divisor = jnp.where(spread > 0, spread, 1)
  levels = q.astype(jnp.float32)
  numerator = (levels - low) * 255
  guess = jnp.floor(numerator / divisor)
  stretched = (guess + jnp.where(numerator >= (guess + 1) * divisor, 1, 0)
               - jnp.where(numerator < guess * divisor, 1, 0))
  return jnp.where(spread > 0, stretched, levels).astype(jnp.uint8)


@_kernel(static_argnames="channels")
def _grayscale(x, *, channels):
  return jnp.broadcast_to(_gray(x), (*x.shape[:-1], channels))


@_kernel(uint8=_invert_uint8)
def _invert(x):
  return 1 - x


@_kernel(uint8=_solarize_uint8)
def _solarize(x, threshold):
  return jnp.where(x >= jnp.asarray(threshold, x.dtype), 1 - x, x)


@_kernel
def _solarize_add(x, addition, threshold):
  added = jnp.clip(x + jnp.asarray(addition, x.dtype), 0.0, 1.0)
  return jnp.where(x < jnp.asarray(threshold, x.dtype), added, x)


@_kernel(uint8=_posterize_uint8)
def _posterize(x, bits):
  return _posterize_levels(_levels(x), bits) / 255


def _equalized(x):
  levels = _levels(x)
  lut = _equalize_lut(_histogram(levels)).astype(x.dtype)
  # The table is non-decreasing, so sorting it changes nothing; but a sort is never fused, so
  # the 768 entries are computed once instead of once per pixel inside the lookup (an integer
  # division each: 2.5x slower on XLA:CPU, JAX 0.10.2).
  out = _apply_lut(levels, jnp.sort(lut, axis=-1)) / 255
  return jnp.where(jnp.isnan(x), x, out)  # NaN stays NaN, as in the other level ops


@_kernel(uint8=_equalize_uint8)
def _equalize(x):
  return _equalized(x)


@_kernel(uint8=_autocontrast_uint8)
def _autocontrast(x):
  # torchvision: (x - min) / (max - min) per channel over H and W, clamped to [0, 1]; a constant
  # channel is kept (clamped). The maximum maps to exactly 1 by a select: XLA divides by the
  # per-channel spread as a product with its reciprocal, which can give 0.99999994 there
  # (the minimum gives 0 either way). Its gradient is zero, as the stretch's own at the maximum.
  low, high = _channel_extremes(x)
  spread = high - low
  stretch = spread > 0
  low = jnp.where(stretch, low, 0)
  out = jnp.clip((x - low) / jnp.where(stretch, spread, 1), 0.0, 1.0)
  return jnp.where(stretch & (x == high), jnp.ones((), x.dtype), out)


@_kernel
def _sharpness(x, factor):
  return _blend(x, _smooth(x), factor)


@_kernel(static_argnames="sizes", loop_on_cpu=True)
def _gaussian_blur(x, sigma_h, sigma_w, *, sizes):
  # Separable: along the rows of the (H, W*C) view, then along the rows of the transposed
  # (W, H*C) view, so that both passes slice whole rows.
  (size_h, size_w), (height, width, channels) = sizes, x.shape
  weights_h = _gaussian_weights(size_h, sigma_h, x.dtype)
  x = _blur_rows(x.reshape(height, width * channels), weights_h, size_h)
  if size_w == 1:
    return x.reshape(height, width, channels)
  x = jnp.swapaxes(x.reshape(height, width, channels), 0, 1).reshape(width, height * channels)
  x = _blur_rows(x, _gaussian_weights(size_w, sigma_w, x.dtype), size_w)
  return jnp.swapaxes(x.reshape(width, height, channels), 0, 1)


@_kernel
def _brightness(x, factor):
  return _blend(x, jnp.zeros((), x.dtype), factor)


@_kernel
def _contrast(x, factor):
  return _blend(x, _mean_gray(x), factor)


@_kernel
def _color(x, factor):
  return _blend(x, _gray(x), factor)


# --------------------------------------------------------------------------------------------
# Public ops
# --------------------------------------------------------------------------------------------


def grayscale(image: jax.typing.ArrayLike, *, num_output_channels: int = 3) -> jax.Array:
  """The ITU-R 601-2 luma ``0.299 R + 0.587 G + 0.114 B``, repeated over the output channels.

  The weights of Pillow's ``convert("L")``, which rounds the result to an integer level;
  torchvision's ``rgb_to_grayscale`` uses 0.2989 for red. jaxreg keeps the float value.

  Args:
    image: HWC RGB float image.
    num_output_channels: 1 or 3 (an int).

  Returns:
    A float image of shape ``(H, W, num_output_channels)``, same dtype (half precision is
    computed in float32 and rounded once).

  Raises:
    ValueError: not an HWC RGB image; ``num_output_channels`` not 1 or 3.
    TypeError: not floating point; ``num_output_channels`` not an int.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.grayscale(jnp.array([[[1.0, 0.0, 0.0]]]), num_output_channels=1)
    Array([[[0.299]]], dtype=float32)
  """
  op = "grayscale"
  image = check_image(image, op, keyed=False)
  _check_rgb(image, op)
  channels = _checks.check_positive_int(num_output_channels, op, "num_output_channels")
  if channels not in (1, 3):
    raise ValueError(f"{op}: `num_output_channels` must be 1 or 3, got {num_output_channels!r}.")
  return _grayscale(image, channels=channels)


def random_grayscale(key: jax.Array, image: jax.typing.ArrayLike, *,
                     probability: float = 0.1) -> jax.Array:
  """With ``probability``, `grayscale` with 3 output channels; else the image (torchvision's
  ``RandomGrayscale``).

  Args:
    key: a PRNG key (one Bernoulli draw).
    image: HWC RGB float image.
    probability: chance of converting, in [0, 1]; may be traced (a traced value outside
      [0, 1] or NaN gives an all-NaN image).

  Returns:
    The image or its greyscale version, same shape and dtype.

  Raises:
    ValueError: ``probability`` outside [0, 1]; not an HWC RGB image.
    TypeError: not floating point; bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> out = jr.augment.random_grayscale(jax.random.key(0), jnp.ones((2, 2, 3)) * 0.5,
    ...                                   probability=1.0)
    >>> out.shape
    (2, 2, 3)
  """
  op = "random_grayscale"
  image = check_image(image, op)
  _check_rgb(image, op)
  check_probability(probability, op)
  convert = jax.random.bernoulli(_checks.as_key(key, op), probability)
  return nan_if_bad_probability(probability, jnp.where(convert, grayscale(image), image))


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
  _check_scalar(threshold, op, "threshold", lo=0.0, hi=1.0)
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
  _check_scalar(addition, op, "addition", lo=-1.0, hi=1.0)
  _check_scalar(threshold, op, "threshold", lo=0.0, hi=1.0)
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
  floating point and land one level lower on some of the values where it is a whole number:
  torchvision on about half of them, the maximum (254, not 255) for most spreads. On uniform
  noise over levels 20 to 230, 7.1% of the values are one level above torchvision's uint8
  result and 0.9% above Pillow's; on an image that already spans 0 to 255, none.

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


def adjust_sharpness(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Pillow's ``ImageEnhance.Sharpness`` and torchvision's ``adjust_sharpness``.

  Blends with the image smoothed by Pillow's 3x3 ``SMOOTH`` filter (weights 1, centre 5, over
  13), whose border pixels are the image's own: ``clip(f x + (1 - f) smooth(x), 0, 1)``. 0
  gives the smoothed image, 1 the original, 2 a sharpened one. An image with no interior (a side
  of 2 pixels or less) is returned clamped.

  Args:
    image: HWC float image (any number of channels).
    factor: a scalar >= 0; may be traced (one per example under `vmap`).

  Returns:
    The image, same shape and dtype (half precision is computed in float32 and rounded once).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC image.
    TypeError: not floating point; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.zeros((3, 3, 1)).at[1, 1].set(1.0)
    >>> jr.augment.adjust_sharpness(image, 0.0)[1, 1, 0] * 13
    Array(5., dtype=float32)
  """
  op = "adjust_sharpness"
  image = check_image(image, op, keyed=False)
  _check_scalar(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _sharpness(image, factor), lo=0.0)


def gaussian_blur(image: jax.typing.ArrayLike, kernel_size: int | tuple[int, int],
                  sigma: jax.typing.ArrayLike | tuple) -> jax.Array:
  """Gaussian blur with torchvision's ``gaussian_blur`` semantics (not Pillow's).

  The kernel is ``exp(-x^2 / (2 sigma^2))`` sampled at the ``kernel_size`` integer offsets
  around the centre and normalized to sum 1, separably along rows and columns; the image is
  padded by reflection (``reflect``: the border pixel is not repeated). Pillow's
  ``GaussianBlur(radius)`` is a different filter (box-blur passes).

  Sizes and sigmas are given as (height, width), jaxreg's order for sizes; torchvision's
  ``kernel_size`` and ``sigma`` pairs are (x, y), i.e. (width, height).

  Args:
    image: HWC float image (any number of channels).
    kernel_size: an odd positive int, or an (height, width) pair of them; each half-size must be
      smaller than the image side (reflect padding).
    sigma: a scalar > 0, or an (height, width) pair of them; each may be traced (one per example
      under `vmap`).

  Returns:
    The blurred image, same shape and dtype (half precision is computed in float32 and rounded
    once). Differentiable in the image and ``sigma``.

  Raises:
    ValueError: an even or non-positive kernel size, or one too large for the image; a
      non-positive or non-scalar ``sigma``; not an HWC image.
    TypeError: not floating point; a non-int kernel size; a non-real ``sigma``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.zeros((5, 5, 1)).at[2, 2].set(1.0)
    >>> out = jr.augment.gaussian_blur(image, 3, 1.0)
    >>> round(float(out.sum()), 4), bool(out[2, 2, 0] < 1)
    (1.0, True)
  """
  op = "gaussian_blur"
  image = check_image(image, op, keyed=False)
  size_h, size_w = _check_kernel_size(kernel_size, image.shape, op)
  sigma_h, sigma_w = (jnp.asarray(s, compute_dtype(image)) for s in _check_sigma(sigma, op))
  out = _gaussian_blur(image, sigma_h, sigma_w, sizes=(size_h, size_w))
  for s in (sigma_h, sigma_w):
    out = nan_if_bad_magnitude(s, out, lo=0.0, open_interval=True)
  return out


def enhance_brightness(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Multiplies by ``factor`` (a blend with black): Pillow's ``ImageEnhance.Brightness``,
  torchvision's ``adjust_brightness``.

  ``clip(f x, 0, 1)``. Not `random_brightness`, which adds an offset (tf.image's rule).

  Args:
    image: HWC float image (any number of channels).
    factor: a scalar >= 0; may be traced (one per example under `vmap`).

  Returns:
    The image, same shape and dtype (half precision is computed in float32 and rounded once).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC image.
    TypeError: not floating point; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.enhance_brightness(jnp.array([[[0.2, 0.4, 0.8]]]), 1.5)
    Array([[[0.3, 0.6, 1. ]]], dtype=float32)
  """
  op = "enhance_brightness"
  image = check_image(image, op, keyed=False)
  _check_scalar(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _brightness(image, factor), lo=0.0)


def enhance_contrast(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends with the mean grey level of the image: Pillow's ``ImageEnhance.Contrast``,
  torchvision's ``adjust_contrast``.

  ``clip(f x + (1 - f) m, 0, 1)`` with ``m`` the mean over the image of the greyscale (luma)
  image, one value for all channels. Pillow rounds ``m`` to a whole level. Not
  `random_contrast`, which scales each channel around its own mean (tf.image's rule).

  Args:
    image: HWC RGB float image.
    factor: a scalar >= 0; may be traced (one per example under `vmap`). 0 gives a uniform grey
      image.

  Returns:
    The image, same shape and dtype (half precision is computed in float32 and rounded once).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC RGB image.
    TypeError: not floating point; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.array([[[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]])
    >>> jr.augment.enhance_contrast(image, 0.5)[:, 0, 0]
    Array([0.25, 0.75], dtype=float32)
  """
  op = "enhance_contrast"
  image = check_image(image, op, keyed=False)
  _check_rgb(image, op)
  _check_scalar(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _contrast(image, factor), lo=0.0)


def enhance_color(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends with the greyscale image: Pillow's ``ImageEnhance.Color``, torchvision's
  ``adjust_saturation``.

  ``clip(f x + (1 - f) gray(x), 0, 1)`` with the luma of `grayscale`. Not `adjust_saturation`,
  which scales the HSV saturation (tf.image's rule): there a factor of 0 keeps each pixel's
  largest channel, here it gives the luma.

  Args:
    image: HWC RGB float image.
    factor: a scalar >= 0; may be traced (one per example under `vmap`). 0 gives the greyscale
      image, 1 the original.

  Returns:
    The image, same shape and dtype (half precision is computed in float32 and rounded once).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC RGB image.
    TypeError: not floating point; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.enhance_color(jnp.array([[[1.0, 0.0, 0.0]]]), 0.0)
    Array([[[0.299, 0.299, 0.299]]], dtype=float32)
  """
  op = "enhance_color"
  image = check_image(image, op, keyed=False)
  _check_rgb(image, op)
  _check_scalar(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _color(image, factor), lo=0.0)
