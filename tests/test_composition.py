"""Composition: every random op under `jit`, `batched` (vmap and sequential), `jvp` and `grad`.

`batched(f)` is the default, vmapped path; on a CPU the policies, the colour jitter, the blur and
equalize's histogram run it as a loop over the examples with a `custom_jvp` for derivatives
(`jaxreg/_backend.py`'s `loop_on_cpu`). The reference is `batched(f, sequential=True)` (a
`lax.map` of single images, no vmap at all) and single-image calls. The batch is tiny (4 images
of 8x10x3), so the time is compiling.
"""

import functools

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from conftest import reuse_keys
from x64 import enable_x64

import jaxreg as jr

A = jr.augment
KEY = jax.random.key(5)
N, H, W = 4, 8, 10


def _images(dtype=jnp.float32):
  x = jax.random.uniform(jax.random.key(0), (N, H, W, 3), dtype)
  return 0.1 + 0.8 * x  # away from the clips at 0 and 1


def _blur(key, image):
  sigma = jax.random.uniform(key, (), image.dtype, 0.1, 2.0)
  return A.gaussian_blur(image, 3, sigma)


def _equalize(key, image):
  del key  # deterministic: under `vmap` its histogram is the CPU loop
  return A.equalize(image)


# Each op as ``fn(key, image)``, with its options where it needs some.
OPS = {
    "rand_augment": A.rand_augment,
    "rand_augment bilinear": functools.partial(A.rand_augment, interpolation="bilinear"),
    "trivial_augment_wide": A.trivial_augment_wide,
    "auto_augment": A.auto_augment,
    # nearest: the bilinear warp's derivatives are rand_augment bilinear's row
    "aug_mix": functools.partial(A.aug_mix, width=2, depth=1, interpolation="nearest"),
    "random_crop": functools.partial(A.random_crop, size=6, padding=1),
    "random_resized_crop": functools.partial(A.random_resized_crop, size=6),
    "random_scale_crop": functools.partial(A.random_scale_crop, size=6, scales=(8, 12)),
    "random_flip_left_right": A.random_flip_left_right,
    "random_flip_up_down": A.random_flip_up_down,
    "color_jitter": functools.partial(A.color_jitter, brightness=0.4, contrast=0.4,
                                      saturation=0.4, hue=0.1),
    "color_jitter fixed order": functools.partial(A.color_jitter, brightness=0.4, contrast=0.4,
                                                  saturation=0.4, hue=0.1, random_order=False),
    "random_brightness": functools.partial(A.random_brightness, max_delta=0.2),
    "random_contrast": functools.partial(A.random_contrast, factors=(0.6, 1.4)),
    "random_hue": functools.partial(A.random_hue, max_delta=0.2),
    "random_saturation": functools.partial(A.random_saturation, factors=(0.6, 1.4)),
    "random_erasing": functools.partial(A.random_erasing, probability=0.8, value=0.5),
    "random_grayscale": functools.partial(A.random_grayscale, probability=0.5),
    "gaussian_blur": _blur,
    "equalize": _equalize,
}


def _per_example(fn, key, images):
  keys = jax.random.split(key, images.shape[0])
  return jnp.stack([fn(k, x) for k, x in zip(keys, images, strict=True)])


@pytest.mark.parametrize("name", sorted(OPS))
def test_batched_op_is_the_same_function_every_way(name):
  # eager == jit; vmap == sequential == one image at a time; jvp with respect to the float image
  # equals the sequential path's, and grad is its transpose: <grad(w . f), t> = <w, J t> for
  # three tangents t, with J t from the sequential path's compiled jvp (the check
  # `jax.test_util.check_vjp` makes). The jitted values are the primal outputs of the jitted
  # jvps (one compilation each for value and tangent). Tolerances: float32 rounding of
  # differently fused computations.
  fn = OPS[name]
  images = _images()
  tangents = jax.random.normal(jax.random.key(1), (3, *images.shape))
  vmapped, sequential = A.batched(fn), A.batched(fn, sequential=True)
  with reuse_keys():
    eager = vmapped(KEY, images)
    single = _per_example(fn, KEY, images)
    weights = jax.random.normal(jax.random.key(2), eager.shape)

    def jvp(batch_fn):
      return jax.jit(lambda x, t: jax.jvp(lambda y: batch_fn(KEY, y), (x,), (t,)))

    jvp_sequential = jvp(sequential)
    jitted, jvp_out = jvp(vmapped)(images, tangents[0])
    looped, jvp_seq = jvp_sequential(images, tangents[0])
    directions = [jvp_sequential(images, t)[1] for t in tangents]  # compiled once
    grad_out = jax.jit(jax.grad(lambda x: jnp.sum(vmapped(KEY, x) * weights)))(images)

  assert eager.shape[0] == N
  assert jitted.shape == jvp_out.shape == eager.shape, (jitted.shape, jvp_out.shape)
  np.testing.assert_allclose(eager, jitted, atol=1e-5)
  np.testing.assert_allclose(jitted, looped, atol=1e-5)
  np.testing.assert_allclose(single, looped, atol=1e-5)
  np.testing.assert_allclose(jvp_out, jvp_seq, atol=1e-4, rtol=1e-4)
  assert grad_out.shape == images.shape
  np.testing.assert_allclose([jnp.vdot(grad_out, t) for t in tangents],
                             [jnp.vdot(weights, d) for d in directions], rtol=1e-4, atol=1e-3)


def test_loop_on_cpu_outputs_keep_the_batch_axis_under_jvp():
  # The mechanism in a few lines: a jitted loop whose output stacks a batched value (as a
  # policy's chains do), under vmap, then jvp and grad. The primal and tangent keep the batch
  # on axis 0, and both derivatives are those of the plain function.
  from jaxreg import _backend

  def stacked(x, n):
    return jnp.stack([x * x, x + n])

  def vectorized(x, n, select=False):
    del select  # no switch to avoid
    return stacked(x, n)

  f = jax.jit(jax.vmap(_backend.loop_on_cpu(stacked, vectorized, differentiable=1)))
  plain = jax.vmap(stacked)
  x = jnp.arange(12.0).reshape(4, 3)
  n = jnp.ones((4, 3))
  primal, tangent = jax.jvp(lambda y: f(y, n), (x,), (jnp.ones_like(x),))
  want_primal, want_tangent = jax.jvp(lambda y: plain(y, n), (x,), (jnp.ones_like(x),))
  np.testing.assert_array_equal(primal, want_primal)
  np.testing.assert_array_equal(tangent, want_tangent)
  np.testing.assert_array_equal(jax.grad(lambda y: f(y, n).sum())(x),
                                jax.grad(lambda y: plain(y, n).sum())(x))


def _smooth_rand_augment_seed():
  # A key of `batched(rand_augment)` whose 4 examples draw only ops that are smooth in the
  # image (the enhancers, rotations and shears with bilinear resampling), so finite
  # differences see no jump.
  from jaxreg.augment import _policy_space as ps

  smooth = {ps.OPS.index(op) for op in ("Identity", "ShearX", "ShearY", "Rotate", "Brightness",
                                         "Color", "Contrast")}
  tab = ps.table(ps.RAND_AUGMENT, H, W, 31)
  with reuse_keys():
    for seed in range(2000):
      keys = jax.random.split(jax.random.key(seed), N)
      ops = jax.vmap(lambda k: ps.draw_rand_augment(k, tab, 2, 9, 31, 0.0)[0])(keys)
      if set(np.asarray(ops).ravel().tolist()) <= smooth:
        return seed
  raise AssertionError("no smooth key in 2000 seeds")


@pytest.mark.parametrize("name", ["color_jitter", "rand_augment"])
def test_batched_derivatives_match_finite_differences_in_float64(name):
  # The default (vmapped, on a CPU looped) path in float64: forward and reverse mode against
  # central differences. Tolerance: check_grads' default for float64; steps of 1e-6 (hue and
  # the resampling are smooth only piecewise: 1e-4 steps cross a kink).
  if name == "color_jitter":
    fn, key = OPS["color_jitter"], KEY
  else:
    fn = functools.partial(A.rand_augment, interpolation="bilinear")
    key = jax.random.key(_smooth_rand_augment_seed())
  with enable_x64(True), reuse_keys():
    images = 0.3 + 0.4 * _images(jnp.float64)
    weights = jnp.cos(jnp.arange(images.size, dtype=jnp.float64)).reshape(images.shape)
    loss = lambda x: jnp.sum(A.batched(fn)(key, x) * weights)  # noqa: E731
    jax.test_util.check_grads(loss, (images,), order=1, modes=("fwd", "rev"), eps=1e-6)
