"""Test-time views (centre, five and ten crops) and multi-crop prediction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args

import jax
import jax.numpy as jnp

from jaxreg import _checks
from jaxreg.augment._image_checks import check_has_pixels, check_image, check_scales, check_size
from jaxreg.augment._resample import resize_shorter, shorter_side_resized

Views = Literal["ten", "five", "center"]
VIEWS = get_args(Views)


def _static_crop(image, top: int, left: int, h: int, w: int):
  return image[top:top + h, left:left + w]


def _check_fits(image, op: str, *, size: tuple[int, int]) -> None:
  h, w = size
  if h > image.shape[0] or w > image.shape[1]:
    raise ValueError(f"{op}: crop `size` {(h, w)} is larger than the image {image.shape[:2]}.")


def _center_offsets(height: int, width: int, h: int, w: int) -> tuple[int, int]:
  # Rounded down for odd margins; torchvision rounds half to even (round(1.5) = 2), so for a
  # margin of 3, 7, 11, ... its crop sits one pixel further down or right.
  return (height - h) // 2, (width - w) // 2


def center_crop(image: jax.typing.ArrayLike, size: int | Sequence[int]) -> jax.Array:
  """The central ``size`` window.

  The offsets are ``(H - h) // 2`` and ``(W - w) // 2``: exact for even margins, rounded down
  for odd ones (torchvision's ``center_crop`` rounds half to even, so for margins of 3, 7,
  11, ... its window sits one pixel further down or right; for 1, 5, 9, ... they agree).

  Args:
    image: HWC float image (for an NHWC batch, ``jax.vmap`` it: the op takes no key).
    size: crop height and width (int or pair).

  Returns:
    The ``(size_h, size_w, C)`` crop.

  Raises:
    ValueError: a crop larger than the image; a non-HWC image.
    TypeError: non-float image.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.center_crop(jnp.ones((256, 320, 3)), 224).shape
    (224, 224, 3)
  """
  op = "center_crop"
  image = check_image(image, op, keyed=False)
  h, w = check_size(size, op, "size")
  _check_fits(image, op, size=(h, w))
  return _static_crop(image, *_center_offsets(*image.shape[:2], h, w), h, w)


def five_crop(image: jax.typing.ArrayLike, size: int | Sequence[int]) -> jax.Array:
  """The four corner crops and the center crop, stacked.

  Order: top-left, top-right, bottom-left, bottom-right, center (torchvision's order). The
  center crop is `center_crop`'s, with its rounding: offsets rounded down for odd margins
  (torchvision rounds half to even, one pixel further for margins of 3, 7, 11, ...).

  Args:
    image: HWC float image (for an NHWC batch, ``jax.vmap`` it: the op takes no key).
    size: crop height and width (int or pair).

  Returns:
    ``(5, size_h, size_w, C)``.

  Raises:
    ValueError: a crop larger than the image; a non-HWC image.
    TypeError: non-float image.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.five_crop(jnp.ones((256, 256, 3)), 224).shape
    (5, 224, 224, 3)
  """
  return _five_crop(image, size, "five_crop")


def _five_crop(image, size, op):
  image = check_image(image, op, keyed=False)
  h, w = check_size(size, op, "size")
  _check_fits(image, op, size=(h, w))
  height, width = image.shape[:2]
  corners = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
             _center_offsets(height, width, h, w)]
  return jnp.stack([_static_crop(image, t, left, h, w) for t, left in corners])


def ten_crop(image: jax.typing.ArrayLike, size: int | Sequence[int]) -> jax.Array:
  """ResNet's 10 test views: `five_crop` of the image, then of its horizontal mirror.

  Order: the five crops of the image (top-left, top-right, bottom-left, bottom-right, center),
  then the five crops of ``image[:, ::-1]`` in the same order (so view 5 is the mirror of the
  image's top-right corner, torchvision's convention). The center crops round odd margins
  down, as `center_crop` does (torchvision rounds half to even).

  Args:
    image: HWC float image (for an NHWC batch, ``jax.vmap`` it: the op takes no key).
    size: crop height and width (int or pair).

  Returns:
    ``(10, size_h, size_w, C)``.

  Raises:
    ValueError: a crop larger than the image; a non-HWC image.
    TypeError: non-float image.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.ten_crop(jnp.ones((256, 256, 3)), 224).shape
    (10, 224, 224, 3)

  References:
    Krizhevsky et al. 2012; He et al., "Deep Residual Learning for Image Recognition", CVPR
    2016 (Sec. 3.4).
  """
  op = "ten_crop"
  image = check_image(image, op, keyed=False)
  return jnp.concatenate([_five_crop(image, size, op), _five_crop(jnp.flip(image, 1), size, op)])


def multi_crop_predict(apply_fn: Callable[[jax.Array], Any], images: jax.typing.ArrayLike, *,
                       size: int | Sequence[int], crops: Views = "ten",
                       scales: Sequence[int] | None = None) -> Any:
  """Test-time augmentation: averages a model's outputs over crops (and scales).

  For every scale (the image's shorter side resized to it; None keeps the image as is) the
  `ten_crop`, `five_crop` or `center_crop` views are taken, the model is run on all views of all
  images as one batch per scale, and the outputs are averaged over views and scales: ResNet's
  10-crop, multi-scale evaluation.

  Args:
    apply_fn: ``apply_fn(batch) -> outputs`` on NHWC batches (outputs: any pytree of
      floating-point arrays with the batch on axis 0, e.g. logits or probabilities: average
      probabilities rather than logits if that is what you want to marginalize).
    images: NHWC float batch.
    size: crop height and width.
    crops: ``"ten"``, ``"five"`` or ``"center"``.
    scales: non-empty iterable (tuple, list, range, generator, NumPy or JAX array) of
      shorter-side lengths to evaluate at, positive ints or integer-valued floats (e.g.
      ``(224, 256, 384, 480, 640)``), or None.

  Returns:
    ``apply_fn``'s outputs averaged over views and scales, with batch size N.

  Raises:
    ValueError: unknown ``crops``, empty ``scales`` or a scale < 1, a crop larger than the
      images or than their size at a scale, non-NHWC images or images with no pixels,
      ``apply_fn`` outputs that are not batch-first (a scalar, or a leading axis that is not
      one entry per view).
    TypeError: non-callable ``apply_fn`` or one returning non-floating (integer, bool)
      outputs, ``scales`` not an iterable of whole numbers (a bare number, a 0-d array, a
      ``5.5`` or a bool in it), non-float images.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> model = lambda batch: batch.mean((1, 2))  # (N, C) "logits"
    >>> jr.augment.multi_crop_predict(model, jnp.ones((2, 40, 40, 3)), size=32).shape
    (2, 3)
  """
  op = "multi_crop_predict"
  if not callable(apply_fn):
    raise TypeError(f"{op}: `apply_fn` must be callable, got {apply_fn!r}.")
  images = check_image(images, op, batch=True)
  check_has_pixels(images, op, "images")
  crops = _checks.check_choice(crops, op, "crops", choices=VIEWS)
  views = {"ten": ten_crop, "five": five_crop, "center": lambda im, s: center_crop(im, s)[None]}
  h, w = check_size(size, op, "size")
  # Checked up front: an empty tuple would skip the loop and return None, not an average.
  scales = (None,) if scales is None else check_scales(scales, op)
  height, width = images.shape[1:3]
  for scale in scales:
    resized_h, resized_w = (height, width) if scale is None else shorter_side_resized(
        height, width, scale)
    if h > resized_h or w > resized_w:
      if scale is None:
        raise ValueError(f"{op}: crop `size` {(h, w)} is larger than the {height}x{width} "
                         "images.")
      raise ValueError(f"{op}: `scales` holds {scale}, which resizes the {height}x{width} "
                       f"images to {resized_h}x{resized_w}, smaller than the crop `size` "
                       f"{(h, w)}.")
  total, count = None, 0
  for scale in scales:
    resized = images if scale is None else jax.vmap(lambda im, s=scale: resize_shorter(im, s))(
        images)
    stacked = jax.vmap(lambda im: views[crops](im, (h, w)))(resized)  # (N, V, h, w, C)
    n, v = stacked.shape[:2]
    outputs = apply_fn(stacked.reshape((n * v, *stacked.shape[2:])))
    _check_batch_first(outputs, op, rows=n * v)
    _checks.check_floating_outputs(outputs, op)
    summed = jax.tree.map(lambda o, n=n, v=v: o.reshape((n, v, *o.shape[1:])).sum(1), outputs)
    total = summed if total is None else jax.tree.map(jnp.add, total, summed)
    count += v
  return jax.tree.map(lambda t: t / count, total)


def _check_batch_first(outputs, op: str, *, rows: int) -> None:
  """Every output leaf must have one entry per view on axis 0, to average them per image."""
  for path, leaf in jax.tree_util.tree_flatten_with_path(outputs)[0]:
    shape = jnp.shape(leaf)
    if not shape or shape[0] != rows:
      raise ValueError(
          f"{op}: `apply_fn` must return batch-first outputs, one entry per view on axis 0 "
          f"({rows} for this call), got shape {shape} at output"
          f"{jax.tree_util.keystr(path) or ' (the root)'}. Reduce over the batch after "
          "multi_crop_predict, not inside apply_fn."
      )
