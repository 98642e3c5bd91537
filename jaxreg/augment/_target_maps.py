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
from jaxreg.augment._targets import PointMap, needed_image_size, register_targets
from jaxreg.augment._warp import check_matrix, nan_unless_finite, warp

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


def _crop_mask(params: CropParams, mask, fill, op: str):
  h, w = check_size(params.size, op, "size")
  pad_h, pad_w = check_padding(params.padding, op)
  mode = _checks.check_choice(params.pad_mode, op, "pad_mode", choices=PAD_MODES)
  height, width = mask.shape[0] + 2 * pad_h, mask.shape[1] + 2 * pad_w
  if h > height or w > width:
    raise ValueError(f"{op}: crop `size` {(h, w)} is larger than the padded mask "
                     f"{(height, width)} (mask {mask.shape[:2]}, padding {(pad_h, pad_w)}).")
  if (pad_h or pad_w) and mode != "constant" and 0 in mask.shape[:2]:
    raise ValueError(f"{op}: `pad_mode`={mode!r} copies pixels of the mask, which has none "
                     f"(shape {mask.shape}).")
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


def _nearest(start, length, out: int, size: int):
  """The input row (or column) under each output pixel's centre, and whether it is inside."""
  step = jnp.asarray(length, _F32) / out
  centres = jnp.asarray(start, _F32) + (jnp.arange(out, dtype=_F32) + 0.5) * step
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
  if jnp.issubdtype(mask.dtype, jnp.floating):  # as the image
    return nan_if_bad_probability(params.probability, _backend.flip(params.flip, mask, axis))
  return jnp.where(params.flip, jnp.flip(mask, axis), mask)

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


register_targets(CropParams, _crop_points, _crop_mask)
register_targets(ResizedCropParams, _resized_crop_points, _resized_crop_mask)
register_targets(FlipParams, _flip_points, _flip_mask)
register_targets(AffineParams, _affine_points, _affine_mask)
register_targets(PolicyParams, _policy_points, _policy_mask)
