"""Augmentation against numpy slicing, colorsys (float64) and sampling statistics."""

import colorsys
import functools
import itertools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compile_as_shipped, reuse_keys
from resampling import resize_matrix
from x64 import enable_x64

import jaxreg as jr
from jaxreg.augment import _crop, _jitter

A = jr.augment
RNG = np.random.default_rng(0)


def numbered_image(h, w, c=3):
  """Every pixel distinct, so a crop reveals where it came from."""
  return jnp.arange(h * w * c, dtype=jnp.float32).reshape(h, w, c) / (h * w * c)


def locate(crop, source):
  """(top, left) of `crop` inside `source`, by exhaustive comparison."""
  h, w = crop.shape[:2]
  for top in range(source.shape[0] - h + 1):
    for left in range(source.shape[1] - w + 1):
      if np.array_equal(source[top:top + h, left:left + w], crop):
        return top, left
  raise AssertionError("crop is not a window of the source")


# ---------------------------------------------------------------------------------------------
# Crops and flips
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "edge"])
def test_random_crop_is_a_window_of_the_padded_image(pad_mode):
  # Every crop is exactly one window of the padded image (NumPy's padding), and the window's
  # offset is uniform over all 6 x 8 of them: every offset drawn, and Pearson's chi-square
  # against the uniform at a significance of 1e-4 (20 expected per offset).
  from scipy import stats

  image = numbered_image(10, 12) + 1.0  # no zeros, so constant padding is recognizable
  padded = np.pad(np.asarray(image), ((2, 2), (3, 3), (0, 0)), mode=pad_mode)
  windows = np.lib.stride_tricks.sliding_window_view(padded, (9, 11), axis=(0, 1))
  windows = np.moveaxis(windows, 2, -1).reshape(6 * 8, 9, 11, 3)  # in (top, left) order
  keys = jax.random.split(jax.random.key(0), 960)
  # vmap, not jit: its batched primitives compile once for the three modes (all but the pad)
  crops = np.asarray(jax.vmap(lambda k: A.random_crop(k, image, (9, 11), padding=(2, 3),
                                                      pad_mode=pad_mode))(keys))
  matches = (crops[:, None] == windows[None]).all(axis=(2, 3, 4))
  np.testing.assert_array_equal(matches.sum(1), 1)  # a window, and only one
  counts = matches.sum(0)
  assert counts.min() > 0, counts.reshape(6, 8)
  assert stats.chisquare(counts).pvalue > 1e-4, counts.reshape(6, 8)


def test_flips_equal_numpy_slices():
  image = numbered_image(4, 5)
  flipped_lr = A.random_flip_left_right(jax.random.key(0), image, probability=1.0)
  flipped_ud = A.random_flip_up_down(jax.random.key(1), image, probability=1.0)
  np.testing.assert_array_equal(flipped_lr, np.asarray(image)[:, ::-1])
  np.testing.assert_array_equal(flipped_ud, np.asarray(image)[::-1])
  np.testing.assert_array_equal(A.random_flip_left_right(jax.random.key(2), image,
                                                         probability=0.0), image)
  batch = jnp.broadcast_to(image, (2000, 4, 5, 3))
  out = np.asarray(A.batched(A.random_flip_left_right)(jax.random.key(3), batch,
                                                       probability=0.3))
  flipped = np.array([np.array_equal(o, np.asarray(image)[:, ::-1]) for o in out])
  assert abs(flipped.mean() - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 2000)


def test_center_five_and_ten_crop_regions_in_documented_order():
  image = numbered_image(7, 9)
  np_image = np.asarray(image)
  h, w = 4, 5
  expected = [np_image[:h, :w], np_image[:h, -w:], np_image[-h:, :w], np_image[-h:, -w:],
              np_image[1:1 + h, 2:2 + w]]
  mirrored = np_image[:, ::-1]
  expected += [mirrored[:h, :w], mirrored[:h, -w:], mirrored[-h:, :w], mirrored[-h:, -w:],
               mirrored[1:1 + h, 2:2 + w]]
  views = np.asarray(A.ten_crop(image, (h, w)))
  assert views.shape == (10, h, w, 3)
  for view, want in zip(views, expected, strict=True):
    np.testing.assert_array_equal(view, want)
  np.testing.assert_array_equal(A.five_crop(image, (h, w)), views[:5])
  np.testing.assert_array_equal(A.center_crop(image, (h, w)), expected[4])


def test_per_example_randomness_and_reproducibility():
  image = numbered_image(16, 16)
  batch = jnp.broadcast_to(image, (8, 16, 16, 3))
  crop = A.batched(functools.partial(A.random_crop, size=12, padding=2))
  with reuse_keys():
    key = jax.random.key(5)
    eager = crop(key, batch)
    jitted = jax.jit(crop)(key, batch)
    keys = jax.random.split(key, 8)
    looped = jnp.stack([A.random_crop(k, image, 12, padding=2) for k in keys])
  np.testing.assert_array_equal(eager, jitted)
  np.testing.assert_array_equal(eager, looped)  # vmap over keys == loop over keys
  assert len({np.asarray(e).tobytes() for e in eager}) > 4  # each example its own crop


# ---------------------------------------------------------------------------------------------
# Resampling crops
# ---------------------------------------------------------------------------------------------


def test_random_resized_crop_boxes_respect_scale_and_ratio():
  scale, ratio = (0.1, 0.6), (0.5, 2.0)
  keys = jax.random.split(jax.random.key(0), 4000)
  boxes = jax.vmap(lambda k: _crop.sample_box(k, 60, 80, scale, ratio))(keys)
  top, left, h, w, found = (np.asarray(b) for b in boxes)
  assert found.mean() > 0.99
  area = h * w / (60 * 80)
  # rounding h and w to whole pixels moves the area by at most about (h + w) / 2 pixels
  slack = (h + w) / (60 * 80)
  assert np.all(area >= scale[0] - slack)
  assert np.all(area <= scale[1] + slack)
  aspect = w / h
  assert np.all(aspect >= ratio[0] * 0.8)
  assert np.all(aspect <= ratio[1] * 1.25)
  assert np.all((top >= 0) & (top + h <= 60) & (left >= 0) & (left + w <= 80))
  # log-ratio is uniform: its mean sits in the middle of the range
  assert abs(np.log(aspect).mean()) < 0.05
  # area fraction is uniform on `scale` (the boxes that fit): mean near the middle
  assert abs(area.mean() - 0.35) < 0.03


def test_resampling_the_whole_image_is_the_identity():
  image = jax.random.uniform(jax.random.key(0), (24, 24, 3))
  out = A.random_resized_crop(jax.random.key(1), image, 24, scale=(1.0, 1.0), ratio=(1.0, 1.0))
  np.testing.assert_allclose(out, image, atol=1e-5)
  out = A.random_scale_crop(jax.random.key(2), image, 24, scales=(24,))
  np.testing.assert_allclose(out, image, atol=1e-5)


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("side", [40, 20])  # a shrink to 32 and an enlargement to 32
def test_resizing_the_whole_image_equals_jax_image_resize(side, antialias):
  image = jax.random.uniform(jax.random.key(0), (side, side, 3))
  out = A.random_resized_crop(jax.random.key(1), image, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0),
                              antialias=antialias)
  ref = jax.image.resize(image, (32, 32, 3), "linear", antialias=antialias)
  np.testing.assert_allclose(out, ref, atol=2e-6)


@pytest.mark.parametrize("antialias", [True, False])
def test_random_resized_crop_resizes_the_drawn_crop(antialias):
  """torchvision's crop-then-resize: jax.image.resize of the box that was drawn, and nothing
  from outside it, even where the image has a sharp edge right at the box border."""
  height, width, size = 24, 32, (10, 14)
  scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
  keys = jax.random.split(jax.random.key(1), 4)
  images, refs, boxes = [], [], []
  with reuse_keys():  # the reference draws the same boxes from the same keys
    for i, key in enumerate(keys):
      top, left, box_h, box_w, _ = (int(v) for v in _crop.sample_box(key, height, width, scale,
                                                                   ratio))
      # The box holds values in [0, 0.5]; everything around it is 1.
      crop = 0.5 * jax.random.uniform(jax.random.key(100 + i), (box_h, box_w, 3))
      images.append(jnp.ones((height, width, 3)).at[top:top + box_h, left:left + box_w].set(crop))
      refs.append(jax.image.resize(crop, (*size, 3), "linear", antialias=antialias))
      boxes.append((box_h, box_w))
    rrc = functools.partial(A.random_resized_crop, size=size, antialias=antialias)
    eager = [rrc(k, x) for k, x in zip(keys, images, strict=True)]
    jitted = jax.jit(jax.vmap(rrc))(keys, jnp.stack(images))
  assert any(h < size[0] for h, _ in boxes)  # enlargements
  assert any(w > size[1] for _, w in boxes)  # and shrinks
  # float32 rounding of two different summations; a tap from outside the box is off by > 0.01
  np.testing.assert_allclose(np.stack(eager), np.stack(refs), atol=1e-5)
  np.testing.assert_allclose(jitted, np.stack(refs), atol=1e-5)
  assert float(jitted.max()) <= 0.5


@pytest.mark.parametrize(("shape", "ratio", "box"), [
    ((5, 1), (3.0, 4.0), (2, 0, 1, 1)),  # round(1 / 3) = 0 rows without the clamp
    ((2, 7), (0.1, 0.2), (0, 3, 2, 1)),  # round(2 * 0.2) = 0 columns without the clamp
])
def test_fallback_box_has_at_least_one_pixel_per_side(shape, ratio, box):
  # scale (1, 1) with these ratios: no try fits, so the central fallback box is used
  image = jax.random.uniform(jax.random.key(0), (*shape, 3))
  with reuse_keys():
    key = jax.random.key(1)
    *drawn, found = (int(v) for v in _crop.sample_box(key, *shape, (1.0, 1.0), ratio))
    out = A.random_resized_crop(key, image, (3, 4), scale=(1.0, 1.0), ratio=ratio)
    jitted = jax.jit(functools.partial(A.random_resized_crop, size=(3, 4), scale=(1.0, 1.0),
                                       ratio=ratio))(key, image)
  assert not found
  assert tuple(drawn) == box
  top, left, h, w = box
  ref = jax.image.resize(image[top:top + h, left:left + w], (3, 4, 3), "linear")
  np.testing.assert_allclose(out, ref, atol=1e-6)
  np.testing.assert_allclose(jitted, ref, atol=1e-6)


def windows_error(out, resized):
  """Smallest max-abs difference between `out` and a window of `resized`."""
  h, w = out.shape[:2]
  return min(float(np.abs(resized[t:t + h, left:left + w] - out).max())
             for t in range(resized.shape[0] - h + 1) for left in range(resized.shape[1] - w + 1))


@pytest.mark.parametrize("antialias", [True, False])
def test_random_scale_crop_is_a_window_of_the_resized_image(antialias):
  # 17 * 8 / 10 = 13.6: the resized image is 8 x 14, so the two axes scale differently
  image = jax.random.uniform(jax.random.key(0), (10, 17, 3))
  resized = np.asarray(jax.image.resize(image, (8, 14, 3), "linear", antialias=antialias))
  crop = functools.partial(A.random_scale_crop, size=6, scales=(8,), antialias=antialias)
  keys = jax.random.split(jax.random.key(1), 3)
  with reuse_keys():
    outs = [np.asarray(crop(k, image)) for k in keys] + list(
        np.asarray(jax.jit(jax.vmap(crop, (0, None)))(keys, image)))
  for out in outs:
    assert windows_error(out, resized) < 1e-5


def test_random_scale_crop_at_native_scale_is_an_exact_window():
  image = numbered_image(20, 30)
  crops = {locate(np.round(np.asarray(A.random_scale_crop(jax.random.key(s), image, 16,
                                                            scales=(20,))), 6),
                  np.round(np.asarray(image), 6))
           for s in range(12)}
  assert len(crops) > 3


# ---------------------------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------------------------


def colorsys_map(fn, image):
  flat = np.asarray(image, np.float64).reshape(-1, 3)
  return np.array([fn(*p) for p in flat]).reshape(np.shape(image))


def test_hsv_round_trip_matches_colorsys():
  image = jax.random.uniform(jax.random.key(0), (6, 7, 3))
  hsv = A.rgb_to_hsv(image)
  np.testing.assert_allclose(hsv, colorsys_map(colorsys.rgb_to_hsv, image), atol=1e-5)
  np.testing.assert_allclose(A.hsv_to_rgb(hsv), image, atol=1e-5)
  np.testing.assert_allclose(A.hsv_to_rgb(hsv), colorsys_map(colorsys.hsv_to_rgb, hsv),
                             atol=1e-5)


def reference_adjust(image, dh=0.0, fs=1.0):
  def adjust(r, g, b):
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    return colorsys.hsv_to_rgb((h + dh) % 1.0, min(max(s * fs, 0.0), 1.0), v)

  return colorsys_map(adjust, image)


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.7])
def test_saturation_matches_colorsys(factor):
  image = jax.random.uniform(jax.random.key(1), (5, 5, 3))
  np.testing.assert_allclose(A.adjust_saturation(image, factor),
                             reference_adjust(image, fs=factor), atol=1e-5)


@pytest.mark.parametrize("delta", [-0.4, 0.1, 0.25])
def test_hue_matches_colorsys(delta):
  image = jax.random.uniform(jax.random.key(2), (5, 5, 3))
  np.testing.assert_allclose(A.adjust_hue(image, delta), reference_adjust(image, dh=delta),
                             atol=1e-5)


@pytest.mark.parametrize("delta", [1e6 + 0.25, -1e6 + 0.25, 3.25, -7.75, 12345.678])
def test_hue_shift_is_periodic_for_any_finite_delta(delta):
  # Any finite delta is a rotation by its fraction of a turn (colorsys on delta mod 1 in
  # float64): concrete, traced, and per pixel. Tolerance: float32 colour maths, 1e-5.
  image = jax.random.uniform(jax.random.key(2), (5, 5, 3))
  want = reference_adjust(image, dh=delta % 1.0)
  np.testing.assert_allclose(A.adjust_hue(image, delta), want, atol=1e-5)
  np.testing.assert_allclose(A.adjust_hue(image, np.full((5, 5, 1), delta)), want, atol=1e-5)
  traced = jax.jit(A.adjust_hue)(image, jnp.float32(delta))
  np.testing.assert_allclose(traced, reference_adjust(image, dh=float(np.float32(delta)) % 1.0),
                             atol=1e-5)


@pytest.mark.standard_promotion  # dm_pix's own code
def test_colour_adjustments_match_dm_pix():
  import dm_pix as pix  # anchor library (test extra)

  image = jax.random.uniform(jax.random.key(11), (6, 7, 3))
  np.testing.assert_allclose(A.adjust_hue(image, 0.2), pix.adjust_hue(image, 0.2), atol=1e-5)
  np.testing.assert_allclose(A.adjust_saturation(image, 0.6), pix.adjust_saturation(image, 0.6),
                             atol=1e-5)
  np.testing.assert_allclose(A.rgb_to_hsv(image), pix.rgb_to_hsv(image), atol=1e-5)


def test_brightness_and_contrast_formulas_and_clipping():
  image = jax.random.uniform(jax.random.key(3), (6, 6, 3))
  np_image = np.asarray(image, np.float64)
  with reuse_keys():
    key = jax.random.key(4)
    out = np.asarray(A.random_brightness(key, image, 0.3))
    delta = out - np_image
    np.testing.assert_allclose(delta, delta.flat[0], atol=1e-6)  # one offset for all pixels
    assert abs(delta.flat[0]) <= 0.3
    clipped = A.random_brightness(key, image, 0.3, clip=True)
    np.testing.assert_allclose(clipped, np.clip(out, 0, 1), atol=1e-6)
    out = np.asarray(A.random_contrast(key, image, (0.2, 1.8)))
  mean = np_image.mean((0, 1), keepdims=True)
  factor = (out - mean) / (np_image - mean)
  np.testing.assert_allclose(factor, factor.flat[0], rtol=1e-3)
  assert 0.2 <= factor.flat[0] <= 1.8


def test_color_jitter_brightness_alone_is_the_additive_rule_unclipped():
  # Clipped, in a random order: test_color_jitter_applies_the_drawn_order_and_factors.
  image = jax.random.uniform(jax.random.key(5), (8, 8, 3))
  out = np.asarray(A.color_jitter(jax.random.key(7), image, brightness=0.2, clip=False))
  delta = out - np.asarray(image)
  np.testing.assert_allclose(delta, delta.flat[0], atol=1e-6)
  assert abs(delta.flat[0]) <= 0.2


def reference_jitter(key, image, strengths, random_order):
  """The documented recipe, op by op: split the key in five, one uniform factor per op."""
  k_order, k_b, k_c, k_s, k_h = jax.random.split(key, 5)
  b, c, s, h = strengths
  factors = [float(jax.random.uniform(k_b, (), minval=-b, maxval=b)),
             float(jax.random.uniform(k_c, (), minval=max(0, 1 - c), maxval=1 + c)),
             float(jax.random.uniform(k_s, (), minval=max(0, 1 - s), maxval=1 + s)),
             float(jax.random.uniform(k_h, (), minval=-h, maxval=h))]
  order = np.asarray(jax.random.permutation(k_order, 4)) if random_order else range(4)
  x = image
  for i in order:  # straight-line jnp: differentiable, no switch, select or custom rule
    x = jnp.clip(JITTER_OPS[i](x, factors[i]), 0, 1)
  return x, list(order)


# The documented ops one by one (brightness, contrast, saturation, hue), on an HWC image.
JITTER_OPS = (lambda x, f: x + f,
              lambda x, f: (x - x.mean((0, 1), keepdims=True)) * f + x.mean((0, 1), keepdims=True),
              lambda x, f: A.adjust_saturation(x, f), lambda x, f: A.adjust_hue(x, f))


@pytest.mark.parametrize("random_order", [True, False])
def test_color_jitter_applies_the_drawn_order_and_factors(random_order):
  image = jax.random.uniform(jax.random.key(11), (6, 5, 3))
  strengths = (0.3, 0.5, 0.6, 0.2)
  keys = jax.random.split(jax.random.key(12), 16)
  jitter = functools.partial(A.color_jitter, brightness=0.3, contrast=0.5, saturation=0.6,
                             hue=0.2, random_order=random_order)
  outs = jax.jit(jax.vmap(lambda k: jitter(k, image)))(keys)
  orders = set()
  with reuse_keys():
    for key, out in zip(keys, outs, strict=True):
      expected, order = reference_jitter(key, image, strengths, random_order)
      np.testing.assert_allclose(out, expected, atol=2e-6)
      np.testing.assert_allclose(jitter(key, image), out, atol=2e-6)  # eager == jit + vmap
      orders.add(tuple(order))
  assert len(orders) > 8 if random_order else orders == {(0, 1, 2, 3)}
  with pytest.raises(TypeError, match="random_order"):
    A.color_jitter(jax.random.key(0), image, brightness=0.1, random_order=1)


def test_color_jitter_derivatives_are_those_of_the_recipe():
  """Batched on a CPU the jitter runs as a loop with its own derivative rule: reverse and
  forward mode must still equal plain autodiff of the op-by-op recipe. In the fixed order;
  the random order's derivatives are test_composition.py's float64 finite-difference row."""
  random_order = False
  images = jax.random.uniform(jax.random.key(13), (3, 5, 4, 3))
  weights = jax.random.normal(jax.random.key(14), images.shape)
  strengths = (0.3, 0.5, 0.6, 0.2)
  keys = jax.random.split(jax.random.key(15), 3)
  jitter = functools.partial(A.color_jitter, brightness=0.3, contrast=0.5, saturation=0.6,
                             hue=0.2, random_order=random_order)
  loss = lambda x: jnp.sum(weights * jax.vmap(jitter)(keys, x))  # noqa: E731
  with reuse_keys():
    recipe = lambda x: jnp.sum(weights * jnp.stack([  # noqa: E731
        reference_jitter(k, image, strengths, random_order)[0]
        for k, image in zip(keys, x, strict=True)]))
    expected = jax.grad(recipe)(images)
    expected_jvp = jax.jvp(recipe, (images,), (weights,))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(images), expected, atol=2e-5)
    np.testing.assert_allclose(jax.jvp(loss, (images,), (weights,)), expected_jvp, rtol=1e-5)
    one = jax.grad(lambda x: jnp.sum(weights[0] * jitter(keys[0], x)))(images[0])  # unbatched
    np.testing.assert_allclose(one, expected[0], atol=2e-5)


def test_color_jitter_under_nested_vmap_equals_a_python_loop():
  images = jax.random.uniform(jax.random.key(16), (2, 3, 6, 6, 3))  # (seeds, batch, H, W, C)
  jitter = A.batched(functools.partial(A.color_jitter, brightness=0.4, contrast=0.4,
                                       saturation=0.4, hue=0.1))
  keys = jax.random.split(jax.random.key(17), 2)
  with reuse_keys():
    nested = jax.jit(jax.vmap(jitter))(keys, images)
    looped = [jitter(k, x) for k, x in zip(keys, images, strict=True)]
  np.testing.assert_allclose(nested, np.stack(looped), atol=1e-6)


def jitter_cases(used):
  """Every order of the ``used`` ops, one example each: images (a little outside [0, 1] too),
  draws (brightness, contrast, saturation, hue; one column per example) and orders."""
  orders = np.array(list(itertools.permutations(range(len(used)))), np.int32)
  k_image, k_draw = jax.random.split(jax.random.key(18))
  images = jax.random.uniform(k_image, (len(orders), 6, 5, 3), minval=-0.2, maxval=1.2)
  lo, hi = np.array([[-0.4], [0.5], [0.5], [-0.2]]), np.array([[0.4], [1.5], [1.5], [0.2]])
  draws = jax.random.uniform(k_draw, (4, len(orders)), minval=lo, maxval=hi)
  return images, draws, orders


def accelerator_jitter(used, clip):
  # What accelerators run, for one example: a CPU loops over the examples instead.
  return lambda x, d, order: _jitter.jitter_fused(x, tuple(d), used, order, clip)


def select_jitter(used, clip):
  # Every op at every position and a select: what `vmap` makes of a switch per position.
  return lambda x, d, order: _jitter.jitter_in_order(x, tuple(d), used, order, clip)


# Unclipped once, with every op: `clip` is read by no condition that depends on `used`.
@pytest.mark.parametrize(("used", "clip"), [((0, 1, 2, 3), True), ((0, 2, 3), True),
                                            ((0, 1, 2), True), ((1, 3), True), ((1,), True),
                                            ((0, 1, 2, 3), False)])
def test_accelerator_jitter_equals_the_ops_one_by_one_in_every_order(used, clip):
  images, draws, orders = jitter_cases(used)
  fused = accelerator_jitter(used, clip)
  batched = jax.jit(jax.vmap(fused, in_axes=(0, 1, 0)))(images, draws, orders)
  selected = jax.vmap(select_jitter(used, clip), in_axes=(0, 1, 0))(images, draws, orders)
  np.testing.assert_allclose(batched, selected, atol=2e-6)
  for i, order in enumerate(orders):
    expected = images[i]
    for position in order:
      op = used[position]
      expected = JITTER_OPS[op](expected, draws[op, i])
      expected = jnp.clip(expected, 0, 1) if clip else expected
    np.testing.assert_allclose(batched[i], expected, atol=2e-6)
    if i < 3:  # eager, with the order traced and static
      np.testing.assert_allclose(fused(images[i], draws[:, i], jnp.asarray(order)), expected,
                                 atol=2e-6)
      static = tuple(int(p) for p in order)
      np.testing.assert_allclose(fused(images[i], draws[:, i], static), expected, atol=2e-6)


def test_accelerator_jitter_derivatives_equal_the_select_form():
  # Unclipped: with clipping between the ops, a pixel clipped in two channels at once (both 1,
  # say) reaches hue with a tie between its largest channels, where hue's derivative is a
  # convention (either channel's one-sided derivative); the two forms may pick different ones.
  # The clipped forms are equal in value (the test above), in every order.
  used = (0, 1, 2, 3)
  images, draws, orders = jitter_cases(used)
  weights = jax.random.normal(jax.random.key(19), images.shape)

  def loss(form):
    batched = jax.vmap(form(used, False), in_axes=(0, 1, 0))
    return lambda x, d: jnp.sum(weights * batched(x, d, orders))

  fused, select = loss(accelerator_jitter), loss(select_jitter)
  expected = jax.jit(jax.grad(select, argnums=(0, 1)))(images, draws)
  got = jax.jit(jax.grad(fused, argnums=(0, 1)))(images, draws)
  assert np.abs(expected[1]).max() > 0.1
  for g, e in zip(got, expected, strict=True):
    np.testing.assert_allclose(g, e, atol=2e-5)
  tangents = (weights, jnp.ones_like(draws))
  jvp = jax.jit(lambda f, *t: jax.jvp(f, (images, draws), t)[1], static_argnums=0)
  np.testing.assert_allclose(jvp(fused, *tangents), jvp(select, *tangents), rtol=1e-5)


def count_primitive(jaxpr, name):
  """How many equations of primitive ``name`` a jaxpr holds, its sub-jaxprs included."""
  count = 0
  for eqn in jaxpr.eqns:
    count += eqn.primitive.name == name
    count += sum(count_primitive(sub, name) for sub in jax.extend.core.jaxprs_in_params(eqn.params))
  return count


@pytest.mark.parametrize("random_order", [True, False])
def test_accelerator_jitter_reduces_once(random_order):
  # Contrast's mean is the only reduction, whatever the order: under `vmap` a reduction per
  # position (every position may be contrast) would be a kernel each, re-reading the images.
  def reductions(form, used):
    images, draws, orders = jitter_cases(used)
    fixed = tuple(range(len(used)))
    fn = lambda x, d, order: form(used, True)(x, d, order if random_order else fixed)  # noqa: E731
    jaxpr = jax.make_jaxpr(jax.vmap(fn, in_axes=(0, 1, 0)))(images, draws, orders)
    return count_primitive(jaxpr.jaxpr, "reduce_sum")

  assert reductions(accelerator_jitter, (0, 1, 2, 3)) == 1
  assert reductions(accelerator_jitter, (0, 2, 3)) == 0
  assert reductions(select_jitter, (0, 1, 2, 3)) == (4 if random_order else 1)


@pytest.mark.xla_schedule("docs/design/augmentation_backends.md")
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the loop is the CPU schedule")
def test_batched_jitter_is_a_loop_of_branches_on_the_cpu():
  # Vectorized, a per-example op choice is a select (and the fixed order has no choice at all);
  # in the CPU's loop over examples each position is a real branch.
  for random_order in (True, False):
    jitter = A.batched(functools.partial(A.color_jitter, brightness=0.3, hue=0.1,
                                         random_order=random_order))
    hlo = jax.jit(jitter).lower(jax.random.key(0), jnp.zeros((4, 8, 8, 3))).as_text()
    assert "stablehlo.case" in hlo


def _compiled_crop_and_flip(images, size):
  """The CPU's compiled HLO of a batched random_resized_crop to ``size`` then flip."""
  def crop_and_flip(key, image):
    k_crop, k_flip = jax.random.split(key)
    return A.random_flip_left_right(k_flip, A.random_resized_crop(k_crop, image, size))

  lowered = jax.jit(A.batched(crop_and_flip)).lower(jax.random.key(0), images)
  return compile_as_shipped(lowered).as_text()


@pytest.mark.xla_schedule("docs/design/augmentation_backends.md")
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the gather is the CPU schedule")
def test_flip_is_a_gather_on_the_cpu():
  # A select fused after a resampling crop makes XLA:CPU compute the crop once per branch; the
  # flip is one gather with reversed indices instead, and the crop is computed once.
  hlo = _compiled_crop_and_flip(jnp.zeros((4, 16, 16, 3)), 8)
  # As a select (jnp.where(flip, jnp.flip(crop), crop)), one selects the image-sized crops.
  selects = [line for line in hlo.splitlines() if "f32[4,8,8,3]" in line and " select(" in line]
  assert not selects, selects
  flipped = A.random_flip_left_right(jax.random.key(1), jnp.arange(6.0).reshape(1, 2, 3),
                                     probability=1.0)
  np.testing.assert_array_equal(flipped, np.arange(6.0).reshape(1, 2, 3)[:, ::-1])


@pytest.mark.xla_schedule("docs/design/augmentation_backends.md")
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU schedule of uint8 batches")
def test_uint8_batches_stay_row_major_on_the_cpu():
  # Resampled rows first, or flipped by a vmapped gather, a uint8 batch comes out of XLA:CPU in
  # a transposed layout and is copied back (a quarter of the timm recipe's time); columns
  # first and a per-example flip keep the row-major layout.
  hlo = _compiled_crop_and_flip(jnp.zeros((4, 16, 16, 3), jnp.uint8), 12)
  batch = [line for line in hlo.splitlines() if "u8[4,12,12,3]{" in line]
  assert batch
  transposed = [line for line in batch if "u8[4,12,12,3]{3,2,1,0}" not in line]
  assert not transposed, transposed


def test_colour_ops_preserve_half_precision():
  # float32 images: test_params.py's apply-of-draw rows check each colour op's dtype.
  dtype = jnp.bfloat16
  image = jax.random.uniform(jax.random.key(8), (4, 4, 3)).astype(dtype)
  k1, k2, k3, k4, k5 = jax.random.split(jax.random.key(9), 5)
  for out in (A.random_brightness(k1, image, 0.1), A.random_contrast(k2, image, (0.5, 1.5)),
              A.random_saturation(k3, image, (0.5, 1.5)), A.random_hue(k4, image, 0.1),
              A.color_jitter(k5, image, brightness=0.1, saturation=0.2)):
    assert out.dtype == dtype


# Pixels outside [0, 1], as an unclipped brightness step leaves them: V <= 0, V = 0, S > 1.
OUT_OF_RANGE = jnp.array([[[-0.1, -0.5, -0.3], [0.0, -0.5, -0.2], [0.5, -0.5, 0.0],
                           [-0.2, -0.2, -0.2], [1.3, 0.2, 0.4]]])


@pytest.mark.parametrize("jit", [False, True])
def test_saturation_of_pixels_outside_the_unit_range(jit):
  adjust = jax.jit(A.adjust_saturation) if jit else A.adjust_saturation
  px = np.asarray(OUT_OF_RANGE, np.float64)
  value = px.max(-1, keepdims=True)
  np.testing.assert_allclose(adjust(OUT_OF_RANGE, 1.0), px, atol=1e-6)  # identity
  np.testing.assert_allclose(adjust(OUT_OF_RANGE, 0.0), np.broadcast_to(value, px.shape),
                             atol=1e-6)  # grey (V, V, V)
  np.testing.assert_allclose(adjust(OUT_OF_RANGE, 0.4), value - 0.4 * (value - px), atol=1e-6)
  for factor in (0.0, 0.4, 1.0, 1.7):
    out = np.asarray(adjust(OUT_OF_RANGE, factor))
    np.testing.assert_allclose(out.max(-1, keepdims=True), value, atol=1e-6)  # V is kept
  # Beyond 1 only the pixel with no negative channel (the last) gains saturation, up to S = 1
  # (its smallest channel reaches 0, as colorsys says); the others have S >= 1 or V <= 0.
  out = np.asarray(adjust(OUT_OF_RANGE, 1.7))
  np.testing.assert_allclose(out[0, :4], px[0, :4], atol=1e-6)
  np.testing.assert_allclose(out[0, 4], reference_adjust(OUT_OF_RANGE[0, 4], fs=1.7), atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_hue_of_pixels_outside_the_unit_range(jit):
  adjust = jax.jit(A.adjust_hue) if jit else A.adjust_hue
  px = np.asarray(OUT_OF_RANGE, np.float64)
  np.testing.assert_allclose(adjust(OUT_OF_RANGE, 0.0), px, atol=1e-6)
  np.testing.assert_allclose(adjust(OUT_OF_RANGE, 1.0), px, atol=1e-6)  # a full turn
  np.testing.assert_allclose(adjust(adjust(OUT_OF_RANGE, 0.3), -0.3), px, atol=1e-6)
  out = np.asarray(adjust(OUT_OF_RANGE, 0.3))
  np.testing.assert_allclose(out.max(-1), px.max(-1), atol=1e-6)  # V and chroma are kept
  np.testing.assert_allclose(out.max(-1) - out.min(-1), px.max(-1) - px.min(-1), atol=1e-6)


def assert_within_one_bf16_ulp(got, ideal):
  """`got` (bfloat16) is the float32 `ideal` rounded to bfloat16, give or take one ulp.

  Near 0 (float32 rounding noise such as 3e-8 for an exact 0) the ulp of 2**-16 is used.
  """
  ideal = np.asarray(ideal, np.float64)
  ulp = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(ideal), 2.0**-16))) - 7)
  assert np.all(np.abs(np.asarray(got, np.float64) - ideal) <= ulp)


def test_half_precision_colour_ops_compute_in_float32():
  # bfloat16; float16 takes the same branch (a float narrower than float32 computes in it).
  dtype = jnp.bfloat16
  image = jax.random.uniform(jax.random.key(21), (6, 6, 3)).astype(dtype)
  wide = image.astype(jnp.float32)
  k1, k2, k3 = jax.random.split(jax.random.key(22), 3)
  ops = [lambda x: A.adjust_hue(x, 0.0), lambda x: A.adjust_hue(x, 0.2),
         lambda x: A.adjust_saturation(x, 0.6), lambda x: A.adjust_saturation(x, 1.3),
         lambda x: A.random_brightness(k1, x, 0.3), lambda x: A.random_contrast(k2, x, (0.5, 1.5)),
         lambda x: A.color_jitter(k3, x, brightness=0.3, contrast=0.3, saturation=0.4,
                                  hue=0.1, clip=False)]
  with reuse_keys():
    for op in ops:
      ideal = op(wide)
      for out in (op(image), jax.jit(op)(image)):
        assert out.dtype == dtype
        assert_within_one_bf16_ulp(out, ideal)
  # hue 0 gives back the input, to the last bit or one ulp
  assert_within_one_bf16_ulp(A.adjust_hue(image, 0.0), image.astype(jnp.float32))


# ---------------------------------------------------------------------------------------------
# Erasing and mixing
# ---------------------------------------------------------------------------------------------


def test_random_erasing_fills_one_rectangle_of_the_right_size():
  image = jnp.ones((40, 50, 3))
  for seed in range(20):
    out = np.asarray(A.random_erasing(jax.random.key(seed), image, probability=1.0,
                                      scale=(0.05, 0.2), value=0.0))
    erased = out[:, :, 0] == 0
    rows, cols = np.nonzero(erased)
    assert erased.any()
    box = erased[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    assert box.all()  # a solid rectangle
    assert 0.05 - 0.01 <= erased.mean() <= 0.2 + 0.01
  np.testing.assert_array_equal(A.random_erasing(jax.random.key(0), image, probability=0.0),
                                image)


def erased_box(out):
  """(height, width) of the erased (zero) rectangle, or None."""
  rows, cols = np.nonzero(np.asarray(out)[:, :, 0] == 0)
  if not rows.size:
    return None
  return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


@pytest.mark.parametrize(("ratio", "tall"), [((2.5, 3.0), True), ((1 / 3, 0.4), False)])
def test_random_erasing_ratio_is_height_over_width(ratio, tall):
  # torchvision's RandomErasing: h = round(sqrt(area * r)), w = round(sqrt(area / r)), so a
  # ratio above 1 erases tall boxes and RandomErasing(ratio=(0.3, 1.0)) wide ones.
  image = jnp.ones((40, 40, 3))
  keys = jax.random.split(jax.random.key(0), 64)
  outs = jax.vmap(lambda k: A.random_erasing(k, image, probability=1.0, scale=(0.1, 0.15),
                                             ratio=ratio))(keys)
  boxes = [erased_box(o) for o in outs]
  aspects = np.array([h / w for h, w in boxes if h and w])
  assert len(aspects) == 64
  # rounding each side moves the ratio by a few percent at these sizes (sides of 7 to 21)
  assert np.all(aspects >= ratio[0] * 0.8)
  assert np.all(aspects <= ratio[1] * 1.25)
  assert np.all(aspects > 1) if tall else np.all(aspects < 1)


def torchvision_erasing_probability(height, width, scale, ratio, draws=200_000, seed=0):
  """How often torchvision's RandomErasing.get_params finds a box (float64 numpy).

  Its algorithm as documented: 10 tries of an area fraction uniform in ``scale`` and a
  log-uniform ratio h / w; a try fits when ``h < H and w < W`` (Python's round for the sides).
  """
  rng = np.random.default_rng(seed)
  area = height * width * rng.uniform(scale[0], scale[1], (draws, 10))
  aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), (draws, 10)))
  h, w = np.round(np.sqrt(area * aspect)), np.round(np.sqrt(area / aspect))  # half to even
  return np.mean(((h < height) & (w < width)).any(axis=1))


def test_random_erasing_boxes_stay_strictly_inside_as_in_torchvision():
  # 8x8 with scale (0.3, 0.9): torchvision never erases a whole row or column of the image
  # and finds a box 98.8% of the time; the same rule here gives the same frequency. (The old
  # rule, sides up to the image's, always found one.)
  image = jnp.ones((8, 8, 3))
  n = 4000
  keys = jax.random.split(jax.random.key(1), n)
  outs = jax.jit(jax.vmap(lambda k: A.random_erasing(k, image, probability=1.0,
                                                     scale=(0.3, 0.9))))(keys)
  boxes = [erased_box(o) for o in outs]
  found = [b for b in boxes if b is not None]
  assert all(h < 8 and w < 8 for h, w in found)
  expected = torchvision_erasing_probability(8, 8, (0.3, 0.9), (0.3, 3.3))  # 0.988
  assert abs(len(found) / n - expected) < 5 * np.sqrt(expected * (1 - expected) / n) + 1e-3


def test_center_views_round_odd_margins_down():
  # Margins of 3 (rows) and 5 (columns): offsets 1 and 2. (torchvision's round half to even
  # gives 2 and 2: the documented one-pixel difference for margins of 3, 7, 11, ...)
  image = numbered_image(7, 9)
  want = np.asarray(image)[1:5, 2:6]
  np.testing.assert_array_equal(A.center_crop(image, 4), want)
  np.testing.assert_array_equal(A.five_crop(image, 4)[4], want)
  np.testing.assert_array_equal(A.ten_crop(image, 4)[4], want)
  np.testing.assert_array_equal(A.ten_crop(image, 4)[9], np.asarray(image)[:, ::-1][1:5, 2:6])


def test_cutmix_of_images_without_pixels_keeps_the_labels():
  labels = jax.nn.one_hot(jnp.array([0, 1, 2]), 3)
  for shape in ((3, 0, 5, 3), (3, 5, 0, 3)):
    images, mixed = A.cutmix(jax.random.key(0), jnp.zeros(shape), labels)
    assert images.shape == shape
    np.testing.assert_array_equal(mixed, labels)  # was 0 / 0: all NaN


def test_traced_flip_probability_out_of_range_gives_nan():
  image = numbered_image(3, 4)
  flip = jax.jit(lambda p: A.random_flip_left_right(jax.random.key(0), image, probability=p))
  np.testing.assert_array_equal(flip(1.0), np.asarray(image)[:, ::-1])
  np.testing.assert_array_equal(flip(0.0), image)
  for bad in (2.0, -1.0, float("nan")):  # a Bernoulli draw would clamp these silently
    assert np.isnan(np.asarray(flip(bad))).all()


def test_saturation_with_a_traced_negative_factor_gives_nan():
  image = numbered_image(2, 3)
  saturate = jax.jit(A.adjust_saturation)
  np.testing.assert_allclose(saturate(image, 0.5), A.adjust_saturation(image, 0.5), rtol=1e-6)
  out = np.asarray(saturate(image, jnp.array([[[-1.0]], [[0.5]]])))  # per-pixel factors
  assert np.isnan(out[0]).all()
  assert np.isfinite(out[1]).all()


def cutmix_boxes(alpha, m, height, width, rng):
  """float64 NumPy draws of cutmix's documented sampler: lam ~ Beta(alpha, alpha), a box of
  sides round(sqrt(1 - lam) * size) about a uniform centre, its edges rounded and clipped to
  the image. Returns each box's rows and its area, as fractions of the image's."""
  cut = np.sqrt(1 - rng.beta(alpha, alpha, m))
  extent = []
  for size in (height, width):
    half, centre = np.round(cut * size) / 2, rng.uniform(0, size, m)
    extent.append(np.clip(np.round(centre + half), 0, size)
                  - np.clip(np.round(centre - half), 0, size))
  return extent[0] / height, extent[0] * extent[1] / (height * width)


@pytest.mark.parametrize("alpha", [0.4, 1.0])
def test_mix_weights_are_beta(alpha):
  # mixup's weights are Beta(alpha, alpha): Kolmogorov-Smirnov against SciPy's distribution at
  # a significance of 1e-4, by Kolmogorov's bound P(sqrt(n) D > c) <= 2 exp(-2 c^2). cutmix's
  # boxes, through its public draw (one program for both alphas: alpha is traced), against a
  # float64 simulation of its documented sampler: two-sample KS of the pasted rows and area at
  # 5e-5 each (conservative for these discrete fractions), and the other alpha's simulation
  # must be rejected (a sampler that ignored alpha would pass at one alpha only).
  from scipy import stats

  n, height, width = 4000, 6, 8
  images, labels = jnp.zeros((n, 1, 1, 1)), jnp.zeros((n, 2))
  mixup = A.draw(A.mixup)(jax.random.key(2), images, labels, alpha=alpha).lam
  bound = np.sqrt(-0.5 * np.log(1e-4 / 2) / n)
  ks = stats.kstest(np.asarray(mixup, np.float64), stats.beta(alpha, alpha).cdf).statistic
  assert ks < bound, (ks, bound)
  box = A.draw(A.cutmix)(jax.random.key(3), np.zeros((n, height, width, 1), np.float32), labels,
                         alpha=alpha)
  top, bottom, left, right = (np.asarray(v, np.float64)
                              for v in (box.top, box.bottom, box.left, box.right))
  drawn = ((bottom - top) / height, (bottom - top) * (right - left) / (height * width))
  rng = np.random.default_rng(4)
  other = {0.4: 1.0, 1.0: 0.4}[alpha]
  for a, tested in ((alpha, True), (other, False)):
    for name, ours, want in zip(("rows", "area"), drawn, cutmix_boxes(a, 100_000, height, width,
                                                                      rng), strict=True):
      p = stats.ks_2samp(ours, want).pvalue
      assert (p > 5e-5) == tested, (name, a, p)


def test_mix_weights_at_a_small_alpha():
  # At alpha 0.01 the gammas underflow float32 (the draw works in log space): the weights are
  # finite and in [0, 1], and Beta(alpha, alpha)'s symmetry puts half of them above 1/2
  # (binomial, at a significance of 1e-4).
  from scipy import stats

  n = 4000
  lam = np.asarray(A.draw(A.mixup)(jax.random.key(3), jnp.zeros((n, 1, 1, 1)),
                                   jnp.zeros((n, 2)), alpha=0.01).lam)
  assert np.isfinite(lam).all()
  assert ((lam >= 0) & (lam <= 1)).all()
  above = int((lam > 0.5).sum())
  assert stats.binom.ppf(5e-5, n, 0.5) <= above <= stats.binom.isf(5e-5, n, 0.5), above


def test_mixes_keep_float32_when_the_default_float_is_float64():
  # Under x64 the draws' default float is float64; the boxes and the weights stay float32, so
  # strict promotion (the suite's) has nothing to promote and the outputs keep the inputs' dtype.
  images, labels = jnp.ones((2, 6, 8, 3), jnp.float32), jnp.eye(2, dtype=jnp.float32)
  with enable_x64(True):
    for mix in (A.cutmix, A.mixup):
      mixed, targets = mix(jax.random.key(0), images, labels)
      assert mixed.dtype == targets.dtype == jnp.float32, mix.__name__
      np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)


def test_cutmix_label_weight_is_the_pasted_area():
  n = 32
  images = jnp.broadcast_to((jnp.arange(n) % 2).astype(jnp.float32)[:, None, None, None],
                            (n, 10, 12, 3))
  labels = jax.nn.one_hot(jnp.arange(n) % 2, 2)
  x, y = A.cutmix(jax.random.key(1), images, labels)
  pasted_ones = np.asarray(x).mean((1, 2, 3))
  np.testing.assert_allclose(np.asarray(y)[:, 1], pasted_ones, atol=1e-6)
  np.testing.assert_allclose(np.asarray(y).sum(1), 1.0, rtol=1e-6)


def test_multi_crop_predict_averages_views_and_scales():
  # Against float64 NumPy: the ten crops as slices (the five of the image, then of its mirror
  # image); each scale resizes the shorter side (12 -> 16: 16 x 19) by antialiased linear
  # resampling, then takes the centre crop (odd margins rounded down). The model weights the
  # columns, so a mirrored view or a shifted crop changes its output.
  x = np.random.default_rng(2).random((2, 12, 14, 3)).astype(np.float32)
  ramp = np.arange(1, 9, dtype=np.float32)[:, None]
  model = lambda batch: (batch * ramp).mean((1, 2))  # noqa: E731
  x64 = x.astype(np.float64)

  def predict(view):
    return (view * ramp.astype(np.float64)).mean((1, 2))

  def crops(image, h=8, w=8):
    top, left = (image.shape[1] - h) // 2, (image.shape[2] - w) // 2
    return [image[:, :h, :w], image[:, :h, -w:], image[:, -h:, :w], image[:, -h:, -w:],
            image[:, top:top + h, left:left + w]]

  out = A.multi_crop_predict(model, jnp.asarray(x), size=8, crops="ten")
  views = crops(x64) + crops(x64[:, :, ::-1])
  np.testing.assert_allclose(out, np.mean([predict(v) for v in views], 0), rtol=1e-5)
  two_scales = A.multi_crop_predict(model, jnp.asarray(x), size=8, crops="center",
                                    scales=(12, 16))
  want = 0.0
  for height, width in ((12, 14), (16, 19)):
    resized = np.einsum("ah,bw,nhwc->nabc", resize_matrix(12, height), resize_matrix(14, width),
                        x64)
    want = want + predict(crops(resized)[4]) / 2
  np.testing.assert_allclose(two_scales, want, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input():
  key = jax.random.key(0)
  image = jnp.ones((8, 8, 3))
  with pytest.raises(ValueError, match="HWC"):
    A.random_crop(key, jnp.ones((2, 8, 8, 3)), 4)
  with pytest.raises(ValueError, match="larger than the padded image"):
    A.random_crop(key, image, 11, padding=1)
  with pytest.raises(ValueError, match="pad_mode"):
    A.random_crop(key, image, 4, pad_mode="wrap")
  with pytest.raises(TypeError, match="floating-point or uint8 array, got dtype int32"):
    A.random_flip_left_right(key, jnp.ones((8, 8, 3), jnp.int32))
  with pytest.raises(ValueError, match="probability"):
    A.random_flip_up_down(key, image, probability=1.5)
  with pytest.raises(ValueError, match="larger than the image"):
    A.ten_crop(image, 9)
  with pytest.raises(ValueError, match="scale"):
    A.random_resized_crop(key, image, 4, scale=(0.5, 0.1))
  with pytest.raises(ValueError, match="smaller than the"):
    A.random_scale_crop(key, image, 8, scales=(4,))
  with pytest.raises(ValueError, match=r"factors\[0\] <= factors\[1\]"):
    A.random_contrast(key, image, (1.5, 0.5))
  with pytest.raises(ValueError, match="max_delta"):
    A.random_hue(key, image, 0.7)
  with pytest.raises(ValueError, match="RGB"):
    A.random_saturation(key, jnp.ones((8, 8, 1)), (0.5, 1.5))
  with pytest.raises(ValueError, match="NHWC"):
    A.batched(A.random_flip_left_right)(key, image)
  with pytest.raises(TypeError, match="floating-point"):
    A.mixup(key, jnp.ones((4, 8, 8, 3)), jnp.arange(4))
  with pytest.raises(ValueError, match=r"\(N, classes\)"):
    A.cutmix(key, jnp.ones((4, 8, 8, 3)), jnp.ones((3, 2)))
  with pytest.raises(ValueError, match="alpha"):
    A.mixup(key, jnp.ones((4, 8, 8, 3)), jnp.ones((4, 2)), alpha=0.0)
  with pytest.raises(ValueError, match="crops"):
    A.multi_crop_predict(lambda b: b, jnp.ones((1, 8, 8, 3)), size=4, crops="three")
  with pytest.raises(TypeError, match="callable"):
    A.compose(A.random_flip_left_right, 3)


def test_random_crop_accepts_the_documented_padding_forms():
  image = numbered_image(4, 5)
  with reuse_keys():
    key = jax.random.key(0)
    for padding in (2, np.int64(2), (2, 2), [2, 2], (np.int32(2), 2), np.array([2, 2])):
      np.testing.assert_array_equal(A.random_crop(key, image, 6, padding=padding),
                                    A.random_crop(key, image, 6, padding=2))
    assert A.random_crop(key, image, (4, 9), padding=(0, 2)).shape == (4, 9, 3)
    np.testing.assert_array_equal(A.random_crop(key, image, (4, 5), padding=0), image)


KEY_OPS = {
    "crop": lambda k, x, **kw: A.random_crop(k, x, 3, **kw),
    "rrc": lambda k, x, **kw: A.random_resized_crop(k, x, 3, **kw),
    "msc": lambda k, x, **kw: A.random_scale_crop(k, x, 3, **kw),
    "erase": lambda k, x, **kw: A.random_erasing(k, x, **kw),
    "brightness": lambda k, x, *a, **kw: A.random_brightness(k, x, *a, **kw),
    "contrast": lambda k, x, **kw: A.random_contrast(k, x, (0.5, 1.5), **kw),
    "saturation": lambda k, x, **kw: A.random_saturation(k, x, (0.5, 1.5), **kw),
    "hue": lambda k, x, *a, **kw: A.random_hue(k, x, *a, **kw),
    "jitter": lambda k, x, **kw: A.color_jitter(k, x, brightness=0.1, **kw),
    "mixup": lambda k, x, **kw: A.mixup(k, x[None], jnp.ones((1, 2)), **kw),
}


@pytest.mark.parametrize(("op", "args", "kwargs", "error", "match"), [
    ("crop", (), {"padding": (1, 2, 3)}, ValueError, r"`padding`.*\(1, 2, 3\)"),
    ("crop", (), {"padding": 1.7}, TypeError, r"`padding`.*1\.7"),
    ("crop", (), {"padding": (1.7, 2.2)}, TypeError, r"`padding`.*\(1\.7, 2\.2\)"),
    ("crop", (), {"padding": "ab"}, TypeError, r"`padding`.*'ab'"),
    ("crop", (), {"padding": True}, TypeError, r"`padding`.*True"),
    ("crop", (), {"padding": (1, -1)}, ValueError, r"`padding` must be >= 0.*\(1, -1\)"),
    ("rrc", (), {"scale": 0.5}, TypeError, r"`scale`.*pair.*0\.5"),
    ("rrc", (), {"scale": (0.5,)}, ValueError, r"`scale`.*pair.*\(0\.5,\)"),
    ("rrc", (), {"ratio": (1, 2, 3)}, ValueError, r"`ratio`.*pair.*\(1, 2, 3\)"),
    ("rrc", (), {"ratio": "ab"}, TypeError, r"`ratio`.*'ab'"),
    ("rrc", (), {"ratio": (0.0, 1.0)}, ValueError, r"`ratio`.*ratio\[0\] > 0.*\(0\.0, 1\.0\)"),
    ("rrc", (), {"scale": (0.1, float("nan"))}, ValueError, r"`scale`.*\(0\.1, nan\)"),
    ("rrc", (), {"antialias": "x"}, TypeError, r"`antialias`.*'x'"),
    ("msc", (), {"scales": ()}, ValueError, r"`scales`.*\(\)"),
    ("msc", (), {"antialias": 1}, TypeError, r"`antialias`.*1"),
    ("erase", (), {"scale": 0.5}, TypeError, r"`scale`.*pair.*0\.5"),
    ("erase", (), {"ratio": (0.3,)}, ValueError, r"`ratio`.*pair.*\(0\.3,\)"),
    ("erase", (), {"value": float("nan")}, ValueError, r"`value`.*nan"),
    ("erase", (), {"value": jnp.ones(4)}, ValueError, r"`value`.*broadcasts.*\(4,\)"),
    ("erase", (), {"value": (0.5, float("inf"), 0.5)}, ValueError,
     r"`value` must be finite everywhere, got \(0\.5, inf, 0\.5\).*inf at index \(1,\)"),
    ("erase", (), {"value": jnp.ones((2, 8, 8, 3))}, ValueError,
     r"`value`.*without enlarging.*\(2, 8, 8, 3\)"),
    ("erase", (), {"value": np.array([True])}, TypeError, r"`value`.*dtype bool"),
    ("rrc", (), {"scale": np.array(0.5)}, TypeError, r"`scale`.*pair.*array\(0\.5\)"),
    ("rrc", (), {"ratio": jnp.array(1.0)}, TypeError, r"`ratio`.*pair.*Array\(1\."),
    ("erase", (), {"scale": np.array(0.1)}, TypeError, r"`scale`.*pair.*array\(0\.1\)"),
    ("crop", (), {"padding": np.array(1.5)}, TypeError, r"`padding`.*array\(1\.5\)"),
    ("crop", (), {"padding": np.array([1.5, 2.0])}, TypeError, r"`padding`.*array\(\[1\.5"),
    ("crop", (), {"padding": np.ones((2, 2), int)}, TypeError, r"`padding`.*shape \(2, 2\)"),
    ("jitter", (), {"random_order": 1}, TypeError, r"`random_order`.*got 1 of type int"),
    ("jitter", (), {"random_order": jnp.array(True)}, TypeError, r"`random_order`.*Array"),
    ("brightness", (0.1,), {"clip": jnp.array(True)}, TypeError, r"`clip`.*Array"),
    ("brightness", (-0.1,), {}, ValueError, r"`max_delta` must be >= 0\.0, got -0\.1\.$"),
    ("hue", (0.7,), {}, ValueError, r"`max_delta` must be in \[0\.0, 0\.5\], got 0\.7\.$"),
    ("hue", (float("inf"),), {}, ValueError, r"`max_delta`.*finite.*inf"),
    ("contrast", (), {"clip": "no"}, TypeError, r"`clip`.*'no'"),
    ("saturation", (), {"clip": None}, TypeError, r"`clip`.*None"),
    ("hue", (0.1,), {"clip": 0}, TypeError, r"`clip`.*0"),
    ("jitter", (), {"clip": "no"}, TypeError, r"`clip`.*'no'"),
    ("jitter", (), {"hue": 0.6}, ValueError, r"`hue` must be in \[0\.0, 0\.5\], got 0\.6"),
    ("jitter", (), {"contrast": -1}, ValueError, r"`contrast` must be >= 0\.0, got -1\."),
    ("mixup", (), {"alpha": 0.0}, ValueError, r"`alpha` must be > 0\.0, got 0\.0"),
])
def test_bad_arguments_are_named_with_the_value_received(op, args, kwargs, error, match):
  with pytest.raises(error, match=match):
    KEY_OPS[op](jax.random.key(0), jnp.full((8, 8, 3), 0.5), *args, **kwargs)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda x: A.adjust_saturation(x, -1.0), ValueError, r"`factor` must be >= 0\.0, got -1\.0"),
    (lambda x: A.adjust_saturation(x, float("nan")), ValueError, r"`factor`.*finite.*nan"),
    (lambda x: A.adjust_saturation(x, float("inf")), ValueError, r"`factor`.*finite.*inf"),
    (lambda x: A.adjust_saturation(x, jnp.ones((2, 1, 1, 1))), ValueError,
     r"`factor`.*broadcasts to the image's shape \(2, 2, 3\) without enlarging.*\(2, 1, 1, 1\)"),
    (lambda x: A.adjust_saturation(x, np.array([[[0.5]], [[-0.5]]])), ValueError,
     r"`factor` must be finite and >= 0\.0 everywhere.*-0\.5 at index \(1, 0, 0\)"),
    (lambda x: A.adjust_saturation(x, [[[1.0]], [[float("nan")]]]), ValueError,
     r"`factor`.*finite.*nan at index \(1, 0, 0\)"),
    (lambda x: A.adjust_saturation(x, np.array([1 + 1j])), TypeError, r"`factor`.*complex"),
    (lambda x: A.adjust_saturation(x, 1.0, clip="yes"), TypeError, r"`clip`.*'yes'"),
    (lambda x: A.adjust_hue(x, float("nan")), ValueError, r"`delta`.*finite.*nan"),
    (lambda x: A.adjust_hue(x, "x"), TypeError, r"`delta`.*'x'"),
    (lambda x: A.adjust_hue(x, jnp.zeros((2,))), ValueError, r"`delta`.*broadcasts.*\(2,\)"),
    (lambda x: A.adjust_hue(x, jnp.zeros((2, 2))), ValueError,
     r"`delta`.*\(2, 2\) \(add a channel axis: `delta\[\.\.\., None\]`\)"),
    (lambda x: A.adjust_hue(x, jnp.zeros(3)), ValueError, r"`delta`.*not per channel.*\(3,\)"),
    (lambda x: A.adjust_hue(x, np.array([[[0.1]], [[np.inf]]])), ValueError,
     r"`delta` must be finite everywhere.*inf at index \(1, 0, 0\)"),
    (lambda x: A.adjust_hue(x, 0.1, clip=1.0), TypeError, r"`clip`.*1\.0"),
])
def test_bad_colour_factors(call, error, match):
  with pytest.raises(error, match=match):
    call(jnp.full((2, 2, 3), 0.5))


@pytest.mark.parametrize(("scales", "error", "match"), [
    ((), ValueError, r"`scales`.*\(\)"),
    ((5.5,), TypeError, r"5\.5"),
    ((0,), ValueError, r"got 0 in \(0,\)"),
    ((-4,), ValueError, r"got -4 in \(-4,\)"),
    ((8, True), TypeError, r"True"),
    (5, TypeError, r"`scales`.*got 5\."),
    ((8, 5.5), TypeError, r"got 5\.5 in \(8, 5\.5\)"),
    ((8, float("nan")), TypeError, r"got nan in"),
    ((-4.0,), ValueError, r"got -4\.0 in"),
    (np.array(8), TypeError, r"`scales`.*got array\(8\) \(a 0-d array\)"),
    (np.int64(8), TypeError, r"`scales`.*got np\.int64\(8\)\."),
    (np.array([], int), ValueError, r"`scales` must hold at least one length"),
    (np.array([8, 0]), ValueError, r"got 0 in array\(\[8, 0\]\)"),
    (np.array([[8]]), TypeError, r"`scales`.*shape \(1, 1\)"),
    ("ab", TypeError, r"`scales`.*'ab'"),
])
def test_multi_crop_predict_rejects_bad_scales(scales, error, match):
  model = lambda batch: batch.mean((1, 2))  # noqa: E731
  with pytest.raises(error, match=match):
    A.multi_crop_predict(model, jnp.ones((1, 8, 8, 3)), size=4, scales=scales)
  with pytest.raises(error, match=match):
    A.random_scale_crop(jax.random.key(0), jnp.ones((8, 8, 3)), 4, scales=scales)


# ---------------------------------------------------------------------------------------------
# Input forms the checks must keep accepting
# ---------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.485, 0.456, 0.406)


@pytest.mark.parametrize("value", [
    IMAGENET_MEAN, list(IMAGENET_MEAN), np.array(IMAGENET_MEAN), jnp.array(IMAGENET_MEAN),
    np.array([IMAGENET_MEAN]), np.array([[IMAGENET_MEAN]], np.float32)])
def test_random_erasing_fills_with_a_per_channel_value(value):
  image = jnp.full((12, 10, 3), 2.0)
  erase = functools.partial(A.random_erasing, probability=1.0, scale=(0.1, 0.3))
  traced = jax.jit(lambda k, v: erase(k, image, value=v))
  with reuse_keys():
    key = jax.random.key(3)
    eager = np.asarray(erase(key, image, value=value))
    for out in (eager, np.asarray(traced(key, jnp.asarray(value)))):
      erased = out[:, :, 0] != 2.0
      assert erased.any()
      np.testing.assert_allclose(out[erased], np.broadcast_to(IMAGENET_MEAN, out[erased].shape),
                                 rtol=1e-6)
      np.testing.assert_array_equal(out[~erased], 2.0)
    # One fill per channel is the scalar fill, channel by channel.
    for c in range(3):
      np.testing.assert_array_equal(
          eager[..., c], erase(key, image, value=IMAGENET_MEAN[c])[..., c])


def test_random_erasing_takes_a_traced_tuple_and_a_noise_fill():
  image = jnp.full((12, 10, 3), 2.0)
  noise = jax.random.uniform(jax.random.key(4), image.shape)
  with reuse_keys():
    key = jax.random.key(5)
    by_tuple = jax.jit(lambda v: A.random_erasing(key, image, probability=1.0, value=(v, v, v)))
    np.testing.assert_array_equal(by_tuple(0.25),
                                  A.random_erasing(key, image, probability=1.0, value=0.25))
    out = np.asarray(A.random_erasing(key, image, probability=1.0, value=noise))
  erased = out != 2.0
  assert erased.any()
  np.testing.assert_array_equal(out[erased], np.asarray(noise)[erased])


@pytest.mark.parametrize("jit", [False, True])
def test_colour_factors_per_image_match_scalar_calls(jit):
  images = jax.random.uniform(jax.random.key(23), (3, 5, 4, 3))
  factors = np.array([0.0, 0.6, 1.8], np.float32)
  deltas = np.array([-0.3, 0.1, 0.45], np.float32)
  saturate = jax.jit(A.adjust_saturation) if jit else A.adjust_saturation
  hue = jax.jit(A.adjust_hue) if jit else A.adjust_hue
  for per_image in (jnp.asarray, np.asarray):
    saturated = saturate(images, per_image(factors)[:, None, None, None])
    hued = hue(images, per_image(deltas)[:, None, None, None])
    assert saturated.shape == hued.shape == images.shape
    for i in range(3):
      np.testing.assert_allclose(saturated[i], A.adjust_saturation(images[i], float(factors[i])),
                                 atol=1e-6)
      np.testing.assert_allclose(hued[i], A.adjust_hue(images[i], float(deltas[i])), atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_colour_factors_per_pixel(jit):
  image = jax.random.uniform(jax.random.key(24), (6, 5, 3))
  left = np.arange(5)[None, :, None] < 2  # (1, 5, 1): two values, split by column
  saturate = jax.jit(A.adjust_saturation) if jit else A.adjust_saturation
  hue = jax.jit(A.adjust_hue) if jit else A.adjust_hue
  factor = np.broadcast_to(np.where(left, 0.3, 1.6), (6, 5, 1)).astype(np.float32)
  delta = np.where(left, 0.2, -0.1).astype(np.float32)
  got_s, got_h = saturate(image, jnp.asarray(factor)), hue(image, delta)
  want_s = np.where(left, A.adjust_saturation(image, 0.3), A.adjust_saturation(image, 1.6))
  want_h = np.where(left, A.adjust_hue(image, 0.2), A.adjust_hue(image, -0.1))
  np.testing.assert_allclose(got_s, want_s, atol=1e-6)
  np.testing.assert_allclose(got_h, want_h, atol=1e-6)


def test_colour_factors_of_other_forms():
  image = jax.random.uniform(jax.random.key(25), (2, 4, 3))
  for factor in (np.float32(0.5), np.array(0.5), jnp.array(0.5), [0.5], (((0.5,),),)):
    np.testing.assert_allclose(A.adjust_saturation(image, factor),
                               A.adjust_saturation(image, 0.5), atol=1e-7)
    np.testing.assert_allclose(A.adjust_hue(image, factor), A.adjust_hue(image, 0.5), atol=1e-7)
  # Saturation belongs to a pixel: a (C,) factor would scale the channels' distances to V
  # differently and turn the hue, so it is refused, as a (C,) hue delta is.
  for adjust in (A.adjust_saturation, A.adjust_hue):
    with pytest.raises(ValueError, match=r"one value per pixel, not per channel"):
      adjust(image, jnp.array([0.5, 1.0, 1.5]))


def test_random_crop_takes_padding_arrays_and_whole_floats():
  image = numbered_image(4, 5)
  with reuse_keys():
    key = jax.random.key(0)
    want = A.random_crop(key, image, 6, padding=2)
    for padding in (jnp.array([2, 2]), np.array([2, 2], np.int8), np.array(2), jnp.array(2),
                    np.int64(2), np.uint8(2), 2.0, np.float32(2.0), (2.0, np.int16(2))):
      np.testing.assert_array_equal(A.random_crop(key, image, 6, padding=padding), want)
  with pytest.raises(TypeError, match=r"`padding`.*known at trace time.*traced"):
    jax.jit(lambda p: A.random_crop(jax.random.key(0), image, 6, padding=p))(jnp.array([2, 2]))


def test_scales_take_any_iterable_of_whole_numbers():
  image = jax.random.uniform(jax.random.key(26), (9, 13, 3))
  model = lambda batch: batch.mean((1, 2))  # noqa: E731
  forms = [lambda: (9, 10), lambda: [9, 10], lambda: range(9, 11), lambda: (s for s in (9, 10)),
           lambda: np.array([9, 10]), lambda: jnp.array([9, 10]), lambda: (9.0, 10.0),
           lambda: np.array([9.0, 10.0]), lambda: (np.int32(9), jnp.array(10))]
  want_mcp = A.multi_crop_predict(model, image[None], size=5, crops="center", scales=(9, 10))
  with reuse_keys():
    key = jax.random.key(27)
    want_rsc = A.random_scale_crop(key, image, 5, scales=(9, 10))
    for form in forms:
      np.testing.assert_array_equal(
          A.multi_crop_predict(model, image[None], size=5, crops="center", scales=form()),
          want_mcp)
      np.testing.assert_array_equal(A.random_scale_crop(key, image, 5, scales=form()), want_rsc)


@pytest.mark.parametrize(("scales", "error", "match"), [
    (lambda: (s for s in (9, 5.5)), TypeError, r"got 5\.5 in \(9, 5\.5\)"),
    (lambda: (s for s in ()), ValueError, r"`scales` must hold at least one length, got \(\)"),
    (lambda: iter([9, 0]), ValueError, r"got 0 in \(9, 0\)"),
])
def test_bad_scales_from_a_generator_are_named(scales, error, match):
  model = lambda batch: batch.mean((1, 2))  # noqa: E731
  with pytest.raises(error, match=match):
    A.multi_crop_predict(model, jnp.ones((1, 12, 12, 3)), size=4, scales=scales())
  with pytest.raises(error, match=match):
    A.random_scale_crop(jax.random.key(0), jnp.ones((12, 12, 3)), 4, scales=scales())


FLAG_CALLS = {
    "batched sequential": lambda k, x, f: A.batched(
        functools.partial(A.random_brightness, max_delta=0.2), sequential=f)(k, x[None]),
    "rrc antialias": lambda k, x, f: A.random_resized_crop(k, x, 4, antialias=f),
    "rsc antialias": lambda k, x, f: A.random_scale_crop(k, x, 4, scales=(6,), antialias=f),
    "saturation clip": lambda k, x, f: A.adjust_saturation(x, 1.5, clip=f),
    "hue clip": lambda k, x, f: A.adjust_hue(x, 0.2, clip=f),
    "brightness clip": lambda k, x, f: A.random_brightness(k, x, 0.5, clip=f),
    "contrast clip": lambda k, x, f: A.random_contrast(k, x, (0.5, 1.5), clip=f),
    "random_saturation clip": lambda k, x, f: A.random_saturation(k, x, (0.5, 1.5), clip=f),
    "random_hue clip": lambda k, x, f: A.random_hue(k, x, 0.3, clip=f),
    "jitter clip": lambda k, x, f: A.color_jitter(k, x, brightness=0.5, clip=f),
    "jitter random_order": lambda k, x, f: A.color_jitter(k, x, brightness=0.5, hue=0.1,
                                                          random_order=f),
}


@pytest.mark.parametrize("name", sorted(FLAG_CALLS))
def test_every_flag_takes_python_and_numpy_bools(name):
  image = jax.random.uniform(jax.random.key(28), (6, 6, 3)) * 1.4 - 0.2
  with reuse_keys():
    key = jax.random.key(29)
    for flag in (True, False):
      np.testing.assert_array_equal(FLAG_CALLS[name](key, image, np.bool_(flag)),
                                    FLAG_CALLS[name](key, image, flag))
  with pytest.raises(TypeError, match=r"must be a bool \(Python or NumPy\), got 'yes'"):
    FLAG_CALLS[name](jax.random.key(30), image, "yes")
