"""Argument checks shared by the augmentation ops (images, sizes, ranges, operands, sampling).

The same style as `jaxreg._checks`: ``check_x(value, op, name, *, lo=..., hi=...)``. The
runtime halves, `nan_if_bad_probability` and `nan_if_bad_magnitude`, make a result NaN where a
traced value could not be checked at trace time and is out of range.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks

Interpolation = Literal["nearest", "bilinear"]
INTERPOLATIONS = get_args(Interpolation)
PadMode = Literal["constant", "reflect", "edge"]
PAD_MODES = get_args(PadMode)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def check_image(image, op: str, *, batch: bool = False, keyed: bool = True,
                uint8: bool = False) -> jax.Array:
  """A float HWC image (NHWC batch with ``batch``). ``keyed``: the op takes a key first, so
  `batched` maps it over a batch; ops without one are mapped with `jax.vmap`. ``uint8``: the
  op also takes uint8 images."""
  name = "images" if batch else "image"
  if uint8 and getattr(image, "dtype", None) == np.uint8:
    image = jnp.asarray(image)
  else:
    image = _checks.check_float_array(image, op, name, alternative="uint8" if uint8 else None,
                                      image=True)
  if batch:
    layout = "NHWC"
  elif keyed:
    layout = "HWC; use augment.batched for NHWC batches"
  else:
    layout = f"HWC; use jax.vmap(lambda im: {op}(im, ...)) for NHWC batches"
  _checks.check_ndim(image, op, exact=4 if batch else 3, layout=layout, name=name)
  return image


def check_unit_scale(value, op: str, name: str, *, image) -> None:
  """On a uint8 image, a concrete ``value`` (a fill) must still be on the [0, 1] scale: levels
  such as 128 there would be silently clamped to 255. A traced one is not checked."""
  if image.dtype != jnp.uint8 or any(_checks.is_traced(v) for v in jax.tree.leaves(value)):
    return
  array = np.asarray(value, np.float64)
  if array.size and not (np.all(array >= 0) and np.all(array <= 1)):
    raise ValueError(f"{op}: `{name}` is on the [0, 1] scale for a uint8 image too (0.5 is "
                     f"level 128), got {value!r}. Pass levels divided by 255.")


def check_rgb(image, op: str, name: str = "image") -> None:
  """Three channels on the last axis."""
  if image.ndim == 0 or image.shape[-1] != 3:
    raise ValueError(f"{op}: `{name}` must be RGB (3 channels on the last axis), got shape "
                     f"{image.shape}.")


def check_has_pixels(image, op: str, name: str = "image") -> None:
  """Rejects an image with no rows or no columns, for ops that must sample some pixel."""
  if image.shape[-3] == 0 or image.shape[-2] == 0:
    raise ValueError(f"{op}: `{name}` has no pixels (shape {image.shape}): there is nothing "
                     "to crop or resample.")


def check_drawn_size(shape: tuple[int, ...], image_size, op: str, name: str = "image") -> None:
  """The (height, width) of an input of ``shape`` is the ``image_size`` a parameter set was
  drawn for (None: a set built by hand, any size)."""
  if image_size is not None and tuple(shape[:2]) != tuple(image_size):
    raise ValueError(f"{op}: `{name}` of shape {tuple(shape)} is {shape[0]}x{shape[1]}, but the "
                     f"parameters were drawn for a {image_size[0]}x{image_size[1]} image "
                     f"(`image_size`={tuple(image_size)}); draw them on an input of this size.")


def check_size(value, op: str, name: str) -> tuple[int, int]:
  """An int or (h, w) pair of positive ints, as a pair."""
  items = (value, value) if isinstance(value, (numbers.Integral, np.integer)) else value
  try:
    items = tuple(items)
  except TypeError as err:
    raise TypeError(f"{op}: `{name}` must be an int or an (height, width) pair, got "
                    f"{value!r}.") from err
  if len(items) != 2:
    raise ValueError(f"{op}: `{name}` must be an int or an (height, width) pair, got {value!r}.")
  return tuple(_checks.check_positive_int(v, op, name) for v in items)


def check_range(value, op: str, name: str, *, lo: float = -math.inf,
                hi: float = math.inf) -> tuple[float, float]:
  """A pair ``(value[0], value[1])`` of finite Python numbers with
  ``lo <= value[0] <= value[1] <= hi``.

  ``value`` is a sequence or a 1-D array of two numbers; ``name`` is the argument's
  (``scale``, ``factors``), and the messages name the bounds by it (``scale[0]``,
  ``scale[1]``) and show the pair.
  """
  # A 0-d array is an ndarray but has no len(): rejected here with the argument's name.
  if (isinstance(value, (str, bytes))
      or not isinstance(value, (Sequence, np.ndarray, jax.Array))
      or (isinstance(value, (np.ndarray, jax.Array)) and value.ndim != 1)):
    raise TypeError(f"{op}: `{name}` must be a pair of numbers ({name}[0], {name}[1]), got "
                    f"{value!r}.")
  if len(value) != 2:
    raise ValueError(f"{op}: `{name}` must be a pair of numbers ({name}[0], {name}[1]), got "
                     f"{value!r} ({len(value)} items).")
  lower, upper = value[0], value[1]
  bounds = []
  for bound in (lower, upper):
    concrete = _checks.concrete_scalar(bound, op, name)
    if concrete is None:
      raise TypeError(f"{op}: `{name}` must hold Python numbers ({name}[0], {name}[1]), got "
                      "traced values.")
    bounds.append(concrete)
  first, last = bounds
  limits = "".join((f"{lo} <= " if lo > -math.inf else "", f"{name}[0] <= {name}[1]",
                    f" <= {hi}" if hi < math.inf else ""))
  # `not (...)` so that NaN fails too
  if not (math.isfinite(first) and math.isfinite(last) and lo <= first <= last <= hi):
    raise ValueError(f"{op}: `{name}` must be finite and satisfy {limits}, got "
                     f"({lower!r}, {upper!r}).")
  return first, last


def check_box_scale(value, op: str, name: str = "scale") -> tuple[float, float]:
  """A box's range of area fractions of the image: ``0 <= lo <= hi <= 1`` and ``hi > 0``."""
  checked = check_range(value, op, name, lo=0.0, hi=1.0)
  if checked[1] <= 0:
    raise ValueError(f"{op}: `{name}` must satisfy {name}[1] > 0, got {value!r}.")
  return checked


def check_box_ratio(value, op: str, name: str = "ratio") -> tuple[float, float]:
  """A box's range of aspect ratios, ``0 < lo <= hi`` (drawn log-uniformly)."""
  checked = check_range(value, op, name, lo=0.0)
  if checked[0] <= 0:
    raise ValueError(f"{op}: `{name}` must satisfy {name}[0] > 0 (a log-uniform draw), got "
                     f"{value!r}.")
  return checked


def check_strength(value, op: str, name: str, *, lo: float = 0.0, hi: float = math.inf,
                   lo_open: bool = False) -> float:
  """A finite Python number in [lo, hi] (or (lo, hi]): strengths that pick code paths."""
  concrete = _checks.check_interval(value, op, name, lo=lo, hi=hi, lo_open=lo_open)
  if concrete is None:
    raise TypeError(f"{op}: `{name}` must be a Python number, got a traced value.")
  return concrete


def check_magnitude(value, op: str, name: str, *, lo: float = -math.inf,
                    hi: float = math.inf) -> None:
  """A real scalar in [lo, hi] when concrete; a traced one is checked for shape and dtype (its
  range at run time by `nan_if_bad_magnitude`)."""
  if isinstance(value, (np.ndarray, jax.Array)) and not jnp.issubdtype(value.dtype, jnp.number):
    raise TypeError(f"{op}: `{name}` must be a real number, got dtype {value.dtype}.")
  _checks.check_interval(value, op, name, lo=lo, hi=hi)


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


def check_scales(value, op: str, name: str = "scales") -> tuple[int, ...]:
  """A non-empty iterable of positive whole numbers (shorter-side lengths), as ints."""
  expected = "an iterable of positive ints"
  items = _items(value, op, name, expected)
  # A generator is shown by its items: its repr says nothing and it is consumed by now.
  shown = value if isinstance(value, (Sequence, np.ndarray, jax.Array)) else items
  if not items:
    raise ValueError(f"{op}: `{name}` must hold at least one length, got {shown!r}.")
  result = []
  for s in items:
    whole = _whole_number(s)
    if whole is None:
      raise TypeError(f"{op}: `{name}` must hold positive ints (or integer-valued floats), got "
                      f"{s!r} in {shown!r}.")
    if whole < 1:
      raise ValueError(f"{op}: `{name}` must hold positive ints, got {s!r} in {shown!r}.")
    result.append(whole)
  return tuple(result)


def check_padding(value, op: str, name: str = "padding") -> tuple[int, int]:
  """An int >= 0, or a (pad_h, pad_w) pair of them; integer-valued floats and arrays count."""
  whole = _whole_number(value)
  if whole is not None:
    items = (whole, whole)
  else:
    expected = "an int or a (pad_h, pad_w) pair of ints"
    if isinstance(value, (np.ndarray, jax.Array)) and value.ndim == 0:
      raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.")
    raw = _items(value, op, name, expected)
    if len(raw) != 2:
      raise ValueError(f"{op}: `{name}` must be an int or a (pad_h, pad_w) pair, got "
                       f"{value!r} ({len(raw)} items).")
    items = tuple(_whole_number(p) for p in raw)
    if None in items:
      raise TypeError(f"{op}: `{name}` must hold ints (pixels), got {value!r}.")
  if items[0] < 0 or items[1] < 0:
    raise ValueError(f"{op}: `{name}` must be >= 0, got {value!r}.")
  return items


def check_image_operand(value, op: str, name: str, *, shape: tuple[int, ...],
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
    _checks.check_interval(value, op, name, lo=lo)
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
      _checks.check_interval(concrete, op, name, lo=lo)
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


def check_interpolation(value, op: str, name: str = "interpolation") -> str:
  """One of `INTERPOLATIONS`."""
  return _checks.check_choice(value, op, name, choices=INTERPOLATIONS)


def check_fill(value, op: str, name: str = "fill", *, channels: int) -> jax.Array:
  """A real scalar or one value per channel (length 1 or ``channels``), as a float32 array."""
  expected = f"a real number or a sequence of 1 or {channels} (one per channel)"
  if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.")
  traced = any(_checks.is_traced(leaf) for leaf in jax.tree.leaves(value))
  try:
    array = jnp.asarray(value) if traced else np.asarray(value)
  except (TypeError, ValueError) as err:
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.") from err
  if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r} of dtype {array.dtype}.")
  if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, channels)):
    raise ValueError(f"{op}: `{name}` must be {expected}, got shape {array.shape} for an image "
                     f"with {channels} channels.")
  if not traced and not np.all(np.isfinite(array.astype(np.float64))):
    raise ValueError(f"{op}: `{name}` must be finite ({expected}), got {value!r}.")
  return jnp.asarray(array, jnp.float32)


def check_xy(value, op: str, name: str, *, scalar_is_first: bool = False) -> tuple:
  """``(a, b)``: a 2-sequence of real scalars or a shape-(2,) array, either possibly traced.

  ``scalar_is_first``: a lone scalar ``s`` means ``(s, 0)`` (torchvision's ``shear``).
  """
  expected = "an (x, y) pair of real numbers"
  if isinstance(value, (jax.Array, np.ndarray)):
    if value.ndim == 0 and scalar_is_first:
      return value, 0.0
    if value.shape != (2,):
      raise ValueError(f"{op}: `{name}` must be {expected}, got an array of shape {value.shape}.")
    if not _checks.is_traced(value) and not np.all(np.isfinite(np.asarray(value, np.float64))):
      raise ValueError(f"{op}: `{name}` must be finite, got {value!r}.")
    return value[0], value[1]
  if scalar_is_first and isinstance(value, numbers.Real) and not isinstance(value, bool):
    return value, 0.0
  if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
    raise TypeError(f"{op}: `{name}` must be {expected}, got {value!r}.")
  if len(value) != 2:
    raise ValueError(f"{op}: `{name}` must be {expected}, got {value!r} ({len(value)} items).")
  return tuple(value)


def check_warp_image(image, op: str, *, interpolation, fill):
  """An image to warp (HWC, float) and its sampling arguments: ``(image, interpolation, fill
  as float32)``."""
  image = check_image(image, op, keyed=False)
  interpolation = check_interpolation(interpolation, op)
  return image, interpolation, check_fill(fill, op, channels=image.shape[-1])


def check_policy_image(image, op: str, *, interpolation, fill):
  """An augmentation policy's image (HWC RGB, float or uint8) and its sampling arguments:
  ``(image, interpolation, fill as float32)``."""
  image = check_image(image, op, uint8=True)
  check_rgb(image, op)
  checked = check_fill(fill, op, channels=image.shape[-1])  # its type and finiteness first
  check_unit_scale(fill, op, "fill", image=image)
  interpolation = check_interpolation(interpolation, op)
  return image, interpolation, checked


def check_probability(value, op: str, name: str = "probability") -> None:
  """A probability in [0, 1] when concrete (a traced one: `nan_if_bad_probability`)."""
  _checks.check_interval(value, op, name, lo=0.0, hi=1.0)


def nan_if_bad_probability(p, out):
  """``out``, or all NaN where a traced probability lies outside [0, 1] (or is NaN).

  A traced probability cannot be checked at trace time; a Bernoulli draw would clamp it
  silently (2.0 always fires, NaN never), so the result is NaN instead. A uint8 image has no
  NaN: it is returned as the draw made it (the documented rule of the ops taking uint8).
  """
  if not _checks.is_traced(p) or not jnp.issubdtype(out.dtype, jnp.floating):
    return out
  return _checks.nan_unless(_checks.traced_in_interval(p, lo=0.0, hi=1.0), out)


def nan_if_bad_magnitude(value, out, *, lo: float = -math.inf, hi: float = math.inf,
                         lo_open: bool = False, hi_open: bool = False):
  """``out``, or all NaN where a traced scalar ``value`` is not finite or lies outside the range.

  The runtime half of the checks on a magnitude (concrete ones raise at trace time): [lo, hi],
  without an end where ``lo_open`` or ``hi_open`` says so. Concrete values pass ``out``
  through unchanged.
  """
  if not _checks.is_traced(value) or not jnp.issubdtype(out.dtype, jnp.floating):
    return out  # concrete (checked already), or a uint8 image, which has no NaN
  v = jax.lax.stop_gradient(jnp.asarray(value))
  inside = (v > lo if lo_open else v >= lo) & (v < hi if hi_open else v <= hi)
  return _checks.nan_unless(jnp.isfinite(v) & inside, out)


def maybe_clip(image, clip: bool):
  """``image`` clamped to [0, 1] where ``clip`` (a checked bool)."""
  return jnp.clip(image, 0.0, 1.0) if clip else image
