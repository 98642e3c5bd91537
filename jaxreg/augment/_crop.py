"""Random crops and flips, the Inception / ResNet resized crops (one resampling of a box), and
the box sampler they share with `random_erasing`."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from jaxreg import _backend, _checks
from jaxreg.augment._chains import check_link
from jaxreg.augment._image_checks import (
  PAD_MODES,
  PadMode,
  check_box_ratio,
  check_box_scale,
  check_drawn_size,
  check_has_pixels,
  check_image,
  check_padding,
  check_probability,
  check_scales,
  check_size,
  nan_if_bad_probability,
)
from jaxreg.augment._params import PAIRS, CropParams, FlipParams, ResizedCropParams, register
from jaxreg.augment._resample import resample_box, shorter_side_resized


def random_crop(key: jax.Array, image: jax.typing.ArrayLike, size: int | Sequence[int], *,
                padding: int | Sequence[int] = 0,
                pad_mode: PadMode = "constant") -> jax.Array:
  """Crops a random ``size`` window, after optionally padding every side by ``padding``.

  The CIFAR recipe is ``random_crop(key, image, 32, padding=4)``.

  Args:
    key: a PRNG key.
    image: HWC float or uint8 image.
    size: crop height and width (int or pair).
    padding: pixels added on each side before cropping: an int >= 0, or a ``(pad_h, pad_w)``
      pair of them (a tuple, list, or NumPy or JAX array; NumPy ints, 0-d int arrays and
      integer-valued floats such as ``2.0`` count as ints).
    pad_mode: ``"constant"`` (zeros), ``"reflect"`` or ``"edge"``. The last two copy pixels,
      so they need an image with at least one row and one column.

  Returns:
    The ``(size_h, size_w, C)`` crop, in the image's dtype.

  Raises:
    ValueError: a crop larger than the padded image, an unknown ``pad_mode``, ``"reflect"``
      or ``"edge"`` padding of an image with no pixels, negative padding or a padding
      sequence that is not a pair, a non-HWC image.
    TypeError: an image neither floating point nor uint8, bad key, non-int padding (``1.5``
      is not rounded), a traced padding.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.random_crop(jax.random.key(0), jnp.ones((32, 32, 3)), 32, padding=4).shape
    (32, 32, 3)
  """
  return _apply_crop(_draw_crop(key, image, size, padding=padding, pad_mode=pad_mode), image)


def _check_crop(image, size, padding, pad_mode, op) -> tuple:
  h, w = check_size(size, op, "size")
  pad_h, pad_w = check_padding(padding, op)
  pad_mode = _checks.check_choice(pad_mode, op, "pad_mode", choices=PAD_MODES)
  if (pad_h or pad_w) and pad_mode != "constant" and 0 in image.shape[:2]:
    raise ValueError(f"{op}: `pad_mode`={pad_mode!r} copies pixels of the image, which has "
                     f"none (shape {image.shape}); use pad_mode='constant'.")
  height, width = image.shape[0] + 2 * pad_h, image.shape[1] + 2 * pad_w
  if h > height or w > width:
    raise ValueError(f"{op}: crop `size` {(h, w)} is larger than the padded image "
                     f"{(height, width)} (image {image.shape[:2]}, padding {(pad_h, pad_w)}).")
  return (h, w), (pad_h, pad_w), (height, width)


def _image_size(image) -> tuple[int, int]:
  """The (height, width) a parameter set records: static Python ints."""
  return int(image.shape[0]), int(image.shape[1])


def _draw_crop(key, image, size, *, padding=0, pad_mode="constant") -> CropParams:
  op = "random_crop"
  image = check_image(image, op, uint8=True)
  (h, w), padding, (height, width) = _check_crop(image, size, padding, pad_mode, op)
  k_y, k_x = jax.random.split(_checks.as_key(key, op))
  return CropParams(top=jax.random.randint(k_y, (), 0, height - h + 1),
                    left=jax.random.randint(k_x, (), 0, width - w + 1), size=(h, w),
                    padding=padding, pad_mode=pad_mode, image_size=_image_size(image))


def _apply_crop(params: CropParams, image):
  op = "apply(CropParams)"
  image = check_image(image, op, uint8=True)
  check_drawn_size(image.shape, params.image_size, op)
  (h, w), (pad_h, pad_w), _ = _check_crop(image, params.size, params.padding, params.pad_mode,
                                          op)
  if pad_h or pad_w:
    image = jnp.pad(image, ((pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode=params.pad_mode)
  return lax.dynamic_slice(image, (params.top, params.left, 0), (h, w, image.shape[2]))


def _draw_flip(op, axis, key, image, probability) -> FlipParams:
  image = check_image(image, op, uint8=True)
  check_probability(probability, op)
  flip = jax.random.bernoulli(_checks.as_key(key, op), probability)
  return FlipParams(flip=flip, probability=jnp.asarray(probability, jnp.float32), axis=axis,
                    image_size=_image_size(image))


def _apply_flip(params: FlipParams, image):
  image = check_image(image, "apply(FlipParams)", uint8=True)
  check_drawn_size(image.shape, params.image_size, "apply(FlipParams)")
  # On the CPU a gather (uint8: a loop over the examples), a select elsewhere
  flipped = _backend.flip(params.flip, image, params.axis)
  return nan_if_bad_probability(params.probability, flipped)


def _draw_flip_left_right(key, image, *, probability=0.5) -> FlipParams:
  return _draw_flip("random_flip_left_right", 1, key, image, probability)


def _draw_flip_up_down(key, image, *, probability=0.5) -> FlipParams:
  return _draw_flip("random_flip_up_down", 0, key, image, probability)


def random_flip_left_right(key: jax.Array, image: jax.typing.ArrayLike, *,
                           probability: float = 0.5) -> jax.Array:
  """Mirrors the image horizontally with probability ``probability``.

  Args:
    key: a PRNG key.
    image: HWC float or uint8 image.
    probability: chance of flipping, in [0, 1]. A traced probability outside [0, 1] (or NaN)
      cannot be checked at trace time and gives an all-NaN float image, never a silent clamp
      (uint8 has no NaN: there it flips always above 1, never below 0 or at NaN).

  Returns:
    The image, mirrored or not.

  Raises:
    ValueError: ``probability`` outside [0, 1]; a non-HWC image.
    TypeError: an image neither floating point nor uint8, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.arange(6.0).reshape(1, 2, 3)
    >>> jr.augment.random_flip_left_right(jax.random.key(0), image, probability=1.0)[0, 0]
    Array([3., 4., 5.], dtype=float32)
  """
  return _apply_flip(_draw_flip_left_right(key, image, probability=probability), image)


def random_flip_up_down(key: jax.Array, image: jax.typing.ArrayLike, *,
                        probability: float = 0.5) -> jax.Array:
  """Mirrors the image vertically with probability ``probability``.

  Args:
    key: a PRNG key.
    image: HWC float or uint8 image.
    probability: chance of flipping, in [0, 1]. A traced probability outside [0, 1] (or NaN)
      cannot be checked at trace time and gives an all-NaN float image, never a silent clamp
      (uint8 has no NaN: there it flips always above 1, never below 0 or at NaN).

  Returns:
    The image, mirrored or not.

  Raises:
    ValueError: ``probability`` outside [0, 1]; a non-HWC image.
    TypeError: an image neither floating point nor uint8, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.arange(6.0).reshape(2, 1, 3)
    >>> jr.augment.random_flip_up_down(jax.random.key(0), image, probability=1.0)[0, 0]
    Array([3., 4., 5.], dtype=float32)
  """
  return _apply_flip(_draw_flip_up_down(key, image, probability=probability), image)


def sample_box(key, height: int, width: int, scale, ratio, attempts: int = 10, *,
               rule: Literal["resized_crop", "erasing"] = "resized_crop"):
  """A random box by one of torchvision's two samplers: ``attempts`` tries at once.

  Each try draws an area fraction uniformly from ``scale`` and an aspect ratio log-uniformly
  from ``ratio``, and rounds the sides (half to even, as Python's ``round``).

  * ``"resized_crop"`` (``RandomResizedCrop``): ``ratio`` is width / height; a try fits when
    ``1 <= side <= image side``; if none fits, the central box with the ratio clamped.
  * ``"erasing"`` (``RandomErasing``): ``ratio`` is height / width; a try fits when the box is
    strictly inside the image (``h < H`` and ``w < W``, a side of 0 allowed: an empty box); if
    none fits, ``found`` is False and there is no fallback box.

  ``scale`` and ``ratio`` are checked pairs of Python numbers, arguments of the jitted draw,
  not constants: it compiles once per image size and, for the resized crop, per fallback box
  (which depends on ``ratio`` only where the image's own ratio lies outside it).

  Returns:
    ``(top, left, box_h, box_w, found)``, traced scalars.
  """
  # Fallback (no try fits): the largest central box with the ratio clamped to `ratio`. The
  # rounded side is kept within [1, image side]: on a 5x1 image with ratio (3, 4) the box
  # would otherwise be round(1 / 3) = 0 rows high, and its resampling a flat image.
  fallback = None  # erasing has none
  if rule == "resized_crop":
    in_ratio = width / height
    if in_ratio < ratio[0]:
      fallback = (min(max(round(width / ratio[0]), 1), height), width)
    elif in_ratio > ratio[1]:
      fallback = (height, min(max(round(height * ratio[1]), 1), width))
    else:
      fallback = (height, width)
  bounds = jnp.asarray([scale[0], scale[1], math.log(ratio[0]), math.log(ratio[1])],
                       jnp.float32)
  return _sample_box(key, bounds, height=height, width=width, attempts=attempts, rule=rule,
                     fallback=fallback)


@functools.partial(jax.jit, static_argnames=("height", "width", "attempts", "rule", "fallback"))
def _sample_box(key, bounds, *, height: int, width: int, attempts: int, rule: str, fallback):
  k_area, k_ratio, k_top, k_left = jax.random.split(key, 4)
  area = height * width
  target = area * jax.random.uniform(k_area, (attempts,), minval=bounds[0], maxval=bounds[1])
  log_ratio = jax.random.uniform(k_ratio, (attempts,), minval=bounds[2], maxval=bounds[3])
  aspect = jnp.exp(log_ratio)
  if rule == "erasing":
    h = jnp.round(jnp.sqrt(target * aspect))
    w = jnp.round(jnp.sqrt(target / aspect))
    ok = (h < height) & (w < width)
  else:
    w = jnp.round(jnp.sqrt(target * aspect))
    h = jnp.round(jnp.sqrt(target / aspect))
    ok = (w >= 1) & (w <= width) & (h >= 1) & (h <= height)
  first = jnp.argmax(ok)
  found = ok[first]
  if rule == "erasing":
    box_h, box_w = h[first], w[first]
    top = jnp.floor(jax.random.uniform(k_top) * (height - box_h + 1))
    left = jnp.floor(jax.random.uniform(k_left) * (width - box_w + 1))
    return top, left, box_h, box_w, found
  fb_h, fb_w = fallback
  box_h = jnp.where(found, h[first], fb_h)
  box_w = jnp.where(found, w[first], fb_w)
  top = jnp.where(found, jnp.floor(jax.random.uniform(k_top) * (height - box_h + 1)),
                  (height - fb_h) // 2)
  left = jnp.where(found, jnp.floor(jax.random.uniform(k_left) * (width - box_w + 1)),
                   (width - fb_w) // 2)
  return top, left, box_h, box_w, found


def random_resized_crop(key: jax.Array, image: jax.typing.ArrayLike,
                        size: int | Sequence[int], *, scale: Sequence[float] = (0.08, 1.0),
                        ratio: Sequence[float] = (3 / 4, 4 / 3),
                        antialias: bool = True) -> jax.Array:
  """The "stretch" crop of Inception/ResNet training: random area and aspect, resized to ``size``.

  Samples a box covering a fraction of the image area drawn from ``scale`` with a log-uniform
  aspect ratio, width / height as in torchvision's ``RandomResizedCrop``, from ``ratio`` (10
  tries of boxes with sides between 1 pixel and the image's, then the central box with the
  ratio clamped, as torchvision does, and its sides kept within those bounds), and
  resamples it to ``size`` with bilinear interpolation (antialiased when shrinking). The result
  is torchvision's crop-then-resize: ``jax.image.resize(crop, size, "linear", antialias=...)``
  of the box, so only pixels inside the box contribute, also at its border. The output shape
  is static; only the box is random. uint8 images are resampled in float32 and rounded to the
  nearest level, as torchvision does on uint8 tensors.

  Args:
    key: a PRNG key.
    image: HWC float or uint8 image.
    size: output height and width (int or pair).
    scale: ``(lo, hi)``, range of the box area as a fraction of the image area,
      ``0 <= lo <= hi <= 1`` and ``hi > 0``.
    ratio: ``(lo, hi)``, range of the box aspect ratio (width / height), ``0 < lo <= hi``.
    antialias: low-pass filter when the box is shrunk (as PIL and torchvision's
      ``antialias=True`` do); a bool.

  Returns:
    The ``(size_h, size_w, C)`` resampled crop, in the image's dtype.

  Raises:
    ValueError: invalid ``scale``/``ratio`` ranges or pairs of the wrong length; a non-HWC
      image, or one with no pixels.
    TypeError: ``scale``/``ratio`` not pairs of numbers, non-bool ``antialias``, an image
      neither floating point nor uint8, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.ones((256, 256, 3)) * 0.5
    >>> jr.augment.random_resized_crop(jax.random.key(0), image, 224).shape
    (224, 224, 3)

  References:
    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.
  """
  params = _draw_resized_crop(key, image, size, scale=scale, ratio=ratio, antialias=antialias)
  return _apply_resized_crop(params, image)


def _draw_resized_crop(key, image, size, *, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                       antialias=True) -> ResizedCropParams:
  op = "random_resized_crop"
  image = check_image(image, op, uint8=True)
  check_has_pixels(image, op)
  out = check_size(size, op, "size")
  scale, ratio = check_box_scale(scale, op), check_box_ratio(ratio, op)
  antialias = _checks.check_bool(antialias, op, "antialias")
  key = _checks.as_key(key, op)
  top, left, box_h, box_w, _ = sample_box(key, image.shape[0], image.shape[1], scale, ratio)
  return ResizedCropParams(top=top, left=left, height=box_h, width=box_w, size=out,
                           antialias=antialias, crop_first=True, image_size=_image_size(image))


def _apply_resized_crop(params: ResizedCropParams, image):
  op = "apply(ResizedCropParams)"
  image = check_image(image, op, uint8=True)
  check_drawn_size(image.shape, params.image_size, op)
  check_has_pixels(image, op)
  return resample_box(image, params.top, params.left, params.height, params.width,
                      check_size(params.size, op, "size"), params.antialias,
                      crop_first=params.crop_first)


def apply_resized_crop_and_flip(params: ResizedCropParams, flip: FlipParams, image):
  """``apply(flip, apply(params, image))`` for a left-right ``flip``, as one resampling: the
  box sampled with its columns mirrored where ``flip.flip`` (`resample_box`'s ``mirror``), bit
  for bit the two steps' result without the flip's pass over the output."""
  image = check_image(image, "apply(ResizedCropParams)", uint8=True)
  check_drawn_size(image.shape, params.image_size, "apply(ResizedCropParams)")
  check_has_pixels(image, "apply(ResizedCropParams)")
  out = resample_box(image, params.top, params.left, params.height, params.width,
                     check_size(params.size, "apply(ResizedCropParams)", "size"),
                     params.antialias, crop_first=params.crop_first, mirror=flip.flip)
  return nan_if_bad_probability(flip.probability, out)


def random_scale_crop(key: jax.Array, image: jax.typing.ArrayLike,
                      size: int | Sequence[int], *,
                      scales: Sequence[int] = (224, 256, 384, 480, 640),
                      antialias: bool = True) -> jax.Array:
  """ResNet's multi-scale training crop: shorter side resized to a random scale, then cropped.

  Draws a target shorter side from ``scales``, and crops a random ``size`` window of the image
  resized to it: ``jax.image.resize(image, (round(H s / min(H, W)), round(W s / min(H, W)), C),
  "linear", antialias=...)`` then a window of it, so at the window's border the pixels just
  outside it blend in, as they do in the resized image. Resizing and cropping are done as one
  resampling of the corresponding box of the original image, so no intermediate image of
  data-dependent size exists and the output shape is static. uint8 images are resampled in
  float32 and rounded to the nearest level, as torchvision does on uint8 tensors.

  Args:
    key: a PRNG key.
    image: HWC float or uint8 image.
    size: output height and width (int or pair).
    scales: non-empty iterable (tuple, list, range, generator, NumPy or JAX array) of
      candidate lengths of the resized shorter side, positive ints or integer-valued floats
      (ResNet: 256 to 480); each must leave room for the crop.
    antialias: low-pass filter when shrinking; a bool.

  Returns:
    The ``(size_h, size_w, C)`` crop, in the image's dtype.

  Raises:
    ValueError: a scale too small for the crop or < 1, empty ``scales``; a non-HWC image,
      or one with no pixels.
    TypeError: ``scales`` not an iterable of whole numbers (a bare number, a 0-d array, a
      ``5.5`` or a bool in it), non-bool ``antialias``, an image neither floating point nor
      uint8, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.ones((300, 400, 3)) * 0.5
    >>> jr.augment.random_scale_crop(jax.random.key(0), image, 224, scales=(256, 320)).shape
    (224, 224, 3)

  References:
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (Sec. 3.4), after
    Simonyan & Zisserman 2015.
  """
  params = _draw_scale_crop(key, image, size, scales=scales, antialias=antialias)
  return _apply_resized_crop(params, image)


def _draw_scale_crop(key, image, size, *, scales=(224, 256, 384, 480, 640),
                     antialias=True) -> ResizedCropParams:
  op = "random_scale_crop"
  image = check_image(image, op, uint8=True)
  check_has_pixels(image, op)
  out_h, out_w = check_size(size, op, "size")
  scales = check_scales(scales, op)
  antialias = _checks.check_bool(antialias, op, "antialias")
  height, width = image.shape[:2]
  # The resized sizes are whole pixels (as in `multi_crop_predict`), so each axis has its own
  # factor resized / original, which is what `jax.image.resize` to that size uses.
  resized = [shorter_side_resized(height, width, s) for s in scales]
  for s, (resized_h, resized_w) in zip(scales, resized, strict=True):
    if resized_h < out_h or resized_w < out_w:
      raise ValueError(f"{op}: `scales` holds {s}, which resizes the {height}x{width} image to "
                       f"{resized_h}x{resized_w}, smaller than the {out_h}x{out_w} crop.")
  key = _checks.as_key(key, op)
  k_scale, k_top, k_left = jax.random.split(key, 3)
  resized_h, resized_w = jnp.asarray(resized, jnp.float32)[
      jax.random.randint(k_scale, (), 0, len(scales))]
  factor_h, factor_w = resized_h / height, resized_w / width
  # The crop in resized coordinates, mapped back to a box of the original image.
  top = jnp.floor(jax.random.uniform(k_top) * (resized_h - out_h + 1))
  left = jnp.floor(jax.random.uniform(k_left) * (resized_w - out_w + 1))
  return ResizedCropParams(top=top / factor_h, left=left / factor_w, height=out_h / factor_h,
                           width=out_w / factor_w, size=(out_h, out_w), antialias=antialias,
                           crop_first=False, image_size=_image_size(image))


def _fuse_resized_crop_and_flip(params: ResizedCropParams, flip: FlipParams, image, index: int):
  """`apply` of the chain's sets ``index`` and ``index + 1``, ``(params, flip)``, as one
  resampling, for a left-right flip drawn for the crop's output; None for an up-down one."""
  if flip.axis != 1:
    return None
  check_link(flip, index + 1, check_size(params.size, "apply", "size"), "apply")
  return apply_resized_crop_and_flip(params, flip, image)


PAIRS[(ResizedCropParams, FlipParams)] = _fuse_resized_crop_and_flip
register(random_crop, _draw_crop, CropParams, _apply_crop)
register(random_resized_crop, _draw_resized_crop, ResizedCropParams, _apply_resized_crop)
register(random_scale_crop, _draw_scale_crop, ResizedCropParams, _apply_resized_crop)
register(random_flip_left_right, _draw_flip_left_right, FlipParams, _apply_flip)
register(random_flip_up_down, _draw_flip_up_down, FlipParams, _apply_flip)
