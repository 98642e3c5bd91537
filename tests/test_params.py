"""Explicit parameters: ``op(key, *inputs) == apply(draw(op)(key, *inputs), *inputs)``, bit for bit.

Every op with explicit parameters, eager and batched (or, for the mixes, jitted), on float32
images and on uint8 where the op takes them (the deterministic affine ops, whose draw takes no
key, with one magnitude per example); the parameters against independent references of what
they mean (NumPy slicing and flipping, `jax.image.resize` of the box, float64 colour formulas
and `colorsys`, the mixes' blends and pasted boxes); the same parameters applied to a second
image; derivatives through `apply`; and round trips of a parameter set through NumPy.
"""

import colorsys
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys

import jaxreg as jr
from jaxreg.augment._policy_space import AUTO_AUGMENT_POLICIES

A = jr.augment
H, W = 12, 14
KEY = jax.random.key(7)

# Each op with its arguments: fn(key, image).
OPS = {
    "random_crop": functools.partial(A.random_crop, size=(8, 10), padding=2),
    "random_crop reflect": functools.partial(A.random_crop, size=9, padding=(1, 3),
                                             pad_mode="reflect"),
    "random_resized_crop": functools.partial(A.random_resized_crop, size=(6, 8)),
    "random_resized_crop no antialias": functools.partial(A.random_resized_crop, size=16,
                                                          scale=(0.3, 0.9), antialias=False),
    "random_scale_crop": functools.partial(A.random_scale_crop, size=(8, 8), scales=(12, 20)),
    "random_flip_left_right": A.random_flip_left_right,
    "random_flip_up_down": functools.partial(A.random_flip_up_down, probability=0.7),
    "rand_augment": functools.partial(A.rand_augment, num_ops=3, magnitude_std=2.0),
    "trivial_augment_wide": A.trivial_augment_wide,
    "random_brightness": functools.partial(A.random_brightness, max_delta=0.3, clip=True),
    "random_contrast": functools.partial(A.random_contrast, factors=(0.5, 1.5)),
    "random_saturation": functools.partial(A.random_saturation, factors=(0.2, 1.8), clip=True),
    "random_hue": functools.partial(A.random_hue, max_delta=0.3),
    "random_grayscale": functools.partial(A.random_grayscale, probability=0.5),
    "color_jitter": functools.partial(A.color_jitter, brightness=0.3, contrast=0.3,
                                      saturation=0.3, hue=0.1),
    "color_jitter fixed order": functools.partial(A.color_jitter, brightness=0.3, hue=0.1,
                                                  random_order=False),
    "random_erasing": functools.partial(A.random_erasing, probability=0.8,
                                        value=(0.1, 0.5, 0.9)),
}
# Ops with a draw whose parameters other tests check: auto_augment is its draw then its apply,
# through the policies' batched path that rand_augment and trivial_augment_wide check here (its
# draws: test_policy_parameters_name_each_op_and_its_magnitude below); aug_mix's parameters are
# in tests/test_policies.py, with what they mean.
DRAWN_ELSEWHERE = ("auto_augment", "aug_mix")
# The batch ops: fn(key, images, labels) -> (images, labels).
MIX_OPS = {
    "mixup": functools.partial(A.mixup, alpha=0.4),
    "cutmix": A.cutmix,
}
LABELS = jax.nn.one_hot(jnp.array([0, 1, 2]), 3)


def _op_and_draw(name):
  fn = {**OPS, **MIX_OPS}[name]
  op = fn.func if isinstance(fn, functools.partial) else fn
  kwargs = fn.keywords if isinstance(fn, functools.partial) else {}
  return fn, functools.partial(A.draw(op), **kwargs)


def _images(dtype, n=3):
  x = jax.random.uniform(jax.random.key(0), (n, H, W, 3))
  return jnp.round(x * 255).astype(jnp.uint8) if dtype == jnp.uint8 else x.astype(dtype)


# float32 for every op, and a policy on uint8. A crop's, a flip's or an erasing's uint8 branch
# lies inside its `apply`, so on both sides here: tests/test_uint8_images.py checks it against
# the float op.
CASES = [(name, jnp.float32) for name in sorted(OPS)] + [("trivial_augment_wide", jnp.uint8)]


@pytest.mark.parametrize(("name", "dtype"), CASES, ids=lambda v: getattr(v, "__name__", v))
def test_op_is_apply_of_draw_bit_for_bit(name, dtype):
  # Eager on one image, and a batch: the jitted batched op against the batched draw applied
  # by a jitted vmap (one parameter set per example, a leading axis on every leaf), compiled
  # apart (one program would share their common computations).
  fn, draw_fn = _op_and_draw(name)
  images = _images(dtype)
  with reuse_keys():
    params = A.batched(draw_fn)(KEY, images)
    pairs = [(fn(KEY, images[0]), A.apply(draw_fn(KEY, images[0]), images[0])),
             (jax.jit(A.batched(fn))(KEY, images), jax.jit(jax.vmap(A.apply))(params, images))]
  for want, got in pairs:
    assert got.dtype == want.dtype == images.dtype
    np.testing.assert_array_equal(got, want)
  leaves = jax.tree.leaves(params)
  assert leaves
  assert all(leaf.shape[0] == images.shape[0] for leaf in leaves)


@pytest.mark.parametrize("name", sorted(MIX_OPS))
def test_mix_is_apply_of_draw_bit_for_bit(name):
  # apply(params, images, labels) returns (images, labels), as the op; eager and under jit.
  fn, draw_fn = _op_and_draw(name)
  images = _images(jnp.float32)
  with reuse_keys():
    eager = (fn(KEY, images, LABELS), A.apply(draw_fn(KEY, images, LABELS), images, LABELS))
    # compiled apart: one program would share the two sides' common computations
    jitted = (jax.jit(lambda key: fn(key, images, LABELS))(KEY),
              jax.jit(lambda p: A.apply(p, images, LABELS))(draw_fn(KEY, images, LABELS)))
  for want, got in (eager, jitted):
    for w, g in zip(want, got, strict=True):
      assert g.dtype == w.dtype
      np.testing.assert_array_equal(g, w)


def test_crop_parameters_are_the_window_of_the_padded_image():
  image = np.asarray(_images(jnp.float32)[0])
  for mode, np_mode in (("constant", "constant"), ("reflect", "reflect"), ("edge", "edge")):
    params = A.draw(A.random_crop)(jax.random.key(1), image, (8, 10), padding=(2, 3),
                                   pad_mode=mode)
    top, left = int(params.top), int(params.left)
    assert 0 <= top <= H + 4 - 8
    assert 0 <= left <= W + 6 - 10
    padded = np.pad(image, ((2, 2), (3, 3), (0, 0)), mode=np_mode)
    np.testing.assert_array_equal(A.apply(params, image), padded[top:top + 8, left:left + 10])
    assert (params.size, params.padding, params.pad_mode) == ((8, 10), (2, 3), mode)


def test_resized_crop_parameters_are_the_box_that_is_resized():
  # random_resized_crop is torchvision's crop-then-resize: the drawn box (whole pixels) cut out
  # and resized with `jax.image.resize`, antialiased. Tolerance: float32 rounding of two
  # implementations of the same triangle filter.
  image = _images(jnp.float32)[0]
  for seed in range(4):
    params = A.draw(A.random_resized_crop)(jax.random.key(seed), image, (6, 8))
    top, left, h, w = (int(v) for v in (params.top, params.left, params.height, params.width))
    assert (top, left, h, w) == (params.top, params.left, params.height, params.width)
    assert top >= 0
    assert top + h <= H
    assert left >= 0
    assert left + w <= W
    assert h >= 1
    assert w >= 1
    box = image[top:top + h, left:left + w]
    want = jax.image.resize(box, (6, 8, 3), "linear", antialias=True)
    np.testing.assert_allclose(A.apply(params, image), want, atol=2e-6)


def test_scale_crop_parameters_are_a_window_of_the_resized_image():
  # random_scale_crop: the shorter side resized to a drawn scale, then a window; the box is
  # that window mapped back to input pixels. Tolerance: float32 rounding, as above.
  image = _images(jnp.float32)[0]
  params = A.draw(A.random_scale_crop)(jax.random.key(2), image, (8, 8), scales=(24,))
  resized = jax.image.resize(image, (24, 28, 3), "linear", antialias=True)  # 12x14 -> 24x28
  top, left = round(float(params.top) * 2), round(float(params.left) * 2)
  assert float(params.height) == float(params.width) == 4.0  # 8 resized pixels
  np.testing.assert_allclose(A.apply(params, image), resized[top:top + 8, left:left + 8],
                             atol=2e-6)


def test_flip_parameters_flip_as_numpy_does():
  image = np.asarray(_images(jnp.float32)[0])
  flips = {}
  with reuse_keys():
    for seed in range(8):
      for op, axis in ((A.random_flip_left_right, 1), (A.random_flip_up_down, 0)):
        params = A.draw(op)(jax.random.key(seed), image)
        assert params.axis == axis
        assert float(params.probability) == 0.5
        want = np.flip(image, axis) if bool(params.flip) else image
        np.testing.assert_array_equal(A.apply(params, image), want)
        flips.setdefault(axis, set()).add(bool(params.flip))
  assert flips == {0: {False, True}, 1: {False, True}}  # 8 keys draw both outcomes


def _hsv_map(image, fn):
  """``fn(h, s, v) -> (h, s, v)`` on every pixel of a float64 HWC image, by `colorsys`."""
  pixels = [colorsys.hsv_to_rgb(*fn(*colorsys.rgb_to_hsv(*p))) for p in image.reshape(-1, 3)]
  return np.asarray(pixels).reshape(image.shape)


def _colour_reference(image, op, value):
  """tf.image's colour ops in float64: an offset, a factor about each channel's mean, the HSV
  saturation times a factor (capped at 1), the hue turned by ``value`` turns."""
  if op == "brightness":
    return image + value
  if op == "contrast":
    mean = image.mean(axis=(0, 1), keepdims=True)
    return (image - mean) * value + mean
  if op == "saturation":
    return _hsv_map(image, lambda h, s, v: (h, min(s * value, 1.0), v))
  return _hsv_map(image, lambda h, s, v: ((h + value) % 1.0, s, v))


def test_colour_parameters_are_the_magnitude_of_tf_image_formulas():
  image = _images(jnp.float32)[0]
  ref = np.asarray(image, np.float64)
  cases = ((A.random_brightness, "brightness", (0.3,), (-0.3, 0.3)),
           (A.random_contrast, "contrast", ((0.5, 1.5),), (0.5, 1.5)),
           (A.random_saturation, "saturation", ((0.2, 1.8),), (0.2, 1.8)),
           (A.random_hue, "hue", (0.3,), (-0.3, 0.3)))
  for seed, (op, name, args, (lo, hi)) in enumerate(cases):
    params = A.draw(op)(jax.random.key(seed), image, *args)
    assert (params.op, params.clip) == (name, False)
    assert params.magnitude.shape == ()
    assert lo <= float(params.magnitude) <= hi
    np.testing.assert_allclose(A.apply(params, image),
                               _colour_reference(ref, name, float(params.magnitude)), atol=2e-6)


def test_grayscale_parameters_convert_to_the_luma():
  image = _images(jnp.float32)[0]
  luma = np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114])
  seen = set()
  for seed in range(6):
    params = A.draw(A.random_grayscale)(jax.random.key(seed), image, probability=0.5)
    want = np.repeat(luma[..., None], 3, axis=-1) if bool(params.convert) else image
    np.testing.assert_allclose(A.apply(params, image), want, atol=1e-6)
    seen.add(bool(params.convert))
  assert seen == {False, True}  # 6 keys draw both outcomes


def test_color_jitter_parameters_are_the_ops_in_their_drawn_order():
  # Each op in float64 (`_colour_reference`), in the order `used[order[p]]`, clamped after each.
  image = _images(jnp.float32)[0]
  orders = set()
  for seed in range(3):
    params = A.draw(A.color_jitter)(jax.random.key(seed), image, brightness=0.3, contrast=0.3,
                                    saturation=0.3, hue=0.1)
    assert params.used == ("brightness", "contrast", "saturation", "hue")
    assert sorted(np.asarray(params.order).tolist()) == [0, 1, 2, 3]
    assert params.order.dtype == jnp.int32
    want = np.asarray(image, np.float64)
    for position in np.asarray(params.order):
      name = params.used[position]
      want = np.clip(_colour_reference(want, name, float(getattr(params, name))), 0, 1)
    np.testing.assert_allclose(A.apply(params, image), want, atol=1e-5)
    orders.add(tuple(np.asarray(params.order).tolist()))
  assert len(orders) > 1
  fixed = A.draw(A.color_jitter)(jax.random.key(13), image, hue=0.1, random_order=False)
  assert (fixed.used, fixed.random_order) == (("hue",), False)
  np.testing.assert_array_equal(fixed.order, [0])


def test_erasing_parameters_are_a_filled_numpy_slice():
  for dtype, fill in ((jnp.float32, (0.1, 0.5, 0.9)), (jnp.uint8, (26, 128, 230))):
    image = _images(dtype)[0]
    erased = 0
    for seed in range(4):
      params = A.draw(A.random_erasing)(jax.random.key(seed), image, probability=0.8,
                                        value=(0.1, 0.5, 0.9))
      top, left, h, w = (int(v) for v in (params.top, params.left, params.height, params.width))
      if bool(params.erase):  # torchvision's rule: strictly smaller than the image
        assert 0 <= top <= top + h <= H
        assert 0 <= left <= left + w <= W
        assert h < H
        assert w < W
      want = np.array(image)
      if bool(params.erase):
        want[top:top + h, left:left + w] = np.asarray(fill, want.dtype)
        erased += 1
      np.testing.assert_array_equal(A.apply(params, image), want)
    assert erased


def test_mixup_parameters_blend_each_example_with_its_partner():
  images = _images(jnp.float32)
  params = A.draw(A.mixup)(jax.random.key(11), images, LABELS, alpha=0.4)
  perm, lam = np.asarray(params.perm), np.asarray(params.lam, np.float64)
  assert sorted(perm.tolist()) == [0, 1, 2]
  assert ((lam >= 0) & (lam <= 1)).all()
  x, y = np.asarray(images, np.float64), np.asarray(LABELS, np.float64)
  mixed_x, mixed_y = A.apply(params, images, LABELS)
  np.testing.assert_allclose(mixed_x, lam[:, None, None, None] * x + (
      1 - lam[:, None, None, None]) * x[perm], atol=1e-6)
  np.testing.assert_allclose(mixed_y, lam[:, None] * y + (1 - lam[:, None]) * y[perm], atol=1e-6)


def test_cutmix_parameters_paste_the_partner_box_and_weigh_labels_by_its_area():
  images = _images(jnp.float32)
  params = A.draw(A.cutmix)(jax.random.key(12), images, LABELS)
  perm = np.asarray(params.perm)
  assert sorted(perm.tolist()) == [0, 1, 2]
  mixed_x, mixed_y = A.apply(params, images, LABELS)
  x, y = np.asarray(images), np.asarray(LABELS, np.float64)
  for i in range(3):
    top, bottom, left, right = (int(getattr(params, edge)[i])
                                for edge in ("top", "bottom", "left", "right"))
    assert 0 <= top <= bottom <= H
    assert 0 <= left <= right <= W
    want = x[i].copy()
    want[top:bottom, left:right] = x[perm[i]][top:bottom, left:right]
    np.testing.assert_array_equal(mixed_x[i], want)
    area = (bottom - top) * (right - left) / (H * W)
    np.testing.assert_allclose(mixed_y[i], (1 - area) * y[i] + area * y[perm[i]], atol=1e-6)


def test_the_same_parameters_move_a_second_image_with_the_first():
  # A label map stored as a float image: the crop and flip drawn on the photograph (the flip on
  # its crop) apply to it pixel for pixel (nearest-free ops: a window and a mirror copy values).
  image = _images(jnp.float32)[0]
  labels = jnp.broadcast_to(jnp.arange(H * W, dtype=jnp.float32).reshape(H, W, 1), (H, W, 3))
  crop = A.draw(A.random_crop)(jax.random.key(3), image, (8, 10), padding=2)
  flip = A.draw(A.random_flip_left_right)(jax.random.key(4), A.apply(crop, image),
                                          probability=1.0)
  out = A.apply(flip, A.apply(crop, labels))
  top, left = int(crop.top) - 2, int(crop.left) - 2
  for i, j in ((0, 0), (3, 4), (7, 9)):
    row, col = top + i, left + (9 - j)  # mirrored column of the window
    want = row * W + col if 0 <= row < H and 0 <= col < W else 0.0  # zero padding
    assert float(out[i, j, 0]) == want


def test_apply_is_differentiable_in_the_image():
  # A window, a resampling and a flip are linear in the image: the jvp in a direction t is the
  # map applied to t, and grad is its transpose (<grad(w . f), t> = <w, f(t)>).
  image = _images(jnp.float32)[0]
  params = A.draw(A.random_resized_crop)(jax.random.key(5), image, (6, 8))
  resized = jnp.zeros((6, 8, 3))  # each set drawn for the size it applies to
  flip = A.draw(A.random_flip_up_down)(jax.random.key(6), resized, probability=1.0)
  crop = A.draw(A.random_crop)(jax.random.key(8), resized, (8, 10), padding=2)
  fn = jax.jit(lambda x: A.apply(crop, A.apply(flip, A.apply(params, x))))
  t = jax.random.normal(jax.random.key(9), image.shape)
  w = jax.random.normal(jax.random.key(10), fn(image).shape)
  np.testing.assert_allclose(jax.jit(lambda x, t: jax.jvp(fn, (x,), (t,))[1])(image, t), fn(t),
                             atol=1e-6)
  grad = jax.jit(jax.grad(lambda x: jnp.sum(w * fn(x))))(image)
  np.testing.assert_allclose(jnp.vdot(grad, t), jnp.vdot(w, fn(t)), rtol=1e-5)


# What a policy slot means, by op name: the public op at that magnitude.
def _policy_op(name, x, v, fill):
  warp = {"interpolation": "nearest", "fill": fill}
  return {
      "Identity": lambda: x,
      "ShearX": lambda: A.shear_x(x, v, **warp),
      "ShearY": lambda: A.shear_y(x, v, **warp),
      "TranslateX": lambda: A.translate_x(x, v, **warp),
      "TranslateY": lambda: A.translate_y(x, v, **warp),
      "Rotate": lambda: A.rotate(x, v, **warp),
      "Brightness": lambda: A.enhance_brightness(x, 1 + v),
      "Color": lambda: A.enhance_color(x, 1 + v),
      "Contrast": lambda: A.enhance_contrast(x, 1 + v),
      "Sharpness": lambda: A.enhance_sharpness(x, 1 + v),
      "Posterize": lambda: A.posterize(x, int(v)),
      "Solarize": lambda: A.solarize(x, v),
      "AutoContrast": lambda: A.autocontrast(x),
      "Equalize": lambda: A.equalize(x),
      "Invert": lambda: A.invert(x),
  }[name]()


def test_policy_parameters_name_each_op_and_its_magnitude():
  # One slot per op of the vocabulary, vmapped over the 15 sets (the CPU's per-example loop),
  # each against the public op that its name and magnitude stand for. Tolerance: the
  # geometric ops' sampling positions, float32 rounding of the same inverse matrix.
  image = _images(jnp.float32)[0]
  fill = jnp.array([0.25, 0.5, 1.0])
  names = A.PolicyParams.OPS
  values = np.array([0, 0.3, -0.2, 3, -4, 30, 0.5, -0.6, 0.4, 0.9, 3, 0.45, 0, 0, 0], np.float32)
  assert len(names) == len(values) == 15
  params = A.PolicyParams(ops=jnp.arange(15, dtype=jnp.int32)[:, None],
                          magnitudes=jnp.asarray(values)[:, None],
                          fill=jnp.broadcast_to(fill, (15, 3)), interpolation="nearest",
                          image_size=(H, W))
  out = jax.jit(jax.vmap(A.apply, in_axes=(0, None)))(params, image)
  for i, (name, v) in enumerate(zip(names, values, strict=True)):
    np.testing.assert_allclose(out[i], _policy_op(name, image, float(v), fill), atol=1e-6,
                               err_msg=name)
  # A drawn set names its ops: every slot's op is one of the svhn policy's (Identity where a
  # step's coin says no), and some are not the ImageNet policy's (so `policy=` is obeyed).
  drawn = A.batched(A.draw(A.auto_augment))(jax.random.key(11), _images(jnp.float32, n=8),
                                             policy="svhn")
  assert drawn.ops.shape == drawn.magnitudes.shape == (8, 2)
  ops = set(np.asarray(names)[drawn.ops].ravel())
  policy_ops = {p: {op for sub in AUTO_AUGMENT_POLICIES[p] for op, _, _ in sub} | {"Identity"}
                for p in ("svhn", "imagenet")}
  assert ops <= policy_ops["svhn"], ops
  assert ops - policy_ops["imagenet"], ops


def test_policy_parameters_from_a_traced_nan_magnitude_turn_the_image_nan():
  image = _images(jnp.float32)[0]
  draw = jax.jit(lambda m: A.draw(A.rand_augment)(jax.random.key(13), image, magnitude=m))
  bad = draw(jnp.nan)
  assert not np.isfinite(np.asarray(bad.magnitudes)).any()
  assert np.isnan(np.asarray(A.apply(bad, image))).all()
  assert np.isfinite(np.asarray(A.apply(draw(5.0), image))).all()
  with pytest.raises(ValueError, match=r"apply: `image` of shape \(10, 14, 3\) is 10x14, but "
                                       r"the parameters were drawn for a 12x14 image"):
    A.apply(bad, image[:10])


@pytest.mark.parametrize(("dtype", "crop"), [
    (jnp.uint8, functools.partial(A.random_resized_crop, size=(6, 8))),
    (jnp.float32, functools.partial(A.random_scale_crop, size=8, scales=(12, 16)))],
    ids=["uint8-random_resized_crop", "float32-random_scale_crop"])
def test_compose_runs_a_resized_crop_and_a_flip_as_one_resampling_bit_for_bit(dtype, crop):
  # compose mirrors the crop's columns where the flip fires; a flip behind a lambda is not
  # recognised, so it runs the two ops one after the other: the reference. With probability
  # 0 the same keys give the same crops unflipped: some examples must differ from those.
  images = _images(dtype, n=6)
  flip = functools.partial(A.random_flip_left_right, probability=0.5)
  with reuse_keys():
    got, never = (jax.jit(A.batched(A.compose(crop, f)))(KEY, images) for f in (
        flip, functools.partial(A.random_flip_left_right, probability=0.0)))
    want = jax.jit(A.batched(A.compose(crop, lambda k, x: flip(k, x))))(KEY, images)
  np.testing.assert_array_equal(got, want)
  assert got.dtype == dtype
  assert 0 < int((got != never).any(axis=(1, 2, 3)).sum()) < 6


def test_parameter_sets_round_trip_through_numpy_and_tree_map():
  image = _images(jnp.float32)[0]
  params = A.batched(A.draw(A.random_resized_crop))(KEY, _images(jnp.float32), (6, 8))
  leaves, treedef = jax.tree.flatten(params)
  restored = jax.tree.unflatten(treedef, [np.asarray(leaf) for leaf in leaves])
  assert restored.size == (6, 8)
  assert restored.crop_first
  first = jax.tree.map(lambda leaf: leaf[0], restored)
  np.testing.assert_array_equal(A.apply(first, image), A.apply(jax.tree.map(
      lambda leaf: leaf[0], params), image))
  with pytest.raises(dataclasses.FrozenInstanceError):
    params.top = 0


# The deterministic affine ops: op -> its positional and keyword arguments at magnitude m.
AFFINE_OPS = {
    "affine": (A.affine, lambda m: ((), {"angle": m, "translate": (m / 8, -1.5), "scale": 1.25,
                                         "shear": (m / 3, 4.0), "interpolation": "bilinear",
                                         "fill": (0.2, 0.4, 0.6)})),
    "rotate": (A.rotate, lambda m: ((m,), {"center": (3.0, 4.5)})),
    "shear_x": (A.shear_x, lambda m: ((m / 50,), {"interpolation": "bilinear"})),
    "shear_y": (A.shear_y, lambda m: ((-m / 40,), {"fill": 0.5})),
    "translate_x": (A.translate_x, lambda m: ((m / 7,), {})),
    "translate_y": (A.translate_y, lambda m: ((-m / 9,), {})),
}


def test_affine_ops_are_apply_of_draw_bit_for_bit():
  # The deterministic geometric ops draw no key: draw(op)(image, ...) holds their matrix, and
  # apply gives the op bit for bit, eager at a concrete magnitude and under jit(vmap) with one
  # magnitude per example, where a NaN one turns its example NaN in both (one compilation).
  images = _images(jnp.float32)

  def direct(op, arguments):
    return lambda x, m: op(x, *arguments(m)[0], **arguments(m)[1])

  def drawn(op, arguments):
    return lambda x, m: A.draw(op)(x, *arguments(m)[0], **arguments(m)[1])

  @jax.jit
  def batch(images, magnitudes):
    out = {}
    for name, (op, arguments) in AFFINE_OPS.items():
      params = jax.vmap(drawn(op, arguments))(images, magnitudes)
      out[name] = (jax.vmap(direct(op, arguments))(images, magnitudes),
                   jax.vmap(A.apply)(params, images), params)
    return out

  for want, got, params in batch(images, jnp.array([17.0, -33.0, jnp.nan])).values():
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(np.asarray(got[:2])).all()
    assert np.isnan(np.asarray(got[2])).all()
    assert params.matrix.shape == (3, 2, 3)
    assert params.image_size == (H, W)
  for op, arguments in AFFINE_OPS.values():
    params = drawn(op, arguments)(images[0], 23.0)
    assert isinstance(params, A.AffineParams)
    assert params.matrix.dtype == jnp.float32
    np.testing.assert_array_equal(A.apply(params, images[0]),
                                  direct(op, arguments)(images[0], 23.0))


def test_draw_lists_exactly_the_ops_it_knows():
  from jaxreg.augment import _params

  documented = ({name for name in {**OPS, **MIX_OPS} if " " not in name} | set(AFFINE_OPS)
                | set(DRAWN_ELSEWHERE))
  assert {fn.__name__ for fn in _params.DRAWS} == documented
  doc = A.draw.__doc__
  for name in documented:
    assert f"`{name}`" in doc
  with pytest.raises(TypeError, match=r"draw: `op` must be an op of jaxreg\.augment with"):
    A.draw(A.invert)
  with pytest.raises(TypeError, match="apply: `params` must be a parameter set"):
    A.apply({"top": 0}, _images(jnp.float32)[0])
