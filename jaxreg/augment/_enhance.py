"""Pillow's enhancers (``ImageEnhance``) and greyscale, with torchvision's semantics.

Blends, ``clip(f x + (1 - f) degenerate(x), 0, 1)``, as torchvision's ``_blend`` and Pillow's
``ImageEnhance``: brightness (black), contrast (the mean grey level), colour (the greyscale
image), sharpness (the 3x3 ``SMOOTH``-filtered image, borders kept); and the ITU-R 601-2 luma.
Float HWC images in [0, 1]; the enhancers also take uint8 images, computed in float32 on
``q / 255`` and rounded to the nearest level once (Pillow and torchvision truncate, so their
levels are at most one lower). Every factor may be traced (one per example under `vmap`). A
concrete factor out of its range raises; a traced one that is NaN, infinite or negative at run
time makes the whole output NaN. Design: docs/design/photometric.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxreg import _checks
from jaxreg.augment._dtypes import on_levels, pixel_op
from jaxreg.augment._filters import smooth
from jaxreg.augment._image_checks import (
  check_image,
  check_magnitude,
  check_probability,
  check_rgb,
  nan_if_bad_magnitude,
  nan_if_bad_probability,
)
from jaxreg.augment._params import GrayscaleParams, register

# ITU-R 601-2 luma, the weights of Pillow's RGB -> "L" conversion (torchvision rounds the red
# weight to 0.2989).
LUMA = (0.299, 0.587, 0.114)


def gray(image):
  """(..., H, W, 3) -> (..., H, W, 1) luma."""
  r, g, b = image[..., 0:1], image[..., 1:2], image[..., 2:3]
  return r * LUMA[0] + g * LUMA[1] + b * LUMA[2]


def _blend(image, degenerate, factor):
  """``clip(f x + (1 - f) d, 0, 1)``: torchvision's ``_blend``, Pillow's ``blend(d, x, f)``."""
  factor = jnp.asarray(factor, image.dtype)
  return jnp.clip(degenerate + factor * (image - degenerate), 0.0, 1.0)


def mean_gray(image):
  """The mean luma of an HWC RGB image, shape (1, 1, 1), as one matrix-vector product.

  XLA:CPU reduces the luma over H and W slower than this product.
  Design: docs/design/photometric.md#cpu-formulation.
  """
  height, width, channels = image.shape
  weights = jnp.tile(jnp.asarray(LUMA, image.dtype), width)
  rows = jnp.dot(image.reshape(height, width * channels), weights,
                 precision=jax.lax.Precision.HIGHEST)
  return (jnp.sum(rows) / (height * width)).reshape(1, 1, 1)


@pixel_op(static_argnames="channels")
def _grayscale(x, *, channels):
  return jnp.broadcast_to(gray(x), (*x.shape[:-1], channels))


def _enhancer(blend):
  """An enhancer's jitted op: float images in their compute dtype, uint8 images on ``q / 255``
  in float32, rounded to the nearest level once."""
  return pixel_op(blend, uint8=on_levels(blend))


@_enhancer
def _sharpness(x, factor):
  return _blend(x, smooth(x), factor)


@_enhancer
def _brightness(x, factor):
  return _blend(x, jnp.zeros((), x.dtype), factor)


@_enhancer
def _contrast(x, factor):
  return _blend(x, mean_gray(x), factor)


@_enhancer
def _color(x, factor):
  return _blend(x, gray(x), factor)


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
  check_rgb(image, op)
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
  return _apply_grayscale(_draw_grayscale(key, image, probability=probability), image)


def _draw_grayscale(key, image, *, probability=0.1) -> GrayscaleParams:
  op = "random_grayscale"
  check_rgb(check_image(image, op), op)
  check_probability(probability, op)
  convert = jax.random.bernoulli(_checks.as_key(key, op), probability)
  return GrayscaleParams(convert=convert, probability=jnp.asarray(probability, jnp.float32))


def _apply_grayscale(params: GrayscaleParams, image):
  op = "apply(GrayscaleParams)"
  image = check_image(image, op)
  check_rgb(image, op)
  converted = jnp.where(params.convert, grayscale(image), image)
  return nan_if_bad_probability(params.probability, converted)


def enhance_brightness(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Multiplies by ``factor`` (a blend with black): Pillow's ``ImageEnhance.Brightness``,
  torchvision's ``adjust_brightness``.

  ``clip(f x, 0, 1)``. Not `random_brightness`, which adds an offset (tf.image's rule).

  Args:
    image: HWC float image (any number of channels), or uint8 (computed on ``q / 255``,
      rounded to the nearest level).
    factor: a scalar >= 0; may be traced (one per example under `vmap`).

  Returns:
    The image, same shape and dtype (half precision and uint8 are computed in float32 and
    rounded once; a traced bad ``factor`` cannot make a uint8 image NaN: it gives what the
    float result rounds to).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC image.
    TypeError: neither floating point nor uint8; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.enhance_brightness(jnp.array([[[0.2, 0.4, 0.8]]]), 1.5)
    Array([[[0.3, 0.6, 1. ]]], dtype=float32)
  """
  op = "enhance_brightness"
  image = check_image(image, op, keyed=False, uint8=True)
  check_magnitude(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _brightness(image, factor), lo=0.0)


def enhance_contrast(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends with the mean grey level of the image: Pillow's ``ImageEnhance.Contrast``,
  torchvision's ``adjust_contrast``.

  ``clip(f x + (1 - f) m, 0, 1)`` with ``m`` the mean over the image of the greyscale (luma)
  image, one value for all channels. Pillow rounds ``m`` to a whole level. Not
  `random_contrast`, which scales each channel around its own mean (tf.image's rule).

  Args:
    image: HWC RGB float image, or uint8 (computed on ``q / 255``,
      rounded to the nearest level).
    factor: a scalar >= 0; may be traced (one per example under `vmap`). 0 gives a uniform grey
      image.

  Returns:
    The image, same shape and dtype (half precision and uint8 are computed in float32 and
    rounded once; a traced bad ``factor`` cannot make a uint8 image NaN: it gives what the
    float result rounds to).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC RGB image.
    TypeError: neither floating point nor uint8; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.array([[[0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]])
    >>> jr.augment.enhance_contrast(image, 0.5)[:, 0, 0]
    Array([0.25, 0.75], dtype=float32)
  """
  op = "enhance_contrast"
  image = check_image(image, op, keyed=False, uint8=True)
  check_rgb(image, op)
  check_magnitude(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _contrast(image, factor), lo=0.0)


def enhance_color(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Blends with the greyscale image: Pillow's ``ImageEnhance.Color``, torchvision's
  ``adjust_saturation``.

  ``clip(f x + (1 - f) gray(x), 0, 1)`` with the luma of `grayscale`. Not `adjust_saturation`,
  which scales the HSV saturation (tf.image's rule): there a factor of 0 keeps each pixel's
  largest channel, here it gives the luma.

  Args:
    image: HWC RGB float image, or uint8 (computed on ``q / 255``,
      rounded to the nearest level).
    factor: a scalar >= 0; may be traced (one per example under `vmap`). 0 gives the greyscale
      image, 1 the original.

  Returns:
    The image, same shape and dtype (half precision and uint8 are computed in float32 and
    rounded once; a traced bad ``factor`` cannot make a uint8 image NaN: it gives what the
    float result rounds to).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC RGB image.
    TypeError: neither floating point nor uint8; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.enhance_color(jnp.array([[[1.0, 0.0, 0.0]]]), 0.0)
    Array([[[0.299, 0.299, 0.299]]], dtype=float32)
  """
  op = "enhance_color"
  image = check_image(image, op, keyed=False, uint8=True)
  check_rgb(image, op)
  check_magnitude(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _color(image, factor), lo=0.0)


def enhance_sharpness(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike) -> jax.Array:
  """Pillow's ``ImageEnhance.Sharpness`` and torchvision's ``adjust_sharpness``.

  Blends with the image smoothed by Pillow's 3x3 ``SMOOTH`` filter (weights 1, centre 5, over
  13), whose border pixels are the image's own: ``clip(f x + (1 - f) smooth(x), 0, 1)``. 0
  gives the smoothed image, 1 the original, 2 a sharpened one. An image with no interior (a side
  of 2 pixels or less) is returned clamped.

  Args:
    image: HWC float image (any number of channels), or uint8 (computed on ``q / 255``,
      rounded to the nearest level).
    factor: a scalar >= 0; may be traced (one per example under `vmap`).

  Returns:
    The image, same shape and dtype (half precision and uint8 are computed in float32 and
    rounded once; a traced bad ``factor`` cannot make a uint8 image NaN: it gives what the
    float result rounds to).
    Differentiable in the image and ``factor`` (except where clamped).

  Raises:
    ValueError: a negative or non-scalar ``factor``; not an HWC image.
    TypeError: neither floating point nor uint8; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.zeros((3, 3, 1)).at[1, 1].set(1.0)
    >>> jr.augment.enhance_sharpness(image, 0.0)[1, 1, 0] * 13
    Array(5., dtype=float32)
  """
  op = "enhance_sharpness"
  image = check_image(image, op, keyed=False, uint8=True)
  check_magnitude(factor, op, "factor", lo=0.0)
  return nan_if_bad_magnitude(factor, _sharpness(image, factor), lo=0.0)


register(random_grayscale, _draw_grayscale, GrayscaleParams, _apply_grayscale)
