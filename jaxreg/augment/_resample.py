"""Separable resampling of a box of an image (antialiased bilinear, static output size)."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxreg.augment._dtypes import compute_dtype, nearest_level


def _axis_taps(start, length, out_size: int, in_size: int, antialias: bool, *, valid):
  """Source indices and weights of a triangle-filter resampling of one axis: one (out_size,)
  array of each per tap.

  Output pixel ``i`` samples the input at ``start + (i + 0.5) * length / out_size - 0.5``
  (pixel centers, as `jax.image.scale_and_translate`). The triangle has half-width 1, or the
  shrink factor when antialiasing a shrink; taps outside ``valid = (first, last)`` get
  weight 0 and the rest are renormalized, which is how `jax.image.resize` treats the edges of
  the array it resizes (the box itself for a crop-then-resize, the whole image for a
  resize-then-crop). The tap count is static: enough for the largest shrink a box inside the
  image can need. An array per tap, summed tap by tap, keeps the weights elementwise: a
  reduction over a taps axis is a kernel of its own per tap on a GPU.
  """
  step = length / out_size
  centers = start + (jnp.arange(out_size, dtype=jnp.float32) + 0.5) * step - 0.5
  width = jnp.maximum(step, 1.0) if antialias else jnp.ones_like(step)
  largest = max(in_size / out_size, 1.0) if antialias else 1.0
  taps = math.floor(2 * largest) + 1
  first = jnp.floor(centers - width) + 1
  positions = [first + t for t in range(taps)]
  weights = [jnp.where((p >= valid[0]) & (p <= valid[1]),
                       jnp.maximum(0.0, 1.0 - jnp.abs(p - centers) / width), 0.0)
             for p in positions]
  total = jnp.maximum(sum(weights), 1e-12)
  indices = [jnp.clip(p, 0, in_size - 1).astype(jnp.int32) for p in positions]
  return indices, [w / total for w in weights]


@functools.partial(jax.jit, static_argnames=("size", "antialias", "crop_first"))
def resample_box(image, top, left, box_h, box_w, size, antialias: bool, *, crop_first: bool,
                 mirror=None):
  """Resamples the box (top, left, box_h, box_w) of ``image`` to ``size``, separably.

  ``mirror`` (a bool scalar, traced or not; None: no flip) flips the output left-right: its
  columns take the taps of the mirrored columns, in reverse order, so each output pixel is
  computed as the unflipped one is, bit for bit, without a pass over the output.

  ``crop_first``: only pixels inside the box contribute (crop, then resize the crop: the box
  must then lie on whole pixels); otherwise pixels just outside the box blend in at its border,
  as they do when the whole image is resized and then cropped.

  A gather of a few taps per axis: work proportional to the output, where a dense resampling
  matrix (what `jax.image.scale_and_translate` builds for traced scales) costs input x output
  per axis.
  """
  out_h, out_w = size
  height, width = image.shape[:2]
  if crop_first:
    row_valid, col_valid = (top, top + box_h - 1), (left, left + box_w - 1)
  else:
    row_valid, col_valid = (0, height - 1), (0, width - 1)
  rows, row_w = _axis_taps(top, box_h, out_h, height, antialias, valid=row_valid)
  cols, col_w = _axis_taps(left, box_w, out_w, width, antialias, valid=col_valid)
  if mirror is not None:
    cols = [jnp.where(mirror, c[::-1], c) for c in cols]
    col_w = [jnp.where(mirror, w[::-1], w) for w in col_w]
  # Half precision and uint8 are resampled in float32 and rounded once, at the end (uint8 on
  # its own levels: the weights are convex, so the result stays in [0, 255]).
  dtype = compute_dtype(image)
  x = image.astype(dtype)
  # One weighted gather per tap, summed: XLA fuses them into a single pass per axis.
  def by_rows(x):
    return sum(w.astype(dtype)[:, None, None] * x[i] for i, w in zip(rows, row_w, strict=True))

  def by_columns(x):
    return sum(w.astype(dtype)[None, :, None] * x[:, i] for i, w in zip(cols, col_w, strict=True))

  if image.dtype == jnp.uint8:
    # Columns first: rows first, XLA:CPU writes a uint8 batch in a transposed layout and
    # copies it back; float batches are faster rows first. The same sums, in another order.
    # Then the nearest level. Design: docs/design/augmentation_backends.md#uint8-batches-on-the-cpu.
    return nearest_level(by_rows(by_columns(x)))
  return by_columns(by_rows(x)).astype(image.dtype)


def resize_shorter(image, length: int):
  shape = (*shorter_side_resized(*image.shape[:2], length), image.shape[2])
  return jax.image.resize(image, shape, method="linear", antialias=True).astype(image.dtype)


def shorter_side_resized(height: int, width: int, length: int) -> tuple[int, int]:
  """The whole-pixel (height, width) of an image resized so its shorter side is ``length``."""
  shorter = min(height, width)
  return round(height * length / shorter), round(width * length / shorter)
