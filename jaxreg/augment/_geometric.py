"""Geometric ops with torchvision's parameters: affine, rotate, shear_x/y and translate_x/y.

Each is an inverse matrix and one resampling (`jaxreg.augment._warp`, whose docstring gives
the coordinates and the sampling rules), written as ``apply(draw(op)(image, ...), image)``:
the draw, which takes no key, checks the arguments and computes the matrix (`AffineParams`),
the application warps. Design: docs/design/geometric.md, docs/design/parameters.md.

Magnitudes (``angle``, ``translate``, ``scale``, ``shear``, ``pixels``, ``factor``) may be traced.
A concrete one that is not finite or out of range raises; a traced one that is NaN, infinite or
out of range at run time makes the matrix NaN, and so the whole output NaN (a NaN sample point
would otherwise silently give the fill).

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

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxreg import _checks
from jaxreg.augment._image_checks import (
  Interpolation,
  check_drawn_size,
  check_warp_image,
  check_xy,
  nan_if_bad_magnitude,
)
from jaxreg.augment._params import AffineParams, register
from jaxreg.augment._warp import (
  affine_inverse_matrix,
  check_matrix,
  nan_unless_finite,
  rotate_matrix,
  shear_matrix,
  translate_matrix,
  warp,
)

_F32 = jnp.float32


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _float32_magnitude(value, op: str, name: str, **bounds) -> jax.Array:
  """A real scalar, finite (and within ``bounds``) when known at trace time, as float32."""
  _checks.check_interval(value, op, name, **bounds)
  return jnp.asarray(value, _F32)


def _check_shear(shear, op: str) -> tuple[jax.Array, jax.Array]:
  sx, sy = check_xy(shear, op, "shear", scalar_is_first=True)
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
  x, y = check_xy(center, op, "center")
  result = []
  for part in (x, y):
    concrete = _checks.check_interval(part, op, "center")
    if concrete is None:
      raise TypeError(f"{op}: `center` is static: give Python numbers, got a traced value.")
    result.append(concrete)
  return tuple(result)


def _whole_pixels(pixels, op: str) -> jax.Array:
  # Python's int(): toward zero, as torchvision's policies pass translate=[int(magnitude), 0].
  return jnp.trunc(_float32_magnitude(pixels, op, "pixels"))


# --------------------------------------------------------------------------------------------
# Parameters: the matrix each op warps through, and its application
# --------------------------------------------------------------------------------------------


def _params(image, matrix, interpolation: str, fill) -> AffineParams:
  return AffineParams(matrix=matrix, fill=fill, interpolation=interpolation,
                      image_size=(int(image.shape[0]), int(image.shape[1])))


def _apply_affine(params: AffineParams, image):
  op = "apply(AffineParams)"
  image, interpolation, fill = check_warp_image(image, op, interpolation=params.interpolation,
                                                fill=params.fill)
  check_drawn_size(image.shape, params.image_size, op)
  matrix = check_matrix(params.matrix, op)
  return nan_unless_finite(matrix, warp(image, matrix, interpolation, fill))


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
  params = _draw_affine(image, angle=angle, translate=translate, scale=scale, shear=shear,
                        center=center, interpolation=interpolation, fill=fill)
  return _apply_affine(params, image)


def _draw_affine(image, *, angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0),
                 center=None, interpolation="nearest", fill=0.0) -> AffineParams:
  op = "affine"
  image, interpolation, fill = check_warp_image(image, op, interpolation=interpolation,
                                                fill=fill)
  angle = _float32_magnitude(angle, op, "angle")
  tx, ty = (_float32_magnitude(t, op, "translate") for t in check_xy(translate, op, "translate"))
  scale = _float32_magnitude(scale, op, "scale", lo=0.0, lo_open=True)
  sx, sy = _check_shear(shear, op)
  center = _check_center(center, op)
  height, width = image.shape[:2]
  matrix = affine_inverse_matrix(height, width, angle=angle, translate=(tx, ty), scale=scale,
                                 shear=(sx, sy), center=center)
  for value in (angle, tx, ty):
    matrix = nan_if_bad_magnitude(value, matrix)
  matrix = nan_if_bad_magnitude(scale, matrix, lo=0.0, lo_open=True)
  for value in (sx, sy):
    matrix = nan_if_bad_magnitude(value, matrix, lo=-90.0, hi=90.0, lo_open=True, hi_open=True)
  return _params(image, matrix, interpolation, fill)


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
  params = _draw_rotate(image, angle, center=center, interpolation=interpolation, fill=fill)
  return _apply_affine(params, image)


def _draw_rotate(image, angle, *, center=None, interpolation="nearest",
                 fill=0.0) -> AffineParams:
  op = "rotate"
  image, interpolation, fill = check_warp_image(image, op, interpolation=interpolation,
                                                fill=fill)
  angle = _float32_magnitude(angle, op, "angle")
  center = _check_center(center, op)
  matrix = nan_if_bad_magnitude(angle, rotate_matrix(*image.shape[:2], angle, center))
  return _params(image, matrix, interpolation, fill)


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
  params = _draw_translate_x(image, pixels, interpolation=interpolation, fill=fill)
  return _apply_affine(params, image)


def _draw_along(op, y, image, magnitude, interpolation, fill) -> AffineParams:
  """A translation or a shear along x (``y`` False) or y: its checks and its matrix, with
  the magnitude in the axis's slot and 0 in the other's."""
  image, interpolation, fill = check_warp_image(image, op, interpolation=interpolation,
                                                fill=fill)
  if op.startswith("translate"):
    value, matrix_fn = _whole_pixels(magnitude, op), translate_matrix
  else:
    value, matrix_fn = _float32_magnitude(magnitude, op, "factor"), shear_matrix
  along = (0.0, value) if y else (value, 0.0)
  matrix = nan_if_bad_magnitude(value, matrix_fn(*image.shape[:2], *along))
  return _params(image, matrix, interpolation, fill)


def _draw_translate_x(image, pixels, *, interpolation="nearest", fill=0.0) -> AffineParams:
  return _draw_along("translate_x", False, image, pixels, interpolation, fill)


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
  params = _draw_translate_y(image, pixels, interpolation=interpolation, fill=fill)
  return _apply_affine(params, image)


def _draw_translate_y(image, pixels, *, interpolation="nearest", fill=0.0) -> AffineParams:
  return _draw_along("translate_y", True, image, pixels, interpolation, fill)


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
  params = _draw_shear_x(image, factor, interpolation=interpolation, fill=fill)
  return _apply_affine(params, image)


def _draw_shear_x(image, factor, *, interpolation="nearest", fill=0.0) -> AffineParams:
  return _draw_along("shear_x", False, image, factor, interpolation, fill)


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
  params = _draw_shear_y(image, factor, interpolation=interpolation, fill=fill)
  return _apply_affine(params, image)


def _draw_shear_y(image, factor, *, interpolation="nearest", fill=0.0) -> AffineParams:
  return _draw_along("shear_y", True, image, factor, interpolation, fill)


register(affine, _draw_affine, AffineParams, _apply_affine)
register(rotate, _draw_rotate, AffineParams, _apply_affine)
register(shear_x, _draw_shear_x, AffineParams, _apply_affine)
register(shear_y, _draw_shear_y, AffineParams, _apply_affine)
register(translate_x, _draw_translate_x, AffineParams, _apply_affine)
register(translate_y, _draw_translate_y, AffineParams, _apply_affine)
