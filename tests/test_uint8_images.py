"""uint8 images through the crops, flips and erasing: the float op on ``q / 255``, as levels.

The photometric ops' and the policies' uint8 forms are tested with their families
(tests/test_photometric.py, tests/test_policies.py). Tolerance: none, except that a resampled
value on an exact half level may round either way in float32.
"""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys

import jaxreg as jr

A = jr.augment
LEVELS = jnp.asarray(np.random.default_rng(3).integers(0, 256, (4, 20, 26, 3)), jnp.uint8)
AS_FLOAT = LEVELS.astype(jnp.float32) / 255

# One row per uint8 branch (a window, a resampled box, each flip, a filled box). An option
# that does not touch that branch (antialiasing taps, pad modes, a per-channel fill) is tested
# in float with its op; the per-channel uint8 fill in tests/test_params.py.
OPS = {
    "random_resized_crop": functools.partial(A.random_resized_crop, size=(12, 16)),
    "random_scale_crop": functools.partial(A.random_scale_crop, size=14, scales=(16, 24)),
    "random_crop": functools.partial(A.random_crop, size=18, padding=3),
    "random_flip_left_right": A.random_flip_left_right,
    "random_flip_up_down": A.random_flip_up_down,
    "random_erasing": functools.partial(A.random_erasing, probability=0.8, value=0.5),
}


def nearest_levels(result):
  """``round(255 result)`` and a mask of the values within 1e-3 of a half level."""
  scaled = np.asarray(result, np.float64) * 255
  return np.round(scaled), np.abs(scaled % 1 - 0.5) < 1e-3


@pytest.mark.parametrize("name", sorted(OPS))
def test_uint8_is_the_float_op_as_levels_eager_jit_and_batched(name):
  op = OPS[name]
  key = jax.random.key(5)
  with reuse_keys():
    want, ties = nearest_levels(jax.jit(A.batched(op))(key, AS_FLOAT))
    batched = jax.jit(A.batched(op))(key, LEVELS)
    keys = jax.random.split(key, len(LEVELS))
    eager = np.stack([op(k, x) for k, x in zip(keys, LEVELS, strict=True)])
  for out in (batched, eager):  # vmapped under jit (batched's default path), and eager
    assert out.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(out)[~ties], want[~ties])
    assert np.all(np.abs(np.asarray(out, np.float64) - want) <= 1)


def test_uint8_erasing_fills_the_nearest_level_and_keeps_the_rest():
  out = A.random_erasing(jax.random.key(0), LEVELS[0], probability=1.0, value=0.5)
  erased = np.asarray(out) != np.asarray(LEVELS[0])
  assert erased.any()
  np.testing.assert_array_equal(np.asarray(out)[erased], 128)  # round(127.5), half to even


def test_uint8_traced_probability_out_of_range_follows_the_draw():
  # uint8 has no NaN: above 1 always, below 0 or NaN never (documented); float gives NaN.
  flip = jax.jit(lambda p: A.random_flip_left_right(jax.random.key(0), LEVELS[0],
                                                    probability=p))
  np.testing.assert_array_equal(flip(2.0), LEVELS[0][:, ::-1])
  np.testing.assert_array_equal(flip(-1.0), LEVELS[0])
  np.testing.assert_array_equal(flip(jnp.nan), LEVELS[0])
  erase = jax.jit(lambda p, x: A.random_erasing(jax.random.key(0), x, probability=p))
  assert bool(jnp.isnan(erase(2.0, AS_FLOAT[0])).all())
  np.testing.assert_array_equal(erase(-1.0, LEVELS[0]), LEVELS[0])


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint16, jnp.int8])
def test_other_integer_images_are_refused_with_the_dtype(dtype):
  with pytest.raises(TypeError, match=r"random_resized_crop: `image` must be a floating-point "
                                      rf"or uint8 array, got dtype {jnp.dtype(dtype).name}"):
    A.random_resized_crop(jax.random.key(0), LEVELS[0].astype(dtype), 8)
  with pytest.raises(TypeError, match=r"batched.*floating-point or uint8"):
    A.batched(A.random_flip_left_right)(jax.random.key(0), LEVELS.astype(dtype))



# Arguments that make each public op run on an 8x8 image (keyed ops take a key first).
ARGS = {
    "random_brightness": (0.1,), "random_contrast": ((0.5, 1.5),), "random_hue": (0.1,),
    "random_saturation": ((0.5, 1.5),), "adjust_hue": (0.1,), "adjust_saturation": (0.5,),
    "gaussian_blur": (3, 1.0), "solarize_add": (0.1,),
    "rotate": (10.0,), "shear_x": (0.1,), "shear_y": (0.1,), "translate_x": (1.0,),
    "translate_y": (1.0,), "center_crop": (4,), "five_crop": (4,), "ten_crop": (4,),
    "mixup": (jnp.eye(8),), "cutmix": (jnp.eye(8),),
}
# The ops that take uint8 (the package docstring lists them), left out: running them compiles.
UINT8_OPS = {"random_resized_crop", "random_scale_crop", "random_crop", "random_flip_left_right",
             "random_flip_up_down", "random_erasing", "rand_augment", "trivial_augment_wide",
             "auto_augment", "aug_mix", "invert", "solarize", "posterize", "equalize",
             "autocontrast", "enhance_brightness", "enhance_color", "enhance_contrast",
             "enhance_sharpness"}


def test_float_only_ops_advise_scaling_uint8_levels_to_the_unit_interval():
  # Every public op that refuses a uint8 image says how to make the float image it expects:
  # `image.astype(jnp.float32) / 255`, not a bare cast (levels 0-255 are not [0, 1]).
  refused, candidates = {}, set()
  for name in A.__all__:
    fn = getattr(A, name)
    first = next(iter(inspect.signature(fn).parameters))
    if first not in ("key", "image") or name in UINT8_OPS:
      continue
    candidates.add(name)
    keyed = first == "key"
    args = ARGS.get(name, ())
    batch = name in ("mixup", "cutmix")
    image = jnp.zeros((8, 8, 8, 3) if batch else (8, 8, 3), jnp.uint8)
    try:
      with reuse_keys():
        fn(jax.random.key(0), image, *args) if keyed else fn(image, *args)
    except TypeError as err:
      refused[name] = str(err)
  # Every image op outside UINT8_OPS refuses uint8: one that starts taking it belongs there.
  assert len(candidates) >= 20, sorted(candidates)
  assert set(refused) == candidates, sorted(candidates - set(refused))
  assert set(ARGS) <= set(refused), sorted(set(ARGS) - set(refused))
  for name, message in refused.items():
    arg = "images" if name in ("mixup", "cutmix") else "image"
    assert message.startswith(
        f"{name}: `{arg}` must be a floating-point array, got dtype uint8"), message
    assert f"`{arg}.astype(jnp.float32) / 255`" in message, message
