"""Random erasing (cutout): a random box of the image filled with a value."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks
from jaxreg.augment._crop import sample_box
from jaxreg.augment._dtypes import from_float
from jaxreg.augment._image_checks import (
  check_box_ratio,
  check_box_scale,
  check_drawn_size,
  check_image,
  check_image_operand,
  check_probability,
  check_unit_scale,
  nan_if_bad_probability,
)
from jaxreg.augment._params import ErasingParams, register


def random_erasing(key: jax.Array, image: jax.typing.ArrayLike, *, probability: float = 0.5,
                   scale: Sequence[float] = (0.02, 0.33), ratio: Sequence[float] = (0.3, 3.3),
                   value: jax.typing.ArrayLike | Sequence[float] = 0.0) -> jax.Array:
  """Random erasing / cutout: with ``probability``, fills a random box with ``value``.

  The box is drawn as torchvision's ``RandomErasing`` draws it: an area fraction uniform in
  ``scale``, an aspect ratio height / width log-uniform in ``ratio`` (so ``ratio=(0.3, 1.0)``
  erases wide boxes), sides rounded, and 10 tries for a box strictly inside the image
  (``h < H`` and ``w < W``: a box never spans a whole side); if none fits, nothing is erased.
  Note that `random_resized_crop` reads its ``ratio`` as width / height, as torchvision's
  ``RandomResizedCrop`` does.

  Args:
    key: a PRNG key.
    image: HWC float or uint8 image. One with no pixels is returned as it is.
    probability: chance of erasing, in [0, 1]. A traced probability outside [0, 1] (or NaN)
      cannot be checked at trace time and gives an all-NaN float image, never a silent clamp
      (uint8 has no NaN: there it erases always above 1, never below 0 or at NaN).
    scale: ``(lo, hi)``, range of the erased area fraction, ``0 <= lo <= hi <= 1`` and
      ``hi > 0``.
    ratio: ``(lo, hi)``, range of the box aspect ratio height / width, ``0 < lo <= hi``.
    value: fill value, finite (0 by default): a scalar, a per-channel ``(C,)`` tuple, list or
      array (torchvision's tuple ``value``, e.g. the ImageNet means ``(0.485, 0.456, 0.406)``),
      or any array that broadcasts to the image's shape without enlarging it (``(H, W, C)``
      noise, say). Concrete values are checked elementwise; a traced value for shape only.
      On a uint8 image the value keeps the [0, 1] scale and fills with its nearest level
      (``0.5`` fills 128); a concrete value outside [0, 1] raises there (levels such as 128
      are not taken).

  Returns:
    The image with at most one box filled, in its dtype.

  Raises:
    ValueError: invalid ranges or probability, ranges that are not pairs, a ``value`` with a
      NaN or infinite entry or that does not broadcast to the image's shape, or outside [0, 1]
      on a uint8 image; a non-HWC image.
    TypeError: an image neither floating point nor uint8, bad key, ``scale``/``ratio`` not
      pairs of numbers, a non-real ``value``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> out = jr.augment.random_erasing(jax.random.key(0), jnp.ones((32, 32, 3)),
    ...                                 probability=1.0)
    >>> bool((out == 0).any())
    True

  References:
    Zhong et al., "Random Erasing Data Augmentation", AAAI 2020; DeVries & Taylor, "Improved
    Regularization of Convolutional Neural Networks with Cutout", 2017.
  """
  params = _draw_erasing(key, image, probability=probability, scale=scale, ratio=ratio,
                         value=value)
  return _apply_erasing(params, image)


def _draw_erasing(key, image, *, probability=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3),
                  value=0.0) -> ErasingParams:
  op = "random_erasing"
  image = check_image(image, op, uint8=True)
  check_probability(probability, op)
  scale, ratio = check_box_scale(scale, op), check_box_ratio(ratio, op)
  value = check_image_operand(value, op, "value", shape=image.shape)
  check_unit_scale(value, op, "value", image=image)
  key = _checks.as_key(key, op)
  k_apply, k_box = jax.random.split(key)
  height, width = image.shape[:2]
  # torchvision's erasing rules: ratio h / w, strictly inside, no fallback box.
  top, left, box_h, box_w, found = sample_box(k_box, height, width, scale, ratio,
                                              rule="erasing")
  erase = jax.random.bernoulli(k_apply, probability) & found
  # The fill as the op converts it: to a float image's dtype; float32 for a uint8 image, which
  # takes its nearest level in `_apply_erasing`.
  fill_dtype = jnp.float32 if image.dtype == jnp.uint8 else image.dtype
  return ErasingParams(top=top, left=left, height=box_h, width=box_w, erase=erase,
                       probability=jnp.asarray(probability, jnp.float32),
                       value=jnp.asarray(value, fill_dtype), image_size=(height, width))


def erased_pixels(params: ErasingParams, height: int, width: int) -> jax.Array:
  """``(H, W)`` bool: the pixels the set fills (none where it does not erase). The one rule for
  the image and its mask (`apply_to_mask`), so a mask is marked exactly where its image is."""
  rows = jnp.arange(height, dtype=jnp.float32)[:, None]
  cols = jnp.arange(width, dtype=jnp.float32)[None, :]
  top, left = params.top, params.left
  return (params.erase & (rows >= top) & (rows < top + params.height) & (cols >= left)
          & (cols < left + params.width))


def _apply_erasing(params: ErasingParams, image):
  op = "apply(ErasingParams)"
  image = check_image(image, op, uint8=True)
  check_drawn_size(image.shape, params.image_size, op)
  value = jnp.asarray(params.value)
  try:
    fits = np.broadcast_shapes(value.shape, image.shape) == image.shape
  except ValueError:
    fits = False
  if not fits:
    raise ValueError(f"{op}: `value` must broadcast to the image's shape {image.shape} without "
                     f"enlarging it, got shape {value.shape}.")
  return _erase(params, image, value)


@jax.jit
def _erase(params: ErasingParams, image, value):
  # Jitted behind the checks: an eager call compiles one program, not a dispatch per step
  # (docs/design/index.md#checks-eagerly-computations-jitted).
  if image.dtype == jnp.uint8:  # the value on the [0, 1] scale, as the nearest level
    value = from_float(value.astype(jnp.float32), jnp.uint8)
  box = erased_pixels(params, *image.shape[:2])[..., None]
  return nan_if_bad_probability(params.probability,
                                jnp.where(box, value.astype(image.dtype), image))


register(random_erasing, _draw_erasing, ErasingParams, _apply_erasing)
