"""Photometric ops against Pillow (on uint8-quantised images) and float64 NumPy.

Their derivatives, against finite differences, are rows of tests/test_composition.py.

Tolerances, in grey levels of 1/255 (each test states its own):

* exact: invert, solarize, posterize, equalize (the definitions coincide on uint8 images);
  autocontrast against exact rational arithmetic, and against Pillow except where Pillow's
  double-precision evaluation of an integer-valued stretch truncates one level down;
  greyscale, except at exact ties of the luma (Pillow's fixed-point weights round those).
* one level: the Pillow enhancers (brightness, contrast, colour, sharpness) truncated as Pillow
  truncates; Pillow also rounds its degenerate image (greyscale, mean, SMOOTH) to whole levels.
* Gaussian blur against a float64 NumPy transcription of torchvision's definition (Pillow's
  ``GaussianBlur`` is another filter): 1e-5.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys

import jaxreg as jr
from jaxreg.augment import _levels

Image = pytest.importorskip("PIL.Image")
ImageEnhance = pytest.importorskip("PIL.ImageEnhance")
ImageOps = pytest.importorskip("PIL.ImageOps")

A = jr.augment
RNG = np.random.default_rng(0)


def uint8_images():
  """Full-range noise, a narrow range, smooth ramps, a peaked histogram, few levels."""
  rng = np.random.default_rng(1)
  yy, xx = np.mgrid[0:50, 0:60]
  ramps = np.stack([(yy * 5) % 256, (xx * 4) % 256, (xx + yy) % 256], -1)
  return [
      rng.integers(0, 256, (37, 41, 3)),
      rng.integers(30, 200, (64, 48, 3)),
      ramps,
      np.clip(rng.normal(120, 20, (80, 80, 3)), 0, 255),
      rng.choice([0, 7, 7, 200], (23, 29, 3)),
  ]


IMAGES = [u.astype(np.uint8) for u in uint8_images()]
IDS = ["noise", "narrow", "ramps", "peaked", "few_levels"]


def as_float(u8):
  return jnp.asarray(u8.astype(np.float32) / 255)


def levels(image):
  """A float image in [0, 1] as float64 grey levels."""
  return np.asarray(image, np.float64) * 255


def pillow(u8):
  return Image.fromarray(u8)


def assert_exact(ours, reference):
  """Level for level: ``ours`` (float, in [0, 1]) is ``reference``'s whole levels over 255, up
  to float32 rounding (1e-3 of a level; a rounding of 255 * ours would hide half a level)."""
  np.testing.assert_allclose(levels(ours), np.asarray(reference, np.float64), rtol=0, atol=1e-3)


# ---------------------------------------------------------------------------------------------
# Against Pillow
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("u8", IMAGES, ids=IDS)
def test_uint8_defined_ops_equal_pillow_exactly(u8):
  # Tolerance: none. On an image of levels k / 255 these ops are Pillow's, level for level.
  x, image = as_float(u8), pillow(u8)
  assert_exact(A.invert(x), ImageOps.invert(image))
  for t in (0, 1, 64, 128, 200, 255):
    assert_exact(A.solarize(x, t / 255), ImageOps.solarize(image, t))
  for bits in range(1, 9):  # Pillow takes 1..8; torchvision also 0
    assert_exact(A.posterize(x, bits), ImageOps.posterize(image, bits))
  assert_exact(A.posterize(x, 0), np.zeros_like(u8))
  assert_exact(A.equalize(x), ImageOps.equalize(image))


@pytest.mark.parametrize("u8", IMAGES, ids=IDS)
def test_uint8_images_give_pillows_levels(u8):
  # Tolerance: none. On uint8 images the ops return uint8 levels: Pillow's for invert,
  # solarize, posterize and equalize, and the exact truncated stretch for autocontrast (which
  # Pillow's double-precision evaluation can undercut by one level; see the test above).
  q, image = jnp.asarray(u8), pillow(u8)

  def same(ours, reference):
    assert ours.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))

  same(A.invert(q), ImageOps.invert(image))
  for t in (0, 1, 64, 128, 200, 255):
    same(A.solarize(q, t / 255), ImageOps.solarize(image, t))
  for bits in range(1, 9):
    same(A.posterize(q, bits), ImageOps.posterize(image, bits))
  same(A.posterize(q, 0), np.zeros_like(u8))
  same(A.equalize(q), ImageOps.equalize(image))
  low, high = u8.min(axis=(0, 1)).astype(np.int64), u8.max(axis=(0, 1)).astype(np.int64)
  k = u8.astype(np.int64)
  same(A.autocontrast(q), np.where(high > low, (k - low) * 255 // np.maximum(high - low, 1), k))


UINT8_OPS = [(lambda x, m: A.invert(x), [0, 0, 0, 0]),
             (A.solarize, [0.0, 0.3, 128 / 255, 1.0]),
             (A.posterize, [1, 3, 5, 8]),
             (lambda x, m: A.equalize(x), [0, 0, 0, 0]),
             (lambda x, m: A.autocontrast(x), [0, 0, 0, 0])]


@pytest.mark.parametrize(("op", "magnitudes"), UINT8_OPS,
                         ids=["invert", "solarize", "posterize", "equalize", "autocontrast"])
def test_uint8_result_is_the_float_result_times_255_eager_jit_and_vmap(op, magnitudes):
  # Tolerance: none (autocontrast: the float result within 1e-3 levels of the exact stretch,
  # truncated). Each example its own magnitude, traced under vmap.
  q = jnp.asarray(np.stack([IMAGES[0][:30, :30], IMAGES[1][:30, :30], IMAGES[2][:30, :30],
                            IMAGES[4][:23, :29].repeat(2, 0).repeat(2, 1)[:30, :30]]))
  mags = jnp.asarray(magnitudes)
  float_out = jax.vmap(op)(q.astype(jnp.float32) / 255, mags)
  want = np.floor(levels(float_out) + 1e-3)
  eager = np.stack([op(x, m) for x, m in zip(q, magnitudes, strict=True)])
  for out in (eager, jax.jit(jax.vmap(op))(q, mags), jax.vmap(op)(q, mags)):
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(out, np.float64), want)


def test_uint8_solarize_with_a_traced_threshold_out_of_range():
  # No NaN in uint8: below 0 inverts every level, above 1 or NaN none (documented).
  q = jnp.arange(256, dtype=jnp.uint8).reshape(16, 16, 1)
  solarize = jax.jit(A.solarize)
  np.testing.assert_array_equal(solarize(q, -0.5), 255 - q)
  np.testing.assert_array_equal(solarize(q, 1.5), q)
  np.testing.assert_array_equal(solarize(q, jnp.nan), q)


def test_uint8_solarize_next_to_every_level_is_the_float_path():
  # Tolerance: none. Thresholds at each level's float32 value k / 255 and one ulp either side:
  # the uint8 result is the float result on q / 255 as NumPy and torchvision divide, times 255
  # (XLA's own q / 255 is one ulp high on some levels, which inverted level 119 at torchvision's
  # 0.46666670, a threshold just above 119 / 255).
  q = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
  float_image = jnp.asarray(q.astype(np.float32) / np.float32(255))
  solarize = jax.jit(A.solarize)
  for k in range(256):
    level = np.float32(k) / np.float32(255)
    for t in (np.nextafter(level, np.float32(-1)), level, np.nextafter(level, np.float32(2))):
      if not 0 <= t <= 1:
        continue
      want = np.round(np.asarray(solarize(float_image, t), np.float64) * 255)
      np.testing.assert_array_equal(solarize(jnp.asarray(q), t), want, err_msg=f"{k} {t!r}")
  above_119 = float(np.float32(0.46666670))
  out = np.asarray(A.solarize(jnp.asarray(q), above_119)).ravel()
  np.testing.assert_array_equal(out[118:121], [118, 119, 135])


def test_uint8_solarize_equals_torchvision_at_its_policy_thresholds_where_installed():
  # torchvision.transforms.v2 on uint8 compares q >= 255 t, on float q / 255 >= t; at the
  # thresholds its policies draw (linspace(1, 0, B) for B = 10 and 31) all three agree.
  torch = pytest.importorskip("torch")
  tvf = pytest.importorskip("torchvision.transforms.v2.functional")
  q = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
  for bins in (10, 31):
    for t in torch.linspace(1.0, 0.0, bins).tolist():
      ours = np.asarray(A.solarize(jnp.asarray(q), t))
      uint8 = tvf.solarize(torch.from_numpy(q).permute(2, 0, 1), 255.0 * t).permute(1, 2, 0)
      on_float = tvf.solarize(torch.from_numpy(q.astype(np.float32) / np.float32(255))
                              .permute(2, 0, 1), t).permute(1, 2, 0)
      np.testing.assert_array_equal(ours, uint8.numpy(), err_msg=f"{bins} {t!r}")
      np.testing.assert_array_equal(ours, np.round(on_float.numpy() * 255), err_msg=repr(t))


def test_equalize_keeps_nan():
  # Tolerance: none. NaN has no level: it stays NaN, as in the other level ops, and is not
  # counted, so an image with rows of NaN below it equalizes the rest as the image alone does
  # (Pillow's result). Eager, jitted, vmapped (on a CPU a loop), and the histogram.
  u8 = IMAGES[1][:20]
  image = jnp.concatenate([as_float(u8), jnp.full((2, *u8.shape[1:]), jnp.nan)])
  for out in (A.equalize(image), jax.jit(A.equalize)(image),
              jax.vmap(A.equalize)(jnp.stack([image, image]))[1]):
    assert bool(jnp.isnan(out[20:]).all())
    assert_exact(out[:20], ImageOps.equalize(pillow(u8)))
  one = A.equalize(as_float(u8).at[3, 4, 1].set(jnp.nan))
  assert bool(jnp.isnan(one[3, 4, 1]))
  assert int(jnp.isnan(one).sum()) == 1
  counts = jax.jit(_levels.histogram_scatter)(_levels.quantize(image))
  want = np.stack([np.bincount(u8[..., c].ravel(), minlength=256) for c in range(3)])
  np.testing.assert_array_equal(counts, want)


def test_equalize_corner_cases_equal_pillow():
  # Tolerance: none. One level, two levels, too few pixels for a step, and a table that passes
  # 255 before the highest level (clamped).
  cases = [np.full((5, 6, 3), 77), np.array([[[0, 0, 0]], [[255, 10, 3]]] * 3),
           np.arange(48).reshape(4, 4, 3) * 5, RNG.integers(0, 3, (30, 30, 3)) * 100]
  for u8 in cases:
    u8 = u8.astype(np.uint8)
    assert_exact(A.equalize(as_float(u8)), ImageOps.equalize(pillow(u8)))


def test_histogram_equals_numpys():
  # Tolerance: none (integer counts).
  u8 = IMAGES[4]
  counts = jax.jit(_levels.histogram_scatter)(jnp.asarray(u8, jnp.float32))
  want = np.stack([np.bincount(u8[..., c].ravel(), minlength=256) for c in range(3)])
  np.testing.assert_array_equal(counts, want)


@pytest.mark.parametrize("u8", IMAGES, ids=IDS)
def test_autocontrast_is_the_exact_stretch_and_pillow_up_to_its_rounding(u8):
  ours = levels(A.autocontrast(as_float(u8)))
  low, high = u8.min(axis=(0, 1)), u8.max(axis=(0, 1))
  k = u8.astype(np.int64)
  spread = np.maximum(high - low, 1).astype(np.int64)
  numerator = (k - low) * 255
  # Tolerance: 1e-3 levels against the exact rational value; so floor(255 x + 1e-3) is exactly
  # the truncation that Pillow and torchvision apply on uint8.
  exact = np.where(high > low, numerator / spread, k)
  np.testing.assert_allclose(ours, exact, atol=1e-3)
  truncated = np.where(high > low, numerator // spread, k)
  np.testing.assert_array_equal(np.floor(ours + 1e-3), truncated)
  # Pillow evaluates i * (255 / spread) - low * (255 / spread) in double precision: where the
  # exact value is a whole level that can land just below it and truncate one level down (the
  # maximum becomes 254, say). Everywhere else it is exact.
  reference = np.asarray(ImageOps.autocontrast(pillow(u8)), np.int64)
  whole = (numerator % spread == 0) & (high > low)
  np.testing.assert_array_equal(reference[~whole], truncated[~whole])
  assert np.all((truncated - reference)[whole] >= 0)
  assert np.all((truncated - reference)[whole] <= 1)


def test_autocontrast_is_exact_for_every_spread_and_keeps_the_extremes():
  # Tolerance: none. uint8: floor(255 (q - min) / (max - min)) for every level of every spread
  # (a ramp from `low` to `low + spread`, padded with `low`), one image per spread under vmap.
  # Float: the minimum maps to exactly 0 and the maximum to exactly 1.
  for low in (0, 7):
    spreads = np.arange(1, 256 - low)
    ramps = np.minimum(np.arange(256)[None, :], spreads[:, None]) + low  # (S, 256)
    images = np.broadcast_to(ramps[:, :, None, None], (*ramps.shape, 1, 3)).astype(np.uint8)
    out = np.asarray(jax.vmap(A.autocontrast)(jnp.asarray(images)))[:, :, 0, 0]
    want = (ramps - low) * 255 // spreads[:, None]
    np.testing.assert_array_equal(out, want)
  rng = np.random.default_rng(2)
  bounds = np.sort(rng.random((200, 2, 3)).astype(np.float32), axis=1)
  x = rng.uniform(bounds[:, :1], bounds[:, 1:], (200, 6, 3)).astype(np.float32)
  x[:, 0], x[:, 1] = bounds[:, 0], bounds[:, 1]
  out = jax.vmap(A.autocontrast)(jnp.asarray(x)[:, :, None])
  np.testing.assert_array_equal(out[:, 0], 0.0)
  np.testing.assert_array_equal(out[:, 1], 1.0)


def _torchvision_autocontrast_uint8(u8):
  """torchvision.transforms.v2's ``autocontrast`` on a uint8 HWC image, its float32 arithmetic
  in NumPy: ``(q - min) / ((max - min) * (1 / 255))``, clamped and truncated."""
  x = u8.astype(np.float32)
  low, high = x.min(axis=(0, 1)), x.max(axis=(0, 1))
  same = high == low
  inv_scale = np.where(same, np.float32(1), (high - low) * np.float32(1.0 / 255))
  out = (x - np.where(same, np.float32(0), low)) / inv_scale
  return np.clip(out, 0, 255).astype(np.uint8)


def test_autocontrast_is_at_most_a_level_above_torchvision_and_pillow():
  # What the docstring says: torchvision's and Pillow's uint8 results are at most one level
  # below jaxreg's exact one, torchvision more often than Pillow; none on an image already
  # spanning 0 to 255. The shares on uniform noise over levels 20 to 230 are pinned (0.3
  # points for sampling).
  noise = np.random.default_rng(0).integers(20, 231, (16, 64, 64, 3)).astype(np.uint8)
  ours = np.stack([np.asarray(A.autocontrast(jnp.asarray(x))) for x in noise]).astype(int)
  torchvision = np.stack([_torchvision_autocontrast_uint8(x) for x in noise]).astype(int)
  pil = np.stack([np.asarray(ImageOps.autocontrast(pillow(x))) for x in noise]).astype(int)
  assert set(np.unique(ours - torchvision)) <= {0, 1}
  assert set(np.unique(ours - pil)) <= {0, 1}
  assert abs(100 * np.mean(ours != torchvision) - 7.1) < 0.3
  assert abs(100 * np.mean(ours != pil) - 0.9) < 0.3
  assert "torchvision more often than Pillow" in " ".join(A.autocontrast.__doc__.split())
  full = np.random.default_rng(1).integers(0, 256, (64, 64, 3)).astype(np.uint8)
  full[0, 0], full[0, 1] = 0, 255
  np.testing.assert_array_equal(A.autocontrast(jnp.asarray(full)),
                                _torchvision_autocontrast_uint8(full))


def test_torchvision_autocontrast_is_transcribed_where_installed():
  torch = pytest.importorskip("torch")
  tvf = pytest.importorskip("torchvision.transforms.v2.functional")
  for u8 in (*IMAGES, np.random.default_rng(0).integers(20, 231, (64, 64, 3)).astype(np.uint8)):
    want = tvf.autocontrast(torch.from_numpy(np.ascontiguousarray(u8)).permute(2, 0, 1))
    np.testing.assert_array_equal(_torchvision_autocontrast_uint8(u8),
                                  want.permute(1, 2, 0).numpy())


@pytest.mark.parametrize("u8", IMAGES, ids=IDS)
def test_grayscale_equals_pillow_except_at_exact_ties(u8):
  ours = levels(A.grayscale(as_float(u8), num_output_channels=1)[..., 0])
  reference = np.asarray(ImageOps.grayscale(pillow(u8)), np.float64)
  k = u8.astype(np.int64)
  thousandths = 299 * k[..., 0] + 587 * k[..., 1] + 114 * k[..., 2]
  np.testing.assert_allclose(ours, thousandths / 1000, atol=1e-3)
  # Tolerance: none, except where the luma is exactly half-way between two levels (Pillow's
  # fixed-point weights, 19595 / 65536 ..., decide those; jaxreg is within 0.5 + 1e-3 there).
  tie = thousandths % 1000 == 500
  np.testing.assert_array_equal(np.round(ours[~tie]), reference[~tie])
  assert np.all(np.abs(ours[tie] - reference[tie]) <= 0.5 + 1e-3)
  three = A.grayscale(as_float(u8))
  np.testing.assert_array_equal(three, jnp.repeat(three[..., :1], 3, axis=-1))


ENHANCERS = [
    (A.enhance_brightness, ImageEnhance.Brightness),
    (A.enhance_contrast, ImageEnhance.Contrast),
    (A.enhance_color, ImageEnhance.Color),
    (A.enhance_sharpness, ImageEnhance.Sharpness),
]


@pytest.mark.parametrize(("ours", "enhancer"), ENHANCERS, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("u8", IMAGES, ids=IDS)
def test_enhancers_equal_pillow_within_one_level(ours, enhancer, u8):
  # Tolerance: one grey level after truncating as Pillow does (Pillow also rounds its
  # degenerate image, the grey mean, the greyscale or the SMOOTH image, to whole levels).
  x, image = as_float(u8), pillow(u8)
  for factor in (0.0, 0.1, 0.5, 0.9, 1.0, 1.3, 1.9, 2.0):
    got = np.floor(levels(ours(x, factor)) + 1e-3)
    want = np.asarray(enhancer(image).enhance(factor), np.float64)
    assert np.abs(got - want).max() <= 1, factor
  np.testing.assert_allclose(ours(x, 1.0), x, atol=1e-6)


@pytest.mark.parametrize(("ours", "enhancer"), ENHANCERS, ids=lambda v: getattr(v, "__name__", ""))
def test_enhancers_on_uint8_are_the_float_result_at_the_nearest_level(ours, enhancer):
  # Tolerance: none against the float op on q / 255 rounded to the nearest level (eager, and
  # jitted under vmap with a factor per example), except within 1e-3 of a half level, where
  # float32 rounding of 255 x picks the side; Pillow truncates, so its level is ours or one
  # lower.
  q = jnp.asarray(np.stack([IMAGES[0][:20, :24], IMAGES[2][:20, :24], IMAGES[3][:20, :24]]))
  factors = jnp.array([0.3, 1.0, 1.7])
  scaled = np.clip(levels(jax.vmap(ours)(q.astype(jnp.float32) / 255, factors)), 0, 255)
  want, tie = np.round(scaled), np.abs(scaled % 1 - 0.5) < 1e-3
  eager = np.stack([ours(x, f) for x, f in zip(q, factors, strict=True)])
  for out in (eager, jax.jit(jax.vmap(ours))(q, factors)):
    assert out.dtype == np.uint8
    out = np.asarray(out, np.float64)
    np.testing.assert_array_equal(out[~tie], want[~tie])
    assert np.abs(out - want).max() <= 1
  pil = np.asarray(enhancer(pillow(np.asarray(q[0]))).enhance(0.3), np.float64)
  assert np.isin(np.asarray(eager[0], np.float64) - pil, (0, 1)).all()


def test_sharpness_keeps_the_border_and_smooths_the_interior():
  x = jnp.asarray(RNG.uniform(0.2, 0.8, (6, 7, 3)), jnp.float32)
  out = np.asarray(A.enhance_sharpness(x, 0.0), np.float64)
  ref = np.asarray(x, np.float64)
  kernel = np.ones((3, 3))
  kernel[1, 1] = 5
  for i in range(1, 5):
    for j in range(1, 6):
      want = np.einsum("ij,ijc->c", kernel, ref[i - 1:i + 2, j - 1:j + 2]) / 13
      np.testing.assert_allclose(out[i, j], want, atol=1e-6)
  border = np.ones((6, 7), bool)
  border[1:-1, 1:-1] = False
  np.testing.assert_allclose(out[border], ref[border], atol=1e-6)
  tiny = jnp.asarray(RNG.uniform(size=(2, 5, 3)), jnp.float32)
  np.testing.assert_allclose(A.enhance_sharpness(tiny, 2.0), tiny, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Gaussian blur against torchvision's definition in float64
# ---------------------------------------------------------------------------------------------


def torchvision_blur_float64(image, kernel_size, sigma):
  """torchvision's gaussian_blur, written out: a 2-D kernel (outer product of the normalized
  1-D ones), reflect padding, a direct correlation. Sizes and sigmas are (height, width)."""
  image = np.asarray(image, np.float64)

  def kernel1d(size, s):
    x = np.linspace(-(size - 1) / 2, (size - 1) / 2, size)
    pdf = np.exp(-0.5 * (x / s) ** 2)
    return pdf / pdf.sum()

  (kh, kw), (sh, sw) = kernel_size, sigma
  kernel = np.outer(kernel1d(kh, sh), kernel1d(kw, sw))
  padded = np.pad(image, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode="reflect")
  height, width = image.shape[:2]
  out = np.zeros_like(image)
  for i in range(kh):
    for j in range(kw):
      out += kernel[i, j] * padded[i:i + height, j:j + width]
  return out


@pytest.mark.parametrize(("kernel_size", "sigma"), [(3, 1.0), ((5, 3), (1.5, 0.7)), (1, 2.0),
                                                    ((1, 7), 3.0)])
def test_gaussian_blur_equals_torchvisions_definition(kernel_size, sigma):
  # Tolerance: 1e-5 (float32 against float64).
  x = jnp.asarray(RNG.uniform(size=(12, 11, 3)), jnp.float32)
  sizes = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
  sigmas = (sigma,) * 2 if isinstance(sigma, float) else sigma
  want = torchvision_blur_float64(x, sizes, sigmas)
  np.testing.assert_allclose(A.gaussian_blur(x, kernel_size, sigma), want, atol=1e-5)
  got = jax.jit(A.gaussian_blur, static_argnums=1)(x, kernel_size, sigma)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_gaussian_blur_orders_sizes_as_height_width():
  x = jnp.zeros((9, 9, 1)).at[4, 4].set(1.0)
  out = np.asarray(A.gaussian_blur(x, (5, 1), 1.0))[..., 0]
  assert np.count_nonzero(out[:, 4]) == 5  # spread along the height only
  assert np.count_nonzero(out[4, :]) == 1


# ---------------------------------------------------------------------------------------------
# Other references: solarize_add (TensorFlow AutoAugment), grayscale flags, random_grayscale
# ---------------------------------------------------------------------------------------------


def test_solarize_add_equals_the_tensorflow_definition():
  # AutoAugment's TF op on uint8: where(image < threshold, clip(image + addition, 0, 255), image).
  # Tolerance: none, on levels.
  u8 = IMAGES[0]
  for addition, threshold in ((0, 128), (110, 128), (-40, 200), (255, 256 - 1)):
    want = np.where(u8 < threshold, np.clip(u8.astype(np.int64) + addition, 0, 255), u8)
    assert_exact(A.solarize_add(as_float(u8), addition / 255, threshold=threshold / 255), want)


def test_random_grayscale_frequency_and_outputs():
  image = jnp.asarray(RNG.uniform(size=(4, 5, 3)), jnp.float32)
  batch = jnp.broadcast_to(image, (2000, 4, 5, 3))
  out = np.asarray(A.batched(A.random_grayscale)(jax.random.key(0), batch, probability=0.3))
  gray = np.asarray(A.grayscale(image))
  is_gray = np.array([np.array_equal(o, gray) for o in out])
  is_same = np.array([np.array_equal(o, image) for o in out])
  assert np.all(is_gray ^ is_same)
  assert abs(is_gray.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 2000)
  with reuse_keys():
    np.testing.assert_array_equal(A.random_grayscale(jax.random.key(1), image, probability=0.0),
                                  image)


# ---------------------------------------------------------------------------------------------
# jit, vmap with per-example magnitudes, dtypes (derivatives, and jit and vmap in float64:
# tests/test_composition.py)
# ---------------------------------------------------------------------------------------------

# (op, magnitudes for 4 examples); the magnitude is the op's second positional argument.
WITH_MAGNITUDE = [
    (A.solarize, [0.0, 0.3, 0.5, 1.0]),
    (A.solarize_add, [0.0, 0.2, -0.3, 0.5]),
    (A.posterize, [0, 1, 4, 8]),
    (A.enhance_sharpness, [0.0, 0.5, 1.0, 1.9]),
    (A.enhance_brightness, [0.0, 0.5, 1.0, 1.9]),
    (A.enhance_contrast, [0.0, 0.5, 1.0, 1.9]),
    (A.enhance_color, [0.0, 0.5, 1.0, 1.9]),
    (functools.partial(A.gaussian_blur, kernel_size=5), [0.3, 0.8, 1.5, 4.0]),
]
WITHOUT_MAGNITUDE = [A.invert, A.equalize, A.autocontrast, A.grayscale]


def _name(fn):
  return getattr(fn, "__name__", None) or fn.func.__name__


def batch_of_images(n=4, shape=(9, 10, 3)):
  return jnp.asarray(RNG.integers(0, 256, (n, *shape)) / 255, jnp.float32)


@pytest.mark.parametrize(("op", "magnitudes"), WITH_MAGNITUDE, ids=lambda v: _name(v)
                         if callable(v) else "")
def test_per_example_traced_magnitudes_under_vmap_equal_per_image_calls(op, magnitudes):
  images = batch_of_images()
  dtype = jnp.int32 if op is A.posterize else jnp.float32
  mags = jnp.asarray(magnitudes, dtype)
  call = (lambda x, m: op(x, sigma=m)) if isinstance(op, functools.partial) else op
  eager = np.stack([call(x, m) for x, m in zip(images, magnitudes, strict=True)])
  np.testing.assert_allclose(jax.jit(jax.vmap(call))(images, mags), eager, atol=1e-6)
  np.testing.assert_allclose(jax.vmap(call)(images, mags), eager, atol=1e-6)
  assert len({np.asarray(e).tobytes() for e in eager}) == 4  # the magnitudes matter


def _call_with_magnitude(op, x, magnitude):
  if isinstance(op, functools.partial):
    return op(x, sigma=magnitude)
  return op(x, magnitude)


def test_dtypes_are_kept_and_half_precision_is_rounded_once():
  # bfloat16: float16 takes the same branch (a float narrower than float32 computes in it),
  # and a float32 image is its own float32 computation.
  dtype = jnp.bfloat16
  x = batch_of_images(1)[0].astype(dtype)
  wide = x.astype(jnp.float32)
  calls = [(op, lambda f, v, m=m[2], op=op: _call_with_magnitude(op, v, m))
           for op, m in WITH_MAGNITUDE]
  calls += [(op, lambda f, v, op=op: op(v)) for op in WITHOUT_MAGNITUDE]
  for op, call in calls:
    out = call(None, x)
    assert out.dtype == dtype, _name(op)
    # Computed in float32 from the same inputs, rounded once at the end.
    np.testing.assert_array_equal(np.asarray(out.astype(jnp.float32)),
                                  np.asarray(call(None, wide).astype(dtype).astype(jnp.float32)),
                                  err_msg=_name(op))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

X = jnp.zeros((8, 8, 3))
GRAY = jnp.zeros((8, 8, 1))


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: A.posterize(X, 9), ValueError, r"posterize: `bits` must be in \[0, 8\], got 9"),
    (lambda: A.posterize(X, -1), ValueError, r"posterize: `bits` must be in \[0, 8\]"),
    (lambda: A.posterize(X, 2.5), TypeError, "posterize: `bits` must be an int"),
    (lambda: A.posterize(X, True), TypeError, "posterize: `bits` must be an int"),
    (lambda: jax.jit(A.posterize)(X, 2.0), TypeError, "posterize: `bits` .* traced integer"),
    (lambda: A.gaussian_blur(X, 4, 1.0), ValueError, "gaussian_blur: `kernel_size` must be odd"),
    (lambda: A.gaussian_blur(X, (3, 2), 1.0), ValueError, "`kernel_size` must be odd"),
    (lambda: A.gaussian_blur(X, 0, 1.0), ValueError, "gaussian_blur: `kernel_size` must be >= 1"),
    (lambda: A.gaussian_blur(X, 17, 1.0), ValueError, "gaussian_blur: `kernel_size` 17 needs"),
    (lambda: A.gaussian_blur(X, 3.0, 1.0), TypeError, "gaussian_blur: `kernel_size`"),
    (lambda: A.gaussian_blur(X, 3, -1.0), ValueError, r"gaussian_blur: `sigma` must be > 0"),
    (lambda: A.gaussian_blur(X, 3, 0.0), ValueError, r"gaussian_blur: `sigma` must be > 0"),
    (lambda: A.gaussian_blur(X, 3, (1.0, 2.0, 3.0)), ValueError, "`sigma` must be a number or"),
    (lambda: A.gaussian_blur(X, 3, "1"), TypeError, "gaussian_blur: `sigma` must be a real"),
    (lambda: A.grayscale(GRAY), ValueError, r"grayscale: `image` must be RGB"),
    (lambda: A.grayscale(X, num_output_channels=2), ValueError, "`num_output_channels` must be"),
    (lambda: A.random_grayscale(jax.random.key(0), GRAY), ValueError,
     "random_grayscale: `image` must be RGB"),
    (lambda: A.random_grayscale(jax.random.key(0), X, probability=1.5), ValueError,
     "random_grayscale: `probability`"),
    (lambda: A.enhance_color(GRAY, 1.0), ValueError, "enhance_color: `image` must be RGB"),
    (lambda: A.enhance_contrast(GRAY, 1.0), ValueError, "enhance_contrast: `image` must be RGB"),
    (lambda: A.enhance_brightness(X, -0.5), ValueError,
     "enhance_brightness: `factor` must be >= 0.0, got -0.5"),
    (lambda: A.enhance_sharpness(X, jnp.ones(2)), ValueError,
     "enhance_sharpness: `factor` must be a scalar"),
    (lambda: A.enhance_color(X, None), TypeError, "enhance_color: `factor` must be a real"),
    (lambda: A.solarize(X, 1.5), ValueError, r"solarize: `threshold` must be in \[0.0, 1.0\]"),
    (lambda: A.solarize(X, float("nan")), ValueError, "solarize: `threshold` must be a finite"),
    (lambda: A.solarize_add(X, 2.0), ValueError, r"solarize_add: `addition` must be in"),
    (lambda: A.solarize_add(X, 0.1, threshold=-0.1), ValueError, "solarize_add: `threshold`"),
    (lambda: A.equalize(jnp.zeros((8, 8))), ValueError, "equalize: `image` must have 3 dim"),
    (lambda: A.autocontrast(jnp.zeros((2, 8, 8, 3))), ValueError,
     "autocontrast: `image` must have 3 dim"),
    (lambda: A.invert(jnp.zeros((8, 8, 3), jnp.int32)), TypeError,
     "invert: `image` must be a floating-point or uint8 array, got dtype int32"),
    (lambda: A.posterize(np.zeros((8, 8, 3), np.uint16), 2), TypeError,
     "posterize: `image` must be a floating-point or uint8 array, got dtype uint16"),
    (lambda: A.enhance_brightness(jnp.zeros((8, 8, 3), jnp.int16), 1.0), TypeError,
     "enhance_brightness: `image` must be a floating-point or uint8 array, got dtype int16"),
    (lambda: A.equalize(jnp.zeros((8, 8), jnp.uint8)), ValueError,
     "equalize: `image` must have 3 dim"),
])
def test_bad_input_names_the_op_and_the_argument(call, error, match):
  with pytest.raises(error, match=match):
    call()


@pytest.mark.xla_schedule("docs/design/photometric.md")
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the loop is the CPU schedule")
def test_batched_equalize_and_blur_are_loops_over_examples_on_the_cpu():
  # Unbatched, XLA:CPU's scatter-add histogram is 6x faster and the blur's passes stay in
  # cache; the other ops stay vectorized.
  images = jnp.zeros((4, 8, 8, 3))
  for op, looped in ((A.equalize, True), (lambda x: A.gaussian_blur(x, 3, 1.0), True),
                     (lambda x: A.enhance_sharpness(x, 1.5), False)):
    hlo = jax.jit(jax.vmap(op)).lower(images).as_text()
    assert ("stablehlo.while" in hlo) == looped
