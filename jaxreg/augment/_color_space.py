"""RGB <-> HSV conversion, and the HSV rules (saturation scale, hue rotation) on RGB planes.

The planar forms compute what a round trip through HSV would, without an HSV image: an
image's ``(r, g, b)`` planes go in and come out. Design:
docs/design/augmentation_backends.md#colour-without-hsv-round-trips.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

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


def rgb_planes(image):
  """The ``(r, g, b)`` planes of an image with 3 channels last, each of shape ``(..., H, W)``."""
  return image[..., 0], image[..., 1], image[..., 2]


def saturation_scale(r, g, b, factor):
  """(V, f) such that each channel x becomes ``V - f (V - x)``: the saturation times ``factor``.

  In HSV every channel is V - V * S * k(H); scaling S (clamped to 1) scales V - RGB by the
  same factor, so no round trip through HSV is needed. ``r, g, b`` are planes or channel slices.
  The cap 1 / S keeps S <= 1; where S > 1 or V <= 0 (a negative channel) it is 1 instead, so
  factor 1 stays the identity and the cap never turns the sign of ``f``.
  """
  value = jnp.maximum(jnp.maximum(r, g), b)
  spread = value - jnp.minimum(jnp.minimum(r, g), b)  # V * S
  factor = jnp.asarray(factor, r.dtype)
  # A traced factor is checked here: negative, NaN or inf gives NaN, not a clamped factor.
  factor = _checks.nan_unless(_checks.traced_in_interval(factor, lo=0.0), factor)
  inverse = value / jnp.where(spread > 0, spread, 1)  # 1 / S where V > 0
  # `where`, not `maximum`: at a tie (a channel at exactly 0) the derivative stays that of 1 / S
  limit = jnp.where(spread > 0, jnp.where(inverse >= 1, inverse, 1), jnp.inf)
  return value, jnp.minimum(factor, limit.astype(r.dtype))


def saturate_planes(planes, factor):
  """The ``(r, g, b)`` planes with the HSV saturation times ``factor`` (see `saturation_scale`)."""
  value, effective = saturation_scale(*planes, factor)
  return tuple(value - effective * (value - x) for x in planes)


def shift_hue_planes(planes, delta):
  """The ``(r, g, b)`` planes with the hue rotated by ``delta`` turns.

  rgb_to_hsv, a hue shift and hsv_to_rgb, fused: V and the chroma V * S are kept, only the hue
  sector moves, and no HSV image is ever materialized.
  """
  r, g, b = planes
  value = jnp.maximum(jnp.maximum(r, g), b)
  chroma = value - jnp.minimum(jnp.minimum(r, g), b)
  safe = jnp.where(chroma > 0, chroma, 1)
  sector = jnp.where(value == r, (g - b) / safe,
                     jnp.where(value == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
  sector = wrap6(sector + 6 * jnp.asarray(delta, r.dtype))  # hue in sixths of a turn
  channels = []
  for n in (5.0, 3.0, 1.0):
    k = wrap6(n + sector)
    channels.append(value - chroma * jnp.clip(jnp.minimum(k, 4 - k), 0, 1))
  return tuple(channels)
