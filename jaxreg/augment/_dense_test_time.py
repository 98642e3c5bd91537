"""Dense test-time marginalization: prediction maps over flips, scales and windows, averaged.

A model's prediction map on each view of an image goes back to the input's pixels before it is
averaged. A view is a chain of parameter sets (a resized crop, a flip); its map is taken to
cover the view's canvas, and `invert_prediction` samples it at the input's pixel centres
through the chain's point maps (those of `apply_to_boxes`), with a weight saying which input
pixels the view covers. `dense_predict` builds the views of flip and multi-scale test-time
augmentation and of sliding-window inference, runs the model, and takes the weighted mean (and
variance) over views. Design: docs/design/dense_test_time.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks
from jaxreg.augment._chains import as_chain, check_link
from jaxreg.augment._image_checks import check_has_pixels, check_image, check_size
from jaxreg.augment._params import FlipParams, PolicyParams, ResizedCropParams
from jaxreg.augment._resample import resample_box
from jaxreg.augment._target_base import POINT_MAPS, needed_image_size

# Canvas pixels: a point this close outside a canvas edge still counts as on the canvas, so that
# windows which touch exactly on a pixel centre both cover it, whatever the float32 rounding.
_EDGE = 2.0**-10


# --------------------------------------------------------------------------------------------
# invert_prediction: one view's map, back in the input's pixels
# --------------------------------------------------------------------------------------------


def _as_chain(params, op: str) -> tuple:
  """``params``, one geometric parameter set or a chain of them, as a checked tuple."""
  # A policy's set moves points slot by slot (several maps, each clamped to its canvas), not
  # through one map that a prediction could be read back through.
  invertible = [cls for cls in POINT_MAPS if cls is not PolicyParams]
  if isinstance(params, (tuple, list)):
    return as_chain(params, op, invertible, "geometric parameter sets of jaxreg.augment")
  if type(params) not in invertible:
    names = ", ".join(sorted(cls.__name__ for cls in invertible))
    raise TypeError(f"{op}: `params` must be a geometric parameter set of jaxreg.augment "
                    f"({names}) or a tuple of them, got {type(params).__name__}.")
  return (params,)


def _frame(chain, op: str) -> tuple[int, int]:
  """The input's (height, width): the first set's ``image_size``; later sets must chain."""
  frame = canvas = needed_image_size(chain[0], op,
                                     "is the input frame to map the prediction back to", lo=1)
  for i, step in enumerate(chain):
    check_link(step, i, canvas, op)
    canvas = POINT_MAPS[type(step)](step, op).canvas
  return frame


def _check_prediction(prediction, op: str) -> jax.Array:
  prediction = _checks.check_float_array(prediction, op, "prediction")
  if prediction.ndim != 3 or 0 in prediction.shape[:2]:
    raise ValueError(f"{op}: `prediction` must have shape (h, w, K) with h, w >= 1 (one map of "
                     f"K channels; for a batch use jax.vmap), got shape {prediction.shape}.")
  return prediction


def _bilinear(prediction, py, px):
  """``prediction`` at fractional (row, column) positions, edges clamped: (..., K)."""
  h, w = prediction.shape[:2]
  y0, x0 = jnp.floor(py), jnp.floor(px)
  fy, fx = (py - y0)[..., None], (px - x0)[..., None]

  def index(v, n):  # NaN positions read pixel 0; the caller makes them NaN
    return jnp.clip(jnp.nan_to_num(v), 0, n - 1).astype(jnp.int32)

  iy0, iy1, ix0, ix1 = index(y0, h), index(y0 + 1, h), index(x0, w), index(x0 + 1, w)
  top = prediction[iy0, ix0] * (1 - fx) + prediction[iy0, ix1] * fx
  bottom = prediction[iy1, ix0] * (1 - fx) + prediction[iy1, ix1] * fx
  return top * (1 - fy) + bottom * fy


def _sample_back(chain, prediction, origin, shape: tuple[int, int], op: str):
  """The map and weight of `invert_prediction` on the ``shape`` input pixels from ``origin``
  (a (row, column) pair, traced or not) only, on checked arguments: ``(map (*shape, K),
  weight (*shape, 1))``."""
  dtype = _checks.float32_or_wider(prediction.dtype)
  rows = jnp.arange(shape[0], dtype=dtype) + (jnp.asarray(origin[0]).astype(dtype) + 0.5)
  cols = jnp.arange(shape[1], dtype=dtype) + (jnp.asarray(origin[1]).astype(dtype) + 0.5)
  ys, xs = jnp.broadcast_to(rows[:, None], shape), jnp.broadcast_to(cols[None, :], shape)
  inside = jnp.ones(shape, bool)
  for step in chain:
    point_map = POINT_MAPS[type(step)](step, op)
    xs, ys = point_map.forward(xs, ys)
    canvas_h, canvas_w = point_map.canvas
    inside = inside & ((xs >= -_EDGE) & (xs <= canvas_w + _EDGE) & (ys >= -_EDGE)
                       & (ys <= canvas_h + _EDGE))
  # The map covers the last canvas: its pixel (i, j) is centred on ((j + 0.5) * canvas_w / w,
  # (i + 0.5) * canvas_h / h), as `jax.image.resize` and F.interpolate (align_corners=False).
  h, w = prediction.shape[:2]
  values = _bilinear(prediction.astype(dtype), ys * (h / canvas_h) - 0.5,
                     xs * (w / canvas_w) - 0.5)
  # NaN positions: a flip drawn with a traced probability outside [0, 1].
  bad = (jnp.isnan(xs) | jnp.isnan(ys))[..., None]
  weight = jnp.where(bad, jnp.nan, inside[..., None].astype(dtype))
  values = jnp.where(bad, jnp.nan, jnp.where(inside[..., None], values, 0))
  return values.astype(prediction.dtype), weight.astype(prediction.dtype)


@functools.partial(jax.jit, static_argnames=("frame", "op"))
def _invert_kernel(chain, prediction, frame, op: str):
  return _sample_back(chain, prediction, (0, 0), frame, op)


def invert_prediction(params: Any, prediction: jax.typing.ArrayLike
                      ) -> tuple[jax.Array, jax.Array]:
  """Maps a view's prediction map back to the input's pixels, with the pixels it covers.

  ``params`` describe the view (``apply(params, image)``, or a chain of sets applied in turn);
  ``prediction`` is a model's dense output on it (segmentation logits or probabilities, any
  per-pixel map). The map is taken to cover the view's whole canvas, whatever its resolution:
  an ``(h, w)`` map of a view of ``size`` has its pixel ``(i, j)`` centred on the view's point
  ``((j + 0.5) * size_w / w, (i + 0.5) * size_h / h)`` (``jax.image.resize``'s and
  ``F.interpolate(align_corners=False)``'s convention, so a stride-4 output of ``size / 4``
  lines up). Each input pixel centre is moved into the view by the parameter sets' point maps
  (those of `apply_to_keypoints`), and the map is sampled there bilinearly, edges clamped, as
  mmsegmentation resizes logits back (and ttach's ``Scale(interpolation="bilinear")``):
  un-flipped, un-cropped, resized to the input's pixels. The weight is 1 where the centre
  lands on the view's canvas (its closed rectangle, with 1/1024 of a canvas pixel to spare) and
  0 elsewhere, where the map is 0: the weighted mean over views is
  ``sum(weight * map) / sum(weight)``, what `dense_predict` computes.

  A crop's canvas is its window (padding pixels cover no input pixel); a resized crop's is its
  box stretched to ``size``; a flip's and an affine warp's the whole image (input pixels that
  the warp moves off the image are not covered). Where the map is finer than the input's
  pixels (a view that enlarges the input more than the model's output stride reduces it), the
  map is sampled at each pixel centre, not averaged over the pixel. Under `jax.vmap`, a batch
  of parameter sets (from ``batched(draw(op))``) with a batch of maps:
  ``jax.vmap(invert_prediction)(params, maps)``.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `AffineParams`), or a tuple or list of them in the order they were applied to the image
      (e.g. a resized crop, then a flip of its output). The first set's ``image_size`` (which
      `draw` records) is the input's size; each later set's, when given, must be its
      predecessor's output size.
    prediction: ``(h, w, K)`` floating-point map over the view (h, w >= 1, any resolution).

  Returns:
    ``(map, weight)``: the ``(H, W, K)`` map in the input's pixels and the ``(H, W, 1)``
    weight, both in ``prediction``'s dtype. A flip drawn with a traced probability outside
    [0, 1] (or NaN) makes both all NaN.

  Raises:
    TypeError: ``params`` not a geometric parameter set (or a sequence of them); a
      ``prediction`` that is not floating point.
    ValueError: an empty sequence; a first set without ``image_size``, or sets whose sizes do
      not chain; a ``prediction`` not of rank 3 or with no pixels.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> image = jnp.zeros((6, 8, 3))
    >>> crop = A.CropParams(top=jnp.array(1), left=jnp.array(2), size=(4, 4), image_size=(6, 8))
    >>> logits = jnp.ones((2, 2, 5))  # a stride-2 output over the 4x4 window
    >>> mapped, weight = A.invert_prediction(crop, logits)
    >>> mapped.shape, weight.shape
    ((6, 8, 5), (6, 8, 1))
    >>> weight[..., 0].astype(int)
    Array([[0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 1, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0]], dtype=int32)
  """
  op = "invert_prediction"
  chain = _as_chain(params, op)
  frame = _frame(chain, op)
  prediction = _check_prediction(prediction, op)
  return _invert_kernel(chain, prediction, frame, op)


# --------------------------------------------------------------------------------------------
# dense_predict: the views of flip, multi-scale and sliding-window inference
# --------------------------------------------------------------------------------------------


def _check_factors(value, op: str) -> tuple[float, ...]:
  name, expected = "scale_factors", "a non-empty iterable of positive numbers"
  if isinstance(value, (np.ndarray, jax.Array)) and _checks.is_traced(value):
    raise TypeError(f"{op}: `{name}` must be {expected} known at trace time, got a traced "
                    f"array of shape {value.shape}.")
  if isinstance(value, (str, bytes)) or (isinstance(value, (np.ndarray, jax.Array))
                                         and value.ndim != 1):
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.")
  try:
    items = tuple(value.tolist() if isinstance(value, (np.ndarray, jax.Array)) else value)
  except TypeError as err:
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.") from err
  shown = value if isinstance(value, (Sequence, np.ndarray, jax.Array)) else items
  if not items:
    raise ValueError(f"{op}: `{name}` must hold at least one factor, got {shown!r}.")
  factors = []
  for s in items:
    factor = _checks.concrete_scalar(s, op, name)
    if factor is None:
      raise TypeError(f"{op}: `{name}` must hold numbers known at trace time, got a traced "
                      f"value in {shown!r}.")
    if not (math.isfinite(factor) and factor > 0):
      raise ValueError(f"{op}: `{name}` must hold finite factors > 0, got {s!r} in "
                       f"{shown!r}.")
    factors.append(factor)
  return tuple(factors)


def _scaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
  """The whole-pixel size of an image resized by ``factor``, halves rounded up (mmcv's
  ``imrescale``)."""
  return math.floor(height * factor + 0.5), math.floor(width * factor + 0.5)


def _window_starts(length: int, window: int, stride: int) -> tuple[int, ...]:
  """mmsegmentation's sliding-window grid on one axis: a window every ``stride`` pixels, the
  last one moved back to end at the image's edge."""
  count = max(length - window + stride - 1, 0) // stride + 1
  return tuple(max(min(i * stride + window, length) - window, 0) for i in range(count))


def _plan(height, width, factor, size, stride, op):
  """One scale's geometry: (scaled size, window size, row starts, column starts)."""
  scaled = _scaled_size(height, width, factor)
  if min(scaled) < 1:
    raise ValueError(f"{op}: `scale_factors` holds {factor}, which resizes the "
                     f"{height}x{width} images to {scaled[0]}x{scaled[1]}: no pixels left.")
  window = scaled if size is None else size
  if window[0] > scaled[0] or window[1] > scaled[1]:
    raise ValueError(f"{op}: window `size` {window} is larger than the {height}x{width} images "
                     f"resized by {factor} ({scaled[0]}x{scaled[1]}): use a smaller size or "
                     f"larger `scale_factors`.")
  strides = window if stride is None else stride
  return (scaled, window, _window_starts(scaled[0], window[0], strides[0]),
          _window_starts(scaled[1], window[1], strides[1]))


def _windows(plan, frame):
  """Each window's box in the input, as a batched parameter set, and the input pixels it may
  cover: one static extent per axis, each window's origin moved to keep it inside the frame."""
  (scaled_h, scaled_w), (h, w), tops, lefts = plan
  fy, fx = frame[0] / scaled_h, frame[1] / scaled_w
  starts = [(t, left) for t in tops for left in lefts]

  def spans(start, length, pixels):  # centres in [start, start + length], one to spare
    return [(max(0, math.ceil(a - 0.5) - 1), min(pixels, math.floor(a + length - 0.5) + 2))
            for a in start]

  origins, extent = [], []
  for axis, (scale, length) in enumerate(((fy, h * fy), (fx, w * fx))):
    ranges = spans([start[axis] * scale for start in starts], length, frame[axis])
    extent.append(max(b - a for a, b in ranges))
    origins.append(jnp.array([min(a, frame[axis] - extent[-1]) for a, _ in ranges]))
  box = ResizedCropParams(
      top=jnp.array([t * fy for t, _ in starts], jnp.float32),
      left=jnp.array([left * fx for _, left in starts], jnp.float32),
      height=jnp.full(len(starts), h * fy, jnp.float32),
      width=jnp.full(len(starts), w * fx, jnp.float32),
      size=(h, w), crop_first=False, image_size=frame)
  return box, tuple(origins), tuple(extent)


@functools.partial(jax.jit, static_argnames=("plan", "flip"))
def _views(images, plan, flip: bool):
  """The windows of the resized images (then their mirrors): ``(N * views, h, w, C)``."""
  (scaled_h, scaled_w), (h, w), tops, lefts = plan
  n, height, width, channels = images.shape
  if (scaled_h, scaled_w) != (height, width):  # one antialiased resampling of the whole image
    images = jax.vmap(lambda im: resample_box(im, 0.0, 0.0, height, width, (scaled_h, scaled_w),
                                              True, crop_first=False))(images)
  starts = jnp.array([(t, left) for t in tops for left in lefts])
  windows = jax.vmap(lambda s: jax.lax.dynamic_slice(images, (0, s[0], s[1], 0),
                                                     (n, h, w, channels)))(starts)
  windows = jnp.swapaxes(windows, 0, 1)  # (N, windows, h, w, C)
  if flip:
    windows = jnp.concatenate([windows, jnp.flip(windows, 3)], 1)
  return windows.reshape((-1, *windows.shape[2:]))


@functools.partial(jax.jit, static_argnames=("n", "frame", "plan", "flip", "op"))
def _merge_scale(maps, state, n: int, frame: tuple[int, int], plan, flip: bool, op: str):
  """Averages each flip's windows in the input's pixels where they overlap (mmsegmentation's
  count), then adds each flip's map to the running weighted mean and variance over views
  (West's weighted update, which keeps views that agree exact)."""
  if state is None:  # the first scale: no view yet
    dtype = _checks.float32_or_wider(maps.dtype)
    state = (jnp.zeros((*frame, 1), dtype), *[jnp.zeros((n, *frame, maps.shape[3]), dtype)] * 2)
  if n == 0:  # an empty batch: nothing to average
    return state
  count, mean, m2 = state
  box, (row0, col0), extent = _windows(plan, frame)
  views, per_view = (2 if flip else 1), row0.shape[0]
  windows = views * per_view  # each flip's windows, in turn
  box, row0, col0 = jax.tree.map(lambda leaf: jnp.tile(leaf, views), (box, row0, col0))
  mirror = FlipParams(flip=jnp.repeat(jnp.arange(views) == 1, per_view),
                      probability=jnp.ones(windows), axis=1, image_size=plan[1])
  maps = maps.reshape((n, windows, *maps.shape[1:])).astype(mean.dtype)

  def back(chain, maps, r, c):  # one window, every image
    return jax.vmap(lambda m: _sample_back(chain, m, (r, c), extent, op))(maps)

  values, weight = jax.vmap(back, (0, 1, 0, 0))((box, mirror), maps, row0, col0)
  # Every window's pixels added into its flip's frame at once (overlaps add up), and counted.
  view = jnp.repeat(jnp.arange(views), per_view)[:, None, None]
  rows = row0[:, None, None] + jnp.arange(extent[0])[None, :, None]  # (windows, eh, 1)
  cols = col0[:, None, None] + jnp.arange(extent[1])[None, None, :]  # (windows, 1, ew)
  total = jnp.zeros((n, views, *mean.shape[1:]), mean.dtype).at[:, view, rows, cols].add(
      jnp.swapaxes(values * weight, 0, 1))
  covered = jnp.zeros((views, *count.shape), count.dtype).at[view, rows, cols].add(weight[:, 0])
  for f in range(views):
    weight = (covered[f] > 0).astype(mean.dtype)
    stitched = jnp.where(covered[f] > 0, total[:, f] / jnp.maximum(covered[f], 1), 0)
    count = count + weight
    delta = stitched - mean
    mean = mean + delta * (weight / jnp.maximum(count, 1))
    m2 = m2 + weight * delta * (stitched - mean)
  return count, mean, m2


def _check_maps(maps, op: str, *, rows: int, channels: int | None) -> None:
  if not isinstance(maps, (jax.Array, np.ndarray)):
    raise TypeError(f"{op}: `apply_fn` must return one (N, h, w, K) array of prediction maps, "
                    f"got {type(maps).__name__}.")
  _checks.check_floating_outputs(maps, op)
  if maps.ndim != 4 or maps.shape[0] != rows or 0 in maps.shape[1:3]:
    raise ValueError(f"{op}: `apply_fn` must return (N, h, w, K) prediction maps, batch first "
                     f"with one map per view ({rows} for this call) and h, w >= 1, got shape "
                     f"{maps.shape}.")
  if channels is not None and maps.shape[3] != channels:
    raise ValueError(f"{op}: `apply_fn` returned maps of {maps.shape[3]} channels at one scale "
                     f"and {channels} at another, got shape {maps.shape}.")


def dense_predict(apply_fn: Callable[[jax.Array], jax.Array], images: jax.typing.ArrayLike, *,
                  scale_factors: Sequence[float] = (1.0,), flip: bool = True,
                  size: int | Sequence[int] | None = None,
                  stride: int | Sequence[int] | None = None,
                  return_variance: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
  """Test-time augmentation for dense outputs: a model's maps averaged over flips and scales.

  The dense counterpart of `multi_crop_predict`, and of mmsegmentation's multi-scale + flip
  test (``aug_test``, with ``mode="slide"``) and ttach's ``SegmentationTTAWrapper``. Views:
  every factor of ``scale_factors`` (the images resized to ``round(H * s) x round(W * s)``,
  halves up, with antialiased bilinear resampling, as `random_scale_crop` resizes) times the
  images and their left-right mirrors (with ``flip``). With ``size``, each resized image is
  cut into windows of ``size`` every ``stride`` pixels, mmsegmentation's grid (the last window
  moved back to end at the edge). The model runs once per scale on all windows of all views
  of all images. Each window's map is mapped back to the input's pixels by `invert_prediction`
  (un-flipped, resized, pasted at the window's place); the windows of one view are averaged
  where they overlap (mmsegmentation's count), and the views are averaged with weight 1 where
  they cover a pixel. Windows are a way to run a model on a large image, not views: a pixel
  covered by two windows of one scale weighs as much as a pixel covered by one.

  Args:
    apply_fn: ``apply_fn(batch) -> maps`` on NHWC float batches, returning one
      ``(batch, h, w, K)`` floating-point array: per-pixel logits or probabilities, at any
      resolution (a stride-4 output of ``(h / 4, w / 4)`` is taken to cover the window). The
      mean is of what it returns: return probabilities (``jax.nn.softmax(logits)``) for the
      usual marginal, logits for a mean of logits.
    images: NHWC float batch.
    scale_factors: non-empty iterable of positive factors to resize the images by (e.g.
      mmsegmentation's ``(0.5, 0.75, 1.0, 1.25, 1.5, 1.75)``); 1.0 is the images as they are.
      Not shorter-side lengths, as `multi_crop_predict`'s ``scales``.
    flip: also run the left-right mirror of every view; a bool.
    size: window height and width (int or pair), at most every resized image's size; None:
      the whole resized image is one window.
    stride: pixels between windows (int or pair, >= 1); None: ``size`` (tiles that touch).
      Only with ``size``. A stride larger than ``size`` leaves gaps between windows.
    return_variance: also return the variance over views.

  Returns:
    The ``(N, H, W, K)`` mean at the images' resolution, float32 or wider; with
    ``return_variance``, ``(mean, variance)``: the weighted population variance over the views
    covering each pixel (each view's windows averaged first), 0 where they agree. A pixel no
    view covers (windows with gaps, at every scale) is NaN in both.

  Raises:
    ValueError: non-NHWC images or images with no pixels; empty ``scale_factors``, a factor
      that is not finite and positive or leaves no pixels; a window ``size`` larger than the
      images at some scale; ``size`` or ``stride`` < 1 or not a pair; a ``stride`` without
      ``size``; ``apply_fn`` outputs that are not ``(N, h, w, K)`` with one map per view, or
      whose channels differ between scales.
    TypeError: non-callable ``apply_fn`` or one returning a pytree or non-floating maps;
      ``scale_factors`` not an iterable of numbers; non-int ``size`` or ``stride``; non-bool
      ``flip`` or ``return_variance``; non-float images.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> kernel = jnp.linspace(-1.0, 1.0, 3 * 4).reshape(1, 1, 3, 4)
    >>> def model(batch):  # (N, h, w, 3) -> (N, h / 2, w / 2, 4) class probabilities
    ...   pooled = jax.lax.reduce_window(batch, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1),
    ...                                  "VALID") / 4
    ...   return jax.nn.softmax(jnp.einsum("nhwc,ijck->nhwk", pooled, kernel))
    >>> images = jnp.ones((2, 12, 16, 3))
    >>> probs = jr.augment.dense_predict(model, images, scale_factors=(0.75, 1.0), size=8,
    ...                                  stride=4)
    >>> probs.shape
    (2, 12, 16, 4)
  """
  op = "dense_predict"
  if not callable(apply_fn):
    raise TypeError(f"{op}: `apply_fn` must be callable, got {apply_fn!r}.")
  images = check_image(images, op, batch=True)
  check_has_pixels(images, op, "images")
  factors = _check_factors(scale_factors, op)
  flip = _checks.check_bool(flip, op, "flip")
  return_variance = _checks.check_bool(return_variance, op, "return_variance")
  window = None if size is None else check_size(size, op, "size")
  if stride is not None and window is None:
    raise ValueError(f"{op}: `stride` {stride!r} needs a window `size` (sliding windows); "
                     "without one each view is the whole resized image.")
  strides = None if stride is None else check_size(stride, op, "stride")
  n, height, width = images.shape[:3]
  plans = [_plan(height, width, s, window, strides, op) for s in factors]
  state, channels = None, None
  for plan in plans:
    batch = _views(images, plan, flip)
    maps = apply_fn(batch)
    _check_maps(maps, op, rows=batch.shape[0], channels=channels)
    channels = maps.shape[3]
    state = _merge_scale(maps, state, n, (height, width), plan, flip, op)
  return _finish(state, return_variance)


@functools.partial(jax.jit, static_argnames=("return_variance",))
def _finish(state, return_variance: bool):
  """The mean (and variance) over views; NaN where no view covers a pixel."""
  count, mean, m2 = state
  mean = jnp.where(count > 0, mean, jnp.nan)
  if not return_variance:
    return mean
  return mean, jnp.where(count > 0, m2 / jnp.maximum(count, 1), jnp.nan)
