"""Image dtypes: the dtype each op computes in, uint8 levels as floats and back, and `pixel_op`.

Float images compute in their own dtype, half precision in float32 (rounded back once); uint8
images are levels 0-255 that ops read as the floats ``q / 255`` in [0, 1] and write back as the
nearest level. Design: docs/design/photometric.md#uint8-images.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _backend, _checks

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


def on_levels(fn):
  """``fn(image, *args)`` computed on a uint8 image's levels as floats: on ``q / 255``
  (`to_float`), rounded to the nearest level once, at the end (`from_float`). Other images go
  to ``fn`` as they are. The one form of "compute on ``q / 255``, round back" that the ops
  defined as float maps (the enhancers, the policies' slots, AugMix's mix) share."""

  @functools.wraps(fn)
  def run(image, *args, **kwargs):
    if image.dtype != jnp.uint8:
      return fn(image, *args, **kwargs)
    return from_float(fn(to_float(image), *args, **kwargs), jnp.uint8)

  return run


def nearest_level(levels):
  """Float ``levels`` on the 0-255 scale as uint8: the nearest level (half to even), clamped
  to [0, 255]."""
  return jnp.round(jnp.clip(levels, 0, 255)).astype(jnp.uint8)


def compute_dtype(image):
  # Half-precision colour maths (a hue sector, a division by the chroma) loses several bits
  # per step; it runs in float32 and the result is rounded to the image's dtype once.
  return _checks.float32_or_wider(image.dtype)


def pixel_op(fn=None, *, static_argnames=(), loop_on_cpu=False, uint8=None):
  """``fn(x, *magnitudes)`` on the image in its compute dtype, rounded back once, as one jitted
  function: an eager call compiles one program per shape and dtype instead of dispatching each
  step.

  ``loop_on_cpu``: under `vmap` on a CPU, run the examples one after another
  (`jaxreg._backend.loop_on_cpu`; the magnitudes must be floats), each image staying in cache.
  ``uint8``: the op's form for uint8 images, ``uint8(q, *magnitudes)`` on the levels
  themselves, returning uint8 (the float form on ``q / 255``, times 255; autocontrast's
  truncated). Design: docs/design/photometric.md#cpu-formulation.
  """
  if fn is None:
    return functools.partial(pixel_op, static_argnames=static_argnames, loop_on_cpu=loop_on_cpu,
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
