"""RGB <-> HSV conversion, on whole images and on (r, g, b) planes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks
from jaxreg.augment._image_checks import check_rgb


def rgb_to_hsv(image: jax.typing.ArrayLike) -> jax.Array:
  """RGB in [0, 1] to HSV in [0, 1] (hue as a fraction of a turn), channels last.

  Args:
    image: float array with 3 channels last.

  Returns:
    HSV array of the same shape.

  Raises:
    ValueError: not 3 channels. TypeError: not floating point.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.rgb_to_hsv(jnp.array([1.0, 0.0, 0.0]))
    Array([0., 1., 1.], dtype=float32)
  """
  image = _checks.check_float_array(image, "rgb_to_hsv", "image", image=True)
  check_rgb(image, "rgb_to_hsv")
  r, g, b = image[..., 0], image[..., 1], image[..., 2]
  value = jnp.maximum(jnp.maximum(r, g), b)
  chroma = value - jnp.minimum(jnp.minimum(r, g), b)
  safe_value = jnp.where(value > 0, value, 1)
  saturation = jnp.where(value > 0, chroma / safe_value, 0)
  safe_chroma = jnp.where(chroma > 0, chroma, 1)
  hue = jnp.where(value == r, (g - b) / safe_chroma,
                  jnp.where(value == g, 2 + (b - r) / safe_chroma, 4 + (r - g) / safe_chroma))
  hue = jnp.where(chroma > 0, wrap6(hue) / 6, 0)
  return jnp.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(image: jax.typing.ArrayLike) -> jax.Array:
  """HSV in [0, 1] (hue as a fraction of a turn) to RGB, channels last.

  Args:
    image: float array with 3 channels last (hue, saturation, value).

  Returns:
    RGB array of the same shape.

  Raises:
    ValueError: not 3 channels. TypeError: not floating point.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.hsv_to_rgb(jnp.array([2 / 3, 1.0, 1.0]))
    Array([0., 0., 1.], dtype=float32)
  """
  image = _checks.check_float_array(image, "hsv_to_rgb", "image", image=True)
  check_rgb(image, "hsv_to_rgb")
  h, s, v = image[..., 0], image[..., 1], image[..., 2]
  # f(n) = v - v s max(0, min(k, 4 - k, 1)), k = (n + 6 h) mod 6, for n = 5, 3, 1 -> r, g, b
  channels = []
  for n in (5.0, 3.0, 1.0):
    k = wrap6(n + 6.0 * h)
    channels.append(v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0))
  return jnp.stack(channels, axis=-1)


def wrap6(x):
  # x mod 6 by floor, not `%`: XLA lowers float `%` to a libm fmod call per element on CPU.
  return x - 6 * jnp.floor(x / 6)


# q / 255 in float32 for the 256 levels, each correctly rounded (as NumPy and torch divide).
# XLA computes ``q / 255`` as ``q * (1 / 255)``, one rounding more: 126 of the 256 levels land
# one ulp off, some on the far side of a threshold that torchvision's tables put at a level.
LEVEL_VALUES = np.arange(256, dtype=np.float32) / np.float32(255)


def to_float(image):
  """The image in the dtype ops compute in: uint8 levels as floats in [0, 1] (float32, the
  correctly rounded ``q / 255``), half precision as float32, wider floats as they are."""
  if image.dtype == jnp.uint8:
    return jnp.asarray(LEVEL_VALUES)[image]  # a lookup: as fast as the division on the CPU
  return image.astype(compute_dtype(image))


def from_float(x, dtype):
  """``x`` (computed by `to_float`'s rules) back in the image's ``dtype``: uint8 as the nearest
  level (`nearest_level`); floats rounded once."""
  if dtype == jnp.uint8:
    return nearest_level(x * 255)
  return x.astype(dtype)


def nearest_level(levels):
  """Float ``levels`` on the 0-255 scale as uint8: the nearest level (half to even), clamped
  to [0, 255]."""
  return jnp.round(jnp.clip(levels, 0, 255)).astype(jnp.uint8)


def compute_dtype(image):
  # Half-precision colour maths (a hue sector, a division by the chroma) loses several bits
  # per step; it runs in float32 and the result is rounded to the image's dtype once.
  return _checks.float32_or_wider(image.dtype)
