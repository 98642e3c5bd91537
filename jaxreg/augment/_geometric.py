"""Geometric ops: affine warps (rotate, translate, shear, scale) with torchvision's parameters.

Every op here is a (2, 3) inverse matrix (`affine_inverse_matrix`) and one gather-based
resampling (`warp_affine`); a policy that picks one geometric op per example builds each
example's matrix and resamples once.

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

Magnitudes (``angle``, ``translate``, ``scale``, ``shear``, ``pixels``, ``factor``) may be traced.
A concrete one that is not finite or out of range raises; a traced one that is NaN, infinite or
out of range at run time makes the whole output NaN (a NaN sample point would otherwise
silently give the fill).

Signs (torchvision's):

* `affine`'s ``angle`` turns the content clockwise on screen (y points down) for a positive
  angle; `rotate`'s ``angle`` turns it counter-clockwise, as Pillow's ``Image.rotate``:
  ``rotate(image, a)`` is ``affine(image, angle=-a)``.
* ``translate = (tx, ty)`` moves the content ``tx`` pixels right and ``ty`` pixels down.
* ``shear = (sx, sy)`` in degrees: the forward map about ``center`` is
  ``R(angle) S(scale) SHy(sy) SHx(sx)`` with ``SHx(sx) = [[1, -tan sx], [0, 1]]`` and
  ``SHy(sy) = [[1, 0], [-tan sy, 1]]``; followed by the translation.
* `shear_x` ``(factor)``: output ``(x, y)`` shows input ``(x + factor y, y)``, each row moves
  left by ``factor`` times its y (PIL's AutoAugment ``(1, factor, 0, 0, 1, 0)``); `shear_y`:
  output ``(x, y)`` shows input ``(x, y + factor x)``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks
from jaxreg.augment._color_space import compute_dtype
from jaxreg.augment._image_checks import check_image, nan_if_bad_magnitude

Interpolation = Literal["nearest", "bilinear"]
INTERPOLATIONS = ("nearest", "bilinear")
_F32 = jnp.float32
_TIE = 2.0**-10  # pixels: the margin of the nearest tie rule


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _check_interpolation(interpolation, op: str) -> str:
  if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
    raise ValueError(f"{op}: `interpolation` must be one of {INTERPOLATIONS}, got "
                     f"{interpolation!r}.")
  return interpolation


def _check_fill(fill, channels: int, op: str) -> jax.Array:
  """A real scalar or one value per channel (length 1 or ``channels``), as a float32 array."""
  expected = f"a real number or a sequence of 1 or {channels} (one per channel)"
  if isinstance(fill, (str, bytes, bool, np.bool_)) or fill is None:
    raise TypeError(f"{op}: `fill` must be {expected}, got {fill!r}.")
  traced = any(_checks.is_traced(leaf) for leaf in jax.tree.leaves(fill))
  try:
    array = jnp.asarray(fill) if traced else np.asarray(fill)
  except (TypeError, ValueError) as err:
    raise TypeError(f"{op}: `fill` must be {expected}, got {fill!r}.") from err
  if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
    raise TypeError(f"{op}: `fill` must be {expected}, got {fill!r} of dtype {array.dtype}.")
  if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, channels)):
    raise ValueError(f"{op}: `fill` must be {expected}, got shape {array.shape} for an image with "
                     f"{channels} channels.")
  if not traced and not np.all(np.isfinite(array.astype(np.float64))):
    raise ValueError(f"{op}: `fill` must be finite ({expected}), got {fill!r}.")
  return jnp.asarray(array, _F32)


def _check_scalar(value, op: str, name: str, **bounds) -> jax.Array:
  """A real scalar, finite (and within ``bounds``) when known at trace time; float32."""
  _checks.check_interval(value, op, name, **bounds)
  return jnp.asarray(value, _F32)


def _check_pair(value, op: str, name: str, *, scalar_is_first: bool = False) -> tuple:
  """``(a, b)``: a 2-sequence of real scalars or a shape-(2,) array, either possibly traced.

  ``scalar_is_first``: a lone scalar ``s`` means ``(s, 0)`` (torchvision's ``shear``).
  """
  expected = "an (x, y) pair of real numbers"
  if isinstance(value, (jax.Array, np.ndarray)):
    if value.ndim == 0 and scalar_is_first:
      return value, 0.0
    if value.shape != (2,):
      raise ValueError(f"{op}: `{name}` must be {expected}, got an array of shape {value.shape}.")
    if not _checks.is_traced(value) and not np.all(np.isfinite(np.asarray(value, np.float64))):
      raise ValueError(f"{op}: `{name}` must be finite, got {value!r}.")
    return value[0], value[1]
  if scalar_is_first and isinstance(value, numbers.Real) and not isinstance(value, bool):
    return value, 0.0
  if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.")
  if len(value) != 2:
    raise ValueError(f"{op}: `{name}` must be {expected}, got {value!r} ({len(value)} items).")
  return tuple(value)


def _check_shear(shear, op: str) -> tuple[jax.Array, jax.Array]:
  sx, sy = _check_pair(shear, op, "shear", scalar_is_first=True)
  checked = []
  for part in (sx, sy):
    concrete = _checks.check_interval(part, op, "shear")
    if concrete is not None and not abs(concrete) < 90:
      raise ValueError(f"{op}: `shear` angles must lie strictly between -90 and 90 degrees "
                       f"(tan(90) is infinite), got {shear!r}.")
    checked.append(jnp.asarray(part, _F32))
  return tuple(checked)


def _check_center(center, op: str) -> tuple[float, float] | None:
  """None, or a static ``(x, y)`` pair of finite Python numbers."""
  if center is None:
    return None
  x, y = _check_pair(center, op, "center")
  result = []
  for part in (x, y):
    concrete = _checks.check_interval(part, op, "center")
    if concrete is None:
      raise TypeError(f"{op}: `center` is static: give Python numbers, got a traced value.")
    result.append(concrete)
  return tuple(result)


def _check_common(image, interpolation, fill, op: str):
  image = check_image(image, op, keyed=False)
  interpolation = _check_interpolation(interpolation, op)
  return image, interpolation, _check_fill(fill, image.shape[-1], op)


# --------------------------------------------------------------------------------------------
# Matrices
# --------------------------------------------------------------------------------------------


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
  sx, sy = _check_pair(shear, "affine_inverse_matrix", "shear", scalar_is_first=True)
  tan_x = jnp.tan(jnp.deg2rad(jnp.asarray(sx, _F32)))
  tan_y = jnp.tan(jnp.deg2rad(jnp.asarray(sy, _F32)))
  tx, ty = _check_pair(translate, "affine_inverse_matrix", "translate")
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


def _sample_points(matrix, height: int, width: int, shift: float = 0.0):
  """(u, v), each (H, W): the input point each output pixel centre maps to, plus ``shift``."""
  x = jnp.arange(width, dtype=_F32) + 0.5
  y = jnp.arange(height, dtype=_F32)[:, None] + 0.5
  # The shift joins the constant terms once, not each of the H x W points.
  u = matrix[0, 0] * x + matrix[0, 1] * y + (matrix[0, 2] + shift)
  v = matrix[1, 0] * x + matrix[1, 1] * y + (matrix[1, 2] + shift)
  return u, v


def _gather(flat, rows, cols, width: int):
  # Indices are in range by construction (clipped), so no bounds handling in the gather.
  return flat.at[rows * width + cols].get(mode="promise_in_bounds")


def _warp(image, matrix, interpolation: str, fill):
  height, width, channels = image.shape
  flat = image.reshape(height * width, channels)
  if interpolation == "nearest":
    # Ties (and points up to _TIE before a boundary) go right / down; see the module docstring.
    u, v = _sample_points(matrix, height, width, _TIE)
    col, row = jnp.floor(u), jnp.floor(v)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)  # False for NaN
    # Outside points are sent to pixel (0, 0) before the integer conversion (NaN has none).
    row = jnp.where(inside, row, 0).astype(jnp.int32)
    col = jnp.where(inside, col, 0).astype(jnp.int32)
    out = _gather(flat, row, col, width)
    return jnp.where(inside[..., None], out, fill.astype(image.dtype))
  dtype = compute_dtype(image)
  u, v = _sample_points(matrix, height, width)
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
  top_left, top_right = _gather(flat, r0, c0, width), _gather(flat, r0, c1, width)
  bottom_left, bottom_right = _gather(flat, r1, c0, width), _gather(flat, r1, c1, width)
  top = top_left + (top_right - top_left) * dx
  bottom = bottom_left + (bottom_right - bottom_left) * dx
  out = top + (bottom - top) * dy
  return jnp.where(inside[..., None], out, fill.astype(dtype)).astype(image.dtype)


def warp_affine(image: jax.typing.ArrayLike, matrix: jax.typing.ArrayLike, *,
                interpolation: Interpolation = "nearest",
                fill: float | Sequence[float] = 0.0) -> jax.Array:
  """Resamples ``image`` through the (2, 3) output -> input ``matrix``: one gather.

  The building block of every op here (see the module docstring for the coordinates and
  the sampling rules); ``matrix`` may be traced, e.g. one per example under `vmap`.

  Args:
    image: HWC float image.
    matrix: (2, 3) inverse matrix (output point -> input point), as `affine_inverse_matrix`
      returns.
    interpolation: ``"nearest"`` or ``"bilinear"``.
    fill: value of output pixels whose sample point lies outside the image: a real number or
      one per channel.

  Returns:
    The warped image, same shape and dtype (bilinear half precision is computed in float32).

  Raises:
    ValueError: a non-HWC image, a matrix not of shape (2, 3), an unknown interpolation, a
      fill of the wrong length or not finite.
    TypeError: a non-float image or a non-real fill.
  """
  op = "warp_affine"
  image, interpolation, fill = _check_common(image, interpolation, fill, op)
  if jnp.shape(matrix) != (2, 3):
    raise ValueError(f"{op}: `matrix` must have shape (2, 3), got {jnp.shape(matrix)}.")
  return _warp(image, jnp.asarray(matrix, _F32), interpolation, fill)


# --------------------------------------------------------------------------------------------
# Public ops
# --------------------------------------------------------------------------------------------


def affine(image: jax.typing.ArrayLike, *, angle: jax.typing.ArrayLike = 0.0,
           translate: Sequence[jax.typing.ArrayLike] | jax.typing.ArrayLike = (0.0, 0.0),
           scale: jax.typing.ArrayLike = 1.0,
           shear: Sequence[jax.typing.ArrayLike] | jax.typing.ArrayLike = (0.0, 0.0),
           center: Sequence[float] | None = None, interpolation: Interpolation = "nearest",
           fill: float | Sequence[float] = 0.0) -> jax.Array:
  """Rotates, scales, shears and translates an image about ``center``, as torchvision's ``affine``.

  The content moves by the forward map ``T C R(angle) S(scale) SHy(sy) SHx(sx) C^-1``
  (torchvision's parametrization; matrices in the module docstring), and each output pixel
  samples the input through its inverse, once. Matches
  ``torchvision.transforms.v2.functional.affine`` on PIL images (which call Pillow's
  ``Image.transform``): nearest exactly, up to sample points lying on a pixel boundary,
  bilinear up to rounding. Output pixels whose sample point lies outside the image get
  ``fill``.

  Signs: a positive ``angle`` turns the content **clockwise** on screen (torchvision's
  ``affine``; `rotate` and Pillow's ``Image.rotate`` count counter-clockwise); ``translate``
  moves it right and down; ``scale > 1`` enlarges it.

  Args:
    image: HWC float image.
    angle: rotation in degrees, clockwise; any finite real, may be traced (under `vmap`, one per
      example).
    translate: ``(tx, ty)`` in pixels, may be fractional: a pair of reals or a shape-(2,) array,
      either may be traced.
    scale: positive scale factor, may be traced.
    shear: ``(sx, sy)`` in degrees, each strictly between -90 and 90 (a lone number is
      ``(sx, 0)``, as torchvision); may be traced.
    center: ``(x, y)``, the fixed point of rotation, scale and shear, in pixel coordinates with
      ``(0, 0)`` the top-left corner of the top-left pixel; static Python numbers. Default: the
      middle of the image, ``(W / 2, H / 2)``.
    interpolation: ``"nearest"`` (torchvision's default) or ``"bilinear"``.
    fill: value of pixels mapped from outside the image: a real number, or one per channel.

  Returns:
    The transformed image, same shape and dtype (bilinear half precision is computed in
    float32 and rounded once).

  Raises:
    ValueError: a non-HWC image; an unknown ``interpolation``; a non-finite concrete
      ``angle``, ``translate``, ``scale`` or ``shear``; ``scale <= 0``; ``|shear| >= 90``;
      ``translate``/``shear``/``center`` not pairs; a ``fill`` of the wrong length or not
      finite.
    TypeError: a non-float image; non-real arguments; a traced ``center``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.zeros((3, 3, 1)).at[1, 2, 0].set(1.0)  # a dot right of the middle
    >>> jr.augment.affine(image, angle=90.0)[..., 0]  # clockwise: the dot goes below it
    Array([[0., 0., 0.],
           [0., 0., 0.],
           [0., 1., 0.]], dtype=float32)
  """
  op = "affine"
  image, interpolation, fill = _check_common(image, interpolation, fill, op)
  angle = _check_scalar(angle, op, "angle")
  tx, ty = (_check_scalar(t, op, "translate") for t in _check_pair(translate, op, "translate"))
  scale = _check_scalar(scale, op, "scale", lo=0.0, lo_open=True)
  sx, sy = _check_shear(shear, op)
  center = _check_center(center, op)
  height, width = image.shape[:2]
  matrix = affine_inverse_matrix(height, width, angle=angle, translate=(tx, ty), scale=scale,
                                 shear=(sx, sy), center=center)
  out = _warp(image, matrix, interpolation, fill)
  for value in (angle, tx, ty):
    out = nan_if_bad_magnitude(value, out)
  out = nan_if_bad_magnitude(scale, out, lo=0.0, open_interval=True)
  for value in (sx, sy):
    out = nan_if_bad_magnitude(value, out, lo=-90.0, hi=90.0, open_interval=True)
  return out


def rotate(image: jax.typing.ArrayLike, angle: jax.typing.ArrayLike, *,
           center: Sequence[float] | None = None, interpolation: Interpolation = "nearest",
           fill: float | Sequence[float] = 0.0) -> jax.Array:
  """Rotates the image counter-clockwise by ``angle`` degrees about ``center``; same size.

  torchvision's ``rotate`` with ``expand=False`` and Pillow's ``Image.rotate``: the corners
  that leave the frame are cut off and the uncovered area gets ``fill``. ``rotate(image, a)``
  is ``affine(image, angle=-a)``. AutoAugment / RandAugment's ``Rotate`` op.

  Args:
    image: HWC float image.
    angle: degrees, counter-clockwise on screen; any finite real, may be traced.
    center: ``(x, y)`` in pixel coordinates (``(0, 0)`` is the top-left corner of the image);
      static Python numbers. Default: the middle of the image, ``(W / 2, H / 2)``.
    interpolation: ``"nearest"`` or ``"bilinear"``.
    fill: value of uncovered pixels: a real number, or one per channel.

  Returns:
    The rotated image, same shape and dtype.

  Raises:
    ValueError: a non-HWC image; an unknown ``interpolation``; a non-finite concrete ``angle``;
      a ``center`` that is not a pair; a ``fill`` of the wrong length or not finite.
    TypeError: a non-float image; a non-real ``angle``; a traced ``center``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.zeros((3, 3, 1)).at[1, 2, 0].set(1.0)  # a dot right of the middle
    >>> jr.augment.rotate(image, 90.0)[..., 0]  # counter-clockwise: the dot goes above it
    Array([[0., 1., 0.],
           [0., 0., 0.],
           [0., 0., 0.]], dtype=float32)
  """
  op = "rotate"
  image, interpolation, fill = _check_common(image, interpolation, fill, op)
  angle = _check_scalar(angle, op, "angle")
  center = _check_center(center, op)
  out = _warp(image, rotate_matrix(*image.shape[:2], angle, center), interpolation, fill)
  return nan_if_bad_magnitude(angle, out)


def _whole_pixels(pixels, op: str) -> jax.Array:
  # Python's int(): toward zero, as torchvision's policies pass translate=[int(magnitude), 0].
  return jnp.trunc(_check_scalar(pixels, op, "pixels"))


def translate_x(image: jax.typing.ArrayLike, pixels: jax.typing.ArrayLike, *,
                interpolation: Interpolation = "nearest",
                fill: float | Sequence[float] = 0.0) -> jax.Array:
  """Shifts the content ``pixels`` to the right (left if negative); AutoAugment's ``TranslateX``.

  ``affine(image, translate=(int(pixels), 0))`` as torchvision's AutoAugment and RandAugment
  apply it: ``pixels`` is truncated toward zero (``2.7`` shifts by 2, ``-2.7`` by -2). The
  uncovered columns get ``fill``.

  Args:
    image: HWC float image.
    pixels: the shift, a finite real, may be traced.
    interpolation: ``"nearest"`` or ``"bilinear"`` (the same for a whole-pixel shift).
    fill: value of uncovered pixels: a real number, or one per channel.

  Returns:
    The shifted image, same shape and dtype.

  Raises:
    ValueError: a non-HWC image; an unknown ``interpolation``; a non-finite concrete
      ``pixels``; a ``fill`` of the wrong length or not finite.
    TypeError: a non-float image; a non-real ``pixels``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.translate_x(jnp.arange(1.0, 5.0).reshape(1, 4, 1), 1.9)[..., 0]
    Array([[0., 1., 2., 3.]], dtype=float32)
  """
  op = "translate_x"
  image, interpolation, fill = _check_common(image, interpolation, fill, op)
  shift = _whole_pixels(pixels, op)
  out = _warp(image, translate_matrix(*image.shape[:2], shift, 0.0), interpolation, fill)
  return nan_if_bad_magnitude(shift, out)


def translate_y(image: jax.typing.ArrayLike, pixels: jax.typing.ArrayLike, *,
                interpolation: Interpolation = "nearest",
                fill: float | Sequence[float] = 0.0) -> jax.Array:
  """Shifts the content ``pixels`` down (up if negative); AutoAugment's ``TranslateY``.

  ``affine(image, translate=(0, int(pixels)))`` as torchvision's AutoAugment and RandAugment
  apply it: ``pixels`` is truncated toward zero. The uncovered rows get ``fill``.

  Args:
    image: HWC float image.
    pixels: the shift, a finite real, may be traced.
    interpolation: ``"nearest"`` or ``"bilinear"`` (the same for a whole-pixel shift).
    fill: value of uncovered pixels: a real number, or one per channel.

  Returns:
    The shifted image, same shape and dtype.

  Raises:
    ValueError: a non-HWC image; an unknown ``interpolation``; a non-finite concrete
      ``pixels``; a ``fill`` of the wrong length or not finite.
    TypeError: a non-float image; a non-real ``pixels``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.translate_y(jnp.arange(1.0, 4.0).reshape(3, 1, 1), -1)[..., 0, 0]
    Array([2., 3., 0.], dtype=float32)
  """
  op = "translate_y"
  image, interpolation, fill = _check_common(image, interpolation, fill, op)
  shift = _whole_pixels(pixels, op)
  out = _warp(image, translate_matrix(*image.shape[:2], 0.0, shift), interpolation, fill)
  return nan_if_bad_magnitude(shift, out)


def shear_x(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike, *,
            interpolation: Interpolation = "nearest",
            fill: float | Sequence[float] = 0.0) -> jax.Array:
  """Shears along x about the top-left corner: output ``(x, y)`` shows input ``(x + factor y, y)``.

  AutoAugment's ``ShearX`` as torchvision applies it:
  ``affine(image, shear=(degrees(atan(factor)), 0), center=(0, 0))``, which is PIL's
  ``(1, factor, 0, 0, 1, 0)`` transform of the original AutoAugment. Each row moves left by
  ``factor`` times the y of its centre; uncovered pixels get ``fill``.

  Args:
    image: HWC float image.
    factor: the shear, ``tan`` of the shear angle; any finite real, may be traced (the policies
      use magnitudes up to 0.3).
    interpolation: ``"nearest"`` or ``"bilinear"``.
    fill: value of uncovered pixels: a real number, or one per channel.

  Returns:
    The sheared image, same shape and dtype.

  Raises:
    ValueError: a non-HWC image; an unknown ``interpolation``; a non-finite concrete
      ``factor``; a ``fill`` of the wrong length or not finite.
    TypeError: a non-float image; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.tile(jnp.arange(1.0, 5.0), (2, 1))[..., None]
    >>> jr.augment.shear_x(image, 0.5)[..., 0]  # rows move left by 0.25 and 0.75 pixels
    Array([[1., 2., 3., 4.],
           [2., 3., 4., 0.]], dtype=float32)
  """
  op = "shear_x"
  image, interpolation, fill = _check_common(image, interpolation, fill, op)
  factor = _check_scalar(factor, op, "factor")
  out = _warp(image, shear_matrix(*image.shape[:2], factor, 0.0), interpolation, fill)
  return nan_if_bad_magnitude(factor, out)


def shear_y(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike, *,
            interpolation: Interpolation = "nearest",
            fill: float | Sequence[float] = 0.0) -> jax.Array:
  """Shears along y about the top-left corner: output ``(x, y)`` shows input ``(x, y + factor x)``.

  AutoAugment's ``ShearY`` as torchvision applies it:
  ``affine(image, shear=(0, degrees(atan(factor))), center=(0, 0))``, PIL's
  ``(1, 0, 0, factor, 1, 0)``. Each column moves up by ``factor`` times the x of its centre;
  uncovered pixels get ``fill``.

  Args:
    image: HWC float image.
    factor: the shear, ``tan`` of the shear angle; any finite real, may be traced.
    interpolation: ``"nearest"`` or ``"bilinear"``.
    fill: value of uncovered pixels: a real number, or one per channel.

  Returns:
    The sheared image, same shape and dtype.

  Raises:
    ValueError: a non-HWC image; an unknown ``interpolation``; a non-finite concrete
      ``factor``; a ``fill`` of the wrong length or not finite.
    TypeError: a non-float image; a non-real ``factor``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.tile(jnp.arange(1.0, 5.0)[:, None], (1, 2))[..., None]
    >>> jr.augment.shear_y(image, 0.5)[..., 0]  # columns move up by 0.25 and 0.75 pixels
    Array([[1., 2.],
           [2., 3.],
           [3., 4.],
           [4., 0.]], dtype=float32)
  """
  op = "shear_y"
  image, interpolation, fill = _check_common(image, interpolation, fill, op)
  factor = _check_scalar(factor, op, "factor")
  out = _warp(image, shear_matrix(*image.shape[:2], 0.0, factor), interpolation, fill)
  return nan_if_bad_magnitude(factor, out)

