"""The point and mask maps of each geometric parameter class, for the dense targets.

Each class registers with `jaxreg.augment._targets.register_targets` a point map (`PointMap`:
input point to output point in continuous pixel coordinates, and the output canvas) and a mask
map (the mask resampled as the image is: label maps nearest, float masks as the image). The
coordinates are `jaxreg.augment._targets`': the image spans ``[0, W] x [0, H]``, the centre of
pixel ``(i, j)`` is ``(j + 0.5, i + 0.5)``.

* Crops, resized crops and flips: a shift, a scaling of the box onto the output, a mirror.
* Affine warps (`AffineParams`): the matrix is `warp`'s inverse map, output pixel ``(i, j)``
  sampling the input at ``matrix @ (j + 0.5, i + 0.5, 1)``, both points in these coordinates.
  It is a map of the plane, so the point map is its inverse, with no half-pixel shift: a point
  lands where the output pixel showing it lies. Masks go through `warp` itself.
* Policies (`PolicyParams`): one step per slot, as the image is warped slot by slot: each
  geometric slot's inverse matrix (`slot_matrix`) inverted; photometric slots leave masks,
  boxes and keypoints as they are.

Each class also registers an index map (`IndexMap`): for an output pixel's (row, column), the
input pixel a label map takes, elementwise. A chain of sets composes them, so its label map is
one gather of the input, equal to applying the sets in turn.

`AugMixParams` has no maps: it blends differently warped copies of the image.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxreg import _backend, _checks
from jaxreg.augment._image_checks import (
  PAD_MODES,
  check_interpolation,
  check_padding,
  check_size,
  nan_if_bad_probability,
)
from jaxreg.augment._params import (
  AffineParams,
  CropParams,
  FlipParams,
  PolicyParams,
  ResizedCropParams,
)
from jaxreg.augment._policies import slot_matrix
from jaxreg.augment._policy_space import GEOMETRIC
from jaxreg.augment._resample import resample_box
from jaxreg.augment._target_base import IndexMap, PointMap, needed_image_size, register_targets
from jaxreg.augment._warp import check_matrix, nan_unless_finite, nearest_source, warp

_F32 = jnp.float32
# Pixels: the margin of `warp`'s nearest rule. A sample point on a pixel boundary, or this close
# before it, takes the pixel to the right or below, whatever the float32 rounding.
_TIE = 2.0**-10


def _check_axis(axis, op: str) -> int:
  if axis not in (0, 1) or isinstance(axis, bool):
    raise ValueError(f"{op}: `axis` of FlipParams must be 0 (up-down) or 1 (left-right), got "
                     f"{axis!r}.")
  return int(axis)


# --------------------------------------------------------------------------------------------
# The maps of the crops and flips
# --------------------------------------------------------------------------------------------


def _crop_points(params: CropParams, op: str) -> PointMap:
  # A window of the padded image: a shift by the padding minus the window's corner.
  size = check_size(params.size, op, "size")
  pad_h, pad_w = check_padding(params.padding, op)

  def forward(x, y):
    dx = pad_w - jnp.asarray(params.left).astype(x.dtype)
    dy = pad_h - jnp.asarray(params.top).astype(y.dtype)
    return x + dx, y + dy

  return PointMap(forward, size)


def _check_crop(params: CropParams, shape, op: str):
  """The window's size, the padding and the mode, checked against a mask of ``shape``."""
  h, w = check_size(params.size, op, "size")
  pad_h, pad_w = check_padding(params.padding, op)
  mode = _checks.check_choice(params.pad_mode, op, "pad_mode", choices=PAD_MODES)
  height, width = shape[0] + 2 * pad_h, shape[1] + 2 * pad_w
  if h > height or w > width:
    raise ValueError(f"{op}: crop `size` {(h, w)} is larger than the padded mask "
                     f"{(height, width)} (mask {tuple(shape[:2])}, padding {(pad_h, pad_w)}).")
  if (pad_h or pad_w) and mode != "constant" and 0 in shape[:2]:
    raise ValueError(f"{op}: `pad_mode`={mode!r} copies pixels of the mask, which has none "
                     f"(shape {tuple(shape)}).")
  return (h, w), (pad_h, pad_w), mode


def _crop_mask(params: CropParams, mask, fill, op: str):
  (h, w), (pad_h, pad_w), mode = _check_crop(params, mask.shape, op)
  if pad_h or pad_w:
    widths = ((pad_h, pad_h), (pad_w, pad_w)) + ((0, 0),) * (mask.ndim - 2)
    mask = (jnp.pad(mask, widths, constant_values=jnp.asarray(fill, mask.dtype))
            if mode == "constant" else jnp.pad(mask, widths, mode=mode))
  start = (params.top, params.left) + (0,) * (mask.ndim - 2)
  return lax.dynamic_slice(mask, start, (h, w, *mask.shape[2:]))


def _resized_crop_points(params: ResizedCropParams, op: str) -> PointMap:
  # The box [left, left + width] x [top, top + height] stretched onto the output canvas.
  out_h, out_w = check_size(params.size, op, "size")

  def forward(x, y):
    top, left, height, width = (jnp.asarray(v).astype(x.dtype) for v in (
        params.top, params.left, params.height, params.width))
    return (x - left) * (out_w / width), (y - top) * (out_h / height)

  return PointMap(forward, (out_h, out_w))


def _padded_index(index, pad: int, size: int, mode: str):
  """Input row (or column) ``index`` of a mask padded by ``pad`` in ``mode``, as `jnp.pad`
  fills it, and whether it is a pixel of the mask (not the constant fill)."""
  index = index - pad
  if mode == "edge":
    return jnp.clip(index, 0, size - 1), True
  if mode == "reflect":  # mirrored about the edge pixels: period 2 (size - 1)
    period = max(2 * (size - 1), 1)
    folded = jnp.mod(index, period)
    return jnp.where(folded < size, folded, period - folded), True
  return index, (index >= 0) & (index < size)


def _crop_index(params: CropParams, shape, op: str) -> IndexMap:
  size, (pad_h, pad_w), mode = _check_crop(params, shape, op)
  # `lax.dynamic_slice` keeps the window inside the padded mask: a corner past it is clamped.
  top = jnp.clip(params.top, 0, shape[0] + 2 * pad_h - size[0])
  left = jnp.clip(params.left, 0, shape[1] + 2 * pad_w - size[1])

  def source(rows, cols):
    rows, row_inside = _padded_index(rows + top, pad_h, shape[0], mode)
    cols, col_inside = _padded_index(cols + left, pad_w, shape[1], mode)
    return rows, cols, row_inside & col_inside

  return IndexMap(source, size)


def _nearest(start, length, out: int, size: int, index=None):
  """The input row (or column) under each output pixel's centre (of those in ``index``, or of
  all ``out``), and whether it is inside."""
  step = jnp.asarray(length, _F32) / out
  index = jnp.arange(out) if index is None else index
  centres = jnp.asarray(start, _F32) + (index.astype(_F32) + 0.5) * step
  index = jnp.floor(centres + _TIE)
  inside = (index >= 0) & (index < size)
  return jnp.where(inside, index, 0).astype(jnp.int32), inside


def _resized_crop_mask(params: ResizedCropParams, mask, fill, op: str):
  size = check_size(params.size, op, "size")
  if 0 in mask.shape[:2]:
    raise ValueError(f"{op}: `mask` has no pixels (shape {mask.shape}): there is nothing to "
                     "resample.")
  if jnp.issubdtype(mask.dtype, jnp.floating):  # as the image: `apply`'s resampling
    return resample_box(mask, params.top, params.left, params.height, params.width, size,
                        params.antialias, crop_first=params.crop_first)
  rows, row_inside = _nearest(params.top, params.height, size[0], mask.shape[0])
  cols, col_inside = _nearest(params.left, params.width, size[1], mask.shape[1])
  inside = (row_inside[:, None] & col_inside[None, :]).reshape(size + (1,) * (mask.ndim - 2))
  return jnp.where(inside, mask[rows][:, cols], jnp.asarray(fill, mask.dtype))


def _resized_crop_index(params: ResizedCropParams, shape, op: str) -> IndexMap:
  size = check_size(params.size, op, "size")

  def source(rows, cols):
    rows, row_inside = _nearest(params.top, params.height, size[0], shape[0], rows)
    cols, col_inside = _nearest(params.left, params.width, size[1], shape[1], cols)
    return rows, cols, row_inside & col_inside

  return IndexMap(source, size)


def _flip_points(params: FlipParams, op: str) -> PointMap:
  axis = _check_axis(params.axis, op)
  height, width = needed_image_size(params, op,
                                    "a flip of points needs (x goes to width - x)")

  def forward(x, y):
    if axis == 1:
      x = jnp.where(params.flip, width - x, x)
    else:
      y = jnp.where(params.flip, height - y, y)
    # A traced probability outside [0, 1]: NaN points, as the float image is NaN
    return (nan_if_bad_probability(params.probability, x),
            nan_if_bad_probability(params.probability, y))

  return PointMap(forward, (height, width))


def _flip_mask(params: FlipParams, mask, fill, op: str):
  axis = _check_axis(params.axis, op)
  flipped = _backend.flip(params.flip, mask, axis)  # as the image (uint8 masks, as uint8 images)
  if jnp.issubdtype(mask.dtype, jnp.floating):
    return nan_if_bad_probability(params.probability, flipped)
  return flipped


def _flip_index(params: FlipParams, shape, op: str) -> IndexMap:
  axis = _check_axis(params.axis, op)

  def source(rows, cols):
    if axis == 1:
      return rows, jnp.where(params.flip, shape[1] - 1 - cols, cols), True
    return jnp.where(params.flip, shape[0] - 1 - rows, rows), cols, True

  return IndexMap(source, tuple(shape[:2]))


# --------------------------------------------------------------------------------------------
# The maps of the affine warps and the policies
# --------------------------------------------------------------------------------------------


def _affine_forward(matrix, x, y) -> tuple[jax.Array, jax.Array]:
  """Input points to output points through the (2, 3) inverse ``matrix``: its inverse map,
  ``A^-1 (p - t)`` for ``matrix = [A | t]``, computed in the points' dtype."""
  m = matrix.astype(x.dtype)
  a, b, c, d = m[0, 0], m[0, 1], m[1, 0], m[1, 1]
  dx, dy = x - m[0, 2], y - m[1, 2]
  det = a * d - b * c
  return (d * dx - b * dy) / det, (a * dy - c * dx) / det


def _warp_mask(mask, matrix, interpolation: str, fill):
  """``mask`` (H, W) or (H, W, K) through ``matrix``: nearest for labels, as the image for
  float masks; pixels from outside the mask get ``fill``, in the mask's dtype."""
  labels = not jnp.issubdtype(mask.dtype, jnp.floating)
  image = mask[..., None] if mask.ndim == 2 else mask
  out = warp(image, matrix, "nearest" if labels else interpolation,
             jnp.asarray(fill, mask.dtype))
  return out[..., 0] if mask.ndim == 2 else out


def _affine_points(params: AffineParams, op: str) -> PointMap:
  matrix = check_matrix(params.matrix, op)
  canvas = needed_image_size(params, op, "is the output canvas, where boxes are clamped")
  return PointMap(lambda x, y: _affine_forward(matrix, x, y), canvas)


def _affine_mask(params: AffineParams, mask, fill, op: str):
  matrix = check_matrix(params.matrix, op)
  interpolation = check_interpolation(params.interpolation, op)
  # A non-finite matrix (a bad traced magnitude): a float mask all NaN, as the image.
  return nan_unless_finite(matrix, _warp_mask(mask, matrix, interpolation, fill))


def _affine_index(params: AffineParams, shape, op: str) -> IndexMap:
  matrix = check_matrix(params.matrix, op)
  check_interpolation(params.interpolation, op)
  return IndexMap(lambda rows, cols: nearest_source(matrix, *shape[:2], rows, cols),
                  tuple(shape[:2]))


def _check_slots(params: PolicyParams, op: str) -> tuple[jax.Array, jax.Array]:
  ops, magnitudes = jnp.asarray(params.ops), jnp.asarray(params.magnitudes)
  if ops.ndim != 1 or ops.shape != magnitudes.shape:
    raise ValueError(f"{op}: `params` (PolicyParams) must hold one op and one magnitude per "
                     f"slot, `ops` and `magnitudes` of one shape (slots,), got {ops.shape} and "
                     f"{magnitudes.shape}; for a batch of sets use jax.vmap.")
  if not jnp.issubdtype(ops.dtype, jnp.integer):
    raise TypeError(f"{op}: `params` (PolicyParams) must hold integer `ops` (indices into "
                    f"PolicyParams.OPS), got dtype {ops.dtype}.")
  return ops, magnitudes


def _policy_points(params: PolicyParams, op: str) -> list[PointMap]:
  ops, magnitudes = _check_slots(params, op)
  canvas = needed_image_size(params, op, "the rotation's centre and the output canvas come from")
  # A non-finite magnitude makes the float image NaN: the points too, hence invalid.
  finite = jnp.isfinite(magnitudes).all()

  def step(op_i, value) -> PointMap:
    def forward(x, y):
      u, v = _affine_forward(slot_matrix(op_i, value, *canvas), x, y)
      return _checks.nan_unless(finite, u), _checks.nan_unless(finite, v)

    return PointMap(forward, canvas, (op_i >= GEOMETRIC[0]) & (op_i <= GEOMETRIC[-1]))

  return [step(op_i, value) for op_i, value in zip(ops, magnitudes, strict=True)]


def _policy_mask(params: PolicyParams, mask, fill, op: str):
  ops, magnitudes = _check_slots(params, op)
  interpolation = check_interpolation(params.interpolation, op)
  height, width = mask.shape[:2]
  for op_i, value in zip(ops, magnitudes, strict=True):
    mask = _warp_mask(mask, slot_matrix(op_i, value, height, width), interpolation, fill)
  if jnp.issubdtype(mask.dtype, jnp.floating):
    mask = _checks.nan_unless(jnp.isfinite(magnitudes).all(), mask)
  return mask


def _policy_index(params: PolicyParams, shape, op: str) -> IndexMap:
  ops, magnitudes = _check_slots(params, op)
  check_interpolation(params.interpolation, op)
  height, width = shape[:2]

  def source(rows, cols):
    inside = True
    for op_i, value in reversed(list(zip(ops, magnitudes, strict=True))):  # the last slot first
      rows, cols, ok = nearest_source(slot_matrix(op_i, value, height, width), height, width,
                                      rows, cols)
      inside = inside & ok
    return rows, cols, inside

  return IndexMap(source, (height, width))


register_targets(CropParams, _crop_points, _crop_mask, _crop_index)
register_targets(ResizedCropParams, _resized_crop_points, _resized_crop_mask, _resized_crop_index)
register_targets(FlipParams, _flip_points, _flip_mask, _flip_index)
register_targets(AffineParams, _affine_points, _affine_mask, _affine_index)
register_targets(PolicyParams, _policy_points, _policy_mask, _policy_index)
