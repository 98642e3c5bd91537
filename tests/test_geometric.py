"""Geometric ops against Pillow (`Image.transform`, `Image.rotate`) on uint8-quantized images.

The reference matrix is built here in float64 from torchvision's documented composition
``T C R S SHy SHx C^-1`` as explicit 3x3 products and inverted with numpy, independently of the
library's closed form. Pillow samples output pixel centres through it, as `_warp.warp` does.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import jaxreg as jr
from jaxreg.augment import _warp

A = jr.augment
RNG = np.random.default_rng(0)
PIL_RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR}
# Pillow's nearest affine runs in 16.16 fixed point, stepping the sample point pixel by pixel:
# its coordinates drift from the exact ones by up to ~W * 2**-17 (4e-4 pixels at W = 53). A
# sample point closer than this to a pixel boundary may land in either pixel.
BOUNDARY = 1e-3


def reference_matrix(height, width, angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0),
                     center=None):
  """float64 output -> input matrix of torchvision's forward map ``T C R S SHy SHx C^-1``."""
  cx, cy = (width / 2, height / 2) if center is None else center
  r, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
  rotation = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
  scaling = np.diag([scale, scale, 1.0])
  shear_x = np.array([[1, -math.tan(sx), 0], [0, 1, 0], [0, 0, 1]])
  shear_y = np.array([[1, 0, 0], [-math.tan(sy), 1, 0], [0, 0, 1]])
  to_center = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1.0]])
  shift = np.array([[1, 0, translate[0]], [0, 1, translate[1]], [0, 0, 1.0]])
  forward = shift @ to_center @ rotation @ scaling @ shear_y @ shear_x @ np.linalg.inv(to_center)
  return np.linalg.inv(forward)[:2]


def quantized_image(height, width, channels=3):
  pixels = RNG.integers(0, 256, (height, width, channels), dtype=np.uint8)
  return pixels, jnp.asarray(pixels, jnp.float32) / 255


def pillow_transform(pixels, matrix, interpolation, fill):
  height, width = pixels.shape[:2]
  out = Image.fromarray(pixels).transform((width, height), Image.AFFINE,
                                          data=tuple(np.ravel(matrix)),
                                          resample=PIL_RESAMPLE[interpolation], fillcolor=fill)
  return np.asarray(out).astype(np.float64)


def boundary_distance(matrix, height, width):
  """Per output pixel: float64 distance of its sample point to the nearest pixel boundary."""
  x, y = np.arange(width) + 0.5, np.arange(height)[:, None] + 0.5
  u = matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]
  v = matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]
  return np.minimum(np.abs(u - np.round(u)), np.abs(v - np.round(v)))


def assert_matches_pillow(got, want, interpolation, matrix, *, ties=False):
  """Nearest: equal except where the sample point is within BOUNDARY of a pixel edge (at most
  0.5% of the pixels unless ``ties``: parameters that put sample points exactly on pixel
  edges); bilinear: Pillow truncates to uint8, so 0 <= ours - Pillow <= 1 grey level (plus
  1e-3 of float32 rounding)."""
  got = np.asarray(got, np.float64) * 255
  diff = got - want
  if interpolation == "bilinear":
    assert diff.min() >= -1e-3, diff.min()
    assert diff.max() <= 1 + 1e-3, diff.max()
    return
  wrong = np.any(np.abs(diff) > 1e-3, axis=-1)
  near = boundary_distance(matrix, *got.shape[:2]) < BOUNDARY
  assert not (wrong & ~near).any(), np.argwhere(wrong & ~near)[:5]
  if not ties:
    assert wrong.sum() <= 0.005 * wrong.size, wrong.sum()


AFFINE_CASES = [
    dict(angle=30.0), dict(angle=-17.5), dict(angle=140.0), dict(angle=90.0), dict(angle=-180.0),
    dict(translate=(3.0, -5.0)), dict(translate=(-2.5, 1.25)),
    dict(scale=1.37), dict(scale=0.73),
    dict(shear=(20.0, 0.0)), dict(shear=(0.0, -15.0)), dict(shear=(-10.0, 25.0)),
    dict(shear=(12.0, 0.0), center=(0.0, 0.0)), dict(angle=25.0, center=(5.0, 30.5)),
    dict(angle=10.0, translate=(2.0, 1.0), scale=1.1, shear=(5.0, 8.0)),
]


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("shape", [(37, 53), (32, 32)], ids=["37x53", "32x32"])
@pytest.mark.parametrize("case", AFFINE_CASES, ids=str)
def test_affine_matches_pillow_transform(case, shape, interpolation):
  """affine == Pillow's Image.transform with torchvision's inverse matrix, a per-channel fill.

  Nearest: exact on every pixel whose sample point is farther than 1e-3 from a pixel boundary
  (at most 0.5% of pixels may differ; measured: 0 or 1 of 1,961 per case). Bilinear: within
  one grey level (Pillow truncates its bilinear result to uint8).

  The parameters put no sample point exactly on a pixel boundary, except where Pillow
  computes it exactly too (whole and half-pixel shifts, quarter turns); other exact ties are
  test_nearest_ties_go_right_and_down's.
  """
  pixels, image = quantized_image(*shape)
  matrix = reference_matrix(*shape, **case)
  want = pillow_transform(pixels, matrix, interpolation, (10, 200, 30))
  got = A.affine(image, interpolation=interpolation, fill=(10 / 255, 200 / 255, 30 / 255), **case)
  assert got.shape == image.shape
  assert got.dtype == image.dtype
  assert_matches_pillow(got, want, interpolation, matrix)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize(("angle", "center"), [(30.0, None), (-45.0, None), (13.0, None),
                                               (90.0, None), (-70.0, (5.0, 7.5)),
                                               (200.0, (0.0, 0.0))])
def test_rotate_matches_pillow_rotate(angle, center, interpolation):
  """rotate == Pillow's Image.rotate (counter-clockwise, same size), a scalar fill (grey 128).

  Tolerances as in test_affine_matches_pillow_transform.
  """
  pixels, image = quantized_image(29, 41)
  want = Image.fromarray(pixels).rotate(angle, PIL_RESAMPLE[interpolation], center=center,
                                        fillcolor=(128, 128, 128))
  got = A.rotate(image, angle, center=center, interpolation=interpolation, fill=128 / 255)
  matrix = reference_matrix(29, 41, angle=-angle, center=center)
  assert_matches_pillow(got, np.asarray(want).astype(np.float64), interpolation, matrix)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("magnitude", [0.3, -0.17, 0.05])
def test_shears_are_the_original_autoaugment_pil_transforms(magnitude, interpolation):
  """shear_x / shear_y == PIL ``(1, m, 0, 0, 1, 0)`` / ``(1, 0, 0, m, 1, 0)`` (AutoAugment's)."""
  pixels, image = quantized_image(31, 43)
  for op, data in ((A.shear_x, (1, magnitude, 0, 0, 1, 0)),
                   (A.shear_y, (1, 0, 0, magnitude, 1, 0))):
    matrix = np.reshape(np.array(data, np.float64), (2, 3))
    want = pillow_transform(pixels, matrix, interpolation, (0, 0, 0))
    assert_matches_pillow(op(image, magnitude, interpolation=interpolation), want, interpolation,
                          matrix)


def test_nearest_ties_go_right_and_down():
  """Sample points on pixel edges take the pixel to the right / below, whatever the rounding.

  RandAugment's shear 0.2 samples row i at x = j + 0.5 + 0.2 (i + 0.5): on edges for i = 2, 7,
  12, 17. There Pillow (16.16 fixed point) takes one side or the other: it agrees on row 2 and
  differs on rows 7, 12 and 17 (72 of 546 pixels), and agrees exactly elsewhere. Scale 0.7
  about the middle of a 32x32 image puts every seventh column and row on edges
  ((2j - 31) 5 / 7 is a whole number).
  """
  pixels, image = quantized_image(21, 26)
  rows = np.asarray(image)
  out = np.asarray(A.shear_x(image, 0.2))
  for i, shift in ((2, 1), (7, 2), (12, 3), (17, 4)):  # 0.2 (i + 0.5) + 0.5 = shift
    np.testing.assert_array_equal(out[i, :-shift], rows[i, shift:])
    np.testing.assert_array_equal(out[i, -shift:], 0.0)
  matrix = np.array([[1, 0.2, 0], [0, 1, 0]])
  want = pillow_transform(pixels, matrix, "nearest", (0, 0, 0))
  assert_matches_pillow(out, want, "nearest", matrix, ties=True)
  differ = np.unique(np.argwhere((np.abs(out * 255 - want) > 1e-3).any(axis=-1))[:, 0])
  assert differ.tolist() == [7, 12, 17]  # Pillow splits the ties
  square = jnp.arange(32.0)[None, :, None] * jnp.ones((32, 1, 1))  # pixel value = its column
  columns = np.asarray(A.affine(square, scale=0.7))[16]
  # output column j samples x = (j + 0.5 - 16) / 0.7 + 16; on an edge, the column to its right
  want = [c if 0 <= (c := math.floor((j + 0.5 - 16) * 10 / 7 + 16 + 1e-9)) < 32 else 0.0
          for j in range(32)]
  np.testing.assert_array_equal(columns[:, 0], want)


@pytest.mark.parametrize("pixels_", [4.0, -3.7, 2.2, 0.9])
def test_translations_shift_by_whole_pixels_toward_zero(pixels_):
  """translate_x / translate_y shift the content by int(pixels) (truncation, as torchvision)."""
  pixels, image = quantized_image(12, 15)
  shift = int(pixels_)
  for op, data in ((A.translate_x, (1, 0, -shift, 0, 1, 0)),
                   (A.translate_y, (1, 0, 0, 0, 1, -shift))):
    want = pillow_transform(pixels, np.reshape(data, (2, 3)), "nearest", (9, 9, 9))
    for interpolation in ("nearest", "bilinear"):
      got = op(image, pixels_, interpolation=interpolation, fill=9 / 255)
      np.testing.assert_allclose(np.asarray(got) * 255, want, atol=1e-3)


def test_signs_on_a_single_dot():
  """Documented directions: rotate counter-clockwise, affine clockwise, translate right/down."""
  image = jnp.zeros((5, 5, 1)).at[2, 4, 0].set(1.0)  # right of the middle

  def where(x):
    return tuple(int(i) for i in np.argwhere(np.asarray(x)[..., 0] == 1.0)[0])

  assert where(A.rotate(image, 90.0)) == (0, 2)  # above: counter-clockwise
  assert where(A.rotate(image, -90.0)) == (4, 2)
  assert where(A.affine(image, angle=90.0)) == (4, 2)  # below: clockwise
  assert where(A.affine(image, translate=(-1.0, 2.0))) == (4, 3)
  assert where(A.translate_x(image, -3)) == (2, 1)
  assert where(A.translate_y(image, 1)) == (3, 4)
  assert where(A.affine(image, scale=0.5)) == (2, 3)  # halfway to the middle
  # shear_x: output (x, y) shows (x + f y, y): column j of row 2 samples x = j + 0.5 + 2.5,
  # which is in the dot's column [4, 5) for j = 1; shear_y moves column 4 up by 4.5 f
  assert where(A.shear_x(image, 1.0)) == (2, 1)
  assert where(A.shear_y(image, -0.5)) == (4, 4)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_quarter_turns_and_identity_are_exact(interpolation):
  image = jax.random.uniform(jax.random.key(0), (6, 6, 3))
  np.testing.assert_array_equal(A.rotate(image, 90.0, interpolation=interpolation),
                                np.rot90(np.asarray(image), 1))
  np.testing.assert_array_equal(A.rotate(image, -270.0, interpolation=interpolation),
                                np.rot90(np.asarray(image), 1))
  wide = jax.random.uniform(jax.random.key(1), (4, 7, 2))
  np.testing.assert_array_equal(A.rotate(wide, 180.0, interpolation=interpolation),
                                np.asarray(wide)[::-1, ::-1])
  np.testing.assert_array_equal(A.affine(wide, interpolation=interpolation), wide)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_fill_scalar_and_per_channel_outside_only(interpolation):
  image = jnp.full((8, 10, 3), 0.5)
  out = np.asarray(A.translate_x(image, 4, interpolation=interpolation, fill=(0.1, 0.2, 0.3)))
  np.testing.assert_allclose(out[:, :4], np.broadcast_to([0.1, 0.2, 0.3], (8, 4, 3)), rtol=1e-6)
  np.testing.assert_array_equal(out[:, 4:], 0.5)
  out = np.asarray(A.translate_y(image, -3, interpolation=interpolation, fill=0.75))
  np.testing.assert_array_equal(out[5:], 0.75)
  np.testing.assert_array_equal(out[:5], 0.5)
  one = np.asarray(A.rotate(image, 45.0, interpolation=interpolation, fill=[0.25]))
  assert one[0, 0].tolist() == [0.25] * 3


def test_inverse_matrix_against_float64_composition():
  cases = [dict(angle=33.0, translate=(1.5, -2.0), scale=0.8, shear=(10.0, -20.0)),
           dict(angle=-120.0, center=(3.0, 4.0)), dict(shear=(0.0, 45.0), scale=2.0)]
  for case in cases:
    got = _warp.affine_inverse_matrix(20, 30, **case)
    assert got.shape == (2, 3)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, reference_matrix(20, 30, **case), atol=1e-5, rtol=1e-5)


def test_inverse_matrix_with_traced_parameters_under_vmap():
  angles = jnp.array([0.0, 15.0, -90.0, 200.0])
  shears = jnp.array([[0.0, 0.0], [10.0, 0.0], [0.0, -5.0], [3.0, 4.0]])
  fn = jax.jit(jax.vmap(lambda a, s, t: _warp.affine_inverse_matrix(
      16, 24, angle=a, translate=t, scale=1.25, shear=s)))
  translations = jnp.array([[1.0, 2.0], [0.0, 0.0], [-3.0, 0.5], [2.0, -2.0]])
  got = fn(angles, shears, translations)
  for i in range(4):
    want = reference_matrix(16, 24, angle=float(angles[i]),
                            translate=tuple(translations[i].tolist()), scale=1.25,
                            shear=tuple(shears[i].tolist()))
    np.testing.assert_allclose(got[i], want, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_half_precision_is_resampled_in_float32_and_rounded_once(interpolation):
  # bfloat16; float16 takes the same branch (a float narrower than float32 resamples in it).
  dtype = jnp.bfloat16
  image = jax.random.uniform(jax.random.key(4), (11, 13, 3)).astype(dtype)
  out = A.affine(image, angle=21.0, scale=1.1, interpolation=interpolation, fill=0.3)
  assert out.dtype == dtype
  want = A.affine(image.astype(jnp.float32), angle=21.0, scale=1.1,
                  interpolation=interpolation, fill=0.3).astype(dtype)
  np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(want, np.float32))


def test_nearest_gradient_scatters_the_cotangent_to_the_sampled_pixels():
  """The gradient of a gather: each input pixel receives the cotangents of the output pixels
  that copied it (counted here from a warp of the pixel numbers)."""
  height, width = 9, 12
  image = jax.random.uniform(jax.random.key(6), (height, width, 1))
  cotangent = np.asarray(jax.random.normal(jax.random.key(7), (height, width, 1)))

  def op(x):
    return A.rotate(x, 33.0, fill=-1.0)

  _, vjp = jax.vjp(op, image)
  (grad,) = vjp(jnp.asarray(cotangent))
  numbers = jnp.arange(height * width, dtype=jnp.float32).reshape(height, width, 1)
  sources = np.asarray(op(numbers))[..., 0].astype(int)  # -1: the fill
  want = np.zeros(height * width)
  inside = sources >= 0
  np.add.at(want, sources[inside], cotangent[..., 0][inside])
  np.testing.assert_allclose(np.asarray(grad)[..., 0].ravel(), want, rtol=1e-6, atol=1e-6)
  assert 0 < inside.sum() < height * width  # some pixels are fill, and get no gradient path


def test_bad_inputs_name_the_op_and_argument():
  image = jnp.zeros((8, 8, 3))
  with pytest.raises(ValueError, match=r"rotate: `image` must have 3 dimensions"):
    A.rotate(jnp.zeros((2, 8, 8, 3)), 10.0)
  with pytest.raises(ValueError, match=r"affine: `image` must have 3 dimensions"):
    A.affine(jnp.zeros((8, 8)))
  with pytest.raises(TypeError, match=r"shear_x: `image` must be a floating-point"):
    A.shear_x(jnp.zeros((8, 8, 3), jnp.uint8), 0.1)
  with pytest.raises(ValueError, match=r"rotate: `interpolation` must be one of .*'bicubic'"):
    A.rotate(image, 10.0, interpolation="bicubic")
  with pytest.raises(ValueError, match=r"translate_x: `fill` must be .* shape \(2,\)"):
    A.translate_x(image, 2, fill=(0.1, 0.2))
  with pytest.raises(TypeError, match=r"translate_y: `fill`"):
    A.translate_y(image, 2, fill="white")
  with pytest.raises(ValueError, match=r"affine: `fill` must be finite"):
    A.affine(image, fill=float("nan"))
  with pytest.raises(ValueError, match=r"rotate: `angle` must be a finite number, got inf"):
    A.rotate(image, float("inf"))
  with pytest.raises(ValueError, match=r"affine: `angle` must be a finite number, got nan"):
    A.affine(image, angle=float("nan"))
  with pytest.raises(TypeError, match=r"rotate: `angle` must be a real number"):
    A.rotate(image, "90")
  with pytest.raises(ValueError, match=r"affine: `scale` must be > 0.0, got 0.0"):
    A.affine(image, scale=0.0)
  with pytest.raises(ValueError, match=r"affine: `shear` angles must lie strictly between"):
    A.affine(image, shear=(90.0, 0.0))
  with pytest.raises(ValueError, match=r"affine: `translate` must be an \(x, y\) pair"):
    A.affine(image, translate=(1.0, 2.0, 3.0))
  with pytest.raises(TypeError, match=r"affine: `translate` must be an \(x, y\) pair"):
    A.affine(image, translate=1.0)
  with pytest.raises(ValueError, match=r"shear_y: `factor` must be a finite number"):
    A.shear_y(image, float("-inf"))
  with pytest.raises(ValueError, match=r"translate_x: `pixels` must be a finite number"):
    A.translate_x(image, float("nan"))
  with pytest.raises(TypeError, match=r"rotate: `center` is static"):
    jax.jit(lambda c: A.rotate(image, 10.0, center=(c, 1.0)))(1.0)
  with pytest.raises(ValueError, match=r"affine: `center` must be a finite number"):
    A.affine(image, center=(float("nan"), 1.0))
  square = dataclasses.replace(A.draw(A.affine)(image), matrix=jnp.eye(3))
  with pytest.raises(ValueError, match=r"apply\(AffineParams\): `matrix` must have shape"):
    A.apply(square, image)


def test_torchvision_on_pil_images_agrees_where_installed():
  """Direct check against torchvision's functional ops (the `bench` extra), when present."""
  tv = pytest.importorskip("torchvision.transforms.v2.functional")
  from torchvision.transforms import InterpolationMode

  pixels, image = quantized_image(21, 26)
  pil = Image.fromarray(pixels)
  for interpolation, mode in (("nearest", InterpolationMode.NEAREST),
                              ("bilinear", InterpolationMode.BILINEAR)):
    cases = [
        (A.affine(image, angle=25.0, translate=(2.0, -1.0), scale=1.2, shear=(7.0, -4.0),
                  interpolation=interpolation),
         tv.affine(pil, angle=25.0, translate=[2.0, -1.0], scale=1.2, shear=[7.0, -4.0],
                   interpolation=mode),
         reference_matrix(21, 26, angle=25.0, translate=(2.0, -1.0), scale=1.2,
                          shear=(7.0, -4.0))),
        (A.rotate(image, 37.0, interpolation=interpolation),
         tv.rotate(pil, 37.0, interpolation=mode), reference_matrix(21, 26, angle=-37.0)),
        (A.shear_x(image, 0.23, interpolation=interpolation),
         tv.affine(pil, angle=0.0, translate=[0, 0], scale=1.0,
                   shear=[math.degrees(math.atan(0.23)), 0.0], interpolation=mode, center=[0, 0]),
         reference_matrix(21, 26, shear=(math.degrees(math.atan(0.23)), 0.0), center=(0, 0))),
    ]
    for got, want, matrix in cases:
      assert_matches_pillow(got, np.asarray(want).astype(np.float64), interpolation, matrix)


def test_traced_fill_per_example_under_vmap():
  """fill may be traced: one per example under vmap. (The derivatives in the image and the
  magnitudes: tests/test_composition.py.)"""
  images = jnp.full((3, 6, 6, 2), 0.5)
  fills = jnp.array([[0.0, 1.0], [0.2, 0.3], [0.9, 0.9]])
  out = jax.vmap(lambda im, f: A.translate_x(im, 2, fill=f))(images, fills)
  np.testing.assert_array_equal(out[:, :, :2], np.broadcast_to(fills[:, None, None], (3, 6, 2, 2)))
