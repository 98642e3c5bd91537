"""Dense test-time marginalization: `invert_prediction` and `dense_predict`.

References: a float64 NumPy pipeline written from what the views mean (resampling matrices for
the resize, array slices and reversals for the windows and flips, bilinear matrices for the way
back, mmsegmentation's window grid), and properties: a view followed by its inverse is the
identity where the view covers, a flip-equivariant model gains nothing from flips, the variance
is zero where views agree, and overlapping windows average with weights counted by hand.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from resampling import resize_matrix

import jaxreg as jr

A = jr.augment
RNG = np.random.default_rng(0)
IMAGES = jnp.asarray(RNG.uniform(size=(2, 10, 14, 3)), jnp.float32)
MIX = jnp.asarray(RNG.normal(size=(3, 2)), jnp.float32)


@jax.jit  # one program per shape: eagerly, each small op would compile on its own
def stride2_model(batch):
  """Not flip-equivariant (a column ramp), nonlinear, a (h // 2, w // 2, 2) map per image."""
  pooled = jax.lax.reduce_window(batch, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1),
                                 "VALID") / 4
  ramp = jnp.arange(pooled.shape[2], dtype=jnp.float32)[None, None, :, None] / pooled.shape[2]
  return jnp.tanh(pooled @ MIX + ramp)


@jax.jit
def pixel_model(batch):
  """A per-pixel function: equivariant under flips, windows and batching."""
  return jax.nn.softmax(3 * batch @ MIX, axis=-1)


# --------------------------------------------------------------------------------------------
# float64 reference
# --------------------------------------------------------------------------------------------


def back_matrix(n_in: int, start: float, length: float, n_map: int):
  """(n_in, n_map) bilinear weights reading a map of n_map pixels that covers [start, start +
  length] at the input's pixel centres (edges clamped), and which centres it covers. The tests
  put no centre within 1/1024 pixel of an edge, where the library's slack would count it."""
  y = np.arange(n_in) + 0.5
  u = np.clip((y - start) * n_map / length - 0.5, 0, n_map - 1)
  i0 = np.floor(u).astype(int)
  frac = u - i0
  m = np.zeros((n_in, n_map))
  m[np.arange(n_in), i0] += 1 - frac
  m[np.arange(n_in), np.minimum(i0 + 1, n_map - 1)] += frac
  covered = (y >= start - 1e-9) & (y <= start + length + 1e-9)
  return m * covered[:, None], covered


def back(prediction, rows, cols, frame):
  """A (..., h, w, K) map covering the input box rows x cols ((start, length) pairs), in the
  (height, width) frame, and the (height, width, 1) coverage."""
  m_y, c_y = back_matrix(frame[0], *rows, prediction.shape[-3])
  m_x, c_x = back_matrix(frame[1], *cols, prediction.shape[-2])
  covered = np.outer(c_y, c_x)[..., None].astype(float)
  return np.einsum("ri,cj,...ijk->...rck", m_y, m_x, np.asarray(prediction, np.float64)), covered


def grid(length, window, stride):
  """mmsegmentation's slide_inference loop, on one axis."""
  starts = []
  for i in range(max(length - window + stride - 1, 0) // stride + 1):
    end = min(i * stride + window, length)
    starts.append(max(end - window, 0))
  return starts


def reference(model, images, factors, flip, size=None, stride=None):
  """`dense_predict`'s (mean, variance), in float64 but for the model's own arithmetic."""
  images = np.asarray(images, np.float64)
  height, width = images.shape[1:3]
  views = []
  for s in factors:
    scaled = (math.floor(height * s + 0.5), math.floor(width * s + 0.5))
    resized = np.einsum("ah,bw,nhwc->nabc", resize_matrix(height, scaled[0]),
                        resize_matrix(width, scaled[1]), images)
    h, w = scaled if size is None else size
    s_h, s_w = (h, w) if stride is None else stride
    for mirrored in (False, True)[:1 + flip]:
      total, count = 0.0, 0.0
      for t in grid(scaled[0], h, s_h):
        for left in grid(scaled[1], w, s_w):
          window = resized[:, t:t + h, left:left + w]
          window = window[:, :, ::-1] if mirrored else window
          maps = np.asarray(model(jnp.asarray(window, jnp.float32)), np.float64)
          maps = maps[:, :, ::-1] if mirrored else maps
          fy, fx = height / scaled[0], width / scaled[1]
          mapped, covered = back(maps, (t * fy, h * fy), (left * fx, w * fx), (height, width))
          total = total + mapped * covered
          count = count + covered
      views.append((total / np.maximum(count, 1), (count > 0).astype(float)))
  weights = sum(w for _, w in views)
  mean = sum(w * m for m, w in views) / weights
  var = sum(w * (m - mean) ** 2 for m, w in views) / weights
  return mean, var


# --------------------------------------------------------------------------------------------
# dense_predict
# --------------------------------------------------------------------------------------------


def test_matches_the_float64_reference():
  # A shrink and an enlargement, flips, overlapping windows, a stride-2 output: every piece.
  kwargs = {"scale_factors": (0.75, 1.5), "flip": True, "size": (6, 8), "stride": (3, 5)}
  mean, var = A.dense_predict(stride2_model, IMAGES, return_variance=True, **kwargs)
  want_mean, want_var = reference(stride2_model, IMAGES, (0.75, 1.5), True, (6, 8), (3, 5))
  assert mean.shape == var.shape == (2, 10, 14, 2)
  np.testing.assert_allclose(mean, want_mean, atol=2e-6)
  np.testing.assert_allclose(var, want_var, atol=2e-6)
  assert float(var.max()) > 1e-3  # the views differ: the variance is not trivially zero


def test_identity_model_returns_the_images_exactly_at_scale_one():
  # A flip at scale 1 copies pixels both ways: both views are the image itself, bit for bit.
  mean, var = A.dense_predict(lambda b: b, IMAGES, return_variance=True)
  np.testing.assert_array_equal(mean, IMAGES)
  np.testing.assert_array_equal(var, 0.0)


def test_identity_model_after_a_rescale_is_a_local_average():
  # Halving and doubling back is a convex combination of input pixels within 4 of each: the
  # antialiased shrink reads 2 input pixels each side, the way back 1 halved pixel (2 input
  # pixels). Both kernels are symmetric about their sample point and normalized, so a linear
  # ramp comes back exactly away from the edges (up to float32 rounding: a half-pixel shift
  # would not), and any image stays within its local range.
  radius = 4
  rows, cols = np.meshgrid(np.arange(12.0), np.arange(16.0), indexing="ij")
  ramp = np.repeat((0.03 * rows + 0.02 * cols)[None, ..., None], 3, -1)
  images = np.concatenate([ramp, RNG.uniform(size=(1, 12, 16, 3))]).astype(np.float32)
  out = np.asarray(A.dense_predict(lambda b: b, jnp.asarray(images), scale_factors=(0.5,)))
  inner = (slice(radius, -radius), slice(radius, -radius))
  np.testing.assert_allclose(out[0][inner], images[0][inner], atol=1e-5)
  pad = ((radius, radius), (radius, radius), (0, 0))
  side = 2 * radius + 1

  def local(fn, fill):
    padded = np.pad(images[1], pad, constant_values=fill)
    return fn(np.lib.stride_tricks.sliding_window_view(padded, (side, side), (0, 1)), (-2, -1))

  assert np.all(out[1] >= local(np.min, np.inf) - 1e-6)
  assert np.all(out[1] <= local(np.max, -np.inf) + 1e-6)
  assert np.abs(out[1] - images[1]).max() > 1e-3  # a rescale is not the identity


def test_flip_equivariant_model_gains_nothing_from_flips_or_windows():
  # A per-pixel model: every view, and every window of it, maps back to the plain output
  # (overlapping windows are summed and divided by their count, 3x / 3: within a rounding).
  mean, var = jax.jit(lambda x: A.dense_predict(pixel_model, x, size=(5, 6), stride=(3, 4),
                                                return_variance=True))(IMAGES)
  np.testing.assert_allclose(mean, pixel_model(IMAGES), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(var, 0.0, atol=1e-12)


@jax.jit
def window_mean(batch):
  return jnp.broadcast_to(batch.mean((1, 2), keepdims=True), batch.shape)


def test_overlapping_windows_and_gaps_by_hand():
  # Columns 0..5 hold their index. Windows of 2 columns every 3 (mmsegmentation's grid) start
  # at 0, 3 and 4 (the last one moved back to end at the edge): their means are 0.5, 3.5 and
  # 4.5; column 4 is in two windows, column 2 in none. A mirrored window has the same mean.
  columns = jnp.broadcast_to(jnp.arange(6.0)[None, None, :, None], (1, 2, 6, 1))
  mean, var = A.dense_predict(window_mean, columns, size=2, stride=(1, 3),
                              return_variance=True)
  np.testing.assert_allclose(mean[0, :, :, 0], [[0.5, 0.5, np.nan, 3.5, 4.0, 4.5]] * 2,
                             rtol=1e-6)
  # Windows are not views: the two views (flips) agree, whatever the spread between windows.
  assert np.isnan(var[0, :, 2]).all()
  np.testing.assert_allclose(var[0, :, [0, 1, 3, 4, 5]], 0.0, atol=1e-12)


def test_grad_through_the_views():
  # The mean over the two views of the identity is the image: its gradient is all ones.
  image = jnp.ones((1, 2, 3, 1))
  grad = jax.jit(jax.grad(lambda x: A.dense_predict(lambda b: b, x).sum()))(image)
  np.testing.assert_allclose(grad, 1.0, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# invert_prediction
# --------------------------------------------------------------------------------------------


def reference_inverse(params, prediction):
  """float64: the view's box in input coordinates, and the map un-flipped by reversal."""
  if not isinstance(params, tuple):
    params = (params,)
  prediction = np.asarray(prediction, np.float64)
  for step in reversed(params[1:]):  # only flips follow a first set here
    if bool(step.flip):
      prediction = prediction[:, ::-1]
  first = params[0]
  frame = first.image_size
  if isinstance(first, A.CropParams):
    pad_h, pad_w = first.padding
    box = ((int(first.top) - pad_h, first.size[0]), (int(first.left) - pad_w, first.size[1]))
  elif isinstance(first, A.ResizedCropParams):
    box = ((float(first.top), float(first.height)), (float(first.left), float(first.width)))
  else:
    box = ((0.0, frame[0]), (0.0, frame[1]))
    prediction = prediction[:, ::-1] if bool(first.flip) else prediction
  return back(prediction, *box, frame)


FRAME = (9, 11)
CROP = A.CropParams(top=jnp.array(6), left=jnp.array(1), size=(6, 8), padding=(2, 2),
                    image_size=FRAME)  # over the bottom and left edges, into the padding
BOX = A.ResizedCropParams(top=jnp.float32(1.3), left=jnp.float32(2.6), height=jnp.float32(5.4),
                          width=jnp.float32(6.1), size=(5, 7), image_size=FRAME)
FLIP = A.FlipParams(flip=jnp.array(True), probability=jnp.float32(0.5), image_size=FRAME)


@pytest.mark.parametrize(("params", "shape"), [
    (CROP, (6, 8)), (BOX, (8, 10)), (FLIP, FRAME),
], ids=["crop", "resized crop, a finer map", "flip"])
def test_invert_prediction_matches_the_reference(params, shape):
  prediction = jnp.asarray(RNG.normal(size=(*shape, 2)), jnp.float32)
  mapped, weight = A.invert_prediction(params, prediction)
  want, covered = reference_inverse(params, prediction)
  np.testing.assert_allclose(mapped, want, atol=1e-5)
  np.testing.assert_array_equal(weight, covered)
  assert 0 < float(weight.sum()) <= FRAME[0] * FRAME[1]


def test_a_view_then_its_inverse_is_the_identity_where_it_covers():
  # The window copies pixels; its inverse puts them back (the flip's: dense_predict's tests).
  image = IMAGES[0, :9, :11, :2]
  mapped, weight = A.invert_prediction(CROP, A.apply(CROP, image))
  np.testing.assert_array_equal(mapped, np.where(weight > 0, image, 0))
  assert int(weight.sum()) == 5 * 7  # rows 4..8 and columns 0..6: the rest is padding


def test_invert_prediction_of_an_affine_warp_by_hand():
  # A quarter turn of a square image moves pixel centres onto pixel centres: its inverse is
  # the map turned back, covering every pixel. A shift right by two whole pixels: the map
  # shifted back, and the two input columns the view pushed out are not covered.
  image = jnp.zeros((6, 6, 1))
  prediction = jnp.asarray(RNG.normal(size=(6, 6, 2)), jnp.float32)
  mapped, weight = A.invert_prediction(A.draw(A.rotate)(image, 90.0), prediction)
  np.testing.assert_allclose(mapped, np.rot90(np.asarray(prediction), -1), atol=1e-5)
  np.testing.assert_array_equal(weight, 1)
  mapped, weight = jax.jit(A.invert_prediction)(A.draw(A.translate_x)(image, 2.0), prediction)
  np.testing.assert_allclose(mapped[:, :4], prediction[:, 2:], atol=1e-5)
  np.testing.assert_array_equal(mapped[:, 4:], 0)
  np.testing.assert_array_equal(weight[..., 0], np.repeat([[1, 1, 1, 1, 0, 0]], 6, 0))


def test_invert_prediction_under_vmap_with_a_chain():
  # A batch of resized crops, each followed by a flip of its output (or not), with a batch of
  # maps at half the views' resolution.
  boxes = A.ResizedCropParams(
      top=jnp.array([0.0, 1.3, 4.0]), left=jnp.array([0.0, 2.6, 0.5]),
      height=jnp.array([9.0, 5.4, 3.0]), width=jnp.array([11.0, 6.1, 9.8]), size=(6, 8),
      image_size=FRAME)
  flips = A.FlipParams(flip=jnp.array([True, False, True]), probability=jnp.full(3, 0.5),
                       image_size=(6, 8))
  maps = jnp.asarray(RNG.normal(size=(3, 3, 4, 2)), jnp.float32)
  mapped, weight = jax.vmap(A.invert_prediction)((boxes, flips), maps)
  assert mapped.shape == (3, *FRAME, 2)
  assert weight.shape == (3, *FRAME, 1)
  for i in range(3):
    one = jax.tree.map(lambda leaf, i=i: leaf[i], (boxes, flips))
    want, covered = reference_inverse(one, maps[i])
    np.testing.assert_allclose(mapped[i], want, atol=1e-5)
    np.testing.assert_array_equal(weight[i], covered)
