"""The edge-case matrix: every public function against every class of bad input that applies.

One table, one row per (function, bad-input class). A row runs one call and states its outcome
class: `raises(...)`, an error of that type whose message names the function, the argument
(in backticks) and, where given, the value received; or `gives(...)`, the documented result (for
a traced value that cannot be checked at trace time, NaN, never a silently wrong number).
tests/test_api.py fails for a public function without rows here. To cover a new function, add
rows for the classes that apply to its signature:

  wrong type or dtype / wrong rank / zero-size dimensions / NaN, inf or out-of-range scalars,
  concrete and traced / wrong key kinds / wrong flags, traced ones included / mismatched
  companions (labels, state, updates, outputs of a user function).

Keep arrays tiny and jit only what must be traced: the whole table runs in seconds.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr

A = jr.augment


def K():  # noqa: N802
  """A fresh key per call: the suite checks that no key is consumed twice."""
  return jax.random.key(0)


X = jnp.linspace(-1.0, 1.0, 24).reshape(2, 4, 3)  # (N, T, D)
NHWC = jnp.linspace(0.0, 1.0, 2 * 6 * 6 * 3).reshape(2, 6, 6, 3)
IMG = jnp.linspace(0.0, 1.0, 6 * 8 * 3).reshape(6, 8, 3)
EMPTY_IMG = jnp.zeros((0, 8, 3))
LABELS = jax.nn.one_hot(jnp.array([0, 1]), 2)
PARAMS = {"w": jnp.array([[0.5, -2.0]]), "b": jnp.array([0.1])}
STATE3 = jr.batch_norm_init(3)


@dataclasses.dataclass(frozen=True)
class Raises:
  error: type[Exception]
  arg: str
  shows: str | None = None  # the value received, as the message shows it


@dataclasses.dataclass(frozen=True)
class Gives:
  check: Callable[[Any], bool]
  what: str


def raises(error: type[Exception], arg: str, shows: str | None = None) -> Raises:
  return Raises(error, arg, shows)


def gives(check: Callable[[Any], bool], what: str) -> Gives:
  return Gives(check, what)


@dataclasses.dataclass(frozen=True)
class Row:
  fn: Callable  # the public function the row is about
  case: str  # the bad-input class
  call: Callable[[], Any]
  expect: Raises | Gives

  @property
  def id(self) -> str:
    return f"{self.fn.__name__}: {self.case}"


def all_nan(out) -> bool:
  return all(bool(jnp.isnan(leaf).all()) for leaf in jax.tree.leaves(out))


def equals(expected) -> Callable[[Any], bool]:
  return lambda out: all(bool(jnp.array_equal(a, b)) for a, b in zip(
      jax.tree.leaves(out), jax.tree.leaves(expected), strict=True))


def traced(fn, *args):
  """``fn(*args)`` under `jit`, so the arguments are traced."""
  return jax.jit(fn)(*args)


def traced_values(fn, good, *bad):
  """``fn`` mapped over ``[good, *bad]`` under `vmap`: every value traced, one compilation."""
  return jax.vmap(fn)(jnp.array([good, *bad], jnp.float32))


def good_then_nan(out) -> bool:
  """The first result (a valid traced value) is finite, every other one (bad values) all NaN."""
  leaves = jax.tree.leaves(out)
  return all(bool(jnp.isfinite(leaf[0]).all()) and bool(jnp.isnan(leaf[1:]).all())
             for leaf in leaves)


NAN_FOR_BAD = gives(good_then_nan, "the valid value's finite result, NaN for each bad one")


def prox_update(tx, updates=None, state=None, params=PARAMS, jit=False):
  updates = jax.tree.map(jnp.zeros_like, params) if updates is None else updates

  def run(params):
    return tx.update(updates, tx.init(params) if state is None else state, params)[0]

  return jax.jit(run)(params) if jit else run(params)


def decay_update(weight_decay, jit=False):
  tx = jr.add_l2_decay(weight_decay, mask=None)
  run = lambda p: tx.update(p, tx.init(p), p)[0]  # noqa: E731
  return jax.jit(run)(PARAMS) if jit else run(PARAMS)


def flip_rows(fn) -> list[Row]:
  return [
      Row(fn, "image of rank 2", lambda: fn(K(), IMG[..., 0]), raises(ValueError, "image")),
      Row(fn, "integer image", lambda: fn(K(), IMG.astype(jnp.int32)),
          raises(TypeError, "image", "int32")),
      Row(fn, "probability 1.5", lambda: fn(K(), IMG, probability=1.5),
          raises(ValueError, "probability", "1.5")),
      Row(fn, "probability NaN", lambda: fn(K(), IMG, probability=float("nan")),
          raises(ValueError, "probability", "nan")),
      Row(fn, "traced probability 2.0, -0.5, NaN", lambda: traced_values(
          lambda p: fn(K(), IMG, probability=p), 0.5, 2.0, -0.5, jnp.nan), NAN_FOR_BAD),
      Row(fn, "key None", lambda: fn(None, IMG), raises(ValueError, "key", "None")),
      Row(fn, "key an int", lambda: fn(3, IMG), raises(TypeError, "key", "int")),
      Row(fn, "empty image", lambda: fn(K(), EMPTY_IMG, probability=1.0),
          gives(lambda y: y.shape == EMPTY_IMG.shape, "the empty image")),
  ]


def color_space_rows(fn) -> list[Row]:
  return [
      Row(fn, "0-d image", lambda: fn(jnp.float32(0.5)), raises(ValueError, "image", "()")),
      Row(fn, "2 channels", lambda: fn(jnp.ones((2, 2, 2))), raises(ValueError, "image")),
      Row(fn, "integer image", lambda: fn(jnp.ones((2, 3), jnp.int32)),
          raises(TypeError, "image", "int32")),
      Row(fn, "string", lambda: fn("red"), raises(TypeError, "image", "'red'")),
      Row(fn, "zero-size image", lambda: fn(jnp.zeros((0, 4, 3))),
          gives(lambda y: y.shape == (0, 4, 3), "an empty image")),
  ]


def adjust_rows(fn, name) -> list[Row]:
  return [
      Row(fn, "0-d image", lambda: fn(jnp.float32(0.5), 0.1), raises(ValueError, "image", "()")),
      Row(fn, "not RGB", lambda: fn(jnp.ones((2, 2, 1)), 0.1), raises(ValueError, "image")),
      Row(fn, "integer image", lambda: fn(IMG.astype(jnp.uint8), 0.1),
          raises(TypeError, "image", "uint8")),
      Row(fn, f"{name} NaN", lambda: fn(IMG, float("nan")), raises(ValueError, name, "nan")),
      Row(fn, f"{name} inf", lambda: fn(IMG, float("inf")), raises(ValueError, name, "inf")),
      Row(fn, f"{name} per channel", lambda: fn(IMG, jnp.array([0.5, 1.0, 1.5])),
          raises(ValueError, name, "(3,)")),
      Row(fn, f"{name} a string", lambda: fn(IMG, "0.5"), raises(TypeError, name, "'0.5'")),
      Row(fn, f"{name} of the wrong shape", lambda: fn(IMG, jnp.ones((2, 1, 1, 1))),
          raises(ValueError, name, "(2, 1, 1, 1)")),
      Row(fn, "clip 'yes'", lambda: fn(IMG, 0.1, clip="yes"), raises(TypeError, "clip", "'yes'")),
      Row(fn, "zero-size image", lambda: fn(jnp.zeros((0, 4, 3)), 0.1),
          gives(lambda y: y.shape == (0, 4, 3), "an empty image")),
  ]


def random_color_rows(fn, good: tuple, bad: list[tuple[str, tuple, type, str, str]]) -> list[Row]:
  rows = [
      Row(fn, "key None", lambda: fn(None, IMG, *good), raises(ValueError, "key", "None")),
      Row(fn, "key a float array", lambda: fn(jnp.zeros(2), IMG, *good),
          raises(TypeError, "key", "float32")),
      Row(fn, "batch instead of an image", lambda: fn(K(), NHWC, *good),
          raises(ValueError, "image", "augment.batched")),
      Row(fn, "integer image", lambda: fn(K(), IMG.astype(jnp.int32), *good),
          raises(TypeError, "image", "int32")),
      Row(fn, "clip None", lambda: fn(K(), IMG, *good, clip=None), raises(TypeError, "clip")),
      Row(fn, "traced clip", lambda: traced(lambda c: fn(K(), IMG, *good, clip=c), True),
          raises(TypeError, "clip", "traced")),
  ]
  for case, args, error, arg, shows in bad:
    rows.append(Row(fn, case, lambda args=args: fn(K(), IMG, *args), raises(error, arg, shows)))
  return rows


def crop_view_rows(fn) -> list[Row]:
  return [
      Row(fn, "NHWC batch", lambda: fn(NHWC, 4), raises(ValueError, "image", "jax.vmap")),
      Row(fn, "size larger than the image", lambda: fn(IMG, 7),
          raises(ValueError, "size", "(7, 7)")),
      Row(fn, "size 0", lambda: fn(IMG, 0), raises(ValueError, "size", "0")),
      Row(fn, "size of three", lambda: fn(IMG, (2, 2, 2)), raises(ValueError, "size")),
      Row(fn, "size a float", lambda: fn(IMG, 2.5), raises(TypeError, "size", "2.5")),
      Row(fn, "integer image", lambda: fn(IMG.astype(jnp.int32), 2),
          raises(TypeError, "image", "int32")),
      Row(fn, "empty image", lambda: fn(EMPTY_IMG, 1), raises(ValueError, "size")),
  ]


def warp_rows(fn, name: str, good: float, bad: tuple, apply=None) -> list[Row]:
  """A geometric op; ``apply(image, magnitude, **kw)`` calls it (default: ``fn`` itself)."""
  apply = fn if apply is None else apply
  return [
      Row(fn, "image of rank 2", lambda: apply(IMG[..., 0], good),
          raises(ValueError, "image", "(6, 8)")),
      Row(fn, "NHWC batch", lambda: apply(NHWC, good), raises(ValueError, "image", "jax.vmap")),
      Row(fn, "integer image", lambda: apply(IMG.astype(jnp.int32), good),
          raises(TypeError, "image", "int32")),
      Row(fn, f"{name} NaN", lambda: apply(IMG, float("nan")), raises(ValueError, name, "nan")),
      Row(fn, f"{name} a string", lambda: apply(IMG, "0.1"), raises(TypeError, name, "'0.1'")),
      Row(fn, f"traced {name} " + ", ".join(map(str, bad)), lambda: traced_values(
          lambda v: apply(IMG, v), good, *bad), NAN_FOR_BAD),
      Row(fn, "interpolation 'cubic'", lambda: apply(IMG, good, interpolation="cubic"),
          raises(ValueError, "interpolation", "'cubic'")),
      Row(fn, "fill for 2 channels", lambda: apply(IMG, good, fill=(0.0, 1.0)),
          raises(ValueError, "fill", "(2,)")),
      Row(fn, "fill NaN", lambda: apply(IMG, good, fill=float("nan")),
          raises(ValueError, "fill", "nan")),
      Row(fn, "fill a string", lambda: apply(IMG, good, fill="black"),
          raises(TypeError, "fill", "'black'")),
      Row(fn, "zero-size image", lambda: apply(EMPTY_IMG, good),
          gives(lambda y: y.shape == EMPTY_IMG.shape, "the empty image")),
  ]


def image_rows(fn, *args, uint8: bool = False) -> list[Row]:
  """A photometric op ``fn(image, *args)`` against bad images; ``uint8``: it takes uint8."""
  if uint8:
    integer = [Row(fn, "integer image", lambda: fn(IMG.astype(jnp.int16), *args),
                   raises(TypeError, "image", "floating-point or uint8 array, got dtype int16")),
               Row(fn, "uint8 image", lambda: fn(IMG.astype(jnp.uint8), *args),
                   gives(lambda y: y.dtype == jnp.uint8 and y.shape == IMG.shape,
                         "a uint8 image of the same shape"))]
  else:
    integer = [Row(fn, "integer image", lambda: fn(IMG.astype(jnp.uint8), *args),
                   raises(TypeError, "image", "uint8"))]
  return [
      Row(fn, "image of rank 2", lambda: fn(IMG[..., 0], *args),
          raises(ValueError, "image", "(6, 8)")),
      Row(fn, "NHWC batch", lambda: fn(NHWC, *args), raises(ValueError, "image", "jax.vmap")),
      *integer,
      Row(fn, "image a string", lambda: fn("photo", *args), raises(TypeError, "image", "'photo'")),
      Row(fn, "zero-size image", lambda: fn(EMPTY_IMG, *args),
          gives(lambda y: y.shape == EMPTY_IMG.shape, "the empty image")),
  ]


def not_rgb_rows(fn, *args) -> list[Row]:
  return [Row(fn, "not RGB", lambda: fn(jnp.ones((4, 4, 2)), *args),
              raises(ValueError, "image", "(4, 4, 2)"))]


def magnitude_rows(fn, name: str, good: float, bad: float, apply=None) -> list[Row]:
  """A photometric magnitude; ``bad`` is out of range; ``apply(image, value)`` calls ``fn``."""
  apply = (lambda im, v: fn(im, v)) if apply is None else apply
  return [
      Row(fn, f"{name} {bad}", lambda: apply(IMG, bad), raises(ValueError, name, repr(bad))),
      Row(fn, f"{name} NaN", lambda: apply(IMG, float("nan")), raises(ValueError, name, "nan")),
      Row(fn, f"{name} inf", lambda: apply(IMG, float("inf")), raises(ValueError, name, "inf")),
      Row(fn, f"{name} per channel", lambda: apply(IMG, jnp.array([good] * 3)),
          raises(ValueError, name, "(3,)")),
      Row(fn, f"{name} a string", lambda: apply(IMG, "0.5"), raises(TypeError, name, "'0.5'")),
      Row(fn, f"traced {name} {bad}, NaN, inf", lambda: traced_values(
          lambda v: apply(IMG, v), good, bad, jnp.nan, jnp.inf), NAN_FOR_BAD),
  ]


def policy_rows(fn, *, uint8: bool = False, **light) -> list[Row]:
  """An augmentation policy ``fn(key, image, ...)`` against bad images, keys and sampling;
  ``uint8``: a row that it takes a uint8 image, for a policy whose uint8 result
  tests/test_policies.py does not check level by level; ``light``: options that make the rows
  that run it cheaper to compile."""
  takes_uint8 = [Row(fn, "uint8 image", lambda: fn(K(), IMG.astype(jnp.uint8), **light),
                     gives(lambda y: y.dtype == jnp.uint8 and y.shape == IMG.shape,
                           "a uint8 image of the same shape"))] if uint8 else []
  return [
      Row(fn, "NHWC batch", lambda: fn(K(), NHWC), raises(ValueError, "image", "augment.batched")),
      Row(fn, "not RGB", lambda: fn(K(), jnp.ones((4, 4, 1))),
          raises(ValueError, "image", "(4, 4, 1)")),
      Row(fn, "integer image", lambda: fn(K(), IMG.astype(jnp.int32)),
          raises(TypeError, "image", "floating-point or uint8 array, got dtype int32")),
      *takes_uint8,
      Row(fn, "key None", lambda: fn(None, IMG), raises(ValueError, "key", "None")),
      Row(fn, "key an int", lambda: fn(3, IMG), raises(TypeError, "key", "int")),
      Row(fn, "interpolation 'bicubic'", lambda: fn(K(), IMG, interpolation="bicubic"),
          raises(ValueError, "interpolation", "'bicubic'")),
      Row(fn, "fill for 2 channels", lambda: fn(K(), IMG, fill=(0.0, 1.0)),
          raises(ValueError, "fill", "(2,)")),
      Row(fn, "zero-size image", lambda: fn(K(), EMPTY_IMG, **light),
          gives(lambda y: y.shape == EMPTY_IMG.shape, "the empty image")),
  ]


def dense_test_time_rows() -> list[Row]:
  """`dense_predict` on NHWC with an identity model; `invert_prediction` of IMG's crop."""
  dense, invert = A.dense_predict, A.invert_prediction
  ident = lambda b: b  # noqa: E731
  crop = A.CropParams(top=jnp.array(1), left=jnp.array(1), size=(4, 5), padding=(1, 1),
                      image_size=(6, 8))
  flip = A.FlipParams(flip=jnp.array(True), probability=jnp.array(0.5), image_size=(4, 5))
  pred = jnp.ones((4, 5, 2))
  return [
      Row(dense, "apply_fn not callable", lambda: dense(None, NHWC),
          raises(TypeError, "apply_fn", "None")),
      Row(dense, "apply_fn returning class ids", lambda: dense(
          lambda b: jnp.argmax(b, -1)[..., None], NHWC), raises(TypeError, "apply_fn", "int32")),
      Row(dense, "apply_fn returning (N, K) logits", lambda: dense(
          lambda b: b.mean((1, 2)), NHWC), raises(ValueError, "apply_fn", "(4, 3)")),
      Row(dense, "apply_fn reducing the batch", lambda: dense(lambda b: b[:1], NHWC),
          raises(ValueError, "apply_fn", "(1, 6, 6, 3)")),
      Row(dense, "apply_fn returning a dict", lambda: dense(lambda b: {"seg": b}, NHWC),
          raises(TypeError, "apply_fn", "dict")),
      Row(dense, "one image, not a batch", lambda: dense(ident, IMG),
          raises(ValueError, "images", "(6, 8, 3)")),
      Row(dense, "integer images", lambda: dense(ident, NHWC.astype(jnp.uint8)),
          raises(TypeError, "images", "uint8")),
      Row(dense, "images with no pixels", lambda: dense(ident, jnp.zeros((2, 0, 6, 3))),
          raises(ValueError, "images", "(2, 0, 6, 3)")),
      Row(dense, "scale_factors empty", lambda: dense(ident, NHWC, scale_factors=()),
          raises(ValueError, "scale_factors", "()")),
      Row(dense, "a scale factor 0", lambda: dense(ident, NHWC, scale_factors=(1.0, 0.0)),
          raises(ValueError, "scale_factors", "0.0")),
      Row(dense, "a scale factor NaN", lambda: dense(ident, NHWC, scale_factors=[float("nan")]),
          raises(ValueError, "scale_factors", "nan")),
      Row(dense, "a scale factor leaving no pixels", lambda: dense(
          ident, NHWC, scale_factors=(0.05,)), raises(ValueError, "scale_factors", "0x0")),
      Row(dense, "scale_factors a bare number", lambda: dense(ident, NHWC, scale_factors=2.0),
          raises(TypeError, "scale_factors", "2.0")),
      Row(dense, "a scale factor a string", lambda: dense(ident, NHWC, scale_factors=("1",)),
          raises(TypeError, "scale_factors", "'1'")),
      Row(dense, "traced scale_factors", lambda: traced(
          lambda s: dense(ident, NHWC, scale_factors=s), jnp.ones(2)),
          raises(TypeError, "scale_factors", "traced")),
      Row(dense, "size larger than the scaled images", lambda: dense(
          ident, NHWC, scale_factors=(1.0, 0.5), size=4), raises(ValueError, "size", "3x3")),
      Row(dense, "size 0", lambda: dense(ident, NHWC, size=0), raises(ValueError, "size", "0")),
      Row(dense, "stride 0", lambda: dense(ident, NHWC, size=4, stride=(1, 0)),
          raises(ValueError, "stride", "0")),
      Row(dense, "stride a float", lambda: dense(ident, NHWC, size=4, stride=1.5),
          raises(TypeError, "stride", "1.5")),
      Row(dense, "stride without size", lambda: dense(ident, NHWC, stride=2),
          raises(ValueError, "stride", "2")),
      Row(dense, "flip 'yes'", lambda: dense(ident, NHWC, flip="yes"),
          raises(TypeError, "flip", "'yes'")),
      Row(dense, "return_variance None", lambda: dense(ident, NHWC, return_variance=None),
          raises(TypeError, "return_variance", "None")),
      Row(dense, "an empty batch", lambda: dense(ident, jnp.zeros((0, 4, 4, 3))),
          gives(lambda y: y.shape == (0, 4, 4, 3), "an empty batch")),
      Row(invert, "params a dict", lambda: invert({"top": 0}, pred),
          raises(TypeError, "params", "dict")),
      Row(invert, "params a policy's set", lambda: invert(A.PolicyParams(
          ops=jnp.zeros(1, jnp.int32), magnitudes=jnp.zeros(1), fill=jnp.zeros(()),
          interpolation="nearest", image_size=(6, 8)), pred),
          raises(TypeError, "params", "PolicyParams")),
      Row(invert, "an empty chain", lambda: invert((), pred), raises(ValueError, "params", "()")),
      Row(invert, "a set without image_size", lambda: invert(A.CropParams(
          top=jnp.array(0), left=jnp.array(0), size=(4, 5)), pred),
          raises(ValueError, "image_size")),
      Row(invert, "sets that do not chain", lambda: invert((crop, A.FlipParams(
          flip=jnp.array(True), probability=jnp.array(0.5), image_size=(5, 4))), pred),
          raises(ValueError, "params", "5x4")),
      Row(invert, "integer prediction", lambda: invert(crop, jnp.ones((4, 5, 2), jnp.int32)),
          raises(TypeError, "prediction", "int32")),
      Row(invert, "a batch of maps", lambda: invert(crop, pred[None]),
          raises(ValueError, "prediction", "(1, 4, 5, 2)")),
      Row(invert, "a map with no pixels", lambda: invert(crop, jnp.zeros((0, 5, 2))),
          raises(ValueError, "prediction", "(0, 5, 2)")),
      Row(invert, "traced flip probability 2.0, -0.5, NaN", lambda: traced_values(
          lambda p: invert((crop, dataclasses.replace(flip, probability=p)), pred),
          0.5, 2.0, -0.5, jnp.nan), NAN_FOR_BAD),
  ]


def close_to(expected) -> Callable[[Any], bool]:
  return lambda out: bool(jnp.allclose(out, expected(), atol=1e-6))


def target_rows() -> list[Row]:
  """`apply_to_mask`, `apply_to_boxes` and `apply_to_keypoints` on IMG's crop, flip, warps and
  policies."""
  crop = A.CropParams(top=jnp.array(1), left=jnp.array(1), size=(4, 5), padding=(1, 1),
                      image_size=(6, 8))
  unsized = A.FlipParams(flip=jnp.array(True), probability=jnp.array(0.5))  # built by hand
  labels = jnp.arange(48, dtype=jnp.uint8).reshape(6, 8)  # every pixel its own label
  boxes = jnp.array([[0.0, 0.0, 4.0, 3.0], [1.0, 1.0, 2.0, 2.0]])
  mask, box, points = A.apply_to_mask, A.apply_to_boxes, A.apply_to_keypoints
  mix = A.AugMixParams(ops=jnp.ones((1, 1), jnp.int32), magnitudes=jnp.zeros((1, 1)),
                       image_weight=jnp.array(0.5), chain_weights=jnp.array([0.5]),
                       fill=jnp.zeros(()), interpolation="nearest", image_size=(6, 8))
  turn = A.AffineParams(matrix=jnp.array([[0.0, -1.0, 7.0], [1.0, 0.0, -1.0]]),
                        fill=jnp.zeros(()), interpolation="nearest")  # built by hand: no size
  # The turn's output pixel (i, j) shows the input at (u, v) = (6.5 - i, j - 0.5), a pixel
  # centre: label (j - 1, 6 - i), or the fill 0 where v is outside [0, 6).
  turned = np.zeros((6, 8), np.uint8)
  turned[:, 1:7] = np.asarray(labels)[:, 6 - np.arange(6)].T
  policy = A.PolicyParams(ops=jnp.array([1, 5]), magnitudes=jnp.array([0.1, 20.0]),
                          fill=jnp.zeros(()), interpolation="nearest", image_size=(6, 8))
  return [
      *[Row(fn, "an AugMixParams", lambda fn=fn, target=target: fn(mix, target),
            raises(TypeError, "params", "AugMixParams")) for fn, target in (
          (mask, labels), (box, boxes), (points, boxes[:, :2]))],
      Row(box, "an affine set without image_size", lambda: box(turn, boxes),
          raises(ValueError, "image_size")),
      Row(mask, "an affine set without image_size", lambda: mask(turn, labels),
          gives(equals(turned), "the turned mask: a mask has its own size")),
      Row(points, "an affine matrix of shape (2, 2)", lambda: points(dataclasses.replace(
          turn, matrix=jnp.eye(2), image_size=(6, 8)), boxes[:, :2]),
          raises(ValueError, "matrix", "(2, 2)")),
      Row(box, "a policy with 3 magnitudes for 2 ops", lambda: box(dataclasses.replace(
          policy, magnitudes=jnp.zeros(3)), boxes), raises(ValueError, "params", "(3,)")),
      Row(mask, "a policy with float ops", lambda: mask(dataclasses.replace(
          policy, ops=jnp.array([1.0, 5.0])), labels), raises(TypeError, "params", "float32")),
      # What a bad traced magnitude draws (policies' NaN magnitudes: tests/test_targets.py)
      Row(box, "an affine set with a NaN matrix", lambda: box(dataclasses.replace(
          turn, matrix=jnp.full((2, 3), jnp.nan), image_size=(6, 8)), boxes),
          gives(lambda out: not bool(out[1].any()), "every box invalid")),
      Row(mask, "params a dict", lambda: mask({"top": 0}, labels), raises(TypeError, "params",
                                                                         "dict")),
      Row(mask, "a float (H, W) label map", lambda: mask(crop, jnp.zeros((6, 8))),
          raises(TypeError, "mask", "float32")),
      Row(mask, "a complex mask", lambda: mask(crop, jnp.zeros((6, 8, 1), jnp.complex64)),
          raises(TypeError, "mask", "complex64")),
      Row(mask, "mask of another size than drawn", lambda: mask(crop, labels[:5]),
          raises(ValueError, "mask", "(5, 8)")),
      Row(mask, "mask of rank 4", lambda: mask(crop, labels[None, ..., None]),
          raises(ValueError, "mask", "(1, 6, 8, 1)")),
      Row(mask, "window larger than the padded mask", lambda: mask(A.CropParams(
          top=jnp.array(0), left=jnp.array(0), size=(9, 9)), labels),
          raises(ValueError, "size", "(9, 9)")),
      Row(mask, "fill 256 for uint8", lambda: mask(crop, labels, fill=256),
          raises(ValueError, "fill", "256")),
      Row(mask, "fill 0.5 for an integer mask", lambda: mask(crop, labels, fill=0.5),
          raises(TypeError, "fill", "0.5")),
      Row(mask, "fill NaN", lambda: mask(crop, labels, fill=float("nan")),
          raises(ValueError, "fill", "nan")),
      Row(mask, "fill a string", lambda: mask(crop, labels, fill="ignore"),
          raises(TypeError, "fill", "'ignore'")),
      Row(mask, "a flip without image_size", lambda: mask(unsized, labels),
          gives(equals(labels[:, ::-1]), "the mirrored mask: a mask has its own size")),
      Row(mask, "an empty mask", lambda: mask(unsized, jnp.zeros((0, 8), jnp.int32)),
          gives(lambda y: y.shape == (0, 8), "the empty mask")),
      Row(box, "params a dict", lambda: box({"top": 0}, boxes), raises(TypeError, "params",
                                                                      "dict")),
      Row(box, "integer boxes", lambda: box(crop, boxes.astype(jnp.int32)),
          raises(TypeError, "boxes", "int32")),
      Row(box, "one box of shape (4,)", lambda: box(crop, boxes[0]),
          raises(ValueError, "boxes", "(4,)")),
      Row(box, "boxes of shape (2, 5)", lambda: box(crop, jnp.zeros((2, 5))),
          raises(ValueError, "boxes", "(2, 5)")),
      Row(box, "valid a float array", lambda: box(crop, boxes, valid=jnp.ones(2)),
          raises(TypeError, "valid", "float32")),
      Row(box, "valid for 3 boxes", lambda: box(crop, boxes, valid=jnp.ones(3, bool)),
          raises(ValueError, "valid", "(3,)")),
      Row(box, "min_size -1", lambda: box(crop, boxes, min_size=-1),
          raises(ValueError, "min_size", "-1")),
      Row(box, "min_size NaN", lambda: box(crop, boxes, min_size=float("nan")),
          raises(ValueError, "min_size", "nan")),
      Row(box, "a flip without image_size", lambda: box(unsized, boxes),
          raises(ValueError, "image_size")),
      Row(box, "no boxes", lambda: box(crop, jnp.zeros((0, 4))),
          gives(lambda out: out[0].shape == (0, 4) and out[1].shape == (0,), "no boxes")),
      Row(box, "a NaN box", lambda: box(crop, boxes.at[0, 0].set(jnp.nan)),
          gives(lambda out: not bool(out[1][0]) and bool(out[1][1]), "that box invalid")),
      Row(points, "params None", lambda: points(None, boxes[:, :2]),
          raises(TypeError, "params", "NoneType")),
      Row(points, "keypoints of shape (2, 3)", lambda: points(crop, boxes[:, :3]),
          raises(ValueError, "keypoints", "(2, 3)")),
      Row(points, "integer keypoints", lambda: points(crop, jnp.zeros((2, 2), jnp.int32)),
          raises(TypeError, "keypoints", "int32")),
      Row(points, "visible an int array", lambda: points(crop, boxes[:, :2],
                                                         visible=jnp.ones(2, jnp.int32)),
          raises(TypeError, "visible", "int32")),
      Row(points, "visible for 3 keypoints", lambda: points(crop, boxes[:, :2],
                                                            visible=jnp.ones(3, bool)),
          raises(ValueError, "visible", "(3,)")),
      Row(points, "a flip without image_size", lambda: points(unsized, boxes[:, :2]),
          raises(ValueError, "image_size")),
      Row(points, "traced probability 2.0, NaN", lambda: jax.vmap(lambda p: points(
          A.FlipParams(flip=jnp.array(True), probability=p, image_size=(6, 8)),
          boxes[:, :2]))(jnp.array([0.5, 2.0, jnp.nan])),
          gives(lambda out: bool(out[1][0].all()) and not bool(out[1][1:].any())
                and bool(jnp.isnan(out[0][1:]).all()), "NaN keypoints, invisible")),
  ]


def target_rule_rows() -> list[Row]:
  """The target functions on the sets without a geometry: the mixes, erasing, a colour set."""
  mask, box, points = A.apply_to_mask, A.apply_to_boxes, A.apply_to_keypoints
  cut = A.CutmixParams(perm=jnp.array([1, 0]), top=jnp.array([1.0, 0.0]),
                       bottom=jnp.array([4.0, 6.0]), left=jnp.zeros(2),
                       right=jnp.array([3.0, 8.0]), image_size=(6, 8))
  mix = A.MixupParams(perm=jnp.array([1, 0]), lam=jnp.array([0.3, 0.6]))
  erasing = A.ErasingParams(top=jnp.array(1.0), left=jnp.array(2.0), height=jnp.array(2.0),
                            width=jnp.array(3.0), erase=jnp.array(True),
                            probability=jnp.array(0.5), value=jnp.zeros(()), image_size=(6, 8))
  colour = A.ColorParams(magnitude=jnp.array(0.1), op="brightness")
  labels, soft = jnp.zeros((2, 6, 8), jnp.uint8), jnp.full((2, 6, 8, 2), 0.5)
  # The first box and point lie on the erased pixels, the second do not.
  boxes = jnp.array([[2.0, 1.0, 5.0, 3.0], [0.0, 0.0, 8.0, 6.0]])

  def bad_probability(fn, target, **kwargs):
    return traced_values(lambda p: fn(dataclasses.replace(erasing, probability=p), target,
                                      **kwargs), 0.5, 2.0, float("nan"))

  hidden_then_nan = gives(lambda out: out[1][0].tolist() == [False, True]
                          and not bool(out[1][1:].any()) and bool(jnp.isnan(out[0][1:]).all()),
                          "the erased one hidden; NaN and no flags for a bad probability")
  return [
      Row(mask, "cutmix on one mask, not a batch", lambda: mask(cut, labels[0]),
          raises(ValueError, "mask", "(6, 8)")),
      Row(mask, "cutmix on a batch of 3", lambda: mask(cut, jnp.zeros((3, 6, 8), jnp.uint8)),
          raises(ValueError, "perm", "(2,)")),
      Row(mask, "cutmix masks of another size than drawn", lambda: mask(cut, labels[:, :5]),
          raises(ValueError, "mask", "(5, 8)")),
      Row(mask, "cutmix on a float mask without a class axis", lambda: mask(cut, soft[..., 0]),
          raises(TypeError, "mask", "float32")),
      Row(mask, "mixup on an integer label map", lambda: mask(mix, labels),
          raises(TypeError, "mask", "uint8")),
      Row(mask, "mixup on a batch of 3", lambda: mask(mix, jnp.zeros((3, 6, 8, 2))),
          raises(ValueError, "perm", "(2,)")),
      Row(mask, "mixup with fill a string", lambda: mask(mix, soft, fill="ignore"),
          raises(TypeError, "fill", "'ignore'")),
      *[Row(fn, f"a {params_cls}", lambda fn=fn, p=p: fn(p, boxes[:, :2 if fn is points else 4]),
            raises(TypeError, "params", params_cls))
        for fn in (box, points) for p, params_cls in ((cut, "CutmixParams"),
                                                     (mix, "MixupParams"))],
      Row(mask, "erased 256 for uint8", lambda: mask(erasing, labels[0], erased=256),
          raises(ValueError, "erased", "256")),
      Row(mask, "erased a string", lambda: mask(erasing, labels[0], erased="ignore"),
          raises(TypeError, "erased", "'ignore'")),
      Row(mask, "erased traced", lambda: traced(lambda e: mask(erasing, labels[0], erased=e), 3),
          raises(TypeError, "erased", "traced")),
      Row(mask, "erasing mask of another size than drawn", lambda: mask(erasing, labels[0, :5]),
          raises(ValueError, "mask", "(5, 8)")),
      Row(box, "hide_erased 'yes'", lambda: box(erasing, boxes, hide_erased="yes"),
          raises(TypeError, "hide_erased", "'yes'")),
      Row(points, "hide_erased an array", lambda: points(erasing, boxes[:, :2],
                                                         hide_erased=jnp.array(True)),
          raises(TypeError, "hide_erased")),
      Row(mask, "erasing, traced probability 2.0, NaN, erased 0", lambda: bad_probability(
          mask, soft[0], erased=0.0), NAN_FOR_BAD),
      Row(mask, "erasing, traced probability 2.0, NaN, not asked", lambda: bad_probability(
          mask, soft[0]), gives(lambda out: bool((out == 0.5).all()), "the mask as it is")),
      Row(points, "erasing, traced probability 2.0, NaN, hide_erased", lambda: bad_probability(
          points, boxes[:, :2], hide_erased=True), hidden_then_nan),
      Row(box, "erasing, traced probability 2.0, NaN, hide_erased", lambda: bad_probability(
          box, boxes, hide_erased=True), hidden_then_nan),
      Row(mask, "a colour set on a float (H, W) mask", lambda: mask(colour, soft[0, ..., 0]),
          raises(TypeError, "mask", "float32")),
      Row(mask, "a colour set on a mask of rank 4", lambda: mask(colour, labels[None]),
          raises(ValueError, "mask", "(1, 2, 6, 8)")),
      Row(box, "a colour set with integer boxes", lambda: box(colour, boxes.astype(jnp.int32)),
          raises(TypeError, "boxes", "int32")),
      Row(A.apply, "cutmix images of another size than drawn", lambda: A.apply(cut, NHWC,
                                                                               LABELS),
          raises(ValueError, "images", "(6, 6, 3)")),
      Row(A.apply, "erasing an image of another size than drawn", lambda: A.apply(
          erasing, IMG[:5]), raises(ValueError, "image", "(5, 8, 3)")),
  ]


def chain_rows() -> list[Row]:
  """A tuple of sets, applied in turn: `apply` and the target functions."""
  mask, box, points = A.apply_to_mask, A.apply_to_boxes, A.apply_to_keypoints
  crop = A.CropParams(top=jnp.array(1), left=jnp.array(1), size=(4, 5), padding=(1, 1),
                      image_size=(6, 8))
  resized = A.ResizedCropParams(top=jnp.array(0.0), left=jnp.array(1.0), height=jnp.array(4.0),
                                width=jnp.array(5.0), size=(4, 5), image_size=(6, 8))
  flip = A.FlipParams(flip=jnp.array(True), probability=jnp.array(0.5), image_size=(6, 8))
  mix = A.MixupParams(perm=jnp.array([1, 0]), lam=jnp.array([0.3, 0.6]))
  aug_mix = A.AugMixParams(ops=jnp.ones((1, 1), jnp.int32), magnitudes=jnp.zeros((1, 1)),
                           image_weight=jnp.array(0.5), chain_weights=jnp.array([0.5]),
                           fill=jnp.zeros(()), interpolation="nearest", image_size=(6, 8))
  erasing = A.ErasingParams(top=jnp.array(1.0), left=jnp.array(1.0), height=jnp.array(2.0),
                            width=jnp.array(2.0), erase=jnp.array(True),
                            probability=jnp.array(0.5), value=jnp.array(0.0), image_size=(6, 8))
  policy = A.PolicyParams(ops=jnp.zeros(1, jnp.int32), magnitudes=jnp.zeros(1),
                          fill=jnp.zeros(()), interpolation="nearest", image_size=(4, 5))
  labels, boxes = jnp.zeros((6, 8), jnp.uint8), jnp.array([[0.0, 0.0, 4.0, 3.0]])
  return [
      Row(mask, "an empty chain", lambda: mask((), labels), raises(ValueError, "params", "()")),
      Row(mask, "a chain holding a MixupParams", lambda: mask((flip, mix), labels),
          raises(TypeError, "params", "MixupParams")),
      Row(mask, "a nested chain", lambda: mask(((crop,),), labels),
          raises(TypeError, "params", "tuple")),
      Row(mask, "a chain's flip drawn for the crop's input", lambda: mask((crop, flip), labels),
          raises(ValueError, "params", "4x5")),
      Row(mask, "a float mask through a chain's flip drawn for the crop's input",
          lambda: mask((crop, flip), jnp.zeros((6, 8, 2))), raises(ValueError, "params", "4x5")),
      Row(mask, "a chain's erasing drawn for the crop's input", lambda: mask((crop, erasing),
                                                                             labels),
          raises(ValueError, "params", "4x5")),
      Row(box, "a chain's flip drawn for the crop's input", lambda: box((crop, flip), boxes),
          raises(ValueError, "params", "4x5")),
      Row(points, "a chain holding an AugMixParams", lambda: points((flip, aug_mix),
                                                                    boxes[:, :2]),
          raises(TypeError, "params", "AugMixParams")),
      Row(A.apply, "an empty chain", lambda: A.apply((), IMG), raises(ValueError, "params", "()")),
      Row(A.apply, "a chain holding mixup parameters", lambda: A.apply((flip, mix), IMG),
          raises(TypeError, "params", "MixupParams")),
      Row(A.apply, "a chain applied to images and labels", lambda: A.apply((flip,), NHWC,
                                                                           LABELS),
          raises(TypeError, "inputs", "got 2")),
      Row(A.apply, "a chain's flip drawn for the resized crop's input", lambda: A.apply(
          (resized, flip), IMG), raises(ValueError, "params", "4x5")),
      Row(A.apply, "a chain's erasing drawn for a crop's output, after a colour set",
          lambda: A.apply((A.ColorParams(magnitude=jnp.array(0.1), op="brightness"),
                           dataclasses.replace(erasing, image_size=(4, 5))), IMG),
          raises(ValueError, "params", "6x8")),
      Row(A.invert_prediction, "a chain holding a policy's set", lambda: A.invert_prediction(
          (crop, policy), jnp.zeros((4, 5, 2))), raises(TypeError, "params", "PolicyParams")),
  ]


def mix_rows(fn) -> list[Row]:
  return [
      Row(fn, "integer labels", lambda: fn(K(), NHWC, jnp.array([0, 1])),
          raises(TypeError, "labels", "int32")),
      Row(fn, "labels for another batch", lambda: fn(K(), NHWC, jnp.ones((3, 2))),
          raises(ValueError, "labels", "(3, 2)")),
      Row(fn, "one image, not a batch", lambda: fn(K(), IMG, LABELS),
          raises(ValueError, "images", "(6, 8, 3)")),
      Row(fn, "alpha 0", lambda: fn(K(), NHWC, LABELS, alpha=0.0),
          raises(ValueError, "alpha", "0.0")),
      Row(fn, "alpha NaN", lambda: fn(K(), NHWC, LABELS, alpha=float("nan")),
          raises(ValueError, "alpha", "nan")),
      Row(fn, "traced alpha", lambda: traced(lambda a: fn(K(), NHWC, LABELS, alpha=a), 0.5),
          raises(TypeError, "alpha", "traced")),
      Row(fn, "key None", lambda: fn(None, NHWC, LABELS), raises(ValueError, "key", "None")),
      Row(fn, "images with no pixels", lambda: fn(K(), jnp.zeros((2, 0, 4, 3)), LABELS),
          gives(lambda out: out[0].shape == (2, 0, 4, 3) and bool(jnp.isfinite(out[1]).all())
                and bool(jnp.allclose(out[1].sum(1), 1)), "finite labels")),
      Row(fn, "an empty batch", lambda: fn(K(), jnp.zeros((0, 4, 4, 3)), jnp.zeros((0, 2))),
          gives(lambda out: out[0].shape == (0, 4, 4, 3) and out[1].shape == (0, 2),
                "an empty batch")),
  ]


def dropout_rows(fn, x, **kw) -> list[Row]:
  return [
      Row(fn, "integer x", lambda: fn(K(), x.astype(jnp.int32), 0.5, train=True, **kw),
          raises(TypeError, "x", "int32")),
      Row(fn, "x a string", lambda: fn(K(), "x", 0.5, train=True, **kw),
          raises(TypeError, "x", "'x'")),
      Row(fn, "rate 1.5", lambda: fn(K(), x, 1.5, train=True, **kw),
          raises(ValueError, "rate", "1.5")),
      Row(fn, "rate -0.1", lambda: fn(K(), x, -0.1, train=True, **kw),
          raises(ValueError, "rate", "-0.1")),
      Row(fn, "rate NaN", lambda: fn(K(), x, float("nan"), train=True, **kw),
          raises(ValueError, "rate", "nan")),
      Row(fn, "rate a string", lambda: fn(K(), x, "0.5", train=True, **kw),
          raises(TypeError, "rate", "'0.5'")),
      Row(fn, "rate a vector", lambda: fn(K(), x, jnp.array([0.1, 0.2]), train=True, **kw),
          raises(ValueError, "rate", "(2,)")),
      Row(fn, "traced rate 2.0, -0.5, NaN", lambda: traced_values(
          lambda r: fn(K(), x, r, train=True, **kw), 0.5, 2.0, -0.5, jnp.nan), NAN_FOR_BAD),
      Row(fn, "key None on the training path", lambda: fn(None, x, 0.5, train=True, **kw),
          raises(ValueError, "key", "train=False")),
      Row(fn, "key an int", lambda: fn(0, x, 0.5, train=True, **kw),
          raises(TypeError, "key", "int")),
      Row(fn, "a batch of keys", lambda: fn(jax.random.split(K(), 2), x, 0.5, train=True, **kw),
          raises(ValueError, "key", "(2,)")),
      Row(fn, "train 'True'", lambda: fn(K(), x, 0.5, train="True", **kw),
          raises(TypeError, "train", "'True'")),
      Row(fn, "traced train", lambda: traced(lambda t: fn(K(), x, 0.5, train=t, **kw), True),
          raises(TypeError, "train", "traced")),
      Row(fn, "zero-size x", lambda: fn(K(), jnp.zeros((0, *x.shape[1:])), 0.5, train=True,
                                        **kw),
          gives(lambda y: y.shape == (0, *x.shape[1:]), "an empty array")),
  ]


def recompute_rows(fn, x) -> list[Row]:
  return [
      Row(fn, "recompute_mask 'no'", lambda: fn(K(), x, 0.5, train=True, recompute_mask="no"),
          raises(TypeError, "recompute_mask", "'no'")),
      Row(fn, "traced recompute_mask", lambda: traced(
          lambda f: fn(K(), x, 0.5, train=True, recompute_mask=f), False),
          raises(TypeError, "recompute_mask", "traced")),
      Row(fn, "jvp with recompute_mask=True", lambda: jax.jvp(
          lambda x: fn(K(), x, 0.5, train=True, recompute_mask=True), (x,), (x,)),
          raises(TypeError, "recompute_mask", "recompute_mask=False")),
  ]


def penalty_rows(fn, **kw) -> list[Row]:
  return [
      Row(fn, "an integer leaf", lambda: fn({"w": jnp.ones(2, jnp.int32)}, **kw),
          raises(TypeError, "params", "int32")),
      Row(fn, "a mask for other params", lambda: fn(PARAMS, mask={"w": True}, **kw),
          raises(ValueError, "mask")),
      Row(fn, "a mask of strings", lambda: fn(PARAMS, mask={"w": "yes", "b": True}, **kw),
          raises(TypeError, "mask", "'yes'")),
      Row(fn, "no parameters", lambda: fn({}, **kw), gives(lambda y: float(y) == 0.0, "0")),
      Row(fn, "a NaN parameter", lambda: fn({"w": jnp.array([jnp.nan])}, **kw),
          gives(all_nan, "NaN (the parameter's own)")),
  ]


def prox_rows(fn, make) -> list[Row]:
  """``make(strength, learning_rate)`` builds the transform."""
  strength = "strength" if fn is jr.l1_prox else "l1"
  negative = optax.linear_schedule(0.1, -0.1, 2)  # negative from step 2 on
  return [
      Row(fn, f"{strength} -1", lambda: make(-1.0, 0.1), raises(ValueError, strength, "-1.0")),
      Row(fn, f"{strength} NaN", lambda: make(float("nan"), 0.1),
          raises(ValueError, strength, "nan")),
      Row(fn, f"{strength} None", lambda: make(None, 0.1), raises(TypeError, strength, "None")),
      Row(fn, f"{strength} a string", lambda: make("1", 0.1), raises(TypeError, strength, "'1'")),
      Row(fn, f"per-leaf {strength} for other params", lambda: prox_update(
          make({"w": 1.0}, 0.1)), raises(ValueError, strength)),
      Row(fn, f"traced {strength} -1, NaN", lambda: traced_values(
          lambda s: prox_update(make(s, 0.1)), 1.0, -1.0, jnp.nan), NAN_FOR_BAD),
      Row(fn, "learning_rate -0.1", lambda: make(1.0, -0.1),
          raises(ValueError, "learning_rate", "-0.1")),
      Row(fn, "schedule going negative, eager", lambda: prox_update(
          make(1.0, negative), state=jr.ProxState(jnp.int32(3))),
          raises(ValueError, "learning_rate")),
      Row(fn, "schedule going negative, jitted", lambda: prox_update(
          make(1.0, negative), state=jr.ProxState(jnp.int32(3)), jit=True),
          gives(all_nan, "NaN updates")),
      Row(fn, "schedule returning NaN, jitted", lambda: prox_update(
          make(1.0, lambda count: jnp.float32(jnp.nan)), jit=True), gives(all_nan, "NaN updates")),
      Row(fn, "updates for other params", lambda: prox_update(
          make(1.0, 0.1), updates={"w": jnp.zeros((1, 2))}), raises(ValueError, "updates")),
      Row(fn, "updates of another shape", lambda: prox_update(
          make(1.0, 0.1), updates={"w": jnp.zeros(2), "b": jnp.zeros(1)}),
          raises(ValueError, "updates", "(2,)")),
      Row(fn, "another transform's state", lambda: prox_update(
          make(1.0, 0.1), state=optax.EmptyState()), raises(TypeError, "state", "EmptyState")),
      Row(fn, "no params", lambda: (lambda tx: tx.update(PARAMS, tx.init(PARAMS)))(make(1.0, 0.1)),
          raises(ValueError, "params")),
      Row(fn, "an integer leaf", lambda: prox_update(make(1.0, 0.1),
                                                     params={"n": jnp.ones(2, int)}),
          raises(TypeError, "params", "int32")),
  ]


def bn(x=None, *, state=STATE3, train=True, **kw):
  x = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3) if x is None else x
  return jr.batch_norm(x, None, None, state, train=train, **kw)


def bn_single_valid(dtype, jit):
  x = jnp.linspace(-1.0, 1.0, 12, dtype=dtype).reshape(4, 3)
  mask = jnp.array([[True], [False], [False], [False]])
  run = lambda x: bn(x, mask=mask, unbiased_running_var=True)  # noqa: E731
  return jax.jit(run)(x) if jit else run(x)


def bn_single_valid_ok(out) -> bool:
  y, state = out
  return bool(jnp.isnan(y).all()) and bool(jnp.array_equal(state.mean, STATE3.mean)) and bool(
      jnp.array_equal(state.var, STATE3.var))


ROWS: list[Row] = [
    # ---- dropout family ----
    *dropout_rows(jr.dropout, X),
    *recompute_rows(jr.dropout, X),
    Row(jr.dropout, "broadcast_dims out of range", lambda: jr.dropout(
        K(), X, 0.5, train=True, broadcast_dims=3), raises(ValueError, "broadcast_dims", "3")),
    Row(jr.dropout, "broadcast_dims a string", lambda: jr.dropout(
        K(), X, 0.5, train=True, broadcast_dims="1"), raises(TypeError, "broadcast_dims", "'1'")),
    *dropout_rows(jr.channel_dropout, NHWC),
    *recompute_rows(jr.channel_dropout, NHWC),
    Row(jr.channel_dropout, "channel_axis a tuple", lambda: jr.channel_dropout(
        K(), NHWC, 0.5, train=True, channel_axis=(1, 2)),
        raises(TypeError, "channel_axis", "(1, 2)")),
    Row(jr.channel_dropout, "channel_axis ()", lambda: jr.channel_dropout(
        K(), NHWC, 0.5, train=True, channel_axis=()), raises(TypeError, "channel_axis", "()")),
    Row(jr.channel_dropout, "channel_axis the batch axis", lambda: jr.channel_dropout(
        K(), NHWC, 0.5, train=True, channel_axis=0), raises(ValueError, "channel_axis", "0")),
    Row(jr.channel_dropout, "channel_axis out of range", lambda: jr.channel_dropout(
        K(), NHWC, 0.5, train=True, channel_axis=4), raises(ValueError, "channel_axis", "4")),
    Row(jr.channel_dropout, "x of rank 2", lambda: jr.channel_dropout(
        K(), X[0], 0.5, train=True), raises(ValueError, "x", "(4, 3)")),
    *dropout_rows(jr.drop_path, X),
    Row(jr.drop_path, "0-d x", lambda: jr.drop_path(K(), jnp.float32(1), 0.5, train=True),
        raises(ValueError, "x", "()")),
    *dropout_rows(jr.drop_block, NHWC, block_size=2),
    Row(jr.drop_block, "x of rank 3", lambda: jr.drop_block(K(), IMG, 0.5, train=True),
        raises(ValueError, "x", "(6, 8, 3)")),
    Row(jr.drop_block, "block_size 0", lambda: jr.drop_block(
        K(), NHWC, 0.5, train=True, block_size=0), raises(ValueError, "block_size", "0")),
    Row(jr.drop_block, "block_size 2.5", lambda: jr.drop_block(
        K(), NHWC, 0.5, train=True, block_size=2.5), raises(TypeError, "block_size", "2.5")),
    Row(jr.drop_block, "block_size larger than the map", lambda: jr.drop_block(
        K(), NHWC, 0.5, train=True, block_size=7), raises(ValueError, "block_size", "7")),
    Row(jr.drop_block, "an empty map, train=False", lambda: jr.drop_block(
        None, jnp.zeros((2, 0, 0, 3)), 0.5, train=False),
        gives(lambda y: y.shape == (2, 0, 0, 3), "the empty map")),
    Row(jr.drop_block, "an empty map, train=True", lambda: jr.drop_block(
        K(), jnp.zeros((2, 0, 5, 3)), 0.5, train=True),
        gives(lambda y: y.shape == (2, 0, 5, 3), "the empty map")),
    Row(jr.drop_path_rates, "max_rate 1.5", lambda: jr.drop_path_rates(1.5, 3),
        raises(ValueError, "max_rate", "1.5")),
    Row(jr.drop_path_rates, "max_rate NaN", lambda: jr.drop_path_rates(float("nan"), 3),
        raises(ValueError, "max_rate", "nan")),
    Row(jr.drop_path_rates, "traced max_rate", lambda: traced(
        lambda r: jnp.asarray(jr.drop_path_rates(r, 3)), 0.5), raises(TypeError, "max_rate")),
    Row(jr.drop_path_rates, "depth 0", lambda: jr.drop_path_rates(0.5, 0),
        raises(ValueError, "depth", "0")),
    Row(jr.drop_path_rates, "depth 2.5", lambda: jr.drop_path_rates(0.5, 2.5),
        raises(TypeError, "depth", "2.5")),
    Row(jr.drop_path_rates, "max_rate a string", lambda: jr.drop_path_rates("0.5", 3),
        raises(TypeError, "max_rate", "'0.5'")),
    # ---- batch norm ----
    Row(jr.batch_norm, "integer x", lambda: bn(jnp.ones((4, 3), jnp.int32)),
        raises(TypeError, "x", "int32")),
    Row(jr.batch_norm, "0-d x", lambda: bn(jnp.float32(1.0), state=jr.batch_norm_init(())),
        raises(ValueError, "x", "()")),
    Row(jr.batch_norm, "x a string", lambda: jr.batch_norm("x", None, None, STATE3, train=True),
        raises(TypeError, "x", "'x'")),
    Row(jr.batch_norm, "x None", lambda: jr.batch_norm(None, None, None, STATE3, train=True),
        raises(TypeError, "x", "None")),
    Row(jr.batch_norm, "one value per feature", lambda: bn(jnp.ones((1, 3))),
        raises(ValueError, "x", "(1, 3)")),
    Row(jr.batch_norm, "one value per feature over a named axis of one device", lambda: jax.vmap(
        lambda x: bn(x, axis_name="i"), axis_name="i")(jnp.ones((1, 1, 3))),
        raises(ValueError, "x", "axis_name=('i',)")),
    Row(jr.batch_norm, "zero-size batch", lambda: bn(jnp.zeros((0, 3))),
        gives(lambda out: out[0].shape == (0, 3) and equals(STATE3)(out[1]),
              "an empty y and the state unchanged")),
    Row(jr.batch_norm, "scale of the wrong shape", lambda: jr.batch_norm(
        jnp.ones((4, 3)), jnp.ones(4), None, STATE3, train=True),
        raises(ValueError, "scale", "(4,)")),
    Row(jr.batch_norm, "integer bias", lambda: jr.batch_norm(
        jnp.ones((4, 3)), None, jnp.ones(3, jnp.int32), STATE3, train=True),
        raises(TypeError, "bias", "int32")),
    Row(jr.batch_norm, "state a tuple", lambda: bn(state=(jnp.zeros(3), jnp.ones(3))),
        raises(TypeError, "state", "tuple")),
    Row(jr.batch_norm, "state for another layer", lambda: bn(state=jr.batch_norm_init(4)),
        raises(ValueError, "state.mean", "(4,)")),
    Row(jr.batch_norm, "train 'True'", lambda: bn(train="True"),
        raises(TypeError, "train", "'True'")),
    Row(jr.batch_norm, "traced train", lambda: traced(lambda t: bn(train=t), True),
        raises(TypeError, "train", "traced")),
    Row(jr.batch_norm, "momentum 1.5", lambda: bn(momentum=1.5),
        raises(ValueError, "momentum", "1.5")),
    Row(jr.batch_norm, "momentum NaN", lambda: bn(momentum=float("nan")),
        raises(ValueError, "momentum", "nan")),
    Row(jr.batch_norm, "traced momentum 2.0", lambda: traced(lambda m: bn(momentum=m)[1], 2.0),
        gives(all_nan, "a NaN state")),
    Row(jr.batch_norm, "eps 0", lambda: bn(eps=0.0), raises(ValueError, "eps", "0.0")),
    Row(jr.batch_norm, "eps subnormal", lambda: bn(eps=1e-45), raises(ValueError, "eps", "1e-45")),
    Row(jr.batch_norm, "eps subnormal on the test path", lambda: bn(train=False, eps=1e-40),
        raises(ValueError, "eps", "1e-40")),
    Row(jr.batch_norm, "eps overflowing float32", lambda: bn(eps=1e39),
        raises(ValueError, "eps", "1e+39")),
    Row(jr.batch_norm, "eps inf", lambda: bn(eps=float("inf")), raises(ValueError, "eps", "inf")),
    Row(jr.batch_norm, "traced eps", lambda: traced(lambda e: bn(eps=e), 1e-5),
        raises(TypeError, "eps", "traced")),
    Row(jr.batch_norm, "axis out of range", lambda: bn(axis=2), raises(ValueError, "axis", "2")),
    Row(jr.batch_norm, "axis covering every axis", lambda: bn(
        axis=(0, 1), state=jr.batch_norm_init((4, 3))), raises(ValueError, "axis", "(0, 1)")),
    Row(jr.batch_norm, "axis_name 0, unmapped", lambda: bn(axis_name=0),
        raises(TypeError, "axis_name", "0")),
    Row(jr.batch_norm, "axis_name unbound", lambda: bn(axis_name="data"),
        raises(ValueError, "axis_name", "'data'")),
    Row(jr.batch_norm, "axis_name ()", lambda: bn(axis_name=()), raises(ValueError, "axis_name")),
    Row(jr.batch_norm, "axis_name a set", lambda: bn(axis_name={"data"}),
        raises(TypeError, "axis_name", "{'data'}")),
    Row(jr.batch_norm, "integer mask", lambda: bn(mask=jnp.ones((4, 1), jnp.int32)),
        raises(TypeError, "mask", "int32")),
    Row(jr.batch_norm, "mask of another batch", lambda: bn(mask=jnp.ones((5, 1), bool)),
        raises(ValueError, "mask", "(5, 1)")),
    Row(jr.batch_norm, "mask enlarging x", lambda: bn(mask=jnp.ones((2, 4, 3), bool)),
        raises(ValueError, "mask", "(2, 4, 3)")),
    Row(jr.batch_norm, "unbiased_running_var 'False'", lambda: bn(unbiased_running_var="False"),
        raises(TypeError, "unbiased_running_var", "'False'")),
    Row(jr.batch_norm, "traced unbiased_running_var", lambda: traced(
        lambda u: bn(unbiased_running_var=u), True), raises(TypeError, "unbiased_running_var",
                                                             "traced")),
    Row(jr.batch_norm, "backward 'fast'", lambda: bn(backward="fast"),
        raises(ValueError, "backward", "'fast'")),
    Row(jr.batch_norm, "jvp of the custom backward", lambda: jax.jvp(
        lambda x: bn(x)[0], (jnp.ones((4, 3)),), (jnp.ones((4, 3)),)),
        raises(TypeError, "backward", "backward='autodiff'")),
    Row(jr.batch_norm, "mask leaving one valid value, eager float32", lambda: bn_single_valid(
        jnp.float32, False), gives(bn_single_valid_ok, "NaN y, state kept")),
    Row(jr.batch_norm, "mask leaving one valid value, jitted float32", lambda: bn_single_valid(
        jnp.float32, True), gives(bn_single_valid_ok, "NaN y, state kept")),
    Row(jr.batch_norm, "x * 1e30 in float32", lambda: bn(
        jnp.linspace(-1.0, 1.0, 12).reshape(4, 3) * 1e30), gives(lambda out: all_nan(out[0]),
                                                                 "NaN, not bias")),
    Row(jr.batch_norm, "an infinite running variance on the test path", lambda: bn(
        train=False, state=jr.BatchNormState(jnp.zeros(3), jnp.full(3, jnp.inf))),
        gives(lambda out: all_nan(out[0]), "NaN, not bias")),
    Row(jr.batch_norm_init, "a float feature count", lambda: jr.batch_norm_init(2.5),
        raises(TypeError, "num_features_or_shape", "2.5")),
    Row(jr.batch_norm_init, "a shape with a float", lambda: jr.batch_norm_init([2.5]),
        raises(TypeError, "num_features_or_shape", "[2.5]")),
    Row(jr.batch_norm_init, "a negative dimension", lambda: jr.batch_norm_init(-1),
        raises(ValueError, "num_features_or_shape", "-1")),
    Row(jr.batch_norm_init, "None", lambda: jr.batch_norm_init(None),
        raises(TypeError, "num_features_or_shape", "None")),
    Row(jr.batch_norm_init, "an integer dtype", lambda: jr.batch_norm_init(3, dtype=jnp.int32),
        raises(TypeError, "dtype", "int32")),
    Row(jr.batch_norm_init, "dtype int8", lambda: jr.batch_norm_init(3, dtype="int8"),
        raises(TypeError, "dtype", "int8")),
    Row(jr.batch_norm_init, "zero features", lambda: jr.batch_norm_init(0),
        gives(lambda s: s.mean.shape == (0,), "empty statistics")),
    # ---- penalties ----
    *penalty_rows(jr.l2_penalty),
    *penalty_rows(jr.l1_penalty),
    *penalty_rows(jr.elastic_net_penalty, l1=0.1, l2=0.1),
    Row(jr.elastic_net_penalty, "l1 -1", lambda: jr.elastic_net_penalty(PARAMS, l1=-1.0, l2=0.0),
        raises(ValueError, "l1", "-1.0")),
    Row(jr.elastic_net_penalty, "l2 NaN", lambda: jr.elastic_net_penalty(
        PARAMS, l1=0.0, l2=float("nan")), raises(ValueError, "l2", "nan")),
    Row(jr.elastic_net_penalty, "l1 a string", lambda: jr.elastic_net_penalty(
        PARAMS, l1="1", l2=0.0), raises(TypeError, "l1", "'1'")),
    Row(jr.elastic_net_penalty, "traced l1 -1, NaN, inf", lambda: traced_values(
        lambda a: jr.elastic_net_penalty(PARAMS, l1=a, l2=0.0), 0.1, -1.0, jnp.nan, jnp.inf),
        NAN_FOR_BAD),
    Row(jr.elastic_net_penalty, "traced l2 -1, NaN", lambda: traced_values(
        lambda a: jr.elastic_net_penalty(PARAMS, l1=0.0, l2=a), 0.1, -1.0, jnp.nan),
        NAN_FOR_BAD),
    Row(jr.decay_mask, "exclude None", lambda: jr.decay_mask(PARAMS, exclude=None),
        raises(TypeError, "exclude", "None")),
    Row(jr.decay_mask, "exclude a bare string", lambda: jr.decay_mask(PARAMS, exclude="*b*"),
        raises(TypeError, "exclude", "'*b*'")),
    Row(jr.decay_mask, "exclude holding a number", lambda: jr.decay_mask(PARAMS, exclude=(1,)),
        raises(TypeError, "exclude", "(1,)")),
    Row(jr.decay_mask, "exclude a generator", lambda: jr.decay_mask(
        PARAMS, exclude=(p for p in ("w",))), gives(lambda m: m == {"w": False, "b": False},
                                                     "the patterns applied")),
    Row(jr.decay_mask, "min_ndim -1", lambda: jr.decay_mask(PARAMS, min_ndim=-1),
        raises(ValueError, "min_ndim", "-1")),
    Row(jr.decay_mask, "min_ndim 1.5", lambda: jr.decay_mask(PARAMS, min_ndim=1.5),
        raises(TypeError, "min_ndim", "1.5")),
    Row(jr.decay_mask, "no parameters", lambda: jr.decay_mask({}), gives(lambda m: m == {}, "{}")),
    Row(jr.add_l2_decay, "weight_decay -1", lambda: jr.add_l2_decay(-1.0),
        raises(ValueError, "weight_decay", "-1.0")),
    Row(jr.add_l2_decay, "weight_decay inf", lambda: jr.add_l2_decay(float("inf")),
        raises(ValueError, "weight_decay", "inf")),
    Row(jr.add_l2_decay, "weight_decay a string", lambda: jr.add_l2_decay("0.1"),
        raises(TypeError, "weight_decay", "'0.1'")),
    Row(jr.add_l2_decay, "schedule going negative, eager", lambda: decay_update(
        lambda count: jnp.float32(-0.1)), raises(ValueError, "weight_decay", "-0.1")),
    Row(jr.add_l2_decay, "schedule going negative, jitted", lambda: decay_update(
        lambda count: jnp.float32(-0.1), jit=True), gives(all_nan, "NaN updates")),
    Row(jr.add_l2_decay, "traced weight_decay -1, NaN", lambda: traced_values(
        decay_update, 0.1, -1.0, jnp.nan), NAN_FOR_BAD),
    *prox_rows(jr.l1_prox, lambda s, lr: jr.l1_prox(s, lr)),
    *prox_rows(jr.elastic_net_prox, lambda s, lr: jr.elastic_net_prox(s, 0.1, lr)),
    Row(jr.elastic_net_prox, "l2 -1", lambda: jr.elastic_net_prox(0.1, -1.0, 0.1),
        raises(ValueError, "l2", "-1.0")),
    Row(jr.elastic_net_prox, "traced l2 -1", lambda: traced_values(
        lambda l2: prox_update(jr.elastic_net_prox(0.1, l2, 0.1)), 0.1, -1.0), NAN_FOR_BAD),
    # ---- marginalization and devices ----
    Row(jr.mc_dropout_predict, "key None", lambda: jr.mc_dropout_predict(
        None, lambda k, x: x, X, num_samples=2), raises(ValueError, "key", "None")),
    Row(jr.mc_dropout_predict, "key an int", lambda: jr.mc_dropout_predict(
        1, lambda k, x: x, X, num_samples=2), raises(TypeError, "key", "int")),
    Row(jr.mc_dropout_predict, "num_samples 0", lambda: jr.mc_dropout_predict(
        K(), lambda k, x: x, X, num_samples=0), raises(ValueError, "num_samples", "0")),
    Row(jr.mc_dropout_predict, "num_samples 2.5", lambda: jr.mc_dropout_predict(
        K(), lambda k, x: x, X, num_samples=2.5), raises(TypeError, "num_samples", "2.5")),
    Row(jr.mc_dropout_predict, "batch_size 0", lambda: jr.mc_dropout_predict(
        K(), lambda k, x: x, X, num_samples=2, batch_size=0),
        raises(ValueError, "batch_size", "0")),
    Row(jr.mc_dropout_predict, "apply_fn not callable", lambda: jr.mc_dropout_predict(
        K(), "model", X, num_samples=2), raises(TypeError, "apply_fn", "'model'")),
    Row(jr.mc_dropout_predict, "apply_fn returning class ids", lambda: jr.mc_dropout_predict(
        K(), lambda k, x: jnp.argmax(x, -1), X, num_samples=2),
        raises(TypeError, "apply_fn", "int32")),
    Row(jr.mc_dropout_predict, "apply_fn returning nothing", lambda: jr.mc_dropout_predict(
        K(), lambda k, x: (), X, num_samples=2), gives(lambda out: out == ((), ()), "((), ())")),
    Row(jr.device_key, "key None", lambda: jax.vmap(
        lambda _: jr.device_key(None, "i"), axis_name="i")(jnp.zeros(2)),
        raises(ValueError, "key", "None")),
    Row(jr.device_key, "key a float array", lambda: jr.device_key(jnp.zeros(2), "i"),
        raises(TypeError, "key", "float32")),
    Row(jr.device_key, "axis_name None", lambda: jr.device_key(K(), None),
        raises(TypeError, "axis_name", "None")),
    Row(jr.device_key, "axis_name ()", lambda: jr.device_key(K(), ()),
        raises(ValueError, "axis_name", "()")),
    Row(jr.device_key, "axis_name unbound", lambda: jr.device_key(K(), "data"),
        raises(ValueError, "axis_name", "'data'")),
    Row(jr.record_keys, "key None", lambda: jr.record_keys(None, jnp.arange(2)),
        raises(ValueError, "key", "None")),
    Row(jr.record_keys, "key a float array", lambda: jr.record_keys(jnp.zeros(2), jnp.arange(2)),
        raises(TypeError, "key", "float32")),
    Row(jr.record_keys, "float indices", lambda: jr.record_keys(K(), jnp.zeros(2)),
        raises(TypeError, "indices", "float32")),
    Row(jr.record_keys, "boolean indices", lambda: jr.record_keys(K(), [True, False]),
        raises(TypeError, "indices", "bool")),
    Row(jr.record_keys, "indices a string", lambda: jr.record_keys(K(), "12"),
        raises(TypeError, "indices", "'12'")),
    Row(jr.record_keys, "index -1", lambda: jr.record_keys(K(), [3, -1]),
        raises(ValueError, "indices", "-1")),
    Row(jr.record_keys, "index 2**32", lambda: jr.record_keys(K(), np.array([2**32])),
        raises(ValueError, "indices", "4294967296")),
    Row(jr.record_keys, "traced float indices", lambda: jax.jit(
        lambda i: jr.record_keys(K(), i))(jnp.zeros(2)), raises(TypeError, "indices", "float32")),
    Row(jr.record_keys, "no indices", lambda: jr.record_keys(K(), jnp.zeros(0, jnp.int32)),
        gives(lambda keys: keys.shape == (0,), "no keys")),
    # ---- augmentation: colour ----
    *color_space_rows(A.rgb_to_hsv),
    *color_space_rows(A.hsv_to_rgb),
    *adjust_rows(A.adjust_hue, "delta"),
    *adjust_rows(A.adjust_saturation, "factor"),
    Row(A.adjust_saturation, "factor -1", lambda: A.adjust_saturation(IMG, -1.0),
        raises(ValueError, "factor", "-1.0")),
    Row(A.adjust_saturation, "traced factor -1, NaN, inf", lambda: traced_values(
        lambda f: A.adjust_saturation(IMG, f), 0.5, -1.0, jnp.nan, jnp.inf), NAN_FOR_BAD),
    Row(A.adjust_hue, "traced delta NaN, inf", lambda: traced_values(
        lambda d: A.adjust_hue(IMG, d), 0.1, jnp.nan, jnp.inf), NAN_FOR_BAD),
    *random_color_rows(A.random_brightness, (0.1,), [
        ("max_delta -0.1", (-0.1,), ValueError, "max_delta", "-0.1"),
        ("max_delta inf", (float("inf"),), ValueError, "max_delta", "inf"),
        ("max_delta a string", ("0.1",), TypeError, "max_delta", "'0.1'"),
    ]),
    Row(A.random_brightness, "traced max_delta", lambda: traced(
        lambda d: A.random_brightness(K(), IMG, d), 0.1), raises(TypeError, "max_delta", "traced")),
    *random_color_rows(A.random_contrast, ((0.5, 1.5),), [
        ("factors[0] > factors[1]", ((1.5, 0.5),), ValueError, "factors",
         "0.0 <= factors[0] <= factors[1], got (1.5, 0.5)"),
        ("factors[0] -1", ((-1.0, 0.5),), ValueError, "factors", "-1.0"),
        ("factors[1] NaN", ((0.5, float("nan")),), ValueError, "factors", "nan"),
        ("factors a number", (1.5,), TypeError, "factors", "1.5"),
        ("factors of three", ((0.5, 1.0, 1.5),), ValueError, "factors", "(0.5, 1.0, 1.5)"),
        ("factors a string", ("0.5",), TypeError, "factors", "'0.5'"),
        ("factors of strings", (("0.5", "1.5"),), TypeError, "factors", "'0.5'"),
    ]),
    Row(A.random_contrast, "traced factors", lambda: traced(
        lambda lo: A.random_contrast(K(), IMG, (lo, 1.5)), 0.5),
        raises(TypeError, "factors", "traced")),
    *random_color_rows(A.random_saturation, ((0.5, 1.5),), [
        ("factors[0] > factors[1]", ((1.5, 0.5),), ValueError, "factors",
         "0.0 <= factors[0] <= factors[1], got (1.5, 0.5)"),
        ("factors[1] inf", ((0.5, float("inf")),), ValueError, "factors", "inf"),
        ("factors a number", (0.5,), TypeError, "factors", "0.5"),
        ("factors of one", ([0.5],), ValueError, "factors", "[0.5]"),
    ]),
    Row(A.random_saturation, "not RGB", lambda: A.random_saturation(
        K(), jnp.ones((4, 4, 1)), (0.5, 1.5)), raises(ValueError, "image", "(4, 4, 1)")),
    *random_color_rows(A.random_hue, (0.1,), [
        ("max_delta 0.6", (0.6,), ValueError, "max_delta", "0.6"),
        ("max_delta NaN", (float("nan"),), ValueError, "max_delta", "nan"),
    ]),
    *random_color_rows(A.color_jitter, (), []),
    Row(A.color_jitter, "hue 0.6", lambda: A.color_jitter(K(), IMG, hue=0.6),
        raises(ValueError, "hue", "0.6")),
    Row(A.color_jitter, "brightness -1", lambda: A.color_jitter(K(), IMG, brightness=-1.0),
        raises(ValueError, "brightness", "-1.0")),
    Row(A.color_jitter, "contrast NaN", lambda: A.color_jitter(K(), IMG, contrast=float("nan")),
        raises(ValueError, "contrast", "nan")),
    Row(A.color_jitter, "traced saturation", lambda: traced(
        lambda s: A.color_jitter(K(), IMG, saturation=s), 0.4),
        raises(TypeError, "saturation", "traced")),
    Row(A.color_jitter, "random_order None", lambda: A.color_jitter(
        K(), IMG, brightness=0.1, random_order=None), raises(TypeError, "random_order", "None")),
    Row(A.color_jitter, "not RGB", lambda: A.color_jitter(K(), jnp.ones((4, 4, 2))),
        raises(ValueError, "image", "(4, 4, 2)")),
    # ---- augmentation: geometric ----
    *warp_rows(A.affine, "angle", 30.0, (jnp.nan, jnp.inf),
               lambda im, v, **kw: A.affine(im, angle=v, **kw)),
    Row(A.affine, "scale 0", lambda: A.affine(IMG, scale=0.0), raises(ValueError, "scale", "0.0")),
    Row(A.affine, "traced scale 0, -1, NaN", lambda: traced_values(
        lambda s: A.affine(IMG, scale=s), 1.5, 0.0, -1.0, jnp.nan), NAN_FOR_BAD),
    Row(A.affine, "shear 90", lambda: A.affine(IMG, shear=90.0), raises(ValueError, "shear", "90")),
    Row(A.affine, "traced shear 90, -95, NaN", lambda: traced_values(
        lambda s: A.affine(IMG, shear=(0.0, s)), 10.0, 90.0, -95.0, jnp.nan), NAN_FOR_BAD),
    Row(A.affine, "translate of three", lambda: A.affine(IMG, translate=(1, 2, 3)),
        raises(ValueError, "translate", "(1, 2, 3)")),
    Row(A.affine, "traced translate inf", lambda: traced_values(
        lambda t: A.affine(IMG, translate=(t, 0.0)), 1.0, jnp.inf), NAN_FOR_BAD),
    Row(A.affine, "traced center", lambda: traced(
        lambda c: A.affine(IMG, angle=10.0, center=(c, 1.0)), 1.0),
        raises(TypeError, "center", "traced")),
    *warp_rows(A.rotate, "angle", 30.0, (jnp.nan, jnp.inf)),
    Row(A.rotate, "center of one", lambda: A.rotate(IMG, 10.0, center=(1.0,)),
        raises(ValueError, "center", "(1.0,)")),
    *warp_rows(A.translate_x, "pixels", 2.0, (jnp.nan, -jnp.inf)),
    *warp_rows(A.translate_y, "pixels", -2.0, (jnp.nan, jnp.inf)),
    *warp_rows(A.shear_x, "factor", 0.3, (jnp.nan, jnp.inf)),
    *warp_rows(A.shear_y, "factor", -0.3, (jnp.nan, -jnp.inf)),
    # ---- augmentation: photometric ----
    *image_rows(A.grayscale),
    *not_rgb_rows(A.grayscale),
    Row(A.grayscale, "num_output_channels 2", lambda: A.grayscale(IMG, num_output_channels=2),
        raises(ValueError, "num_output_channels", "2")),
    Row(A.grayscale, "num_output_channels 3.0", lambda: A.grayscale(
        IMG, num_output_channels=3.0), raises(TypeError, "num_output_channels", "3.0")),
    *flip_rows(A.random_grayscale),
    Row(A.random_grayscale, "not RGB", lambda: A.random_grayscale(K(), jnp.ones((4, 4, 2))),
        raises(ValueError, "image", "(4, 4, 2)")),
    Row(A.random_grayscale, "NHWC batch", lambda: A.random_grayscale(K(), NHWC),
        raises(ValueError, "image", "augment.batched")),
    *image_rows(A.invert, uint8=True),
    *image_rows(A.solarize, 0.5, uint8=True),
    *magnitude_rows(A.solarize, "threshold", 0.5, 1.5),
    *image_rows(A.solarize_add, 0.2),
    *magnitude_rows(A.solarize_add, "addition", 0.2, -1.5),
    *magnitude_rows(A.solarize_add, "threshold", 0.5, 2.0,
                    lambda im, t: A.solarize_add(im, 0.2, threshold=t)),
    *image_rows(A.posterize, 4, uint8=True),
    Row(A.posterize, "bits 9", lambda: A.posterize(IMG, 9), raises(ValueError, "bits", "9")),
    Row(A.posterize, "bits -1", lambda: A.posterize(IMG, -1), raises(ValueError, "bits", "-1")),
    Row(A.posterize, "bits 4.0", lambda: A.posterize(IMG, 4.0), raises(TypeError, "bits", "4.0")),
    Row(A.posterize, "bits True", lambda: A.posterize(IMG, True),
        raises(TypeError, "bits", "True")),
    Row(A.posterize, "traced float bits", lambda: traced(lambda b: A.posterize(IMG, b), 4.0),
        raises(TypeError, "bits", "float32")),
    Row(A.posterize, "traced bits 9 and -1 (clamped)", lambda: jax.vmap(
        lambda b: A.posterize(IMG, b))(jnp.array([9, -1])),
        gives(equals(jnp.stack([A.posterize(IMG, 8), A.posterize(IMG, 0)])),
              "clamped to 8 and 0, as documented")),
    *image_rows(A.equalize, uint8=True),
    *image_rows(A.autocontrast, uint8=True),
    *image_rows(A.enhance_sharpness, 0.5, uint8=True),
    *magnitude_rows(A.enhance_sharpness, "factor", 0.5, -1.0),
    Row(A.gaussian_blur, "image of rank 2", lambda: A.gaussian_blur(IMG[..., 0], 3, 1.0),
        raises(ValueError, "image", "(6, 8)")),
    Row(A.gaussian_blur, "integer image", lambda: A.gaussian_blur(IMG.astype(jnp.uint8), 3, 1.0),
        raises(TypeError, "image", "uint8")),
    Row(A.gaussian_blur, "NHWC batch", lambda: A.gaussian_blur(NHWC, 3, 1.0),
        raises(ValueError, "image", "jax.vmap")),
    Row(A.gaussian_blur, "zero-size image", lambda: A.gaussian_blur(EMPTY_IMG, 3, 1.0),
        raises(ValueError, "kernel_size", "height 0")),
    Row(A.gaussian_blur, "kernel_size 4", lambda: A.gaussian_blur(IMG, 4, 1.0),
        raises(ValueError, "kernel_size", "4")),
    Row(A.gaussian_blur, "kernel_size 0", lambda: A.gaussian_blur(IMG, 0, 1.0),
        raises(ValueError, "kernel_size", "0")),
    Row(A.gaussian_blur, "kernel_size 3.0", lambda: A.gaussian_blur(IMG, 3.0, 1.0),
        raises(TypeError, "kernel_size", "3.0")),
    Row(A.gaussian_blur, "kernel_size larger than the image", lambda: A.gaussian_blur(
        IMG, (13, 3), 1.0), raises(ValueError, "kernel_size", "(13, 3)")),
    Row(A.gaussian_blur, "sigma 0", lambda: A.gaussian_blur(IMG, 3, 0.0),
        raises(ValueError, "sigma", "0.0")),
    Row(A.gaussian_blur, "sigma NaN", lambda: A.gaussian_blur(IMG, 3, float("nan")),
        raises(ValueError, "sigma", "nan")),
    Row(A.gaussian_blur, "sigma of three", lambda: A.gaussian_blur(IMG, 3, (1.0, 2.0, 3.0)),
        raises(ValueError, "sigma", "(1.0, 2.0, 3.0)")),
    Row(A.gaussian_blur, "sigma a string", lambda: A.gaussian_blur(IMG, 3, "1"),
        raises(TypeError, "sigma", "'1'")),
    Row(A.gaussian_blur, "traced sigma 0, -1, NaN, inf", lambda: traced_values(
        lambda s: A.gaussian_blur(IMG, 3, s), 1.0, 0.0, -1.0, jnp.nan, jnp.inf), NAN_FOR_BAD),
    Row(A.gaussian_blur, "traced sigma_w -1", lambda: traced_values(
        lambda s: A.gaussian_blur(IMG, 3, (1.0, s)), 1.0, -1.0), NAN_FOR_BAD),
    *image_rows(A.enhance_brightness, 0.5, uint8=True),
    *magnitude_rows(A.enhance_brightness, "factor", 0.5, -1.0),
    *image_rows(A.enhance_contrast, 0.5, uint8=True),
    *not_rgb_rows(A.enhance_contrast, 0.5),
    *magnitude_rows(A.enhance_contrast, "factor", 0.5, -0.5),
    *image_rows(A.enhance_color, 0.5, uint8=True),
    *not_rgb_rows(A.enhance_color, 0.5),
    *magnitude_rows(A.enhance_color, "factor", 1.5, -2.0),
    # ---- augmentation: policies ----
    *policy_rows(A.rand_augment),
    Row(A.rand_augment, "num_ops -1", lambda: A.rand_augment(K(), IMG, num_ops=-1),
        raises(ValueError, "num_ops", "-1")),
    Row(A.rand_augment, "num_ops 2.0", lambda: A.rand_augment(K(), IMG, num_ops=2.0),
        raises(TypeError, "num_ops", "2.0")),
    Row(A.rand_augment, "magnitude 31 of 31 bins", lambda: A.rand_augment(K(), IMG, magnitude=31),
        raises(ValueError, "magnitude", "31")),
    Row(A.rand_augment, "magnitude -1", lambda: A.rand_augment(K(), IMG, magnitude=-1),
        raises(ValueError, "magnitude", "-1")),
    Row(A.rand_augment, "magnitude NaN", lambda: A.rand_augment(
        K(), IMG, magnitude=float("nan")), raises(ValueError, "magnitude", "nan")),
    Row(A.rand_augment, "traced magnitude 40 (clipped)", lambda: traced(
        lambda m: A.rand_augment(K(), IMG, magnitude=m), 40.0),
        gives(close_to(lambda: A.rand_augment(K(), IMG, magnitude=30)),
              "the last bin's result, as documented")),
    Row(A.rand_augment, "traced magnitude NaN", lambda: traced(
        lambda m: A.rand_augment(K(), IMG, magnitude=m), jnp.nan), gives(all_nan, "NaN")),
    Row(A.rand_augment, "num_magnitude_bins 1", lambda: A.rand_augment(
        K(), IMG, magnitude=0, num_magnitude_bins=1),
        raises(ValueError, "num_magnitude_bins", "1")),
    Row(A.rand_augment, "magnitude_std -1", lambda: A.rand_augment(K(), IMG, magnitude_std=-1.0),
        raises(ValueError, "magnitude_std", "-1.0")),
    Row(A.rand_augment, "magnitude_std NaN", lambda: A.rand_augment(
        K(), IMG, magnitude_std=float("nan")), raises(ValueError, "magnitude_std", "nan")),
    Row(A.rand_augment, "traced magnitude_std", lambda: traced(
        lambda s: A.rand_augment(K(), IMG, magnitude_std=s), 0.5),
        raises(TypeError, "magnitude_std", "traced")),
    Row(A.rand_augment, "num_ops 0 on an empty image", lambda: A.rand_augment(
        K(), EMPTY_IMG, num_ops=0), gives(equals(EMPTY_IMG), "the image itself")),
    *policy_rows(A.trivial_augment_wide),
    Row(A.trivial_augment_wide, "num_magnitude_bins 1", lambda: A.trivial_augment_wide(
        K(), IMG, num_magnitude_bins=1), raises(ValueError, "num_magnitude_bins", "1")),
    Row(A.trivial_augment_wide, "num_magnitude_bins True", lambda: A.trivial_augment_wide(
        K(), IMG, num_magnitude_bins=True), raises(TypeError, "num_magnitude_bins", "True")),
    *policy_rows(A.auto_augment, uint8=True),
    Row(A.auto_augment, "policy 'ImageNet'", lambda: A.auto_augment(K(), IMG, policy="ImageNet"),
        raises(ValueError, "policy", "'ImageNet'")),
    Row(A.auto_augment, "policy None", lambda: A.auto_augment(K(), IMG, policy=None),
        raises(ValueError, "policy", "None")),
    *policy_rows(A.aug_mix, width=1, depth=1),  # one chain of one op
    Row(A.aug_mix, "severity 11", lambda: A.aug_mix(K(), IMG, severity=11),
        raises(ValueError, "severity", "11")),
    Row(A.aug_mix, "severity 0", lambda: A.aug_mix(K(), IMG, severity=0),
        raises(ValueError, "severity", "0")),
    Row(A.aug_mix, "width 0", lambda: A.aug_mix(K(), IMG, width=0),
        raises(ValueError, "width", "0")),
    Row(A.aug_mix, "depth 0", lambda: A.aug_mix(K(), IMG, depth=0),
        raises(ValueError, "depth", "0")),
    Row(A.aug_mix, "depth 1.5", lambda: A.aug_mix(K(), IMG, depth=1.5),
        raises(TypeError, "depth", "1.5")),
    Row(A.aug_mix, "alpha 0", lambda: A.aug_mix(K(), IMG, alpha=0.0),
        raises(ValueError, "alpha", "0.0")),
    Row(A.aug_mix, "alpha NaN", lambda: A.aug_mix(K(), IMG, alpha=float("nan")),
        raises(ValueError, "alpha", "nan")),
    Row(A.aug_mix, "traced alpha", lambda: traced(lambda a: A.aug_mix(K(), IMG, alpha=a), 1.0),
        raises(TypeError, "alpha", "traced")),
    Row(A.aug_mix, "all_ops 'yes'", lambda: A.aug_mix(K(), IMG, all_ops="yes"),
        raises(TypeError, "all_ops", "'yes'")),
    Row(A.aug_mix_consistency_loss, "integer logits", lambda: A.aug_mix_consistency_loss(
        jnp.zeros((2, 5), jnp.int32), jnp.zeros((2, 5)), jnp.zeros((2, 5))),
        raises(TypeError, "logits_clean", "int32")),
    Row(A.aug_mix_consistency_loss, "logits of another shape", lambda: A.aug_mix_consistency_loss(
        jnp.zeros((2, 5)), jnp.zeros((2, 5)), jnp.zeros((2, 4))),
        raises(ValueError, "logits_aug2", "(2, 4)")),
    Row(A.aug_mix_consistency_loss, "0-d logits", lambda: A.aug_mix_consistency_loss(
        jnp.float32(0), jnp.float32(0), jnp.float32(0)), raises(ValueError, "logits_clean", "()")),
    Row(A.aug_mix_consistency_loss, "logits a string", lambda: A.aug_mix_consistency_loss(
        "cat", jnp.zeros(2), jnp.zeros(2)), raises(TypeError, "logits_clean", "'cat'")),
    Row(A.aug_mix_consistency_loss, "an empty batch", lambda: A.aug_mix_consistency_loss(
        jnp.zeros((0, 5)), jnp.zeros((0, 5)), jnp.zeros((0, 5))),
        gives(lambda y: y.shape == (0,), "an empty loss")),
    Row(A.aug_mix_consistency_loss, "a NaN logit", lambda: A.aug_mix_consistency_loss(
        jnp.zeros((1, 5)).at[0, 0].set(jnp.nan), jnp.zeros((1, 5)), jnp.zeros((1, 5))),
        gives(all_nan, "NaN (the logit's own)")),
    # ---- augmentation: crops and flips ----
    *flip_rows(A.random_flip_left_right),
    *flip_rows(A.random_flip_up_down),
    Row(A.random_crop, "key None", lambda: A.random_crop(None, IMG, 4),
        raises(ValueError, "key", "None")),
    Row(A.random_crop, "size larger than the padded image", lambda: A.random_crop(
        K(), IMG, 9, padding=1), raises(ValueError, "size", "(9, 9)")),
    Row(A.random_crop, "padding -1", lambda: A.random_crop(K(), IMG, 4, padding=-1),
        raises(ValueError, "padding", "-1")),
    Row(A.random_crop, "padding 1.5", lambda: A.random_crop(K(), IMG, 4, padding=1.5),
        raises(TypeError, "padding", "1.5")),
    Row(A.random_crop, "traced padding", lambda: traced(
        lambda p: A.random_crop(K(), IMG, 4, padding=p), 1), raises(TypeError, "padding")),
    Row(A.random_crop, "pad_mode 'wrap'", lambda: A.random_crop(
        K(), IMG, 4, padding=1, pad_mode="wrap"), raises(ValueError, "pad_mode", "'wrap'")),
    Row(A.random_crop, "edge padding of an empty image", lambda: A.random_crop(
        K(), EMPTY_IMG, 2, padding=2, pad_mode="edge"), raises(ValueError, "pad_mode", "'edge'")),
    Row(A.random_crop, "reflect padding of an empty image", lambda: A.random_crop(
        K(), EMPTY_IMG, 2, padding=2, pad_mode="reflect"),
        raises(ValueError, "pad_mode", "'reflect'")),
    Row(A.random_crop, "constant padding of an empty image", lambda: A.random_crop(
        K(), EMPTY_IMG, 2, padding=2), gives(lambda y: bool((y == 0).all()) and y.shape == (
            2, 2, 3), "a crop of the zero padding")),
    Row(A.random_crop, "reflect padding of a one-pixel image", lambda: A.random_crop(
        K(), jnp.ones((1, 1, 3)), 3, padding=1, pad_mode="reflect"),
        gives(lambda y: bool((y == 1).all()), "the pixel repeated")),
    Row(A.random_crop, "NHWC batch", lambda: A.random_crop(K(), NHWC, 4),
        raises(ValueError, "image", "augment.batched")),
    Row(A.random_resized_crop, "image with no rows", lambda: A.random_resized_crop(
        K(), EMPTY_IMG, 4), raises(ValueError, "image", "(0, 8, 3)")),
    Row(A.random_resized_crop, "image with no columns", lambda: A.random_resized_crop(
        K(), jnp.zeros((5, 0, 3)), 4), raises(ValueError, "image", "(5, 0, 3)")),
    Row(A.random_resized_crop, "scale[1] 0", lambda: A.random_resized_crop(
        K(), IMG, 4, scale=(0.0, 0.0)),
        raises(ValueError, "scale", "scale[1] > 0, got (0.0, 0.0)")),
    Row(A.random_resized_crop, "scale above 1", lambda: A.random_resized_crop(
        K(), IMG, 4, scale=(0.5, 1.5)), raises(ValueError, "scale", "1.5")),
    Row(A.random_resized_crop, "ratio (0, 1)", lambda: A.random_resized_crop(
        K(), IMG, 4, ratio=(0.0, 1.0)), raises(ValueError, "ratio", "ratio[0] > 0")),
    Row(A.random_resized_crop, "ratio of three", lambda: A.random_resized_crop(
        K(), IMG, 4, ratio=(1, 2, 3)), raises(ValueError, "ratio", "(1, 2, 3)")),
    Row(A.random_resized_crop, "traced scale", lambda: traced(
        lambda s: A.random_resized_crop(K(), IMG, 4, scale=(s, 1.0)), 0.5),
        raises(TypeError, "scale", "traced")),
    Row(A.random_resized_crop, "antialias 'yes'", lambda: A.random_resized_crop(
        K(), IMG, 4, antialias="yes"), raises(TypeError, "antialias", "'yes'")),
    Row(A.random_resized_crop, "key None", lambda: A.random_resized_crop(None, IMG, 4),
        raises(ValueError, "key", "None")),
    Row(A.random_scale_crop, "image with no rows", lambda: A.random_scale_crop(
        K(), EMPTY_IMG, 4, scales=(8,)), raises(ValueError, "image", "(0, 8, 3)")),
    Row(A.random_scale_crop, "a scale smaller than the crop", lambda: A.random_scale_crop(
        K(), IMG, 4, scales=(2,)), raises(ValueError, "scales", "2")),
    Row(A.random_scale_crop, "scales empty", lambda: A.random_scale_crop(
        K(), IMG, 4, scales=()), raises(ValueError, "scales", "()")),
    Row(A.random_scale_crop, "scales a bare number", lambda: A.random_scale_crop(
        K(), IMG, 4, scales=8), raises(TypeError, "scales", "8")),
    Row(A.random_scale_crop, "scales holding 5.5", lambda: A.random_scale_crop(
        K(), IMG, 4, scales=(8, 5.5)), raises(TypeError, "scales", "5.5")),
    Row(A.random_scale_crop, "antialias None", lambda: A.random_scale_crop(
        K(), IMG, 4, scales=(8,), antialias=None), raises(TypeError, "antialias", "None")),
    Row(A.random_scale_crop, "key None", lambda: A.random_scale_crop(None, IMG, 4, scales=(8,)),
        raises(ValueError, "key", "None")),
    Row(A.random_erasing, "probability 1.5", lambda: A.random_erasing(K(), IMG, probability=1.5),
        raises(ValueError, "probability", "1.5")),
    Row(A.random_erasing, "traced probability 2.0, -0.5, NaN", lambda: traced_values(
        lambda p: A.random_erasing(K(), IMG, probability=p), 0.5, 2.0, -0.5, jnp.nan),
        NAN_FOR_BAD),
    Row(A.random_erasing, "ratio (0, 1)", lambda: A.random_erasing(K(), IMG, ratio=(0.0, 1.0)),
        raises(ValueError, "ratio", "(0.0, 1.0)")),
    Row(A.random_erasing, "scale reversed", lambda: A.random_erasing(K(), IMG, scale=(0.5, 0.1)),
        raises(ValueError, "scale", "0.0 <= scale[0] <= scale[1] <= 1.0, got (0.5, 0.1)")),
    Row(A.random_erasing, "value NaN", lambda: A.random_erasing(K(), IMG, value=float("nan")),
        raises(ValueError, "value", "nan")),
    Row(A.random_erasing, "value for 4 channels", lambda: A.random_erasing(
        K(), IMG, value=(0.1, 0.2, 0.3, 0.4)), raises(ValueError, "value", "(4,)")),
    Row(A.random_erasing, "value a string", lambda: A.random_erasing(K(), IMG, value="mean"),
        raises(TypeError, "value", "'mean'")),
    Row(A.random_erasing, "an image with no pixels", lambda: A.random_erasing(
        K(), EMPTY_IMG, probability=1.0), gives(equals(EMPTY_IMG), "the empty image")),
    Row(A.random_erasing, "a one-pixel image", lambda: A.random_erasing(
        K(), jnp.ones((1, 1, 3)), probability=1.0),
        gives(lambda y: bool((y == 1).all()), "nothing erased: no box fits strictly inside")),
    Row(A.random_erasing, "key None", lambda: A.random_erasing(None, IMG),
        raises(ValueError, "key", "None")),
    # ---- augmentation: mixing, composition, test-time views ----
    *mix_rows(A.mixup),
    *mix_rows(A.cutmix),
    Row(A.draw, "op a string", lambda: A.draw("random_crop"),
        raises(TypeError, "op", "'random_crop'")),
    Row(A.draw, "op without parameters", lambda: A.draw(A.invert), raises(TypeError, "op",
                                                                         "invert")),
    Row(A.draw, "op a parameter set", lambda: A.draw(A.FlipParams), raises(TypeError, "op",
                                                                           "FlipParams")),
    # draw(op) checks its arguments as the op does, and its errors name the op
    Row(A.random_crop, "size larger than the image, through draw", lambda: A.draw(
        A.random_crop)(K(), IMG, 10), raises(ValueError, "size", "(10, 10)")),
    Row(A.rotate, "angle NaN, through draw", lambda: A.draw(A.rotate)(IMG, float("nan")),
        raises(ValueError, "angle", "nan")),
    Row(A.translate_y, "a key first, through draw (it takes none)", lambda: A.draw(
        A.translate_y)(K(), IMG), raises(TypeError, "image", "key")),
    Row(A.apply, "params a dict", lambda: A.apply({"top": 0, "left": 0}, IMG),
        raises(TypeError, "params", "dict")),
    Row(A.apply, "params None", lambda: A.apply(None, IMG), raises(TypeError, "params",
                                                                   "NoneType")),
    Row(A.apply, "window larger than the image", lambda: A.apply(
        A.CropParams(top=jnp.array(0), left=jnp.array(0), size=(7, 9)), IMG),
        raises(ValueError, "size", "(7, 9)")),
    Row(A.apply, "image of rank 2", lambda: A.apply(A.FlipParams(
        flip=jnp.array(True), probability=jnp.array(0.5)), IMG[..., 0]),
        raises(ValueError, "image")),
    Row(A.apply, "integer image", lambda: A.apply(A.ResizedCropParams(
        top=jnp.array(0.0), left=jnp.array(0.0), height=jnp.array(2.0), width=jnp.array(2.0),
        size=(2, 2)), IMG.astype(jnp.int32)), raises(TypeError, "image", "int32")),
    Row(A.apply, "traced probability 2.0, -0.5, NaN", lambda: traced_values(
        lambda p: A.apply(A.FlipParams(flip=jnp.array(True), probability=p), IMG), 0.5, 2.0,
        -0.5, float("nan")), NAN_FOR_BAD),
    Row(A.apply, "an affine matrix of shape (3, 3)", lambda: A.apply(A.AffineParams(
        matrix=jnp.eye(3), fill=jnp.zeros(()), interpolation="nearest"), IMG),
        raises(ValueError, "matrix", "(3, 3)")),
    Row(A.apply, "traced angle NaN and inf, through draw(rotate)", lambda: traced_values(
        lambda a: A.apply(A.draw(A.rotate)(IMG, a), IMG), 30.0, float("nan"), float("inf")),
        NAN_FOR_BAD),
    Row(A.apply, "image of another size than drawn", lambda: A.apply(
        A.draw(A.random_flip_left_right)(K(), IMG), IMG[:5]), raises(ValueError, "image",
                                                                     "(5, 8, 3)")),
    *target_rows(),
    *target_rule_rows(),
    *chain_rows(),
    # apply(params, *inputs): exactly the inputs the op takes after its key
    Row(A.apply, "a flip applied to two images", lambda: A.apply(A.FlipParams(
        flip=jnp.array(True), probability=jnp.array(0.5)), IMG, IMG),
        raises(TypeError, "inputs", "got 2")),
    Row(A.apply, "mixup parameters without labels", lambda: A.apply(A.MixupParams(
        perm=jnp.array([1, 0]), lam=jnp.array([0.3, 0.6])), NHWC),
        raises(TypeError, "inputs", "(images, labels)")),
    Row(A.apply, "mixup parameters for a batch of 3", lambda: A.apply(A.MixupParams(
        perm=jnp.array([2, 0, 1]), lam=jnp.ones(3)), NHWC, LABELS),
        raises(ValueError, "perm", "(3,)")),
    Row(A.apply, "cutmix parameters applied to one image", lambda: A.apply(A.CutmixParams(
        perm=jnp.array([1, 0]), top=jnp.zeros(2), bottom=jnp.ones(2), left=jnp.zeros(2),
        right=jnp.ones(2)), IMG, LABELS), raises(ValueError, "images", "(6, 8, 3)")),
    Row(A.apply, "colour parameters of an unknown op", lambda: A.apply(A.ColorParams(
        magnitude=jnp.array(0.1), op="sharpness"), IMG), raises(ValueError, "op", "'sharpness'")),
    Row(A.apply, "colour jitter ops out of order", lambda: A.apply(A.ColorJitterParams(
        order=jnp.array([0, 1]), brightness=jnp.array(0.1), contrast=jnp.array(1.0),
        saturation=jnp.array(1.0), hue=jnp.array(0.1), used=("hue", "brightness")), IMG),
        raises(ValueError, "used", "('hue', 'brightness')")),
    Row(A.apply, "an erasing fill for a taller image", lambda: A.apply(A.ErasingParams(
        top=jnp.array(0.0), left=jnp.array(0.0), height=jnp.array(2.0), width=jnp.array(2.0),
        erase=jnp.array(True), probability=jnp.array(0.5), value=jnp.zeros((12, 8, 3))), IMG),
        raises(ValueError, "value", "(12, 8, 3)")),
    # a traced probability outside [0, 1]: NaN through draw and apply, as through the op
    Row(A.apply, "drawn with a traced erasing probability 2.0, NaN", lambda: traced_values(
        lambda p: A.apply(A.draw(A.random_erasing)(K(), IMG, probability=p), IMG), 0.5, 2.0,
        float("nan")), NAN_FOR_BAD),
    Row(A.apply, "drawn with a traced grayscale probability -0.5, NaN", lambda: traced_values(
        lambda p: A.apply(A.draw(A.random_grayscale)(K(), IMG, probability=p), IMG), 0.5,
        -0.5, float("nan")), NAN_FOR_BAD),
    Row(A.random_contrast, "factors lo > hi, through draw", lambda: A.draw(A.random_contrast)(
        K(), IMG, (1.5, 0.5)), raises(ValueError, "factors", "(1.5, 0.5)")),
    Row(A.mixup, "labels for another batch, through draw", lambda: A.draw(A.mixup)(
        K(), NHWC, jnp.ones((3, 2))), raises(ValueError, "labels", "(3, 2)")),
    Row(A.batched, "fn not callable", lambda: A.batched("crop"), raises(TypeError, "fn", "'crop'")),
    Row(A.batched, "sequential 'yes'", lambda: A.batched(A.random_flip_left_right,
                                                         sequential="yes"),
        raises(TypeError, "sequential", "'yes'")),
    Row(A.batched, "key None", lambda: A.batched(A.random_flip_left_right)(None, NHWC),
        raises(ValueError, "key", "None")),
    Row(A.batched, "3 keys for 2 images", lambda: A.batched(A.random_flip_left_right)(
        jax.random.split(K(), 3), NHWC), raises(ValueError, "key", "(3,)")),
    Row(A.batched, "keys of shape (2, 1)", lambda: A.batched(A.random_flip_left_right)(
        jax.random.split(K(), 2)[:, None], NHWC), raises(ValueError, "key", "(2, 1)")),
    Row(A.batched, "one image, not a batch", lambda: A.batched(A.random_flip_left_right)(
        K(), IMG), raises(ValueError, "images", "(6, 8, 3)")),
    Row(A.batched, "integer images", lambda: A.batched(A.random_flip_left_right)(
        K(), NHWC.astype(jnp.int32)), raises(TypeError, "images", "int32")),
    Row(A.batched, "an empty batch", lambda: A.batched(A.random_flip_left_right)(
        K(), jnp.zeros((0, 4, 4, 3))), gives(lambda y: y.shape == (0, 4, 4, 3),
                                             "an empty batch")),
    Row(A.compose, "no transforms", lambda: A.compose(), raises(ValueError, "fns")),
    Row(A.compose, "a transform that is not callable", lambda: A.compose(
        A.random_flip_left_right, 3), raises(TypeError, "fns", "3")),
    Row(A.compose, "key None", lambda: A.compose(A.random_flip_left_right)(None, IMG),
        raises(ValueError, "key", "None")),
    *crop_view_rows(A.center_crop),
    *crop_view_rows(A.five_crop),
    *crop_view_rows(A.ten_crop),
    Row(A.multi_crop_predict, "apply_fn not callable", lambda: A.multi_crop_predict(
        None, NHWC, size=4), raises(TypeError, "apply_fn", "None")),
    Row(A.multi_crop_predict, "apply_fn returning class ids", lambda: A.multi_crop_predict(
        lambda b: jnp.argmax(b.mean((1, 2)), -1), NHWC, size=4),
        raises(TypeError, "apply_fn", "int32")),
    Row(A.multi_crop_predict, "apply_fn returning a scalar", lambda: A.multi_crop_predict(
        lambda b: b.mean(), NHWC, size=4), raises(ValueError, "apply_fn", "()")),
    Row(A.multi_crop_predict, "apply_fn reducing the batch", lambda: A.multi_crop_predict(
        lambda b: b.mean(0), NHWC, size=4), raises(ValueError, "apply_fn", "(4, 4, 3)")),
    Row(A.multi_crop_predict, "a scale smaller than the crop", lambda: A.multi_crop_predict(
        lambda b: b.mean((1, 2)), NHWC, size=4, scales=(3,)), raises(ValueError, "scales", "3")),
    Row(A.multi_crop_predict, "size larger than the images", lambda: A.multi_crop_predict(
        lambda b: b.mean((1, 2)), NHWC, size=7), raises(ValueError, "size", "(7, 7)")),
    Row(A.multi_crop_predict, "crops 'seven'", lambda: A.multi_crop_predict(
        lambda b: b.mean((1, 2)), NHWC, size=4, crops="seven"),
        raises(ValueError, "crops", "'seven'")),
    Row(A.multi_crop_predict, "scales empty", lambda: A.multi_crop_predict(
        lambda b: b.mean((1, 2)), NHWC, size=4, scales=[]), raises(ValueError, "scales", "[]")),
    Row(A.multi_crop_predict, "images with no pixels", lambda: A.multi_crop_predict(
        lambda b: b.mean((1, 2)), jnp.zeros((2, 0, 6, 3)), size=4, scales=(6,)),
        raises(ValueError, "images", "(2, 0, 6, 3)")),
    Row(A.multi_crop_predict, "one image, not a batch", lambda: A.multi_crop_predict(
        lambda b: b.mean((1, 2)), IMG, size=4), raises(ValueError, "images", "(6, 8, 3)")),
    *dense_test_time_rows(),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_edge_case(row: Row):
  name = row.fn.__name__
  if isinstance(row.expect, Raises):
    with pytest.raises(Exception) as info:  # noqa: PT011 (the type is checked below)
      row.call()
    err, message = info.value, str(info.value)
    assert type(err) is row.expect.error, f"{type(err).__name__}: {message}"
    assert re.search(rf"\b{re.escape(name)}\b", message), f"names no {name}: {message}"
    assert f"`{row.expect.arg}`" in message, f"names no `{row.expect.arg}`: {message}"
    if row.expect.shows is not None:
      assert row.expect.shows in message, f"shows no {row.expect.shows}: {message}"
  else:
    out = row.call()
    assert row.expect.check(out), f"expected {row.expect.what}, got {out}"


def test_rows_are_distinct():
  ids = [row.id for row in ROWS]
  assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_function_has_several_classes():
  # One lone row is not a matrix: every public function is tried with several classes.
  counts = {}
  for row in ROWS:
    counts[row.fn.__name__] = counts.get(row.fn.__name__, 0) + 1
  thin = {name: n for name, n in counts.items() if n < 3}
  assert not thin, thin
