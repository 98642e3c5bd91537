"""Data augmentation: jit-able, key-driven image transforms, and test-time multi-crop.

Conventions (checked; other ranks and dtypes raise):

* An image is a float array in HWC layout with values in [0, 1]; a batch is NHWC.
* Per-image random transforms take the PRNG ``key`` first: ``fn(key, image, ...)``.
  `batched` applies any of them to a batch with an independent key per example (``vmap`` over
  ``jax.random.split(key, N)``), so every example gets its own crop, flip and colours.
* Output shapes are static under `jit`: crops and resizes have a fixed output ``size``, and the
  random part (offsets, scales) only moves a sampling box.
* Colour ops take ``clip``: True clamps the result to [0, 1].

At test time the randomness is marginalized: `center_crop`, `five_crop`, `ten_crop` (ResNet's 10
views) and `multi_crop_predict`, which averages a model's outputs over crops and scales.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _checks

__all__ = [
    "adjust_hue",
    "adjust_saturation",
    "batched",
    "center_crop",
    "color_jitter",
    "compose",
    "cutmix",
    "five_crop",
    "hsv_to_rgb",
    "mixup",
    "multi_crop_predict",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_erasing",
    "random_flip_left_right",
    "random_flip_up_down",
    "random_hue",
    "random_resized_crop",
    "random_saturation",
    "random_scale_crop",
    "rgb_to_hsv",
    "ten_crop",
]

_PAD_MODES = ("constant", "reflect", "edge")


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _check_image(image, op: str, *, batch: bool = False) -> jax.Array:
  image = _checks.check_float_array(image, op, "images" if batch else "image")
  rank, layout = (4, "NHWC") if batch else (3, "HWC; use augment.batched for NHWC batches")
  _checks.check_ndim(image, op, exact=rank, layout=layout, name="images" if batch else "image")
  return image


def _check_rgb(image, op: str) -> None:
  if image.shape[-1] != 3:
    raise ValueError(f"{op}: needs RGB images (3 channels last), got shape {image.shape}.")


def _pair(value, op: str, name: str) -> tuple[int, int]:
  """An int or (h, w) pair of positive ints."""
  items = (value, value) if isinstance(value, (numbers.Integral, np.integer)) else value
  try:
    items = tuple(items)
  except TypeError as err:
    raise TypeError(f"{op}: `{name}` must be an int or an (height, width) pair, got "
                    f"{value!r}.") from err
  if len(items) != 2:
    raise ValueError(f"{op}: `{name}` must be an int or an (height, width) pair, got {value!r}.")
  return tuple(_checks.check_positive_int(v, op, name) for v in items)


def _check_range(lower, upper, op: str, name: str, *, low: float = -math.inf,
                 high: float = math.inf) -> tuple[float, float]:
  """A (lower, upper) pair of finite Python numbers with ``low <= lower <= upper <= high``.

  ``name`` is what the user passed (``scale``, or ``(lower, upper)`` for two arguments); the
  message shows the pair as given.
  """
  bounds = []
  for bound in (lower, upper):
    value = _checks.concrete_scalar(bound, name, op)
    if value is None:
      raise TypeError(f"{op}: `{name}` bounds must be Python numbers, got traced values.")
    bounds.append(value)
  lo, hi = bounds
  limits = "".join((f"{low} <= " if low > -math.inf else "", "lower <= upper",
                    f" <= {high}" if high < math.inf else ""))
  # `not (...)` so that NaN fails too
  if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi <= high):
    raise ValueError(f"{op}: `{name}` must be finite and satisfy {limits}, got "
                     f"({lower!r}, {upper!r}).")
  return lo, hi


def _check_pair_range(value, op: str, name: str, *, low: float = -math.inf,
                      high: float = math.inf) -> tuple[float, float]:
  """`_check_range` for one argument that must be a (lower, upper) pair."""
  # A 0-d array is an ndarray but has no len(): rejected here with the argument's name.
  if (isinstance(value, (str, bytes))
      or not isinstance(value, (Sequence, np.ndarray, jax.Array))
      or (isinstance(value, (np.ndarray, jax.Array)) and value.ndim != 1)):
    raise TypeError(f"{op}: `{name}` must be a (lower, upper) pair of numbers, got {value!r}.")
  if len(value) != 2:
    raise ValueError(f"{op}: `{name}` must be a (lower, upper) pair of numbers, got {value!r} "
                     f"({len(value)} items).")
  return _check_range(value[0], value[1], op, name, low=low, high=high)


def _check_strength(value, op: str, name: str, *, lo: float = 0.0, hi: float = math.inf,
                    lo_open: bool = False) -> float:
  """A finite Python number in [lo, hi] (or (lo, hi]): strengths that pick code paths."""
  concrete = _checks.check_interval(value, name, op, lo=lo, hi=hi, lo_open=lo_open)
  if concrete is None:
    raise TypeError(f"{op}: `{name}` must be a Python number, got a traced value.")
  return concrete


def _whole_number(value) -> int | None:
  """``value`` as an int if it is a concrete real number with an integer value, else None.

  Python and NumPy ints, integer-valued floats (``9.0``) and 0-d int or float arrays qualify;
  bools, traced values, non-integer or non-finite floats and anything else do not.
  """
  if isinstance(value, (bool, np.bool_)) or _checks.is_traced(value):
    return None
  if isinstance(value, (np.ndarray, jax.Array)):
    if value.ndim != 0 or not (jnp.issubdtype(value.dtype, jnp.integer)
                               or jnp.issubdtype(value.dtype, jnp.floating)):
      return None
    value = value.item()
  if isinstance(value, (numbers.Integral, np.integer)):
    return int(value)
  if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
    return int(value)
  return None


def _items(value, op: str, name: str, expected: str) -> tuple:
  """The items of a 1-D iterable (sequence, generator, NumPy or JAX array), as a tuple.

  Raises a TypeError naming ``value`` and ``expected`` for strings, scalars, 0-d or
  multi-dimensional arrays, traced arrays and other non-iterables.
  """
  if isinstance(value, (np.ndarray, jax.Array)):
    if _checks.is_traced(value):
      raise TypeError(f"{op}: `{name}` must be {expected} known at trace time, got a traced "
                      f"array of shape {value.shape}.")
    if value.ndim != 1:
      shown = f"{value!r} (a 0-d array)" if value.ndim == 0 else (
          f"an array of shape {value.shape}")
      raise TypeError(f"{op}: `{name}` must be {expected}, got {shown}.")
    return tuple(value.tolist())
  if isinstance(value, (str, bytes)):
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.")
  try:
    return tuple(value)
  except TypeError as err:
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.") from err


def _check_scales(scales, op: str) -> tuple[int, ...]:
  """A non-empty iterable of positive whole numbers (shorter-side lengths), as ints."""
  expected = "an iterable of positive ints"
  items = _items(scales, op, "scales", expected)
  # A generator is shown by its items: its repr says nothing and it is consumed by now.
  shown = scales if isinstance(scales, (Sequence, np.ndarray, jax.Array)) else items
  if not items:
    raise ValueError(f"{op}: `scales` must hold at least one length, got {shown!r}.")
  result = []
  for s in items:
    whole = _whole_number(s)
    if whole is None:
      raise TypeError(f"{op}: `scales` must hold positive ints (or integer-valued floats), got "
                      f"{s!r} in {shown!r}.")
    if whole < 1:
      raise ValueError(f"{op}: `scales` must hold positive ints, got {s!r} in {shown!r}.")
    result.append(whole)
  return tuple(result)


def _check_padding(padding, op: str) -> tuple[int, int]:
  """An int >= 0, or a (pad_h, pad_w) pair of them; integer-valued floats and arrays count."""
  whole = _whole_number(padding)
  if whole is not None:
    items = (whole, whole)
  else:
    expected = "an int or a (pad_h, pad_w) pair of ints"
    if isinstance(padding, (np.ndarray, jax.Array)) and padding.ndim == 0:
      raise TypeError(f"{op}: `padding` must be {expected}, got {padding!r}.")
    raw = _items(padding, op, "padding", expected)
    if len(raw) != 2:
      raise ValueError(f"{op}: `padding` must be an int or a (pad_h, pad_w) pair, got "
                       f"{padding!r} ({len(raw)} items).")
    items = tuple(_whole_number(p) for p in raw)
    if None in items:
      raise TypeError(f"{op}: `padding` must hold ints (pixels), got {padding!r}.")
  if items[0] < 0 or items[1] < 0:
    raise ValueError(f"{op}: `padding` must be >= 0, got {padding!r}.")
  return items


def _check_image_operand(value, shape: tuple[int, ...], op: str, name: str, *,
                         lo: float = -math.inf, per_pixel: bool = False):
  """A real scalar, or an array that broadcasts to ``shape`` (the image's) without enlarging it.

  Tuples, lists, NumPy and JAX arrays qualify. Concrete values must be finite and >= ``lo``
  everywhere; traced ones are checked for shape and dtype only. ``per_pixel``: one value per
  pixel, so an array's last (channel) axis must have size 1.

  Returns:
    ``value`` itself for a Python or NumPy scalar (a weakly typed float stays weak) or a JAX
    array, else an array (NumPy when concrete).
  """
  if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
    raise TypeError(f"{op}: `{name}` must be a real number or an array of them, got {value!r} of "
                    f"type {type(value).__name__}.")
  if isinstance(value, numbers.Real):
    _checks.check_interval(value, name, op, lo=lo)
    return value
  if any(_checks.is_traced(leaf) for leaf in jax.tree.leaves(value)):
    array, concrete = jnp.asarray(value), None
  else:
    try:
      array = concrete = np.asarray(value)
    except (TypeError, ValueError) as err:
      raise TypeError(f"{op}: `{name}` must be a real number or an array of them, got "
                      f"{value!r}.") from err
  if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
    raise TypeError(f"{op}: `{name}` must hold real numbers, got {value!r} of dtype "
                    f"{array.dtype}.")

  def broadcasts(target):
    try:
      return np.broadcast_shapes(array.shape, target) == tuple(target)
    except ValueError:
      return False

  if not broadcasts(shape):
    # Per-pixel values aligned with the image without its channel axis: (H, W) for (H, W, 3).
    hint = (f" (add a channel axis: `{name}[..., None]`)"
            if per_pixel and array.ndim and broadcasts(shape[:-1]) else "")
    raise ValueError(f"{op}: `{name}` must be a scalar or an array that broadcasts to the image's "
                     f"shape {tuple(shape)} without enlarging it, got shape {array.shape}{hint}.")
  if per_pixel and array.ndim and array.shape[-1] != 1:
    raise ValueError(f"{op}: `{name}` holds one value per pixel, not per channel: its last "
                     f"(channel) axis must have size 1, got shape {array.shape}.")
  if concrete is not None:
    if concrete.ndim == 0:
      _checks.check_interval(concrete, name, op, lo=lo)
    else:
      values = concrete.astype(np.float64)
      bad = ~(np.isfinite(values) & (values >= lo))
      if bad.any():
        shown = repr(value) if isinstance(value, (list, tuple)) else (
            f"an array of shape {concrete.shape}")
        bound = f" and >= {lo}" if lo > -math.inf else ""
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{op}: `{name}` must be finite{bound} everywhere, got {shown} with "
                         f"{int(bad.sum())} bad entries, the first {float(values[first])} at "
                         f"index {first}.")
  # A concrete JAX array is passed on as it is (on its device), not as its NumPy copy.
  return value if isinstance(value, jax.Array) else array


def _check_probability(p, op: str, name: str = "probability") -> None:
  _checks.check_interval(p, name, op, lo=0.0, hi=1.0)


def _maybe_clip(image, clip: bool):
  return jnp.clip(image, 0.0, 1.0) if clip else image


# --------------------------------------------------------------------------------------------
# Batching and composition
# --------------------------------------------------------------------------------------------


def batched(fn: Callable[..., jax.Array], *, sequential: bool = False) -> Callable[..., jax.Array]:
  """Applies a per-image random transform to an NHWC batch, one independent key per example.

  Args:
    fn: ``fn(key, image, *args, **kwargs) -> image`` (any of this module's random transforms,
      a `compose` pipeline, or your own).
    sequential: run the examples one after another (`jax.lax.map`) instead of `jax.vmap`. Same
      keys, same results (to float rounding). Under `vmap` a per-example choice between code
      paths becomes a select that computes every path for every example; in a loop each example
      runs only its own, with its image in cache. For your own branching transforms on a CPU
      (``color_jitter`` already loops there by itself); crops and resampling are faster
      vmapped. On an accelerator keep the default: a loop runs the examples serially. A bool.

  Returns:
    ``batch_fn(key, images, *args, **kwargs)``: splits ``key`` into ``N`` keys and applies
    ``fn`` to each (key, image) pair; the extra arguments are shared by all examples.

  Raises:
    TypeError: ``fn`` not callable; ``sequential`` not a bool.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images = jnp.zeros((8, 32, 32, 3))
    >>> crop = jr.augment.batched(jr.augment.random_crop)
    >>> crop(jax.random.key(0), images, 28, padding=2).shape
    (8, 28, 28, 3)
  """
  if not callable(fn):
    raise TypeError(f"batched: `fn` must be callable, got {fn!r}.")
  sequential = _checks.check_bool(sequential, "batched", "sequential")

  @functools.wraps(fn)
  def batch_fn(key, images, *args, **kwargs):
    images = _check_image(images, f"batched({getattr(fn, '__name__', 'fn')})", batch=True)
    keys = jax.random.split(_checks.as_key(key, "batched"), images.shape[0])
    one = lambda k, image: fn(k, image, *args, **kwargs)  # noqa: E731
    if sequential:
      return lax.map(lambda pair: one(*pair), (keys, images))
    return jax.vmap(one)(keys, images)

  return batch_fn


def compose(*fns: Callable[[jax.Array, jax.Array], jax.Array]) -> Callable:
  """Chains per-image transforms ``fn(key, image)`` into one, each with its own key.

  Args:
    *fns: transforms taking ``(key, image)``; bind other arguments with `functools.partial`.

  Returns:
    ``pipeline(key, image)``; wrap it in `batched` for NHWC batches and in `jax.jit` to compile
    the whole pipeline as one function.

  Raises:
    TypeError: a non-callable argument.
    ValueError: no transforms.

  Example:
    >>> import functools, jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> pipeline = A.compose(functools.partial(A.random_crop, size=24, padding=4),
    ...                      A.random_flip_left_right,
    ...                      functools.partial(A.random_brightness, max_delta=0.1, clip=True))
    >>> out = jax.jit(A.batched(pipeline))(jax.random.key(0), jnp.full((4, 24, 24, 3), 0.5))
    >>> out.shape, bool((out >= 0).all() & (out <= 1).all())
    ((4, 24, 24, 3), True)
  """
  if not fns:
    raise ValueError("compose: give at least one transform.")
  for fn in fns:
    if not callable(fn):
      raise TypeError(f"compose: every transform must be callable, got {fn!r}.")

  def pipeline(key, image):
    keys = jax.random.split(_checks.as_key(key, "compose"), len(fns))
    for k, fn in zip(keys, fns, strict=True):
      image = fn(k, image)
    return image

  return pipeline


# --------------------------------------------------------------------------------------------
# Crops and flips
# --------------------------------------------------------------------------------------------


def random_crop(key: jax.Array, image: jax.typing.ArrayLike, size: int | Sequence[int], *,
                padding: int | Sequence[int] = 0, pad_mode: str = "constant") -> jax.Array:
  """Crops a random ``size`` window, after optionally padding every side by ``padding``.

  The CIFAR recipe is ``random_crop(key, image, 32, padding=4)``.

  Args:
    key: a PRNG key.
    image: HWC float image.
    size: crop height and width (int or pair).
    padding: pixels added on each side before cropping: an int >= 0, or a ``(pad_h, pad_w)``
      pair of them (a tuple, list, or NumPy or JAX array; NumPy ints, 0-d int arrays and
      integer-valued floats such as ``2.0`` count as ints).
    pad_mode: ``"constant"`` (zeros), ``"reflect"`` or ``"edge"``.

  Returns:
    The ``(size_h, size_w, C)`` crop.

  Raises:
    ValueError: a crop larger than the padded image, an unknown ``pad_mode``, negative
      padding or a padding sequence that is not a pair, a non-HWC image.
    TypeError: non-float image, bad key, non-int padding (``1.5`` is not rounded), a traced
      padding.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.random_crop(jax.random.key(0), jnp.ones((32, 32, 3)), 32, padding=4).shape
    (32, 32, 3)
  """
  op = "random_crop"
  image = _check_image(image, op)
  h, w = _pair(size, op, "size")
  pad_h, pad_w = _check_padding(padding, op)
  if pad_mode not in _PAD_MODES:
    raise ValueError(f"{op}: `pad_mode` must be one of {_PAD_MODES}, got {pad_mode!r}.")
  height, width = image.shape[0] + 2 * pad_h, image.shape[1] + 2 * pad_w
  if h > height or w > width:
    raise ValueError(f"{op}: crop {(h, w)} is larger than the padded image {(height, width)} "
                     f"(image {image.shape[:2]}, padding {(pad_h, pad_w)}).")
  key = _checks.as_key(key, op)
  if pad_h or pad_w:
    image = jnp.pad(image, ((pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode=pad_mode)
  k_y, k_x = jax.random.split(key)
  top = jax.random.randint(k_y, (), 0, height - h + 1)
  left = jax.random.randint(k_x, (), 0, width - w + 1)
  return lax.dynamic_slice(image, (top, left, 0), (h, w, image.shape[2]))


def _random_flip(op, axis, key, image, probability):
  image = _check_image(image, op)
  _check_probability(probability, op)
  flip = jax.random.bernoulli(_checks.as_key(key, op), probability)

  def gather(flip, image):
    # On the CPU: one gather with (possibly) reversed indices. Fused after a producer such as
    # a resampling crop, the select below makes XLA:CPU compute the producer once per branch
    # (random_resized_crop + flip of 128 images: 150 ms as a select, 60 ms as a gather).
    size = image.shape[axis]
    index = jnp.arange(size)
    return jnp.take(image, jnp.where(flip, size - 1 - index, index), axis=axis,
                    unique_indices=True, indices_are_sorted=False, mode="clip")

  def select(flip, image):
    # Elsewhere the select: on a GPU the gather form made the same pipeline 3x slower.
    return jnp.where(flip, jnp.flip(image, axis), image)

  return lax.platform_dependent(flip, image, cpu=gather, default=select)


def random_flip_left_right(key: jax.Array, image: jax.typing.ArrayLike, *,
                           probability: float = 0.5) -> jax.Array:
  """Mirrors the image horizontally with probability ``probability``.

  Args:
    key: a PRNG key.
    image: HWC float image.
    probability: chance of flipping, in [0, 1].

  Returns:
    The image, mirrored or not.

  Raises:
    ValueError: ``probability`` outside [0, 1]; a non-HWC image.
    TypeError: non-float image, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.arange(6.0).reshape(1, 2, 3)
    >>> jr.augment.random_flip_left_right(jax.random.key(0), image, probability=1.0)[0, 0]
    Array([3., 4., 5.], dtype=float32)
  """
  return _random_flip("random_flip_left_right", 1, key, image, probability)


def random_flip_up_down(key: jax.Array, image: jax.typing.ArrayLike, *,
                        probability: float = 0.5) -> jax.Array:
  """Mirrors the image vertically with probability ``probability``.

  Args:
    key: a PRNG key.
    image: HWC float image.
    probability: chance of flipping, in [0, 1].

  Returns:
    The image, mirrored or not.

  Raises:
    ValueError: ``probability`` outside [0, 1]; a non-HWC image.
    TypeError: non-float image, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.arange(6.0).reshape(2, 1, 3)
    >>> jr.augment.random_flip_up_down(jax.random.key(0), image, probability=1.0)[0, 0]
    Array([3., 4., 5.], dtype=float32)
  """
  return _random_flip("random_flip_up_down", 0, key, image, probability)


def _static_crop(image, top: int, left: int, h: int, w: int):
  return image[top:top + h, left:left + w]


def _check_fits(image, h, w, op):
  if h > image.shape[0] or w > image.shape[1]:
    raise ValueError(f"{op}: crop {(h, w)} is larger than the image {image.shape[:2]}.")


def center_crop(image: jax.typing.ArrayLike, size: int | Sequence[int]) -> jax.Array:
  """The central ``size`` window (offsets rounded down, like torchvision's for even margins).

  Args:
    image: HWC float image.
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
  image = _check_image(image, op)
  h, w = _pair(size, op, "size")
  _check_fits(image, h, w, op)
  return _static_crop(image, (image.shape[0] - h) // 2, (image.shape[1] - w) // 2, h, w)


def five_crop(image: jax.typing.ArrayLike, size: int | Sequence[int]) -> jax.Array:
  """The four corner crops and the center crop, stacked.

  Order: top-left, top-right, bottom-left, bottom-right, center (torchvision's order).

  Args:
    image: HWC float image.
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
  op = "five_crop"
  image = _check_image(image, op)
  h, w = _pair(size, op, "size")
  _check_fits(image, h, w, op)
  height, width = image.shape[:2]
  corners = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
             ((height - h) // 2, (width - w) // 2)]
  return jnp.stack([_static_crop(image, t, left, h, w) for t, left in corners])


def ten_crop(image: jax.typing.ArrayLike, size: int | Sequence[int]) -> jax.Array:
  """ResNet's 10 test views: `five_crop` of the image, then of its horizontal mirror.

  Order: the five crops of the image (top-left, top-right, bottom-left, bottom-right, center),
  then the five crops of ``image[:, ::-1]`` in the same order (so view 5 is the mirror of the
  image's top-right corner, torchvision's convention).

  Args:
    image: HWC float image.
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
  image = _check_image(image, "ten_crop")
  return jnp.concatenate([five_crop(image, size), five_crop(jnp.flip(image, 1), size)])


def _axis_taps(start, length, out_size: int, in_size: int, antialias: bool, *, valid):
  """Source indices and weights (out_size, taps) of a triangle-filter resampling of one axis.

  Output pixel ``i`` samples the input at ``start + (i + 0.5) * length / out_size - 0.5``
  (pixel centers, as `jax.image.scale_and_translate`). The triangle has half-width 1, or the
  shrink factor when antialiasing a shrink; taps outside ``valid = (first, last)`` get
  weight 0 and the rest are renormalized, which is how `jax.image.resize` treats the edges of
  the array it resizes (the box itself for a crop-then-resize, the whole image for a
  resize-then-crop). The tap count is static: enough for the largest shrink a box inside the
  image can need.
  """
  step = length / out_size
  centers = start + (jnp.arange(out_size, dtype=jnp.float32) + 0.5) * step - 0.5
  width = jnp.maximum(step, 1.0) if antialias else jnp.ones_like(step)
  largest = max(in_size / out_size, 1.0) if antialias else 1.0
  taps = math.floor(2 * largest) + 1
  first = jnp.floor(centers - width) + 1
  positions = first[:, None] + jnp.arange(taps, dtype=jnp.float32)[None, :]
  weights = jnp.maximum(0.0, 1.0 - jnp.abs(positions - centers[:, None]) / width)
  weights = jnp.where((positions >= valid[0]) & (positions <= valid[1]), weights, 0.0)
  weights = weights / jnp.maximum(jnp.sum(weights, axis=1, keepdims=True), 1e-12)
  indices = jnp.clip(positions, 0, in_size - 1).astype(jnp.int32)
  return indices, weights


def _resample_box(image, top, left, box_h, box_w, size, antialias: bool, *, crop_first: bool):
  """Resamples the box (top, left, box_h, box_w) of ``image`` to ``size``, separably.

  ``crop_first``: only pixels inside the box contribute (crop, then resize the crop: the box
  must then lie on whole pixels); otherwise pixels just outside the box blend in at its border,
  as they do when the whole image is resized and then cropped.

  A gather of a few taps per axis: work proportional to the output, where a dense resampling
  matrix (what `jax.image.scale_and_translate` builds for traced scales) costs input x output
  per axis.
  """
  out_h, out_w = size
  height, width = image.shape[:2]
  if crop_first:
    row_valid, col_valid = (top, top + box_h - 1), (left, left + box_w - 1)
  else:
    row_valid, col_valid = (0, height - 1), (0, width - 1)
  rows, row_w = _axis_taps(top, box_h, out_h, height, antialias, valid=row_valid)
  cols, col_w = _axis_taps(left, box_w, out_w, width, antialias, valid=col_valid)
  # Half precision is resampled in float32 and rounded once, at the end.
  dtype = _compute_dtype(image)
  row_w, col_w = row_w.astype(dtype), col_w.astype(dtype)
  x = image.astype(dtype)
  # One weighted gather per tap, summed: XLA fuses them into a single pass per axis.
  x = sum(row_w[:, t, None, None] * x[rows[:, t]] for t in range(rows.shape[1]))
  x = sum(col_w[None, :, t, None] * x[:, cols[:, t]] for t in range(cols.shape[1]))
  return x.astype(image.dtype)


def _sample_box(key, height: int, width: int, scale, ratio, attempts: int = 10):
  """torchvision's RandomResizedCrop box: ``attempts`` tries at once, then a central fallback."""
  k_area, k_ratio, k_top, k_left = jax.random.split(key, 4)
  area = height * width
  target = area * jax.random.uniform(k_area, (attempts,), minval=scale[0], maxval=scale[1])
  log_ratio = jax.random.uniform(k_ratio, (attempts,), minval=math.log(ratio[0]),
                                 maxval=math.log(ratio[1]))
  aspect = jnp.exp(log_ratio)
  w = jnp.round(jnp.sqrt(target * aspect))
  h = jnp.round(jnp.sqrt(target / aspect))
  ok = (w >= 1) & (w <= width) & (h >= 1) & (h <= height)
  first = jnp.argmax(ok)
  # Fallback (no try fits): the largest central box with the ratio clamped to `ratio`. The
  # rounded side is kept within [1, image side]: on a 5x1 image with ratio (3, 4) the box
  # would otherwise be round(1 / 3) = 0 rows high, and its resampling a flat image.
  in_ratio = width / height
  if in_ratio < ratio[0]:
    fb_w, fb_h = width, min(max(round(width / ratio[0]), 1), height)
  elif in_ratio > ratio[1]:
    fb_h, fb_w = height, min(max(round(height * ratio[1]), 1), width)
  else:
    fb_w, fb_h = width, height
  found = ok[first]
  box_h = jnp.where(found, h[first], fb_h)
  box_w = jnp.where(found, w[first], fb_w)
  top = jnp.where(found, jnp.floor(jax.random.uniform(k_top) * (height - box_h + 1)),
                  (height - fb_h) // 2)
  left = jnp.where(found, jnp.floor(jax.random.uniform(k_left) * (width - box_w + 1)),
                   (width - fb_w) // 2)
  return top, left, box_h, box_w, found


def _check_box_ranges(scale, ratio, op):
  """The ``scale`` and ``ratio`` ranges of `_sample_box`, as given to the public op."""
  checked_scale = _check_pair_range(scale, op, "scale", low=0.0, high=1.0)
  checked_ratio = _check_pair_range(ratio, op, "ratio", low=0.0)
  if checked_scale[1] <= 0:
    raise ValueError(f"{op}: `scale` must have a positive upper bound, got {scale!r}.")
  if checked_ratio[0] <= 0:
    raise ValueError(f"{op}: `ratio` must be positive (a log-uniform draw), got {ratio!r}.")
  return checked_scale, checked_ratio


def random_resized_crop(key: jax.Array, image: jax.typing.ArrayLike,
                        size: int | Sequence[int], *, scale: Sequence[float] = (0.08, 1.0),
                        ratio: Sequence[float] = (3 / 4, 4 / 3),
                        antialias: bool = True) -> jax.Array:
  """The "stretch" crop of Inception/ResNet training: random area and aspect, resized to ``size``.

  Samples a box covering a fraction of the image area drawn from ``scale`` with a log-uniform
  aspect ratio (width / height) from ``ratio`` (10 tries, then the central box with the ratio
  clamped, as torchvision does, and its sides kept between 1 pixel and the image's), and
  resamples it to ``size`` with bilinear interpolation (antialiased when shrinking). The result
  is torchvision's crop-then-resize: ``jax.image.resize(crop, size, "linear", antialias=...)``
  of the box, so only pixels inside the box contribute, also at its border. The output shape
  is static; only the box is random.

  Args:
    key: a PRNG key.
    image: HWC float image.
    size: output height and width (int or pair).
    scale: ``(lo, hi)``, range of the box area as a fraction of the image area,
      ``0 <= lo <= hi <= 1`` and ``hi > 0``.
    ratio: ``(lo, hi)``, range of the box aspect ratio (width / height), ``0 < lo <= hi``.
    antialias: low-pass filter when the box is shrunk (as PIL and torchvision's
      ``antialias=True`` do); a bool.

  Returns:
    The ``(size_h, size_w, C)`` resampled crop.

  Raises:
    ValueError: invalid ``scale``/``ratio`` ranges or pairs of the wrong length; a non-HWC
      image.
    TypeError: ``scale``/``ratio`` not pairs of numbers, non-bool ``antialias``, non-float
      image, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.ones((256, 256, 3)) * 0.5
    >>> jr.augment.random_resized_crop(jax.random.key(0), image, 224).shape
    (224, 224, 3)

  References:
    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.
  """
  op = "random_resized_crop"
  image = _check_image(image, op)
  out = _pair(size, op, "size")
  scale, ratio = _check_box_ranges(scale, ratio, op)
  antialias = _checks.check_bool(antialias, op, "antialias")
  key = _checks.as_key(key, op)
  top, left, box_h, box_w, _ = _sample_box(key, image.shape[0], image.shape[1], scale, ratio)
  return _resample_box(image, top, left, box_h, box_w, out, antialias, crop_first=True)


def _shorter_side_resized(height: int, width: int, length: int) -> tuple[int, int]:
  """The whole-pixel (height, width) of an image resized so its shorter side is ``length``."""
  shorter = min(height, width)
  return round(height * length / shorter), round(width * length / shorter)


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
  data-dependent size exists and the output shape is static.

  Args:
    key: a PRNG key.
    image: HWC float image.
    size: output height and width (int or pair).
    scales: non-empty iterable (tuple, list, range, generator, NumPy or JAX array) of
      candidate lengths of the resized shorter side, positive ints or integer-valued floats
      (ResNet: 256 to 480); each must leave room for the crop.
    antialias: low-pass filter when shrinking; a bool.

  Returns:
    The ``(size_h, size_w, C)`` crop.

  Raises:
    ValueError: a scale too small for the crop or < 1, empty ``scales``; a non-HWC image.
    TypeError: ``scales`` not an iterable of whole numbers (a bare number, a 0-d array, a
      ``5.5`` or a bool in it), non-bool ``antialias``, non-float image, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.ones((300, 400, 3)) * 0.5
    >>> jr.augment.random_scale_crop(jax.random.key(0), image, 224, scales=(256, 320)).shape
    (224, 224, 3)

  References:
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (Sec. 3.4), after
    Simonyan & Zisserman 2015.
  """
  op = "random_scale_crop"
  image = _check_image(image, op)
  out_h, out_w = _pair(size, op, "size")
  scales = _check_scales(scales, op)
  antialias = _checks.check_bool(antialias, op, "antialias")
  height, width = image.shape[:2]
  # The resized sizes are whole pixels (as in `multi_crop_predict`), so each axis has its own
  # factor resized / original, which is what `jax.image.resize` to that size uses.
  resized = [_shorter_side_resized(height, width, s) for s in scales]
  for s, (resized_h, resized_w) in zip(scales, resized, strict=True):
    if resized_h < out_h or resized_w < out_w:
      raise ValueError(f"{op}: scale {s} resizes the {height}x{width} image to "
                       f"{resized_h}x{resized_w}, smaller than the {out_h}x{out_w} crop.")
  key = _checks.as_key(key, op)
  k_scale, k_top, k_left = jax.random.split(key, 3)
  resized_h, resized_w = jnp.asarray(resized, jnp.float32)[
      jax.random.randint(k_scale, (), 0, len(scales))]
  factor_h, factor_w = resized_h / height, resized_w / width
  # The crop in resized coordinates, mapped back to a box of the original image.
  top = jnp.floor(jax.random.uniform(k_top) * (resized_h - out_h + 1))
  left = jnp.floor(jax.random.uniform(k_left) * (resized_w - out_w + 1))
  return _resample_box(image, top / factor_h, left / factor_w, out_h / factor_h,
                       out_w / factor_w, (out_h, out_w), antialias, crop_first=False)


# --------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------


def rgb_to_hsv(image: jax.typing.ArrayLike) -> jax.Array:
  """RGB in [0, 1] to HSV in [0, 1] (hue as a fraction of a turn), channels last.

  Args:
    image: float array with 3 channels last.

  Returns:
    HSV array of the same shape.

  Raises:
    ValueError: not 3 channels. TypeError: not floating point.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.rgb_to_hsv(jnp.array([1.0, 0.0, 0.0]))
    Array([0., 1., 1.], dtype=float32)
  """
  image = _checks.check_float_array(image, "rgb_to_hsv", "image")
  _check_rgb(image, "rgb_to_hsv")
  r, g, b = image[..., 0], image[..., 1], image[..., 2]
  value = jnp.maximum(jnp.maximum(r, g), b)
  chroma = value - jnp.minimum(jnp.minimum(r, g), b)
  safe_value = jnp.where(value > 0, value, 1)
  saturation = jnp.where(value > 0, chroma / safe_value, 0)
  safe_chroma = jnp.where(chroma > 0, chroma, 1)
  hue = jnp.where(value == r, (g - b) / safe_chroma,
                  jnp.where(value == g, 2 + (b - r) / safe_chroma, 4 + (r - g) / safe_chroma))
  hue = jnp.where(chroma > 0, _wrap6(hue) / 6, 0)
  return jnp.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(image: jax.typing.ArrayLike) -> jax.Array:
  """HSV in [0, 1] (hue as a fraction of a turn) to RGB, channels last.

  Args:
    image: float array with 3 channels last (hue, saturation, value).

  Returns:
    RGB array of the same shape.

  Raises:
    ValueError: not 3 channels. TypeError: not floating point.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.hsv_to_rgb(jnp.array([2 / 3, 1.0, 1.0]))
    Array([0., 0., 1.], dtype=float32)
  """
  image = _checks.check_float_array(image, "hsv_to_rgb", "image")
  _check_rgb(image, "hsv_to_rgb")
  h, s, v = image[..., 0], image[..., 1], image[..., 2]
  # f(n) = v - v s max(0, min(k, 4 - k, 1)), k = (n + 6 h) mod 6, for n = 5, 3, 1 -> r, g, b
  channels = []
  for n in (5.0, 3.0, 1.0):
    k = _wrap6(n + 6.0 * h)
    channels.append(v - v * s * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0))
  return jnp.stack(channels, axis=-1)


def _wrap6(x):
  # x mod 6 by floor, not `%`: XLA lowers float `%` to a libm fmod call per element on CPU.
  return x - 6 * jnp.floor(x / 6)


def _compute_dtype(image):
  # Half-precision colour maths (a hue sector, a division by the chroma) loses several bits
  # per step; it runs in float32 and the result is rounded to the image's dtype once.
  return _checks.float32_or_wider(image.dtype)


def adjust_saturation(image: jax.typing.ArrayLike, factor: jax.typing.ArrayLike, *,
                      clip: bool = False) -> jax.Array:
  """Multiplies the HSV saturation by ``factor`` (clamped to [0, 1] in HSV), like tf.image.

  Each channel ``x`` becomes ``V - f (V - x)`` with ``V`` the largest channel and ``f`` the
  factor, capped where the saturation would pass 1: on pixels with no negative channel, dm_pix's
  and tf.image's HSV rule. A pixel with a negative channel (an unclipped brightness step can
  make them) has a saturation already beyond 1, or none (``V <= 0``); there the factor is
  capped at 1, so saturation can only go down. For every pixel ``V`` is kept, factor 0 gives
  grey ``(V, V, V)`` and factor 1 returns it unchanged (dm_pix and tf.image pull those pixels
  to S = 1, and turn the ones with ``V <= 0`` grey, even at factor 1).

  Args:
    image: RGB float image (any leading shape, 3 channels last).
    factor: saturation multiplier, >= 0 (0 gives grey, 1 the image): a scalar, or an array
      (tuple, list, NumPy or JAX) that broadcasts to the image's shape without enlarging it,
      e.g. ``(N, 1, 1, 1)`` for one factor per image of an NHWC batch or ``(H, W, 1)`` per
      pixel. Concrete values are checked elementwise; a traced factor is checked for shape
      only, and a negative entry acts as 0.
    clip: clamp the RGB result to [0, 1] (a bool).

  Returns:
    The adjusted image, same shape and dtype (half precision is computed in float32).

  Raises:
    ValueError: not RGB; a ``factor`` that does not broadcast to the image's shape, or with a
      negative, NaN or infinite entry.
    TypeError: not floating point; a non-real ``factor``; non-bool ``clip``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.adjust_saturation(jnp.array([0.8, 0.4, 0.4]), 0.0)
    Array([0.8, 0.8, 0.8], dtype=float32)
  """
  op = "adjust_saturation"
  image = _checks.check_float_array(image, op, "image")
  _check_rgb(image, op)
  factor = _check_image_operand(factor, image.shape, op, "factor", lo=0.0)
  clip = _checks.check_bool(clip, op, "clip")
  x = image.astype(_compute_dtype(image))
  value, effective = _saturation_scale(x[..., 0:1], x[..., 1:2], x[..., 2:3], factor)
  return _maybe_clip(value - effective * (value - x), clip).astype(image.dtype)


def _saturation_scale(r, g, b, factor):
  """(V, f) such that each channel x becomes ``V - f (V - x)``: the saturation times ``factor``.

  In HSV every channel is V - V * S * k(H); scaling S (clamped to 1) scales V - RGB by the
  same factor, so no round trip through HSV is needed. ``r, g, b`` are planes or channel slices.
  The cap 1 / S keeps S <= 1; where S > 1 or V <= 0 (a negative channel) it is 1 instead, so
  factor 1 stays the identity and the cap never turns the sign of ``f``.
  """
  value = jnp.maximum(jnp.maximum(r, g), b)
  spread = value - jnp.minimum(jnp.minimum(r, g), b)  # V * S
  factor = jnp.asarray(factor, r.dtype)
  inverse = value / jnp.where(spread > 0, spread, 1)  # 1 / S where V > 0
  # `where`, not `maximum`: at a tie (a channel at exactly 0) the derivative stays that of 1 / S
  limit = jnp.where(spread > 0, jnp.where(inverse >= 1, inverse, 1), jnp.inf)
  return value, jnp.minimum(jnp.maximum(factor, 0), limit.astype(r.dtype))


def _saturate_planes(planes, factor):
  value, effective = _saturation_scale(*planes, factor)
  return tuple(value - effective * (value - x) for x in planes)


def adjust_hue(image: jax.typing.ArrayLike, delta: jax.typing.ArrayLike, *,
               clip: bool = False) -> jax.Array:
  """Rotates the hue by ``delta`` turns, like tf.image.

  The largest channel ``V`` and the chroma (largest minus smallest channel) are kept; only
  the hue moves. That holds for any real RGB values, so ``delta = 0`` returns every pixel
  unchanged, also outside [0, 1] (dm_pix and tf.image go through S = chroma / V and turn
  pixels with ``V <= 0`` grey).

  Args:
    image: RGB float image (any leading shape, 3 channels last).
    delta: hue shift as a fraction of a full turn; any finite value (the shift is periodic:
      [-0.5, 0.5] covers every rotation). A scalar, or an array (tuple, list, NumPy or JAX)
      with one shift per pixel that broadcasts to the image's shape without enlarging it and
      has size 1 on the channel axis, e.g. ``(N, 1, 1, 1)`` for one shift per image of an NHWC
      batch or ``(H, W, 1)`` per pixel. Concrete values are checked elementwise; a traced delta
      is checked for shape only.
    clip: clamp the RGB result to [0, 1] (a bool).

  Returns:
    The adjusted image, same shape and dtype (half precision is computed in float32).

  Raises:
    ValueError: not RGB; a ``delta`` that does not broadcast to the image's shape or has more
      than one entry on the channel axis, or with a NaN or infinite entry.
    TypeError: not floating point; a non-real ``delta``; non-bool ``clip``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> jr.augment.adjust_hue(jnp.array([1.0, 0.0, 0.0]), 1 / 3)  # red -> green
    Array([0., 1., 0.], dtype=float32)
  """
  op = "adjust_hue"
  image = _checks.check_float_array(image, op, "image")
  _check_rgb(image, op)
  delta = _check_image_operand(delta, image.shape, op, "delta", per_pixel=True)
  clip = _checks.check_bool(clip, op, "clip")
  if jnp.ndim(delta):
    delta = delta[..., 0]  # aligned with the (..., H, W) planes
  shifted = _shift_hue_planes(_planes(image.astype(_compute_dtype(image))), delta)
  return _maybe_clip(jnp.stack(shifted, axis=-1), clip).astype(image.dtype)


def _planes(image):
  return image[..., 0], image[..., 1], image[..., 2]


def _shift_hue_planes(planes, delta):
  # rgb_to_hsv, a hue shift and hsv_to_rgb, fused: V and the chroma V * S are kept, only the
  # hue sector moves, and no HSV image is ever materialized.
  r, g, b = planes
  value = jnp.maximum(jnp.maximum(r, g), b)
  chroma = value - jnp.minimum(jnp.minimum(r, g), b)
  safe = jnp.where(chroma > 0, chroma, 1)
  sector = jnp.where(value == r, (g - b) / safe,
                     jnp.where(value == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
  sector = _wrap6(sector + 6 * jnp.asarray(delta, r.dtype))  # hue in sixths of a turn
  channels = []
  for n in (5.0, 3.0, 1.0):
    k = _wrap6(n + sector)
    channels.append(value - chroma * jnp.clip(jnp.minimum(k, 4 - k), 0, 1))
  return tuple(channels)


def _uniform(key, lo, hi):
  return jax.random.uniform(key, (), minval=lo, maxval=hi)


def random_brightness(key: jax.Array, image: jax.typing.ArrayLike, max_delta: float, *,
                      clip: bool = False) -> jax.Array:
  """Adds one random offset in ``[-max_delta, max_delta]`` to every pixel (tf.image's rule).

  Args:
    key: a PRNG key.
    image: HWC float image.
    max_delta: largest offset, a Python number >= 0.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The brightened (or darkened) image, same dtype (half precision is computed in float32).

  Raises:
    ValueError: negative or non-finite ``max_delta``; a non-HWC image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> out = jr.augment.random_brightness(jax.random.key(0), jnp.full((2, 2, 3), 0.5), 0.2)
    >>> bool(jnp.all(jnp.abs(out - 0.5) <= 0.2))
    True
  """
  op = "random_brightness"
  image = _check_image(image, op)
  max_delta = _check_strength(max_delta, op, "max_delta")
  clip = _checks.check_bool(clip, op, "clip")
  dtype = _compute_dtype(image)
  delta = _uniform(_checks.as_key(key, op), -max_delta, max_delta).astype(dtype)
  return _maybe_clip(image.astype(dtype) + delta, clip).astype(image.dtype)


def _contrast(image, factor, axes=(-3, -2)):
  # per-channel mean over H and W: axes (-3, -2) of an HWC image, (-2, -1) of a plane
  mean = jnp.mean(image, axis=axes, keepdims=True)
  return (image - mean) * factor + mean


def random_contrast(key: jax.Array, image: jax.typing.ArrayLike, lower: float, upper: float, *,
                    clip: bool = False) -> jax.Array:
  """Scales each channel's deviation from its mean by a factor from ``[lower, upper]``.

  ``(x - mean) * factor + mean`` with the per-channel mean over H and W (tf.image's rule).

  Args:
    key: a PRNG key.
    image: HWC float image.
    lower: smallest factor, >= 0.
    upper: largest factor, >= lower.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image, same dtype (half precision is computed in float32).

  Raises:
    ValueError: an invalid range; a non-HWC image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.linspace(0, 1, 12).reshape(2, 2, 3)
    >>> jr.augment.random_contrast(jax.random.key(0), image, 0.5, 1.5).shape
    (2, 2, 3)
  """
  op = "random_contrast"
  image = _check_image(image, op)
  lo, hi = _check_range(lower, upper, op, "(lower, upper)", low=0.0)
  clip = _checks.check_bool(clip, op, "clip")
  dtype = _compute_dtype(image)
  factor = _uniform(_checks.as_key(key, op), lo, hi).astype(dtype)
  return _maybe_clip(_contrast(image.astype(dtype), factor), clip).astype(image.dtype)


def random_saturation(key: jax.Array, image: jax.typing.ArrayLike, lower: float, upper: float,
                      *, clip: bool = False) -> jax.Array:
  """Multiplies the HSV saturation by a factor from ``[lower, upper]`` (see `adjust_saturation`).

  Args:
    key: a PRNG key.
    image: HWC RGB float image.
    lower: smallest factor, >= 0.
    upper: largest factor, >= lower.
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image.

  Raises:
    ValueError: an invalid range; not an HWC RGB image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.full((2, 2, 3), 0.5).at[..., 0].set(0.9)
    >>> jr.augment.random_saturation(jax.random.key(0), image, 0.5, 1.5).shape
    (2, 2, 3)
  """
  op = "random_saturation"
  image = _check_image(image, op)
  _check_rgb(image, op)
  lo, hi = _check_range(lower, upper, op, "(lower, upper)", low=0.0)
  clip = _checks.check_bool(clip, op, "clip")
  return adjust_saturation(image, _uniform(_checks.as_key(key, op), lo, hi), clip=clip)


def random_hue(key: jax.Array, image: jax.typing.ArrayLike, max_delta: float, *,
               clip: bool = False) -> jax.Array:
  """Rotates the hue by a random fraction of a turn in ``[-max_delta, max_delta]``.

  Args:
    key: a PRNG key.
    image: HWC RGB float image.
    max_delta: largest shift, a Python number in [0, 0.5].
    clip: clamp the result to [0, 1] (a bool).

  Returns:
    The adjusted image.

  Raises:
    ValueError: ``max_delta`` outside [0, 0.5]; not an HWC RGB image.
    TypeError: non-float image, bad key, non-bool ``clip``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.full((2, 2, 3), 0.5).at[..., 0].set(0.9)
    >>> jr.augment.random_hue(jax.random.key(0), image, 0.1).shape
    (2, 2, 3)
  """
  op = "random_hue"
  image = _check_image(image, op)
  _check_rgb(image, op)
  max_delta = _check_strength(max_delta, op, "max_delta", hi=0.5)
  clip = _checks.check_bool(clip, op, "clip")
  return adjust_hue(image, _uniform(_checks.as_key(key, op), -max_delta, max_delta), clip=clip)


def color_jitter(key: jax.Array, image: jax.typing.ArrayLike, *, brightness: float = 0.0,
                 contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0,
                 clip: bool = True, random_order: bool = True) -> jax.Array:
  """Random brightness, contrast, saturation and hue, applied in a random order.

  Brightness adds a delta from ``[-brightness, brightness]``; contrast and saturation multiply by
  a factor from ``[max(0, 1 - c), 1 + c]``; hue shifts by ``[-hue, hue]`` turns. Each example
  draws its own order (one of the 24 permutations, as torchvision's ``ColorJitter``) and factors;
  with ``clip`` the image is clamped to [0, 1] after every step, as torchvision does for float
  images. A zero strength skips that op. The key is split in five: order, brightness, contrast,
  saturation, hue; each factor is one uniform draw from its key.

  ``random_order=False`` applies brightness, contrast, saturation, hue in that order (the order
  of dm_pix and tf.image pipelines, SimCLR's ``random_order=False``). Batched with `vmap` on an
  accelerator, a random order costs all four ops at each of the four steps (a per-example
  choice of op becomes a select), so the fixed order is about twice as fast there. On a CPU a
  batch runs as a loop over the examples instead, each doing only its own ops, in either
  order at the same speed; results and derivatives are those of the vectorized form.

  Args:
    key: a PRNG key.
    image: HWC RGB float image.
    brightness: brightness strength, >= 0.
    contrast: contrast strength, >= 0.
    saturation: saturation strength, >= 0.
    hue: hue strength, in [0, 0.5].
    clip: clamp to [0, 1] after each op (a bool).
    random_order: draw the order per example (True), or use the fixed order above (a bool).

  Returns:
    The jittered image, same dtype (half precision is computed in float32 and rounded once).

  Raises:
    ValueError: negative or non-finite strengths, ``hue`` > 0.5; not an HWC RGB image.
    TypeError: non-float image, bad key, non-bool ``clip`` or ``random_order``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jax.random.uniform(jax.random.key(1), (8, 8, 3))
    >>> out = jr.augment.color_jitter(jax.random.key(0), image, brightness=0.4, contrast=0.4,
    ...                               saturation=0.4, hue=0.1)
    >>> bool((out >= 0).all() & (out <= 1).all())
    True
  """
  op = "color_jitter"
  image = _check_image(image, op)
  _check_rgb(image, op)
  brightness, contrast, saturation = (
      _check_strength(value, op, name) for name, value in (
          ("brightness", brightness), ("contrast", contrast), ("saturation", saturation)))
  hue = _check_strength(hue, op, "hue", hi=0.5)
  clip = _checks.check_bool(clip, op, "clip")
  random_order = _checks.check_bool(random_order, op, "random_order")
  key = _checks.as_key(key, op)
  k_order, k_b, k_c, k_s, k_h = jax.random.split(key, 5)
  draws = (_uniform(k_b, -brightness, brightness),
           _uniform(k_c, max(0.0, 1 - contrast), 1 + contrast),
           _uniform(k_s, max(0.0, 1 - saturation), 1 + saturation),
           _uniform(k_h, -hue, hue))
  used = tuple(i for i, strength in enumerate((brightness, contrast, saturation, hue)) if strength)
  if not used:
    return image
  order = jax.random.permutation(k_order, len(used)) if random_order else None
  compute = image.astype(_compute_dtype(image))
  return _jitter(compute, draws, used, clip, order).astype(image.dtype)


# The four colour ops on an HWC image and on a tuple of (r, g, b) planes: one formula each.
def _jitter_steps(draws, used, clip, planar):
  b, c, s, h = draws
  if planar:
    steps = (lambda p: tuple(x + b.astype(x.dtype) for x in p),
             lambda p: tuple(_contrast(x, c.astype(x.dtype), axes=(-2, -1)) for x in p),
             lambda p: _saturate_planes(p, s),
             lambda p: _shift_hue_planes(p, h))
    return [lambda p, f=steps[i]: tuple(_maybe_clip(x, clip) for x in f(p)) for i in used]
  steps = (lambda x: x + b.astype(x.dtype),
           lambda x: _contrast(x, c.astype(x.dtype)),
           lambda x: adjust_saturation(x, s),
           lambda x: adjust_hue(x, h))
  return [lambda x, f=steps[i]: _maybe_clip(f(x), clip) for i in used]


def _jitter_in_order(image, draws, used, order, clip, *, select=False):
  """Applies the ``used`` ops in ``order``: static, or traced (then a switch per position, or
  with ``select`` every op and a select: what `vmap` makes of the switch anyway)."""
  steps = _jitter_steps(draws, used, clip, planar=False)
  for position in range(len(steps)):
    if isinstance(order, tuple):
      image = steps[order[position]](image)
    elif select:
      image = lax.select_n(order[position], *(step(image) for step in steps))
    else:
      image = lax.switch(order[position], steps, image)
  return image


def _jitter_on_planes(image, draws, used, order, clip):
  """The same ops on (r, g, b) planes, one ``switch`` per position (``order`` None: fixed).

  Only for an unbatched image: vectorized, XLA duplicates each position's producers into every
  consumer (seconds instead of milliseconds). The branches matter too: a straight-line chain
  of the four ops in a per-example loop body was 4x slower. So the fixed order goes through a
  loop over positions, whose switch index XLA cannot fold into a straight line.
  """
  steps = _jitter_steps(draws, used, clip, planar=True)
  planes = _planes(image)
  if order is None:
    fixed = jnp.arange(len(steps))
    planes = lax.fori_loop(0, len(steps), lambda i, p: lax.switch(fixed[i], steps, p), planes)
  else:
    for position in range(len(steps)):  # unrolled: 12% faster than the loop
      planes = lax.switch(order[position], steps, planes)
  return jnp.stack(planes, axis=-1)


def _jitter(image, draws, used, clip, order=None):
  """The jitter in a drawn ``order`` (None: the fixed one): vectorized, except on a CPU.

  Under `vmap` a per-example ``switch`` becomes a select that computes every op at every
  position (16 op evaluations for 4 ops). On a CPU a batch runs as a loop over the examples
  instead, doing only the drawn ops, on (r, g, b) planes of an image that stays in cache: 2-3x
  faster for the random order, 1.1x for the fixed one. On accelerators, where a loop
  serializes the batch, the vectorized form stays. Derivatives (forward and reverse) are those
  of the vectorized form, which computes the same function.
  """
  fixed = tuple(range(len(used)))

  def vectorized(image, draws, *drawn, select=False):
    return _jitter_in_order(image, draws, used, drawn[0] if drawn else fixed, clip, select=select)

  def on_planes(image, draws, *drawn):
    return _jitter_on_planes(image, draws, used, drawn[0] if drawn else None, clip)

  looped = jax.custom_jvp(jax.custom_batching.sequential_vmap(on_planes))

  @looped.defjvp
  def _(primals, tangents):
    image, draws, *drawn = primals  # the order is an integer: no tangent
    # Selects, not a switch: a switch batched inside this rule leaves a stop_gradient in the
    # tangent computation that reverse mode cannot transpose.
    selected = lambda x, d: vectorized(x, d, *drawn, select=True)  # noqa: E731
    return jax.jvp(selected, (image, draws), tangents[:2])

  drawn = () if order is None else (order,)
  return lax.platform_dependent(image, draws, *drawn, cpu=looped, default=vectorized)


# --------------------------------------------------------------------------------------------
# Erasing and mixing
# --------------------------------------------------------------------------------------------


def random_erasing(key: jax.Array, image: jax.typing.ArrayLike, *, probability: float = 0.5,
                   scale: Sequence[float] = (0.02, 0.33), ratio: Sequence[float] = (0.3, 3.3),
                   value: jax.typing.ArrayLike | Sequence[float] = 0.0) -> jax.Array:
  """Random erasing / cutout: with ``probability``, fills a random box with ``value``.

  The box has an area fraction from ``scale`` and aspect ratio from ``ratio`` (log-uniform,
  10 tries; if none fits, nothing is erased), as in Zhong et al. and torchvision.

  Args:
    key: a PRNG key.
    image: HWC float image.
    probability: chance of erasing, in [0, 1].
    scale: ``(lo, hi)``, range of the erased area fraction, ``0 <= lo <= hi <= 1`` and
      ``hi > 0``.
    ratio: ``(lo, hi)``, range of the box aspect ratio, ``0 < lo <= hi``.
    value: fill value, finite (0 by default): a scalar, a per-channel ``(C,)`` tuple, list or
      array (torchvision's tuple ``value``, e.g. the ImageNet means ``(0.485, 0.456, 0.406)``),
      or any array that broadcasts to the image's shape without enlarging it (``(H, W, C)``
      noise, say). Concrete values are checked elementwise; a traced value for shape only.

  Returns:
    The image with at most one box filled.

  Raises:
    ValueError: invalid ranges or probability, ranges that are not pairs, a ``value`` with a
      NaN or infinite entry or that does not broadcast to the image's shape; a non-HWC image.
    TypeError: non-float image, bad key, ``scale``/``ratio`` not pairs of numbers, a non-real
      ``value``.

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
  op = "random_erasing"
  image = _check_image(image, op)
  _check_probability(probability, op)
  scale, ratio = _check_box_ranges(scale, ratio, op)
  value = _check_image_operand(value, image.shape, op, "value")
  key = _checks.as_key(key, op)
  k_apply, k_box = jax.random.split(key)
  height, width = image.shape[:2]
  # Same box sampler as random_resized_crop, but no fallback: a failed draw erases nothing.
  top, left, box_h, box_w, found = _sample_box(k_box, height, width, scale, ratio)
  apply = jax.random.bernoulli(k_apply, probability) & found
  rows = jnp.arange(height, dtype=jnp.float32)[:, None, None]
  cols = jnp.arange(width, dtype=jnp.float32)[None, :, None]
  inside = (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
  return jnp.where(apply & inside, jnp.asarray(value, image.dtype), image)


def _check_batch_and_labels(images, labels, op):
  images = _check_image(images, op, batch=True)
  labels = _checks.check_float_array(labels, op, "labels")
  if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
    raise ValueError(f"{op}: `labels` must be one-hot or soft labels of shape (N, classes) with "
                     f"N = {images.shape[0]}, got {labels.shape}. Convert integer labels with "
                     "jax.nn.one_hot(labels, num_classes).")
  return images, labels


def mixup(key: jax.Array, images: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, *,
          alpha: float = 0.2) -> tuple[jax.Array, jax.Array]:
  """Mixup: blends each example with a random partner, images and labels alike.

  Example ``i`` is paired with example ``perm[i]`` of a random permutation and gets its own
  weight ``lam_i ~ Beta(alpha, alpha)``: ``x_i' = lam_i x_i + (1 - lam_i) x_perm[i]`` and the same
  for its labels, so each label stays a probability vector matching its image.

  Args:
    key: a PRNG key.
    images: NHWC float batch.
    labels: ``(N, classes)`` one-hot or soft labels (float).
    alpha: Beta distribution parameter, > 0.

  Returns:
    ``(mixed_images, mixed_labels)``.

  Raises:
    ValueError: non-positive ``alpha``; labels not ``(N, classes)``; non-NHWC images.
    TypeError: non-float images or labels (use ``jax.nn.one_hot``), bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images, labels = jnp.ones((4, 8, 8, 3)), jax.nn.one_hot(jnp.arange(4) % 2, 2)
    >>> x, y = jr.augment.mixup(jax.random.key(0), images, labels)
    >>> bool(jnp.allclose(y.sum(1), 1.0))
    True

  References:
    Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
  """
  op = "mixup"
  images, labels = _check_batch_and_labels(images, labels, op)
  _check_strength(alpha, op, "alpha", lo_open=True)
  k_perm, k_lam = jax.random.split(_checks.as_key(key, op))
  n = images.shape[0]
  perm = jax.random.permutation(k_perm, n)
  lam = jax.random.beta(k_lam, alpha, alpha, (n,))
  lam_x = lam.astype(images.dtype)[:, None, None, None]
  lam_y = lam.astype(labels.dtype)[:, None]
  return (lam_x * images + (1 - lam_x) * images[perm],
          lam_y * labels + (1 - lam_y) * labels[perm])


def cutmix(key: jax.Array, images: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, *,
           alpha: float = 1.0) -> tuple[jax.Array, jax.Array]:
  """CutMix: pastes a random box from a partner image; labels mix by the pasted area.

  Each example draws ``lam ~ Beta(alpha, alpha)``, a box of area ``(1 - lam) H W`` with the
  image's aspect ratio and a uniform center, clipped at the borders, and takes that box from
  example ``perm[i]``. Its label becomes ``(1 - a) y_i + a y_perm[i]`` where ``a`` is the area
  actually pasted (after clipping), so labels always match pixels.

  Args:
    key: a PRNG key.
    images: NHWC float batch.
    labels: ``(N, classes)`` one-hot or soft labels (float).
    alpha: Beta distribution parameter, > 0.

  Returns:
    ``(mixed_images, mixed_labels)``.

  Raises:
    ValueError: non-positive ``alpha``; labels not ``(N, classes)``; non-NHWC images.
    TypeError: non-float images or labels, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images = jnp.stack([jnp.zeros((8, 8, 3)), jnp.ones((8, 8, 3))])
    >>> labels = jax.nn.one_hot(jnp.array([0, 1]), 2)
    >>> x, y = jr.augment.cutmix(jax.random.key(3), images, labels)
    >>> bool(jnp.allclose(y[:, 1], x.mean((1, 2, 3))))  # label weight == pasted area
    True

  References:
    Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
    Features", ICCV 2019.
  """
  op = "cutmix"
  images, labels = _check_batch_and_labels(images, labels, op)
  _check_strength(alpha, op, "alpha", lo_open=True)
  k_perm, k_lam, k_y, k_x = jax.random.split(_checks.as_key(key, op), 4)
  n, height, width, _ = images.shape
  perm = jax.random.permutation(k_perm, n)
  lam = jax.random.beta(k_lam, alpha, alpha, (n,))
  cut = jnp.sqrt(1.0 - lam)
  half_h, half_w = jnp.round(cut * height) / 2, jnp.round(cut * width) / 2
  cy = jax.random.uniform(k_y, (n,)) * height
  cx = jax.random.uniform(k_x, (n,)) * width
  top, bottom = jnp.clip(jnp.round(cy - half_h), 0, height), jnp.clip(jnp.round(cy + half_h),
                                                                       0, height)
  left, right = jnp.clip(jnp.round(cx - half_w), 0, width), jnp.clip(jnp.round(cx + half_w),
                                                                     0, width)
  rows = jnp.arange(height, dtype=jnp.float32)[None, :, None, None]
  cols = jnp.arange(width, dtype=jnp.float32)[None, None, :, None]
  b = lambda v: v[:, None, None, None]  # noqa: E731
  inside = (rows >= b(top)) & (rows < b(bottom)) & (cols >= b(left)) & (cols < b(right))
  mixed = jnp.where(inside, images[perm], images)
  area = ((bottom - top) * (right - left) / (height * width)).astype(labels.dtype)[:, None]
  return mixed, (1 - area) * labels + area * labels[perm]


# --------------------------------------------------------------------------------------------
# Test-time marginalization
# --------------------------------------------------------------------------------------------


def _resize_shorter(image, length: int):
  shape = (*_shorter_side_resized(*image.shape[:2], length), image.shape[2])
  return jax.image.resize(image, shape, method="linear", antialias=True).astype(image.dtype)


def multi_crop_predict(apply_fn: Callable[[jax.Array], Any], images: jax.typing.ArrayLike, *,
                       size: int | Sequence[int], crops: str = "ten",
                       scales: Sequence[int] | None = None) -> Any:
  """Test-time augmentation: averages a model's outputs over crops (and scales).

  For every scale (the image's shorter side resized to it; None keeps the image as is) the
  `ten_crop`, `five_crop` or `center_crop` views are taken, the model is run on all views of all
  images as one batch per scale, and the outputs are averaged over views and scales: ResNet's
  10-crop, multi-scale evaluation.

  Args:
    apply_fn: ``apply_fn(batch) -> outputs`` on NHWC batches (outputs: any pytree of arrays
      with the batch on axis 0, e.g. logits or probabilities: average probabilities rather than
      logits if that is what you want to marginalize).
    images: NHWC float batch.
    size: crop height and width.
    crops: ``"ten"``, ``"five"`` or ``"center"``.
    scales: non-empty iterable (tuple, list, range, generator, NumPy or JAX array) of
      shorter-side lengths to evaluate at, positive ints or integer-valued floats (e.g.
      ``(224, 256, 384, 480, 640)``), or None.

  Returns:
    ``apply_fn``'s outputs averaged over views and scales, with batch size N.

  Raises:
    ValueError: unknown ``crops``, empty ``scales`` or a scale < 1, a crop larger than a
      resized image, non-NHWC images.
    TypeError: non-callable ``apply_fn``, ``scales`` not an iterable of whole numbers (a bare
      number, a 0-d array, a ``5.5`` or a bool in it), non-float images.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> model = lambda batch: batch.mean((1, 2))  # (N, C) "logits"
    >>> jr.augment.multi_crop_predict(model, jnp.ones((2, 40, 40, 3)), size=32).shape
    (2, 3)
  """
  op = "multi_crop_predict"
  if not callable(apply_fn):
    raise TypeError(f"{op}: `apply_fn` must be callable, got {apply_fn!r}.")
  images = _check_image(images, op, batch=True)
  views = {"ten": ten_crop, "five": five_crop, "center": lambda im, s: center_crop(im, s)[None]}
  if crops not in views:
    raise ValueError(f"{op}: `crops` must be 'ten', 'five' or 'center', got {crops!r}.")
  # Checked up front: an empty tuple would skip the loop and return None, not an average.
  scales = (None,) if scales is None else _check_scales(scales, op)
  total, count = None, 0
  for scale in scales:
    resized = images if scale is None else jax.vmap(lambda im, s=scale: _resize_shorter(im, s))(
        images)
    stacked = jax.vmap(lambda im: views[crops](im, size))(resized)  # (N, V, h, w, C)
    n, v = stacked.shape[:2]
    outputs = apply_fn(stacked.reshape((n * v, *stacked.shape[2:])))
    summed = jax.tree.map(lambda o, n=n, v=v: o.reshape((n, v, *o.shape[1:])).sum(1), outputs)
    total = summed if total is None else jax.tree.map(jnp.add, total, summed)
    count += v
  return jax.tree.map(lambda t: t / count, total)
