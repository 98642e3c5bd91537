"""Colour ops: tf.image-style brightness, contrast, saturation and hue, and `color_jitter`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _backend, _checks
from jaxreg.augment._color_space import compute_dtype, wrap6
from jaxreg.augment._image_checks import (
  check_image,
  check_image_operand,
  check_range,
  check_rgb,
  check_strength,
  maybe_clip,
)


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
  factor = check_image_operand(factor, image.shape, op, "factor", lo=0.0, per_pixel=True)
  clip = _checks.check_bool(clip, op, "clip")
  x = image.astype(compute_dtype(image))
  value, effective = _saturation_scale(x[..., 0:1], x[..., 1:2], x[..., 2:3], factor)
  return maybe_clip(value - effective * (value - x), clip).astype(image.dtype)


def _saturation_scale(r, g, b, factor):
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


def _saturate_planes(planes, factor):
  value, effective = _saturation_scale(*planes, factor)
  return tuple(value - effective * (value - x) for x in planes)


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
  delta = check_image_operand(delta, image.shape, op, "delta", per_pixel=True)
  clip = _checks.check_bool(clip, op, "clip")
  if jnp.ndim(delta):
    delta = delta[..., 0]  # aligned with the (..., H, W) planes
  shifted = _shift_hue_planes(_planes(image.astype(compute_dtype(image))), _turns(delta))
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


def _planes(image):
  return image[..., 0], image[..., 1], image[..., 2]


def _shift_hue_planes(planes, delta):
  # rgb_to_hsv, a hue shift and hsv_to_rgb, fused: V and the chroma V * S are kept, only the
  # hue sector moves, and no HSV image is ever materialized.
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


def _uniform(key, lo, hi):
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
  op = "random_brightness"
  image = check_image(image, op)
  max_delta = check_strength(max_delta, op, "max_delta")
  clip = _checks.check_bool(clip, op, "clip")
  dtype = compute_dtype(image)
  delta = _uniform(_checks.as_key(key, op), -max_delta, max_delta).astype(dtype)
  return maybe_clip(image.astype(dtype) + delta, clip).astype(image.dtype)


def _contrast(image, factor, axes=(-3, -2)):
  # per-channel mean over H and W: axes (-3, -2) of an HWC image, (-2, -1) of a plane
  mean = jnp.mean(image, axis=axes, keepdims=True)
  return (image - mean) * factor + mean


def random_contrast(key: jax.Array, image: jax.typing.ArrayLike, lower: float, upper: float, *,
                    clip: bool = False) -> jax.Array:
  """Scales each channel's deviation from its mean by a factor from ``[lower, upper]``.

  ``(x - mean) * factor + mean`` with the per-channel mean over H and W (tf.image's rule).

  Args:
    key: a PRNG key.
    image: HWC float image.
    lower: smallest factor, >= 0.
    upper: largest factor, >= lower.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image, same dtype (half precision is computed in float32).

  Raises:
    ValueError: an invalid range; a non-HWC image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.linspace(0, 1, 12).reshape(2, 2, 3)
    >>> jr.augment.random_contrast(jax.random.key(0), image, 0.5, 1.5).shape
    (2, 2, 3)
  """
  op = "random_contrast"
  image = check_image(image, op)
  lo, hi = check_range(lower, upper, op, "(lower, upper)", low=0.0)
  clip = _checks.check_bool(clip, op, "clip")
  dtype = compute_dtype(image)
  factor = _uniform(_checks.as_key(key, op), lo, hi).astype(dtype)
  return maybe_clip(_contrast(image.astype(dtype), factor), clip).astype(image.dtype)


def random_saturation(key: jax.Array, image: jax.typing.ArrayLike, lower: float, upper: float,
                      *, clip: bool = False) -> jax.Array:
  """Multiplies the HSV saturation by a factor from ``[lower, upper]`` (see `adjust_saturation`).

  Args:
    key: a PRNG key.
    image: HWC RGB float image.
    lower: smallest factor, >= 0.
    upper: largest factor, >= lower.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image.

  Raises:
    ValueError: an invalid range; not an HWC RGB image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.full((2, 2, 3), 0.5).at[..., 0].set(0.9)
    >>> jr.augment.random_saturation(jax.random.key(0), image, 0.5, 1.5).shape
    (2, 2, 3)
  """
  op = "random_saturation"
  image = check_image(image, op)
  check_rgb(image, op)
  lo, hi = check_range(lower, upper, op, "(lower, upper)", low=0.0)
  clip = _checks.check_bool(clip, op, "clip")
  return adjust_saturation(image, _uniform(_checks.as_key(key, op), lo, hi), clip=clip)


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
  op = "random_hue"
  image = check_image(image, op)
  check_rgb(image, op)
  max_delta = check_strength(max_delta, op, "max_delta", hi=0.5)
  clip = _checks.check_bool(clip, op, "clip")
  return adjust_hue(image, _uniform(_checks.as_key(key, op), -max_delta, max_delta), clip=clip)


def color_jitter(key: jax.Array, image: jax.typing.ArrayLike, *, brightness: float = 0.0,
                 contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0,
                 clip: bool = True, random_order: bool = True) -> jax.Array:
  """Random brightness, contrast, saturation and hue, applied in a random order.

  Brightness adds a delta from ``[-brightness, brightness]``; contrast and saturation multiply by
  a factor from ``[max(0, 1 - c), 1 + c]``; hue shifts by ``[-hue, hue]`` turns. Each example
  draws its own order (one of the 24 permutations, as torchvision's ``ColorJitter``) and factors;
  with ``clip`` the image is clamped to [0, 1] after every step, as torchvision does for float
  images. A zero strength skips that op. The key is split in five: order, brightness, contrast,
  saturation, hue; each factor is one uniform draw from its key.

  ``random_order=False`` applies brightness, contrast, saturation, hue in that order (the order
  of dm_pix and tf.image pipelines, SimCLR's ``random_order=False``). Batched with `vmap` on an
  accelerator, a per-example order is a select, formulated so that each image computes hue
  twice (once per pass) and contrast's mean once, not at every step: compiled for an H100 (not
  timed), the crop + flip + jitter pipeline of docs/performance.md runs 10 kernels and moves
  1.29x the bytes of the fixed order's 9. On a CPU a batch runs as a loop over the examples
  instead, each doing only its own ops, in either order at the same speed; results and
  derivatives are those of the vectorized form.

  Args:
    key: a PRNG key.
    image: HWC RGB float image.
    brightness: brightness strength, >= 0.
    contrast: contrast strength, >= 0.
    saturation: saturation strength, >= 0.
    hue: hue strength, in [0, 0.5].
    clip: clamp to [0, 1] after each op (a bool).
    random_order: draw the order per example (True), or use the fixed order above (a bool).

  Returns:
    The jittered image, same dtype (half precision is computed in float32 and rounded once).

  Raises:
    ValueError: negative or non-finite strengths, ``hue`` > 0.5; not an HWC RGB image.
    TypeError: non-float image, bad key, non-bool ``clip`` or ``random_order``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jax.random.uniform(jax.random.key(1), (8, 8, 3))
    >>> out = jr.augment.color_jitter(jax.random.key(0), image, brightness=0.4, contrast=0.4,
    ...                               saturation=0.4, hue=0.1)
    >>> bool((out >= 0).all() & (out <= 1).all())
    True
  """
  op = "color_jitter"
  image = check_image(image, op)
  check_rgb(image, op)
  brightness, contrast, saturation = (
      check_strength(value, op, name) for name, value in (
          ("brightness", brightness), ("contrast", contrast), ("saturation", saturation)))
  hue = check_strength(hue, op, "hue", hi=0.5)
  clip = _checks.check_bool(clip, op, "clip")
  random_order = _checks.check_bool(random_order, op, "random_order")
  key = _checks.as_key(key, op)
  k_order, k_b, k_c, k_s, k_h = jax.random.split(key, 5)
  draws = (_uniform(k_b, -brightness, brightness),
           _uniform(k_c, max(0.0, 1 - contrast), 1 + contrast),
           _uniform(k_s, max(0.0, 1 - saturation), 1 + saturation),
           _uniform(k_h, -hue, hue))
  used = tuple(i for i, strength in enumerate((brightness, contrast, saturation, hue)) if strength)
  if not used:
    return image
  order = jax.random.permutation(k_order, len(used)) if random_order else None
  compute = image.astype(compute_dtype(image))
  return _jitter(compute, draws, used, clip, order).astype(image.dtype)


# The four colour ops on an HWC image and on a tuple of (r, g, b) planes: one formula each.
def _jitter_steps(draws, used, clip, planar):
  b, c, s, h = draws
  if planar:
    steps = (lambda p: tuple(x + b.astype(x.dtype) for x in p),
             lambda p: tuple(_contrast(x, c.astype(x.dtype), axes=(-2, -1)) for x in p),
             lambda p: _saturate_planes(p, s),
             lambda p: _shift_hue_planes(p, h))
    return [lambda p, f=steps[i]: tuple(maybe_clip(x, clip) for x in f(p)) for i in used]
  steps = (lambda x: x + b.astype(x.dtype),
           lambda x: _contrast(x, c.astype(x.dtype)),
           lambda x: adjust_saturation(x, s),
           lambda x: adjust_hue(x, h))
  return [lambda x, f=steps[i]: maybe_clip(f(x), clip) for i in used]


def _jitter_in_order(image, draws, used, order, clip):
  """Applies the ``used`` ops in ``order`` to an HWC image: a static order op by op; a traced
  one as every op at every position and a select (what `vmap` makes of a switch).

  The CPU's derivative form (see `_jitter`): it chains four contrast means, yet XLA:CPU
  compiles its batched gradient to fewer bytes moved than `_jitter_fused`'s (0.80x in a random
  order, 0.52x in the fixed one; 128 images of 224x224).
  """
  steps = _jitter_steps(draws, used, clip, planar=False)
  for position in range(len(steps)):
    if isinstance(order, tuple):
      image = steps[order[position]](image)
    else:
      image = lax.select_n(order[position], *(step(image) for step in steps))
  return image


_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE, _IDENTITY = range(5)  # op kinds; _IDENTITY: none


def _affine_step(planes, op, draws, mean, clip):
  """Brightness, contrast, saturation or nothing (``op``: a kind, static or traced) on planes.

  The three are one map per channel, ``x -> a (x - t) + t + d``, with ``t`` the channel's
  ``mean`` for contrast and the pixel's largest channel for saturation; each op's result is
  bitwise that of its own formula. A traced ``op`` selects per-example ``a, t, d`` instead of
  computing three image-sized results and selecting one.
  """
  b, c, s, _ = draws
  dtype = planes[0].dtype
  if isinstance(op, int):
    if op == _IDENTITY:
      return planes
    if op == _BRIGHTNESS:
      out = tuple(x + b.astype(dtype) for x in planes)
    elif op == _CONTRAST:
      out = tuple((x - m) * c.astype(dtype) + m for x, m in zip(planes, mean, strict=True))
    else:
      out = _saturate_planes(planes, s)
    return tuple(maybe_clip(x, clip) for x in out)
  zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
  value, factor = _saturation_scale(*planes, s)
  scale = jnp.where(op == _SATURATION, factor, jnp.where(op == _CONTRAST, c.astype(dtype), one))
  shift = jnp.where(op == _BRIGHTNESS, b.astype(dtype), zero)
  out = []
  for x, m in zip(planes, mean or (zero,) * 3, strict=True):
    anchor = jnp.where(op == _SATURATION, value, jnp.where(op == _CONTRAST, m, zero))
    y = scale * (x - anchor) + anchor + shift
    # the identity is exact (1 (x - 0) + 0 + 0) but must not clip
    out.append(jnp.where(op == _IDENTITY, x, maybe_clip(y, clip)) if clip else y)
  return tuple(out)


def _hue_step(planes, apply, h, clip):
  """Hue on planes where ``apply`` (a bool, static or traced); the planes elsewhere."""
  if apply is False:
    return planes
  out = tuple(maybe_clip(x, clip) for x in _shift_hue_planes(planes, h))
  if apply is True:
    return out
  return tuple(jnp.where(apply, y, x) for x, y in zip(planes, out, strict=True))


def _chain(planes, ops, end, length, used, draws, mean, clip):
  """Applies the op kinds ``ops[p]`` (a tuple, or traced) at the positions ``p < end`` of the
  first ``length``; the others are the identity.

  Hue, the costly op, runs once: the affine ops before its position, hue, then the affine ops
  after it. A traced order so costs one hue and two affine steps per position, where a select
  per position computes all four ops at each.
  """
  static = isinstance(ops, tuple)

  def kind(p, keep):
    return (ops[p] if keep else _IDENTITY) if static else jnp.where(keep, ops[p], _IDENTITY)

  if _HUE not in used:
    for p in range(length):
      planes = _affine_step(planes, kind(p, p < end), draws, mean, clip)
    return planes
  at = ops.index(_HUE) if static else jnp.argmax(ops == _HUE)
  for p in range(length - 1):  # before hue: p < at <= length - 1
    planes = _affine_step(planes, kind(p, (p < at) & (p < end)), draws, mean, clip)
  planes = _hue_step(planes, at < end, draws[3], clip)
  for p in range(1, length):  # after hue: p > at >= 0
    planes = _affine_step(planes, kind(p, (p > at) & (p < end)), draws, mean, clip)
  return planes


def _jitter_fused(image, draws, used, order, clip):
  """Applies the ``used`` ops in ``order`` (a tuple, or traced) to an HWC image, on (r, g, b)
  planes, with one reduction: the accelerators' form (see `_jitter`).

  A first pass applies the ops drawn before contrast and reduces their result's per-channel
  mean; the full chain then uses that mean. With each contrast step reducing its own input,
  a traced order chains a reduction per position (each position may be contrast), each a kernel
  re-reading the image. Planes, because hue and saturation mix the channels: on an HWC image
  every step slices and restacks it, and XLA writes each step out.
  Design: docs/design/augmentation_backends.md.
  """
  static = isinstance(order, tuple)
  ops = tuple(used[i] for i in order) if static else jnp.asarray(used)[order]
  planes = _planes(image)
  mean = None
  if _CONTRAST in used:
    at = ops.index(_CONTRAST) if static else jnp.argmax(ops == _CONTRAST)
    before = _chain(planes, ops, at, len(used) - 1, used, draws, None, clip)
    # one reduction of the three planes stacked: three would each be a kernel on a GPU
    mean = tuple(jnp.mean(jnp.stack(before), axis=(-2, -1), keepdims=True))
  planes = _chain(planes, ops, len(used), len(used), used, draws, mean, clip)
  # An elementwise interleave: a stack (concatenate) computes each channel on its own, and XLA
  # writes out more of the chain to share it among them.
  channel = lax.broadcasted_iota(jnp.int32, (*planes[0].shape, 3), planes[0].ndim)
  r, g, b = (x[..., None] for x in planes)
  return jnp.where(channel == 0, r, jnp.where(channel == 1, g, b))


def _jitter_on_planes(image, draws, used, order, clip):
  """The same ops on (r, g, b) planes, one ``switch`` per position (``order`` None: fixed).

  Only for an unbatched image: vectorized, XLA duplicates each position's producers into every
  consumer (seconds instead of milliseconds). The branches matter too: a straight-line chain
  of the four ops in a per-example loop body was 4x slower. So the fixed order goes through a
  loop over positions, whose switch index XLA cannot fold into a straight line.
  """
  steps = _jitter_steps(draws, used, clip, planar=True)
  planes = _planes(image)
  if order is None:
    fixed = jnp.arange(len(steps))
    planes = lax.fori_loop(0, len(steps), lambda i, p: lax.switch(fixed[i], steps, p), planes)
  else:
    for position in range(len(steps)):  # unrolled: 12% faster than the loop
      planes = lax.switch(order[position], steps, planes)
  return jnp.stack(planes, axis=-1)


def _jitter(image, draws, used, clip, order=None):
  """The jitter in a drawn ``order`` (None: the fixed one), in the form each backend runs best.

  On a CPU a batch runs as a loop over the examples, doing only the drawn ops, on (r, g, b)
  planes of an image that stays in cache (`_jitter_on_planes`): 2-3x faster than vectorized
  for the random order, 1.1x for the fixed one. Its derivatives (forward and reverse) are
  those of `_jitter_in_order`, which computes the same function. On accelerators, where a loop
  serializes the batch, `_jitter_fused` runs vectorized: under `vmap` a per-example order is a
  select, and it computes hue once and reduces once where a select per position computes every
  op, contrast's mean included, at every position.
  """
  fixed = tuple(range(len(used)))

  def vectorized(image, draws, *drawn, select=False):
    # select: the form the CPU's derivative rule differentiates (see `_backend.loop_on_cpu`)
    form = _jitter_in_order if select else _jitter_fused
    return form(image, draws, used, drawn[0] if drawn else fixed, clip)

  def on_planes(image, draws, *drawn):
    return _jitter_on_planes(image, draws, used, drawn[0] if drawn else None, clip)

  drawn = () if order is None else (order,)
  return _backend.loop_on_cpu(on_planes, vectorized, differentiable=2)(image, draws, *drawn)
