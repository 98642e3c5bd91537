"""Colour ops with tf.image's rules: brightness, contrast, saturation and hue, fixed and random."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks
from jaxreg.augment._color_space import rgb_planes, saturation_scale, shift_hue_planes
from jaxreg.augment._dtypes import compute_dtype
from jaxreg.augment._image_checks import (
  check_image,
  check_image_operand,
  check_range,
  check_rgb,
  check_strength,
  maybe_clip,
)
from jaxreg.augment._params import ColorParams, register

COLOR_OPS = ("brightness", "contrast", "saturation", "hue")  # the values of ColorParams.op


def adjust_saturation(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike, *,
                      clip: bool = False) -> jax.Array:
  """Multiplies the HSV saturation by ``factor`` (clamped to [0, 1] in HSV), like tf.image.

  Each channel ``x`` becomes ``V - f (V - x)`` with ``V`` the largest channel and ``f`` the
  factor, capped where the saturation would pass 1: on pixels with no negative channel, dm_pix's
  and tf.image's HSV rule. A pixel with a negative channel (an unclipped brightness step can
  make them) has a saturation already beyond 1, or none (``V <= 0``); there the factor is
  capped at 1, so saturation can only go down. For every pixel ``V`` is kept, factor 0 gives
  grey ``(V, V, V)`` and factor 1 returns it unchanged (dm_pix and tf.image pull those pixels
  to S = 1, and turn the ones with ``V <= 0`` grey, even at factor 1).

  Args:
    image: RGB float image (any leading shape, 3 channels last).
    factor: saturation multiplier, >= 0 (0 gives grey, 1 the image): a scalar, or an array
      (tuple, list, NumPy or JAX) with one factor per pixel that broadcasts to the image's
      shape without enlarging it and has size 1 on the channel axis, e.g. ``(N, 1, 1, 1)`` for
      one factor per image of an NHWC batch or ``(H, W, 1)`` per pixel (saturation is a
      property of a pixel: a factor per channel would shift its hue). Concrete values are
      checked elementwise; a traced factor cannot be checked at trace time, and its negative,
      NaN or infinite entries give NaN pixels, never a silently clamped factor.
    clip: clamp the RGB result to [0, 1] (a bool).

  Returns:
    The adjusted image, same shape and dtype (half precision is computed in float32).

  Raises:
    ValueError: not RGB (a 0-d array included); a ``factor`` that does not broadcast to the
      image's shape, has more than one entry on the channel axis, or has a negative, NaN or
      infinite entry.
    TypeError: not floating point; a non-real ``factor``; non-bool ``clip``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.adjust_saturation(jnp.array([0.8, 0.4, 0.4]), 0.0)
    Array([0.8, 0.8, 0.8], dtype=float32)
  """
  op = "adjust_saturation"
  image = _checks.check_float_array(image, op, "image", image=True)
  check_rgb(image, op)
  factor = check_image_operand(factor, op, "factor", shape=image.shape, lo=0.0,
                               per_pixel=True)
  clip = _checks.check_bool(clip, op, "clip")
  return _saturated(image, factor, clip)


# The computations behind the checks, jitted: an eager call compiles one program, not a
# dispatch per step (docs/design/index.md#checks-eagerly-computations-jitted).
@functools.partial(jax.jit, static_argnames="clip")
def _saturated(image, factor, clip: bool):
  x = image.astype(compute_dtype(image))
  value, effective = saturation_scale(x[..., 0:1], x[..., 1:2], x[..., 2:3], factor)
  return maybe_clip(value - effective * (value - x), clip).astype(image.dtype)


def adjust_hue(image: jax.typing.ArrayLike, delta: jax.typing.ArrayLike, *,
               clip: bool = False) -> jax.Array:
  """Rotates the hue by ``delta`` turns, like tf.image.

  The largest channel ``V`` and the chroma (largest minus smallest channel) are kept; only
  the hue moves. That holds for any real RGB values, so ``delta = 0`` returns every pixel
  unchanged, also outside [0, 1], as ``tf.image.adjust_hue`` does (dm_pix goes through
  S = chroma / V and turns pixels with ``V <= 0`` grey).

  Args:
    image: RGB float image (any leading shape, 3 channels last).
    delta: hue shift as a fraction of a full turn; any finite value (the shift is periodic,
      and ``delta`` is reduced modulo 1 first: [-0.5, 0.5] covers every rotation). A scalar,
      or an array (tuple, list, NumPy or JAX) with one shift per pixel that broadcasts to the
      image's shape without enlarging it and has size 1 on the channel axis, e.g.
      ``(N, 1, 1, 1)`` for one shift per image of an NHWC batch or ``(H, W, 1)`` per pixel.
      Concrete values are checked elementwise; a traced delta is checked for shape only.
    clip: clamp the RGB result to [0, 1] (a bool).

  Returns:
    The adjusted image, same shape and dtype (half precision is computed in float32).

  Raises:
    ValueError: not RGB (a 0-d array included); a ``delta`` that does not broadcast to the
      image's shape or has more than one entry on the channel axis, or with a NaN or infinite
      entry.
    TypeError: not floating point; a non-real ``delta``; non-bool ``clip``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.adjust_hue(jnp.array([1.0, 0.0, 0.0]), 1 / 3)  # red -> green
    Array([0., 1., 0.], dtype=float32)
  """
  op = "adjust_hue"
  image = _checks.check_float_array(image, op, "image", image=True)
  check_rgb(image, op)
  delta = check_image_operand(delta, op, "delta", shape=image.shape, per_pixel=True)
  clip = _checks.check_bool(clip, op, "clip")
  if jnp.ndim(delta):
    delta = delta[..., 0]  # aligned with the (..., H, W) planes
  return _hue_shifted(image, _turns(delta), clip)


@functools.partial(jax.jit, static_argnames="clip")
def _hue_shifted(image, turns, clip: bool):
  shifted = shift_hue_planes(rgb_planes(image.astype(compute_dtype(image))), turns)
  return maybe_clip(jnp.stack(shifted, axis=-1), clip).astype(image.dtype)


def _turns(delta):
  """``delta`` modulo 1, in [0, 1): a large shift (1e6 + 0.25) would otherwise lose the
  fraction that matters in the float32 sector arithmetic. Concrete values are reduced in
  float64, before any float32 rounding."""
  if _checks.is_traced(delta):
    delta = jnp.asarray(delta)
    if not jnp.issubdtype(delta.dtype, jnp.floating):
      return jnp.zeros(delta.shape, jnp.float32)  # whole turns
    return delta - jnp.floor(delta)
  return np.mod(np.asarray(delta, np.float64), 1.0)


def uniform(key, lo, hi):
  """One draw, uniform in ``[lo, hi)``, of shape ``()``."""
  return jax.random.uniform(key, (), minval=lo, maxval=hi)


def random_brightness(key: jax.Array, image: jax.typing.ArrayLike, max_delta: float, *,
                      clip: bool = False) -> jax.Array:
  """Adds one random offset in ``[-max_delta, max_delta]`` to every pixel (tf.image's rule).

  Args:
    key: a PRNG key.
    image: HWC float image.
    max_delta: largest offset, a Python number >= 0.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The brightened (or darkened) image, same dtype (half precision is computed in float32).

  Raises:
    ValueError: negative or non-finite ``max_delta``; a non-HWC image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> out = jr.augment.random_brightness(jax.random.key(0), jnp.full((2, 2, 3), 0.5), 0.2)
    >>> bool(jnp.all(jnp.abs(out - 0.5) <= 0.2))
    True
  """
  return _apply_color(_draw_brightness(key, image, max_delta, clip=clip), image)


def scale_contrast(image, factor, axes=(-3, -2)):
  """``(x - mean) * factor + mean`` with the per-channel mean over H and W: axes (-3, -2) of
  an HWC image, (-2, -1) of a plane."""
  mean = jnp.mean(image, axis=axes, keepdims=True)
  return (image - mean) * factor + mean


def random_contrast(key: jax.Array, image: jax.typing.ArrayLike, factors: Sequence[float], *,
                    clip: bool = False) -> jax.Array:
  """Scales each channel's deviation from its mean by a factor drawn from ``factors``.

  ``(x - mean) * factor + mean`` with the per-channel mean over H and W (tf.image's rule), the
  factor uniform in ``[lo, hi)``.

  Args:
    key: a PRNG key.
    image: HWC float image.
    factors: ``(lo, hi)``, the range of the factor: two finite Python numbers (a tuple, list
      or 1-D array) with ``0 <= lo <= hi``.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image, same dtype (half precision is computed in float32).

  Raises:
    ValueError: ``factors`` of another length than 2, non-finite, or not ``0 <= lo <= hi``; a
      non-HWC image.
    TypeError: ``factors`` not a pair of numbers (or traced), non-float image, bad key,
      non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.linspace(0, 1, 12).reshape(2, 2, 3)
    >>> jr.augment.random_contrast(jax.random.key(0), image, (0.5, 1.5)).shape
    (2, 2, 3)
  """
  return _apply_color(_draw_contrast(key, image, factors, clip=clip), image)


def random_saturation(key: jax.Array, image: jax.typing.ArrayLike, factors: Sequence[float], *,
                      clip: bool = False) -> jax.Array:
  """Multiplies the HSV saturation by a factor drawn from ``factors`` (see `adjust_saturation`).

  The factor is uniform in ``[lo, hi)``.

  Args:
    key: a PRNG key.
    image: HWC RGB float image.
    factors: ``(lo, hi)``, the range of the factor: two finite Python numbers (a tuple, list
      or 1-D array) with ``0 <= lo <= hi``.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image.

  Raises:
    ValueError: ``factors`` of another length than 2, non-finite, or not ``0 <= lo <= hi``;
      not an HWC RGB image.
    TypeError: ``factors`` not a pair of numbers (or traced), non-float image, bad key,
      non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.full((2, 2, 3), 0.5).at[..., 0].set(0.9)
    >>> jr.augment.random_saturation(jax.random.key(0), image, (0.5, 1.5)).shape
    (2, 2, 3)
  """
  return _apply_color(_draw_saturation(key, image, factors, clip=clip), image)


def random_hue(key: jax.Array, image: jax.typing.ArrayLike, max_delta: float, *,
               clip: bool = False) -> jax.Array:
  """Rotates the hue by a random fraction of a turn in ``[-max_delta, max_delta]``.

  Args:
    key: a PRNG key.
    image: HWC RGB float image.
    max_delta: largest shift, a Python number in [0, 0.5].
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image.

  Raises:
    ValueError: ``max_delta`` outside [0, 0.5]; not an HWC RGB image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.full((2, 2, 3), 0.5).at[..., 0].set(0.9)
    >>> jr.augment.random_hue(jax.random.key(0), image, 0.1).shape
    (2, 2, 3)
  """
  return _apply_color(_draw_hue(key, image, max_delta, clip=clip), image)


def _draw_color(op, kind, key, lo, hi, clip) -> ColorParams:
  """The checks every colour op ends with (``clip``, then the key) and its one uniform draw."""
  clip = _checks.check_bool(clip, op, "clip")
  return ColorParams(magnitude=uniform(_checks.as_key(key, op), lo, hi), op=kind, clip=clip)


def _draw_brightness(key, image, max_delta, *, clip=False) -> ColorParams:
  op = "random_brightness"
  check_image(image, op)
  max_delta = check_strength(max_delta, op, "max_delta")
  return _draw_color(op, "brightness", key, -max_delta, max_delta, clip)


def _draw_contrast(key, image, factors, *, clip=False) -> ColorParams:
  op = "random_contrast"
  check_image(image, op)
  lo, hi = check_range(factors, op, "factors", lo=0.0)
  return _draw_color(op, "contrast", key, lo, hi, clip)


def _draw_saturation(key, image, factors, *, clip=False) -> ColorParams:
  op = "random_saturation"
  check_rgb(check_image(image, op), op)
  lo, hi = check_range(factors, op, "factors", lo=0.0)
  return _draw_color(op, "saturation", key, lo, hi, clip)


def _draw_hue(key, image, max_delta, *, clip=False) -> ColorParams:
  op = "random_hue"
  check_rgb(check_image(image, op), op)
  max_delta = check_strength(max_delta, op, "max_delta", hi=0.5)
  return _draw_color(op, "hue", key, -max_delta, max_delta, clip)


def _apply_color(params: ColorParams, image):
  op = "apply(ColorParams)"
  image = check_image(image, op)
  kind = _checks.check_choice(params.op, op, "op", choices=COLOR_OPS)
  clip = _checks.check_bool(params.clip, op, "clip")
  if jnp.ndim(params.magnitude) != 0:
    raise ValueError(f"{op}: `magnitude` must be a scalar, got shape "
                     f"{jnp.shape(params.magnitude)}.")
  if kind in ("saturation", "hue"):
    check_rgb(image, op)
    adjust = adjust_saturation if kind == "saturation" else adjust_hue
    return adjust(image, params.magnitude, clip=clip)
  dtype = compute_dtype(image)
  x, magnitude = image.astype(dtype), jnp.asarray(params.magnitude, dtype)
  out = x + magnitude if kind == "brightness" else scale_contrast(x, magnitude)
  return maybe_clip(out, clip).astype(image.dtype)


register(random_brightness, _draw_brightness, ColorParams, _apply_color)
register(random_contrast, _draw_contrast, ColorParams, _apply_color)
register(random_saturation, _draw_saturation, ColorParams, _apply_color)
register(random_hue, _draw_hue, ColorParams, _apply_color)
