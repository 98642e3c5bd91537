"""Composition: every public augment function eagerly, under `jit`, `vmap`, sequentially, `jvp`
and `grad`, each against a reference.

Two tables, and a meta-test that every public function is a row of one of them (or in
`NOT_ROWS`, with the reason):

* `OPS`, the random per-image ops ``fn(key, image)``: `batched(fn)` is the default, vmapped path;
  on a CPU the policies, the colour jitter, the blur and equalize's histogram run it as a loop
  over the examples with a `custom_jvp` for derivatives (`jaxreg/_backend.py`'s
  `loop_on_cpu`). The reference is `batched(fn, sequential=True)` (a `lax.map` of single images,
  no vmap at all) and single-image calls, eager.
* `ROWS`, the functions of arrays (deterministic ops with their magnitudes, parameter sets
  applied to images and targets, test-time views and averages, the mixes), in float64: each
  example eager, then one compiled program runs them vmapped (and, where a row says so, in a
  `lax.map`) and takes `jvp` and `grad` with respect to the float inputs, checked against
  central differences of that same program's value (so the differences cost no compilation).
  Derivatives documented as not defined are checked to be the documented zero.

Batches are tiny (4 images of 8x10x3 in `OPS`, 3 examples in `ROWS`), so the time is compiling:
each row compiles as few programs as it can, and the test's own arithmetic is NumPy. The
policies' and the colour jitter's rows stay the longest: each compiles the CPU loop and the
select form of every op it may draw, and their derivatives.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys
from x64 import enable_x64

import jaxreg as jr

A = jr.augment
KEY = jax.random.key(5)
N, H, W = 4, 8, 10


# --------------------------------------------------------------------------------------------
# Random per-image ops: fn(key, image)
# --------------------------------------------------------------------------------------------


def _normal(seed, shape, dtype=np.float32):
  return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def _images():
  return np.random.default_rng(0).uniform(0.1, 0.9, (N, H, W, 3)).astype(np.float32)


def _blur(key, image):
  sigma = jax.random.uniform(key, (), image.dtype, 0.1, 2.0)
  return A.gaussian_blur(image, 3, sigma)


def _equalize(key, image):
  del key  # deterministic: under `vmap` its histogram is the CPU loop
  return A.equalize(image)


# Each op as ``fn(key, image)``, with its options where it needs some. The policies' nearest
# warp runs in trivial_augment_wide's, auto_augment's and aug_mix's rows, the bilinear one in
# rand_augment's (and against differences, two slots in turn: "apply PolicyParams" in `ROWS`).
OPS = {
    "rand_augment bilinear": functools.partial(A.rand_augment, num_ops=1,
                                               interpolation="bilinear"),
    "trivial_augment_wide": A.trivial_augment_wide,
    "auto_augment": A.auto_augment,
    "aug_mix": functools.partial(A.aug_mix, width=2, depth=1, interpolation="nearest"),
    "random_crop": functools.partial(A.random_crop, size=6, padding=1),
    "random_resized_crop": functools.partial(A.random_resized_crop, size=6),
    "random_scale_crop": functools.partial(A.random_scale_crop, size=6, scales=(8, 12)),
    "random_flip_left_right": A.random_flip_left_right,
    "random_flip_up_down": A.random_flip_up_down,
    # the random order: the "apply ColorJitterParams" row of `ROWS`, against differences
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
    # a resized crop then a flip: one resampling with mirrored columns
    "compose": A.compose(functools.partial(A.random_resized_crop, size=6),
                         A.random_flip_left_right),
}
# The public functions each `OPS` row runs besides `batched`, where its name is not one.
OPS_COVER = {"rand_augment bilinear": (A.rand_augment,), "gaussian_blur": (A.gaussian_blur,),
             "equalize": (A.equalize,), "color_jitter fixed order": (A.color_jitter,),
             "compose": (A.compose, A.random_resized_crop, A.random_flip_left_right)}


def _per_example(fn, key, images):
  keys = jax.random.split(key, images.shape[0])
  return np.stack([fn(k, x) for k, x in zip(keys, images, strict=True)])


@pytest.mark.parametrize("name", sorted(OPS))
def test_batched_op_is_the_same_function_every_way(name):
  # One image at a time, eager == vmapped under jit == sequential under jit; jvp with respect
  # to the float image equals the sequential path's, and grad is its transpose: <grad(w . f),
  # t> = <w, J t> for three tangents t, with J t from the sequential path's compiled jvp (the
  # check `jax.test_util.check_vjp` makes). Two compiled programs: the vmapped path linearized
  # once (its value, its jvp and that jvp's transpose, grad), and the sequential path's jvp
  # (value and tangent), called once per tangent. (An eager vmapped call traces what jit
  # traces, and would compile the op once more.) Tolerances: float32 rounding of differently
  # fused computations.
  fn = OPS[name]
  images = _images()
  tangents = _normal(1, (3, *images.shape))
  vmapped, sequential = A.batched(fn), A.batched(fn, sequential=True)
  with reuse_keys():
    single = _per_example(fn, KEY, images)
    weights = _normal(2, single.shape)

    @jax.jit
    def linearized(x, t, w):
      value, jvp = jax.linearize(lambda y: vmapped(KEY, y), x)
      (grad,) = jax.linear_transpose(jvp, x)(w)
      return value, jvp(t), grad

    jvp_sequential = jax.jit(lambda x, t: jax.jvp(lambda y: sequential(KEY, y), (x,), (t,)))
    jitted, jvp_out, grad_out = linearized(images, tangents[0], weights)
    looped, jvp_seq = jvp_sequential(images, tangents[0])
    directions = [np.asarray(jvp_sequential(images, t)[1]) for t in tangents]  # compiled once

  assert single.shape[0] == N
  assert jitted.shape == jvp_out.shape == single.shape, (jitted.shape, jvp_out.shape)
  np.testing.assert_allclose(jitted, single, atol=1e-5)
  np.testing.assert_allclose(looped, single, atol=1e-5)
  np.testing.assert_allclose(jvp_out, jvp_seq, atol=1e-4, rtol=1e-4)
  assert grad_out.shape == images.shape
  np.testing.assert_allclose([np.vdot(grad_out, t) for t in tangents],
                             [np.vdot(weights, d) for d in directions], rtol=1e-4, atol=1e-3)


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


# --------------------------------------------------------------------------------------------
# Functions of arrays, in float64 against central differences
# --------------------------------------------------------------------------------------------

E = 3  # examples per row
# (step, tolerance) of an argument's central differences. Float64: truncation ~1e-12,
# rounding ~1e-10.
STEP = (1e-6, 1e-6)
# An argument the op computes with in float32 (a geometric magnitude, a matrix, a box: the
# sample points are float32, docs/design/geometric.md): a step far above float32's
# resolution, and its tolerance. Moved by a step, a few bilinear samples cross a pixel or the
# image's edge (kinks, `Row.kinks`).
COARSE = (1e-3, 1e-3)
# A linear map computed in float32: exact differences at any step.
LINEAR = (1.0, 1e-3)
# A bilinear warp's sample points, float32, move by ~1e-6 pixels between differently fused
# programs (eager against compiled), and its blend by that times a neighbour difference.
WARP_ATOL = 2e-5


@dataclasses.dataclass(frozen=True)
class Row:
  """``fn(*args)`` for one example; ``args()`` gives ``E`` examples stacked on axis 0.

  ``steps``: the arguments differentiated against central differences, with their (step,
  tolerance); ``zero``: the arguments whose derivative is documented as zero (a step, a
  rounding, a histogram, a whole-pixel or nearest warp in its magnitude), checked to be exactly
  zero. Other arguments (keys, integers, flags) are not differentiated.
  """

  covers: tuple[Callable, ...]  # the public functions the row runs
  fn: Callable
  args: Callable[[], tuple]
  steps: dict[int, tuple[float, float]] = dataclasses.field(default_factory=lambda: {0: STEP})
  zero: tuple[int, ...] = ()
  kinks: float = 0.0  # the fraction of output elements allowed within a step of a kink
  value_atol: float = 1e-12  # eager against compiled
  x64: bool = True  # False: float32 (linear maps only)
  sequential: bool = False  # also the examples in a `lax.map`, `batched(sequential=True)`


def _float():
  """float64, or float32 in a row with ``x64=False``."""
  return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def _f64(*values):
  return np.asarray(values, _float())


def _x(e=E, h=H, w=W, c=3, seed=0):
  """Images in [0.2, 0.8]: no op clamps near the point."""
  return np.random.default_rng(seed).uniform(0.2, 0.8, (e, h, w, c)).astype(_float())


def _batches(n):
  """``E`` batches of ``n`` images."""
  return _x(e=E * n).reshape(E, n, H, W, 3)


def _labels(classes=4):
  return np.random.default_rng(9).uniform(size=(E, 3, classes)).astype(_float())


def _keys():
  return jax.random.split(jax.random.key(3), E)


def _one(op, *args, **kwargs):
  """``op(x, *args, **kwargs)``."""
  return Row((op,), lambda x: op(x, *args, **kwargs), lambda: (_x(),))


def _with(op, magnitudes, *, zero=False, **kwargs):
  """``op(x, magnitude, **kwargs)``, one magnitude per example; ``zero``: the derivative in the
  magnitude is the documented zero."""
  return Row((op,), lambda x, m: op(x, m, **kwargs), lambda: (_x(), _f64(*magnitudes)),
             steps={0: STEP} if zero else {0: STEP, 1: STEP}, zero=(1,) if zero else ())


def _warp(op, magnitudes, interpolation, *, zero=False):
  """A geometric op at one magnitude per example (``zero``: nearest, and the translations by
  whole pixels, are piecewise constant in it)."""
  return Row((op,), lambda x, m: op(x, m, interpolation=interpolation, fill=0.3),
             lambda: (_x(), _f64(*magnitudes)),
             steps={0: STEP} if zero else {0: STEP, 1: COARSE}, zero=(1,) if zero else (),
             kinks=0.1, value_atol=WARP_ATOL if interpolation == "bilinear" else 0.0)


def _affine(x, m):
  return A.affine(x, angle=m[0], translate=(m[1], m[2]), scale=m[3], shear=(m[4], m[5]),
                  interpolation="bilinear", fill=(0.1, 0.2, 0.3))


def _color_chain(x, m):
  # The four tf.image steps a `ColorParams` holds, each at its own magnitude.
  for op, value in zip(("brightness", "contrast", "saturation", "hue"), m, strict=True):
    x = A.apply(A.ColorParams(magnitude=value, op=op), x)
  return x


def _jitter(key, x, factors):
  # A drawn jitter (its random order) at the given factors.
  drawn = A.draw(A.color_jitter)(key, x, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
  return A.apply(dataclasses.replace(drawn, brightness=factors[0], contrast=factors[1],
                                     saturation=factors[2], hue=factors[3]), x)


# Each example's policy slots: ops smooth in the image and the magnitude (bilinear warps,
# enhancers), so that central differences see no jump. The contrast (the image's mean) comes
# before the warp: a sample crossing the image's edge would move every pixel's mean.
SMOOTH_SLOTS = (("Rotate", "Brightness"), ("Contrast", "ShearX"), ("Color", "ShearY"))


def _policy(x, ops, magnitudes, fill):
  return A.apply(A.PolicyParams(ops=ops, magnitudes=magnitudes, fill=fill.astype(jnp.float32),
                                interpolation="bilinear", image_size=(H, W)), x)


def _aug_mix(x, ops, magnitudes, weights):
  # Each example's two chains of one op (its `SMOOTH_SLOTS`), mixed by its three weights.
  return A.apply(A.AugMixParams(ops=ops[:, None], magnitudes=magnitudes[:, None],
                                image_weight=weights[0], chain_weights=weights[1:],
                                fill=jnp.float32(0.3), interpolation="bilinear",
                                image_size=(H, W)), x)


def _turn(angle):
  return A.draw(A.rotate)(jnp.zeros((H, W, 3)), angle, interpolation="bilinear")


def _matrix(x, m):
  return A.apply(A.AffineParams(matrix=m, fill=jnp.float32(0.3), interpolation="bilinear",
                                image_size=(H, W)), x)


def _box(v):
  """A resized crop of an 8x10 image to 5x7 from four floats (float32, as drawn)."""
  v = v.astype(jnp.float32)
  return A.ResizedCropParams(top=v[0], left=v[1], height=v[2], width=v[3], size=(5, 7),
                             image_size=(H, W))


def _boxes():
  return _f64((1.2, 0.7, 6.1, 7.3), (0.5, 2.2, 5.4, 6.6), (2.0, 1.1, 5.7, 8.2))


def _flip(flag):
  return A.FlipParams(flip=flag, probability=jnp.float32(0.5), image_size=(5, 7))


def _erase(x, value):
  # a box of rows 2-5 and columns 3-7 filled with ``value``, one per channel
  box = {k: jnp.float32(v) for k, v in (("top", 2), ("left", 3), ("height", 4), ("width", 5))}
  return A.apply(A.ErasingParams(**box, erase=jnp.array(True), probability=jnp.float32(0.5),
                                 value=value), x)


def _mixup(x, y, lam):
  return A.apply(A.MixupParams(perm=jnp.array([2, 0, 1]), lam=lam), x, y)


# A nonlinear model for the test-time averages.
MIX = _normal(0, (3, 2), np.float64)


def _pixel_model(batch):
  return jnp.tanh(batch @ MIX.astype(batch.dtype))


def _pooled_model(batch):
  return jnp.tanh(batch.mean((1, 2)) @ MIX.astype(batch.dtype))


# Boxes and keypoints inside the canvas, away from its edges after the sets below, so that the
# clamp is not at its kink.
BOXES = ((3.1, 2.2, 5.3, 4.9), (4.2, 3.3, 6.1, 5.2))
POINTS = ((3.3, 2.8), (5.6, 4.1), (4.4, 3.6))
MAGNITUDES = (-20.3, 10.7, 35.2)  # degrees

ROWS = {
    # Level ops, enhancers, filters, colour
    "invert": _one(A.invert),
    "autocontrast": _one(A.autocontrast),  # random pixels: unique extremes
    "grayscale": _one(A.grayscale),
    "rgb_to_hsv": _one(A.rgb_to_hsv),
    "hsv_to_rgb": _one(A.hsv_to_rgb),
    "equalize": Row((A.equalize,), A.equalize, lambda: (_x(),), steps={}, zero=(0,)),
    "posterize": Row((A.posterize,), A.posterize, lambda: (_x(), np.array([1, 3, 6])),
                     steps={}, zero=(0,)),
    # a step at the threshold: no pixel within a step of it
    "solarize": _with(A.solarize, (0.3, 0.5, 0.7), zero=True),
    "solarize_add": _with(A.solarize_add, (0.1, -0.2, 0.05), threshold=0.6),
    "enhance_brightness": _with(A.enhance_brightness, (0.5, 1.1, 1.2)),
    "enhance_color": _with(A.enhance_color, (0.2, 0.6, 1.8)),
    "enhance_contrast": _with(A.enhance_contrast, (0.3, 1.3, 1.2)),
    "enhance_sharpness": _with(A.enhance_sharpness, (0.2, 1.4, 1.9)),
    "gaussian_blur": Row((A.gaussian_blur,), lambda x, s: A.gaussian_blur(x, 3, s),
                         lambda: (_x(), _f64(0.6, 1.0, 1.7)), steps={0: STEP, 1: STEP}),
    "adjust_hue": _with(A.adjust_hue, (-0.2, 0.05, 0.3)),
    "adjust_saturation": _with(A.adjust_saturation, (0.4, 1.2, 1.7)),
    # Geometry
    "rotate": _warp(A.rotate, MAGNITUDES, "bilinear"),
    "rotate nearest": _warp(A.rotate, MAGNITUDES, "nearest", zero=True),
    "shear_x": _warp(A.shear_x, (-0.21, 0.13, 0.33), "nearest", zero=True),
    "shear_y": _warp(A.shear_y, (0.27, -0.11, 0.17), "bilinear"),
    "translate_x": _warp(A.translate_x, (2.3, -1.5, 3.0), "bilinear", zero=True),
    "translate_y": _warp(A.translate_y, (-2.0, 1.7, 0.4), "nearest", zero=True),
    "affine": Row((A.affine,), _affine, lambda: (_x(), _f64(
        (20.3, 1.5, -0.5, 1.1, 5.0, -3.0), (-12.1, 0.0, 2.0, 0.9, 0.0, 8.0),
        (33.7, -2.0, 0.5, 1.2, -6.0, 2.0))), steps={0: STEP, 1: COARSE}, kinks=0.1,
        value_atol=WARP_ATOL),
    # Parameter sets, drawn or built, applied to the image; derivatives in their float fields
    "apply ColorParams": Row((A.apply,), _color_chain, lambda: (_x(), _f64(
        (0.1, 1.3, 0.7, 0.05), (-0.1, 0.8, 1.4, -0.2), (0.05, 1.1, 1.2, 0.3))),
        steps={0: STEP, 1: STEP}),
    # color_jitter in a random order, its default (vmapped, on a CPU looped) path and
    # `batched(sequential=True)`'s `lax.map`
    "apply ColorJitterParams": Row((A.apply, A.draw, A.color_jitter), _jitter, lambda: (
        _keys(), _x(), _f64((0.1, 1.3, 0.7, 0.05), (-0.1, 0.8, 1.4, -0.2),
                            (0.05, 1.1, 1.2, 0.08))), steps={1: STEP, 2: STEP},
        sequential=True),
    # The policies' default (vmapped, on a CPU looped) path, in the image, the magnitudes and
    # the fill (float32, as drawn).
    "apply PolicyParams": Row((A.apply,), _policy, lambda: (_x(), np.asarray(
        [[A.PolicyParams.OPS.index(op) for op in ops] for ops in SMOOTH_SLOTS]), _f64(
            (12.3, 0.27), (-0.37, 0.23), (0.45, -0.17)), _f64(0.2, 0.5, 0.7)),
        steps={0: STEP, 2: COARSE, 3: COARSE}, kinks=0.1, value_atol=WARP_ATOL),
    # AugMix's chains and mixing weights (it is linear in the weights). In the image, as the
    # policies' warps sample at float32 coordinates, which XLA may round differently in the
    # jvp's program and in its transpose's (a float32 rounding of a bilinear weight).
    "apply AugMixParams": Row((A.apply,), _aug_mix, lambda: (_x(), np.asarray(
        [[A.PolicyParams.OPS.index(op) for op in ops] for ops in SMOOTH_SLOTS]), _f64(
            (12.3, 0.27), (-0.37, 0.23), (0.45, -0.17)), _f64(
            (0.3, 0.5, 0.2), (0.6, 0.1, 0.3), (0.2, 0.2, 0.6))),
        steps={0: COARSE, 2: COARSE, 3: STEP}, kinks=0.1, value_atol=WARP_ATOL),
    "apply AffineParams": Row((A.apply,), _matrix, lambda: (_x(), np.stack(
        [np.asarray(_turn(a).matrix, _float()) for a in MAGNITUDES])),
        steps={0: STEP, 1: COARSE}, kinks=0.1, value_atol=WARP_ATOL),
    "apply ErasingParams": Row((A.apply,), _erase, lambda: (_x(), _f64(
        (0.1, 0.5, 0.9), (0.3, 0.3, 0.3), (0.7, 0.2, 0.4))), steps={0: STEP, 1: STEP}),
    "apply MixupParams": Row((A.apply,), _mixup, lambda: (_batches(3), _labels(), _f64(
        (0.2, 0.7, 0.9), (0.5, 0.1, 0.4), (0.3, 0.3, 0.6))), steps={0: STEP, 1: STEP, 2: STEP}),
    # The mixes, a batch of 3 per example. cutmix is linear in the images and labels, and in
    # float32 (its draw mixes float32 with the default float).
    "mixup": Row((A.mixup,), lambda k, x, y: A.mixup(k, x, y, alpha=0.4),
                 lambda: (_keys(), _batches(3), _labels()), steps={1: STEP, 2: STEP}),
    # in float32: eager and compiled may fuse the labels' blend differently (a rounding or two)
    "cutmix": Row((A.cutmix,), A.cutmix, lambda: (_keys(), _batches(3), _labels()),
                  steps={1: LINEAR, 2: LINEAR}, x64=False, value_atol=2.4e-7),
    "aug_mix_consistency_loss": Row(
        (A.aug_mix_consistency_loss,), A.aug_mix_consistency_loss,
        lambda: tuple(3 * _normal(i, (E, 5, 6), _float()) for i in range(3)),
        steps={0: STEP, 1: STEP, 2: STEP}),
    # Test-time views, their averages and the inverse
    "center_crop": _one(A.center_crop, 6),
    "five_crop": _one(A.five_crop, (5, 6)),
    "ten_crop": _one(A.ten_crop, 6),
    "multi_crop_predict": Row((A.multi_crop_predict,), lambda x: A.multi_crop_predict(
        _pooled_model, x, size=6, crops="five", scales=(7, 9)), lambda: (_batches(2),)),
    "dense_predict": Row((A.dense_predict,), lambda x: A.dense_predict(
        _pixel_model, x, scale_factors=(0.75, 1.0), size=6, stride=4), lambda: (_batches(2),)),
    "invert_prediction": Row((A.invert_prediction,), lambda p, v, flag: A.invert_prediction(
        (_box(v), _flip(flag)), p), lambda: (_x(h=4, w=6, c=2), _boxes(),
                                            np.array([True, False, True]))),
    # Targets: boxes and keypoints move by affine maps and a clamp, float masks resample as
    # the image. Hook: rows for the erasing and mixing sets (`ErasingParams`, `MixupParams`,
    # `CutmixParams`) go here once the target functions take them.
    "apply_to_boxes": Row((A.apply_to_boxes, A.draw, A.rotate), lambda b, a: A.apply_to_boxes(
        _turn(a), b), lambda: (np.broadcast_to(_f64(*BOXES), (E, 2, 4)), _f64(*MAGNITUDES)),
        steps={0: STEP, 1: COARSE}),
    "apply_to_keypoints": Row((A.apply_to_keypoints,), lambda p, v: A.apply_to_keypoints(
        _box(v), p), lambda: (np.broadcast_to(_f64(*POINTS), (E, 3, 2)), _boxes()),
        steps={0: STEP, 1: COARSE}),
    "apply_to_mask": Row((A.apply_to_mask,), lambda m, v: A.apply_to_mask(_box(v), m),
                         lambda: (_x(c=2), _boxes()), value_atol=WARP_ATOL),
}

# Public names with no row, and why.
NOT_ROWS = {
    # data: `draw` returns them and `apply` takes them (the "apply ..." rows differentiate
    # their float fields)
    **{name: "a parameter class" for name in A.__all__ if inspect.isclass(getattr(A, name))},
}


def _floats(tree):
  """The floating-point leaves: what is differentiated."""
  return [leaf for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)]


@functools.cache
def _program(name):
  """A row's one compiled program: the examples vmapped, their value, the jvp along
  ``tangents`` (one per differentiated argument) and the grad of ``<weights, value>``."""
  row = ROWS[name]
  wrt = (*row.steps, *row.zero)

  def run(args, tangents, weights):
    def floats(*values):
      full = list(args)
      for i, v in zip(wrt, values, strict=True):
        full[i] = v
      return _floats(jax.vmap(row.fn)(*full))

    _, jvp = jax.linearize(floats, *(args[i] for i in wrt))
    grads = jax.linear_transpose(jvp, *(args[i] for i in wrt))(weights)
    sequential = jax.lax.map(lambda a: row.fn(*a), args) if row.sequential else None
    return jax.vmap(row.fn)(*args), sequential, jvp(*tangents), grads

  return jax.jit(run)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_function_is_the_same_every_way_and_its_derivatives_are_central_differences(name):
  # Each example eager == the examples vmapped under jit (and in a `lax.map`, where the row
  # says so). For each differentiated argument
  # alone, along a random tangent t: the jvp equals the central difference (f(a + s t) -
  # f(a - s t)) / 2s of the same compiled program (elements within a step of a kink, where the
  # one-sided differences disagree, are left out, at most `kinks` of them), and grad is the
  # jvp's transpose: <grad(w . f), t> = <w, jvp(t)>. An argument whose derivative is
  # documented as zero gets a zero jvp and grad. Arithmetic on the test's side is NumPy, so
  # that only the row's program compiles.
  row = ROWS[name]
  wrt = (*row.steps, *row.zero)
  with enable_x64(row.x64), reuse_keys():
    args = row.args()
    singles = [row.fn(*(jax.tree.map(lambda a, i=i: a[i], arg) for arg in args))
               for i in range(E)]
    eager = [np.stack(leaves) for leaves in zip(*map(jax.tree.leaves, singles), strict=True)]
    weights = [np.cos(np.arange(v.size)).reshape(v.shape).astype(v.dtype)
               for v in eager if np.issubdtype(v.dtype, np.floating)]
    tangents = [_normal(10 + i, np.shape(args[i]), np.asarray(args[i]).dtype) for i in wrt]
    program = _program(name)

    def along(k, scale=0.0):
      """The program at ``args`` moved by ``scale`` along the tangent of argument ``k``."""
      moved = list(args)
      moved[wrt[k]] = np.asarray(args[wrt[k]]) + scale * tangents[k]
      only = [t if j == k else np.zeros_like(t) for j, t in enumerate(tangents)]
      value, sequential, jvp, grads = program(tuple(moved), only, weights)
      return value, sequential, [np.asarray(v) for v in jvp], [np.asarray(g) for g in grads]

    value, sequential, _, grads = along(0) if wrt else program(args, [], weights)
    for got in (value, sequential) if row.sequential else (value,):
      for g, want in zip(jax.tree.leaves(got), eager, strict=True):
        assert g.dtype == want.dtype
        np.testing.assert_allclose(g, want, atol=row.value_atol, rtol=0, err_msg=name)
    for k, i in enumerate(wrt):
      _, _, jvp, _ = along(k)
      if i in row.zero:
        assert not any(np.any(v) for v in jvp), (name, i)
        assert not np.any(grads[k]), (name, i)
        continue
      step, tol = row.steps[i]
      plus, minus = ([np.asarray(v) for v in _floats(along(k, s)[0])] for s in (step, -step))
      for p, m, c, v in zip(plus, minus, map(np.asarray, _floats(value)), jvp, strict=True):
        central = (p - m) / (2 * step)
        # a mismatch the one-sided differences explain: f is not smooth within a step
        kink = np.abs((p - c) - (c - m)) / step >= np.abs(v - central)
        forgiven = kink & ~np.isclose(v, central, rtol=tol, atol=tol)
        assert forgiven.mean() <= row.kinks, (name, i, forgiven.mean())
        np.testing.assert_allclose(np.where(forgiven, central, v), central, rtol=tol, atol=tol,
                                   err_msg=f"{name}: argument {i}")
      assert any(np.any(p != m) for p, m in zip(plus, minus, strict=True)), (name, i)
      np.testing.assert_allclose(  # grad is the transpose of the jvp
          np.vdot(grads[k], tangents[k]),
          sum(np.vdot(w, v) for w, v in zip(weights, jvp, strict=True)),
          rtol=1e-2 * tol, atol=1e-2 * tol, err_msg=f"{name}: argument {i}")


def test_every_public_function_is_a_row():
  # A new public function fails here until it is a row of `OPS` or `ROWS`, or has a reason in
  # `NOT_ROWS`.
  covered = {A.batched}  # every `OPS` row runs it, both ways
  for name in OPS:
    covered.update(OPS_COVER.get(name, (getattr(A, name, None),)))
  for row in ROWS.values():
    covered.update(row.covers)
  missing = sorted(name for name in A.__all__
                   if name not in NOT_ROWS and getattr(A, name) not in covered)
  assert not missing, "no composition row for: " + ", ".join(missing)
  assert set(NOT_ROWS) <= set(A.__all__), sorted(set(NOT_ROWS) - set(A.__all__))
