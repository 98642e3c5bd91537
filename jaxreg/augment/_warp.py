"""Affine warps: the (2, 3) inverse matrices of torchvision's parametrization, and `warp`.

Every geometric op is an inverse matrix (`affine_inverse_matrix`) and one gather-based
resampling (`warp`); a policy that picks one geometric op per example builds each example's
matrix and resamples once. Design: docs/design/geometric.md.

Coordinates (Pillow's, which torchvision's tensor kernels reproduce with
``align_corners=False``): an image of H rows and W columns covers the rectangle
``[0, W] x [0, H]``, x to the right and y downwards. Pixel ``(row i, column j)`` is the unit
square ``[j, j + 1) x [i, i + 1)``, its centre at ``(j + 0.5, i + 0.5)``. A ``center`` is a
point ``(x, y)`` in these coordinates; the default, ``(W / 2, H / 2)``, is the middle of the
image (the centre of a pixel only for odd sizes), as torchvision computes it.

Inverse matrix: output pixel ``(i, j)`` shows the input at
``(u, v) = M @ (j + 0.5, i + 0.5, 1)``; ``Image.transform(size, Image.AFFINE, data=M.ravel())``
in Pillow takes the same matrix.

Sampling:

* ``"nearest"``: the input pixel containing ``(u, v)``, ``(floor(v), floor(u))``, as Pillow.
  A sample point on a pixel boundary, or within 1/1024 pixel before it, takes the pixel below
  or to the right: ties are frequent (RandAugment's shear 0.2 puts every fifth row on
  boundaries) and the margin makes them independent of float32 rounding. Pillow's nearest runs
  in 16.16 fixed point and torchvision's tensor kernel rounds half to even, so at ties either
  may take the other pixel; elsewhere all three agree.
* ``"bilinear"``: a point inside the image, ``0 <= u < W`` and ``0 <= v < H``, blends the four
  pixel centres around it, the edge rows and columns repeated outside; Pillow's rule.
  torchvision's tensor kernel differs in the outer half pixel, which it blends with the fill.
* A sample point outside the image gives ``fill``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxreg import _backend, _checks
from jaxreg.augment._dtypes import compute_dtype
from jaxreg.augment._image_checks import check_xy

_F32 = jnp.float32
_TIE = 2.0**-10  # pixels: the margin of the nearest tie rule


# --------------------------------------------------------------------------------------------
# Matrices
# --------------------------------------------------------------------------------------------


@jax.jit
def _cos_sin_degrees(angle) -> tuple[jax.Array, jax.Array]:
  """cos and sin of ``angle`` degrees, exact at multiples of 90 (0, 1 or -1, not 6e-8)."""
  angle = jnp.asarray(angle, _F32)
  quarter = jnp.round(angle / 90)
  rest = jnp.deg2rad(angle - 90 * quarter)  # in [-45, 45] degrees
  c, s = jnp.cos(rest), jnp.sin(rest)
  turn = jnp.mod(quarter, 4)  # the number of quarter turns, 0..3
  cos = jnp.where(turn == 0, c, jnp.where(turn == 1, -s, jnp.where(turn == 2, -c, s)))
  sin = jnp.where(turn == 0, s, jnp.where(turn == 1, c, jnp.where(turn == 2, -s, -c)))
  return cos, sin


@functools.partial(jax.jit, static_argnames=("height", "width", "center"))
def _inverse_matrix(height: int, width: int, cos_r, sin_r, tan_x, tan_y, scale, tx, ty,
                    center) -> jax.Array:
  """The (2, 3) output -> input matrix of torchvision's ``T C R S SHy SHx C^-1``.

  ``R S SHy SHx = s [[a, b], [c, d]]`` with unit determinant; written with the tangents of the
  shears so that `shear_x` can pass its factor itself rather than ``tan(atan(factor))``.
  """
  a = cos_r + sin_r * tan_y  # cos(r - sy) / cos(sy)
  c = sin_r - cos_r * tan_y  # sin(r - sy) / cos(sy)
  b = -(a * tan_x + sin_r)
  d = cos_r - c * tan_x
  scale = jnp.asarray(scale, _F32)
  m00, m01, m10, m11 = d / scale, -b / scale, -c / scale, a / scale
  cx, cy = (width / 2, height / 2) if center is None else center
  px, py = cx + jnp.asarray(tx, _F32), cy + jnp.asarray(ty, _F32)
  return jnp.stack([jnp.stack([m00, m01, cx - m00 * px - m01 * py]),
                    jnp.stack([m10, m11, cy - m10 * px - m11 * py])]).astype(_F32)


def affine_inverse_matrix(height: int, width: int, *, angle: jax.typing.ArrayLike = 0.0,
                          translate=(0.0, 0.0), scale: jax.typing.ArrayLike = 1.0,
                          shear=(0.0, 0.0), center: Sequence[float] | None = None) -> jax.Array:
  """The (2, 3) float32 matrix taking an output point to the input point `affine` samples.

  torchvision's ``_get_inverse_affine_matrix`` in absolute coordinates (see the module
  docstring): ``M = C (R S SHy SHx)^-1 C^-1 T^-1``. ``angle``, ``translate``, ``scale`` and
  ``shear`` may be traced; ``height``, ``width`` and ``center`` are static. No argument checks:
  the public ops check, then call this.
  """
  cos_r, sin_r = _cos_sin_degrees(angle)
  sx, sy = check_xy(shear, "affine_inverse_matrix", "shear", scalar_is_first=True)
  tan_x = jnp.tan(jnp.deg2rad(jnp.asarray(sx, _F32)))
  tan_y = jnp.tan(jnp.deg2rad(jnp.asarray(sy, _F32)))
  tx, ty = check_xy(translate, "affine_inverse_matrix", "translate")
  return _inverse_matrix(height, width, cos_r, sin_r, tan_x, tan_y, scale, tx, ty, center)


def rotate_matrix(height: int, width: int, angle, center=None) -> jax.Array:
  """`rotate`'s inverse matrix: counter-clockwise by ``angle`` degrees about ``center``."""
  return affine_inverse_matrix(height, width, angle=-jnp.asarray(angle, _F32), center=center)


def translate_matrix(height: int, width: int, tx, ty) -> jax.Array:
  """`translate_x` / `translate_y`'s inverse matrix (the shifts already whole pixels)."""
  return affine_inverse_matrix(height, width, translate=(tx, ty))


def shear_matrix(height: int, width: int, factor_x, factor_y) -> jax.Array:
  """`shear_x` / `shear_y`'s inverse matrix: shear tangents, about the corner (0, 0)."""
  one, zero = jnp.ones((), _F32), jnp.zeros((), _F32)
  return _inverse_matrix(height, width, one, zero, jnp.asarray(factor_x, _F32),
                         jnp.asarray(factor_y, _F32), one, zero, zero, (0.0, 0.0))


# --------------------------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------------------------


def sample_points(matrix, height: int, width: int, shift: float = 0.0, rows=None, cols=None):
  """(u, v): the input point each output pixel centre maps to, plus ``shift``; for the pixels
  in ``rows`` and ``cols`` (int arrays that broadcast together), or every pixel, (H, W)."""
  cols = jnp.arange(width) if cols is None else cols
  rows = jnp.arange(height)[:, None] if rows is None else rows
  x, y = cols.astype(_F32) + 0.5, rows.astype(_F32) + 0.5
  # The shift joins the constant terms once, not each of the H x W points.
  u = matrix[0, 0] * x + matrix[0, 1] * y + (matrix[0, 2] + shift)
  v = matrix[1, 0] * x + matrix[1, 1] * y + (matrix[1, 2] + shift)
  return u, v


def nearest_source(matrix, height: int, width: int, rows=None, cols=None):
  """``(row, col, inside)``: the input pixel the ``"nearest"`` rule takes for each output
  pixel (in ``rows`` and ``cols``, or all of an H x W output), sent to (0, 0) where its sample
  point lies outside the ``height`` x ``width`` input (``inside`` False, also for NaN)."""
  # Ties (and points up to _TIE before a boundary) go right / down; see the module docstring.
  u, v = sample_points(matrix, height, width, _TIE, rows, cols)
  col, row = jnp.floor(u), jnp.floor(v)
  inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)  # False for NaN
  # Outside points are sent to pixel (0, 0) before the integer conversion (NaN has none).
  return (jnp.where(inside, row, 0).astype(jnp.int32),
          jnp.where(inside, col, 0).astype(jnp.int32), inside)


@functools.partial(jax.jit, static_argnames="interpolation")
def warp(image, matrix, interpolation: str, fill):
  """``image`` resampled through the (2, 3) inverse ``matrix`` by the module docstring's
  coordinates and sampling rules, unchecked: for callers that checked their arguments
  (``fill`` a float32 array)."""
  height, width, channels = image.shape
  # Indices are in range by construction (clipped), so the gathers do no bounds handling.
  flat = image.reshape(height * width, channels)
  if interpolation == "nearest":
    row, col, inside = nearest_source(matrix, height, width)
    out = _backend.gather_by_pixel(flat, row * width + col)
    return jnp.where(inside[..., None], out, fill.astype(image.dtype))
  dtype = compute_dtype(image)
  u, v = sample_points(matrix, height, width)
  inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
  xs, ys = jnp.where(inside, u, 0.5) - 0.5, jnp.where(inside, v, 0.5) - 0.5
  x0, y0 = jnp.floor(xs), jnp.floor(ys)  # -1 .. W-1 and -1 .. H-1 inside
  dx, dy = (xs - x0).astype(dtype)[..., None], (ys - y0).astype(dtype)[..., None]
  c0 = jnp.maximum(x0, 0).astype(jnp.int32)
  c1 = jnp.minimum(x0 + 1, width - 1).astype(jnp.int32)
  r0 = jnp.maximum(y0, 0).astype(jnp.int32)
  r1 = jnp.minimum(y0 + 1, height - 1).astype(jnp.int32)
  flat = flat.astype(dtype)
  # Pillow's form, a + (b - a) d: along x in the two rows, then along y.
  top_left, top_right, bottom_left, bottom_right = (
      _backend.gather_pixels(flat, r * width + c) for r, c in ((r0, c0), (r0, c1), (r1, c0),
                                                                (r1, c1)))
  top = top_left + (top_right - top_left) * dx
  bottom = bottom_left + (bottom_right - bottom_left) * dx
  out = top + (bottom - top) * dy
  return jnp.where(inside[..., None], out, fill.astype(dtype)).astype(image.dtype)


def check_matrix(matrix, op: str) -> jax.Array:
  """A (2, 3) inverse matrix, as float32 (concrete or traced)."""
  if jnp.shape(matrix) != (2, 3):
    raise ValueError(f"{op}: `matrix` must have shape (2, 3), got {jnp.shape(matrix)}.")
  return jnp.asarray(matrix, _F32)


def nan_unless_finite(matrix, out):
  """``out``, or all NaN where ``matrix`` is not finite (a float ``out``; others pass).

  A bad traced magnitude makes its op's matrix NaN when drawn; this turns the warp of it NaN,
  as the op does, where the warp alone would give the fill. A concrete matrix is checked now.
  """
  if not jnp.issubdtype(out.dtype, jnp.floating):
    return out
  if not _checks.is_traced(matrix):
    return out if bool(jnp.isfinite(matrix).all()) else jnp.full_like(out, jnp.nan)
  return _checks.nan_unless(jnp.isfinite(matrix).all(), out)
