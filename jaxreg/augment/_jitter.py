"""`color_jitter`: tf.image's four colour ops in a random order, in one form per backend.

Three forms compute the same function: `jitter_on_planes` (one ``switch`` per position, looped
over the examples of a batch on a CPU), `jitter_fused` (vectorized on accelerators: one
reduction and one hue rotation per pass) and `jitter_in_order` (a select per position on HWC
images, whose derivatives the CPU loop uses). Design:
docs/design/augmentation_backends.md#per-example-choices-under-vmap-the-colour-jitter.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxreg import _backend, _checks
from jaxreg.augment._color import adjust_hue, adjust_saturation, scale_contrast, uniform
from jaxreg.augment._color_space import (
  rgb_planes,
  saturate_planes,
  saturation_scale,
  shift_hue_planes,
)
from jaxreg.augment._dtypes import compute_dtype
from jaxreg.augment._image_checks import check_image, check_rgb, check_strength, maybe_clip
from jaxreg.augment._params import ColorJitterParams, register


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

  ``random_order=False`` applies brightness, contrast, saturation, hue in that order (SimCLR's
  colour jitter with ``random_order=False``). Batched with `vmap` on an accelerator, a
  per-example order is a select, formulated so that each image computes hue twice (once per
  pass) and contrast's mean once, not at every step. On a CPU a batch runs as
  a loop over the examples instead, each doing only its own ops; results and derivatives are
  those of the vectorized form. Design: docs/design/augmentation_backends.md.

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
  params = _draw_jitter(key, image, brightness=brightness, contrast=contrast,
                        saturation=saturation, hue=hue, clip=clip, random_order=random_order)
  return _apply_jitter(params, image)


JITTER_OPS = ("brightness", "contrast", "saturation", "hue")  # ColorJitterParams.used


def _draw_jitter(key, image, *, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0,
                 clip=True, random_order=True) -> ColorJitterParams:
  op = "color_jitter"
  check_rgb(check_image(image, op), op)
  brightness, contrast, saturation = (
      check_strength(value, op, name) for name, value in (
          ("brightness", brightness), ("contrast", contrast), ("saturation", saturation)))
  hue = check_strength(hue, op, "hue", hi=0.5)
  clip = _checks.check_bool(clip, op, "clip")
  random_order = _checks.check_bool(random_order, op, "random_order")
  key = _checks.as_key(key, op)
  k_order, k_b, k_c, k_s, k_h = jax.random.split(key, 5)
  used = tuple(name for name, strength in zip(
      JITTER_OPS, (brightness, contrast, saturation, hue), strict=True) if strength)
  if random_order and used:
    order = jax.random.permutation(k_order, len(used)).astype(jnp.int32)
  else:
    order = jnp.arange(len(used), dtype=jnp.int32)
  return ColorJitterParams(
      order=order, brightness=uniform(k_b, -brightness, brightness),
      contrast=uniform(k_c, max(0.0, 1 - contrast), 1 + contrast),
      saturation=uniform(k_s, max(0.0, 1 - saturation), 1 + saturation),
      hue=uniform(k_h, -hue, hue), used=used, clip=clip, random_order=random_order)


def _apply_jitter(params: ColorJitterParams, image):
  op = "apply(ColorJitterParams)"
  image = check_image(image, op)
  check_rgb(image, op)
  if not isinstance(params.used, tuple) or params.used != tuple(
      name for name in JITTER_OPS if name in params.used):
    raise ValueError(f"{op}: `used` must be a tuple of distinct ops of {JITTER_OPS}, in that "
                     f"order, got {params.used!r}.")
  used = tuple(i for i, name in enumerate(JITTER_OPS) if name in params.used)
  clip = _checks.check_bool(params.clip, op, "clip")
  random_order = _checks.check_bool(params.random_order, op, "random_order")
  if jnp.shape(params.order) != (len(used),):
    raise ValueError(f"{op}: `order` must have shape ({len(used)},), one position per op in "
                     f"`used`, got {jnp.shape(params.order)}.")
  if not used:
    return image
  draws = (params.brightness, params.contrast, params.saturation, params.hue)
  compute = image.astype(compute_dtype(image))
  order = params.order if random_order else None
  return _jitter(compute, draws, used, clip, order).astype(image.dtype)


# The four colour ops on an HWC image and on a tuple of (r, g, b) planes: one formula each.
def _jitter_steps(draws, used, clip, planar):
  b, c, s, h = draws
  if planar:
    steps = (lambda p: tuple(x + b.astype(x.dtype) for x in p),
             lambda p: tuple(scale_contrast(x, c.astype(x.dtype), axes=(-2, -1)) for x in p),
             lambda p: saturate_planes(p, s),
             lambda p: shift_hue_planes(p, h))
    return [lambda p, f=steps[i]: tuple(maybe_clip(x, clip) for x in f(p)) for i in used]
  steps = (lambda x: x + b.astype(x.dtype),
           lambda x: scale_contrast(x, c.astype(x.dtype)),
           lambda x: adjust_saturation(x, s),
           lambda x: adjust_hue(x, h))
  return [lambda x, f=steps[i]: maybe_clip(f(x), clip) for i in used]


def jitter_in_order(image, draws, used, order, clip):
  """Applies the ``used`` ops in ``order`` to an HWC image: a static order op by op; a traced
  one as every op at every position and a select (what `vmap` makes of a switch).

  The CPU's derivative form (see `_jitter`): it chains four contrast means, yet XLA:CPU
  compiles its batched gradient to fewer bytes moved than `jitter_fused`'s, in either order.
  Design: docs/design/augmentation_backends.md#alternatives-measured-and-rejected.
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
      out = saturate_planes(planes, s)
    return tuple(maybe_clip(x, clip) for x in out)
  zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
  value, factor = saturation_scale(*planes, s)
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
  out = tuple(maybe_clip(x, clip) for x in shift_hue_planes(planes, h))
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


def jitter_fused(image, draws, used, order, clip):
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
  planes = rgb_planes(image)
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


def jitter_on_planes(image, draws, used, order, clip):
  """The same ops on (r, g, b) planes, one ``switch`` per position (``order`` None: fixed).

  Only for an unbatched image: vectorized, XLA duplicates each position's producers into every
  consumer. The branches matter too: a straight-line chain of the four ops fuses badly in a
  per-example loop body, so the fixed order goes through a loop over positions, whose switch
  index XLA cannot fold into a straight line.
  Design: docs/design/augmentation_backends.md#alternatives-measured-and-rejected.
  """
  steps = _jitter_steps(draws, used, clip, planar=True)
  planes = rgb_planes(image)
  if order is None:
    fixed = jnp.arange(len(steps))
    planes = lax.fori_loop(0, len(steps), lambda i, p: lax.switch(fixed[i], steps, p), planes)
  else:
    for position in range(len(steps)):  # unrolled: faster than a loop over positions
      planes = lax.switch(order[position], steps, planes)
  return jnp.stack(planes, axis=-1)


@functools.partial(jax.jit, static_argnames=("used", "clip"))
def _jitter(image, draws, used, clip, order=None):
  """The jitter in a drawn ``order`` (None: the fixed one), in the form each backend runs best.

  On a CPU a batch runs as a loop over the examples, doing only the drawn ops, on (r, g, b)
  planes of an image that stays in cache (`jitter_on_planes`), faster than vectorized in
  either order. Its derivatives (forward and reverse) are those of `jitter_in_order`, which
  computes the same function. On accelerators, where a loop
  serializes the batch, `jitter_fused` runs vectorized: under `vmap` a per-example order is a
  select, and it computes hue once and reduces once where a select per position computes every
  op, contrast's mean included, at every position.
  """
  fixed = tuple(range(len(used)))

  def vectorized(image, draws, *drawn, select=False):
    # select: the form the CPU's derivative rule differentiates (see `_backend.loop_on_cpu`)
    form = jitter_in_order if select else jitter_fused
    return form(image, draws, used, drawn[0] if drawn else fixed, clip)

  def on_planes(image, draws, *drawn):
    return jitter_on_planes(image, draws, used, drawn[0] if drawn else None, clip)

  drawn = () if order is None else (order,)
  return _backend.loop_on_cpu(on_planes, vectorized, differentiable=2)(image, draws, *drawn)


register(color_jitter, _draw_jitter, ColorJitterParams, _apply_jitter)
