"""How each parameter class moves dense targets: the registry, the checks, boxes and keypoints.

Each geometric parameter class registers three maps (`register_targets`; every class's are in
`jaxreg.augment._target_maps`):

* a point map (`PointMap`): where an input point lands, ``(x, y) -> (x', y')`` in continuous
  pixel coordinates, and the output canvas. Boxes and keypoints only go through it, so a
  geometric op adds targets by supplying its map (an affine op: the inverse of its matrix; a
  policy: one map per slot, in turn).
* a mask map: the label map resampled as the image is, nearest for integer labels.
* an index map (`IndexMap`): for each output pixel, the input pixel a label map takes,
  elementwise in the pixel's (row, column), so that a chain of sets composes into one gather.

The sets that move no pixel through a geometry (the mixes, erasing, the colour sets, AugMix)
register rules instead (`register_rules`; every class's are in `jaxreg.augment._target_rules`):
one function per kind of target, or the reason it has no answer.

Coordinates are those of the geometric ops (and torchvision's for boxes): an image of H rows and W
columns covers ``[0, W] x [0, H]``, x along the width to the right, y down; pixel ``(i, j)`` is
the square ``[j, j + 1) x [i, i + 1)``, its centre at ``(j + 0.5, i + 0.5)``. A box covering
pixel column 0 has ``x0 = 0`` and ``x1 = 1``. Design: docs/design/targets.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks
from jaxreg.augment._image_checks import check_drawn_size


class PointMap(NamedTuple):
  """Where a parameter set moves points, and the canvas they land on.

  A parameter class whose warps run in turn (a policy's slots) gives one per step, a list:
  each step maps its points, boxes it and clamps it to its canvas, as chaining the steps'
  own sets would.
  """

  # (x, y) -> (x', y'): input points to output points, arrays of one shape and dtype.
  forward: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
  canvas: tuple[int, int]  # the output's (height, width)
  # Whether the step moves anything: False for a policy's photometric slot (traced under vmap).
  active: jax.Array | bool = True


class IndexMap(NamedTuple):
  """Which input pixel each output pixel of a label map takes, and the output's size."""

  # (rows, cols) -> (rows', cols', inside): int32 arrays that broadcast together, elementwise;
  # ``inside`` False (or a bool) where the output pixel gets the fill. Indices where it is
  # False may lie outside the input: the caller sends them to pixel (0, 0).
  source: Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, Any]]
  size: tuple[int, int]  # the output's (height, width)


# parameter class -> (params, op) -> PointMap (or a list, one per step),
# -> (params, mask, fill, op) -> mask, and -> (params, (height, width), op) -> IndexMap
POINT_MAPS: dict[type, Callable[[Any, str], PointMap]] = {}
MASK_MAPS: dict[type, Callable[[Any, jax.Array, Any, str], jax.Array]] = {}
INDEX_MAPS: dict[type, Callable[[Any, tuple[int, int], str], IndexMap]] = {}


def register_targets(params_cls: type, point_map: Callable, mask_map: Callable,
                     index_map: Callable) -> None:
  """Declares how a parameter class moves points and masks, for the ``apply_to_*`` functions."""
  POINT_MAPS[params_cls] = point_map
  MASK_MAPS[params_cls] = mask_map
  INDEX_MAPS[params_cls] = index_map


class TargetRules(NamedTuple):
  """What a set that moves no pixel through a geometry does to each kind of target: a function
  (which checks what the public function has not), or why there is no answer (a TypeError)."""

  mask: Callable | str  # (params, mask, fill, erased, op) -> mask; checks mask, fill, erased
  boxes: Callable | str  # (params, boxes, valid, hide_erased, op) -> (boxes, valid)
  keypoints: Callable | str  # (params, keypoints, visible, hide_erased, op) -> (.., visible)
  batch: bool = False  # the set mixes a batch (it cannot be a step of a per-image chain)


RULES: dict[type, TargetRules] = {}


def register_rules(params_cls: type, rules: TargetRules) -> None:
  """Declares what a non-geometric parameter class does to masks, boxes and keypoints."""
  RULES[params_cls] = rules


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def lookup(params, kind: str, op: str) -> Callable | None:
  """The rule of ``params``' class for ``kind`` ("mask", "boxes", "keypoints"); None for a
  geometric set, which goes through its maps."""
  cls = type(params)
  if cls in POINT_MAPS:
    return None
  rule = getattr(RULES[cls], kind) if cls in RULES else None
  if isinstance(rule, str):
    article = "an" if cls.__name__[0] in "AEIOU" else "a"
    raise TypeError(f"{op}: `params` is {article} {cls.__name__}, {rule}")
  if rule is None:
    names = ", ".join(sorted([c.__name__ for c in POINT_MAPS] + [
        c.__name__ for c, rules in RULES.items() if callable(getattr(rules, kind))]))
    what = {"mask": "a mask"}.get(kind, kind)
    raise TypeError(f"{op}: `params` must be a parameter set of jaxreg.augment that applies to "
                    f"{what} ({names}), got {cls.__name__}.")
  return rule


def needed_image_size(params, op: str, why: str, *, lo: int = 0) -> tuple[int, int]:
  """``params.image_size``, which moving points needs (``why``: what for), checked: a pair of
  ints >= ``lo``."""
  size = params.image_size
  if size is None:
    raise ValueError(f"{op}: `params` ({type(params).__name__}) has no `image_size`, which "
                     f"{why}: draw the set with `draw`, or build it with "
                     f"image_size=(height, width) of the input image.")
  if (not isinstance(size, tuple) or len(size) != 2
      or not all(isinstance(s, (int, np.integer)) and s >= lo for s in size)):
    raise ValueError(f"{op}: `image_size` must be a (height, width) pair of ints >= {lo}, got "
                     f"{size!r}.")
  return int(size[0]), int(size[1])



def check_points(value, op: str, name: str, columns: int, layout: str) -> jax.Array:
  points = _checks.check_float_array(value, op, name)
  if points.ndim != 2 or points.shape[1] != columns:
    raise ValueError(f"{op}: `{name}` must have shape (K, {columns}) ({layout}), got shape "
                     f"{points.shape}; for a batch use jax.vmap.")
  return points


def check_flags(value, op: str, name: str, count: int, what: str) -> jax.Array:
  if value is None:
    return jnp.ones((count,), bool)
  if isinstance(value, (str, bytes)):
    raise TypeError(f"{op}: `{name}` must be a bool array (one flag per {what}), got {value!r}.")
  flags = jnp.asarray(value)
  if flags.dtype != jnp.bool_:
    raise TypeError(f"{op}: `{name}` must be a bool array (one flag per {what}), got dtype "
                    f"{flags.dtype}.")
  if flags.shape != (count,):
    raise ValueError(f"{op}: `{name}` must have shape ({count},), one flag per {what}, got "
                     f"shape {flags.shape}.")
  return flags


def check_mask(mask, image_size, op: str, *, batch: bool = False) -> jax.Array:
  """A label map (integer or bool) or a float mask with a class axis, ``(H, W[, K])``, of the
  drawn ``image_size`` (None: any); with ``batch``, ``(N, H, W[, K])``."""
  expected = "an integer, bool or floating-point array"
  if mask is None or isinstance(mask, (str, bytes)):
    raise TypeError(f"{op}: `mask` must be {expected}, got {mask!r}.")
  mask = jnp.asarray(mask)
  lead = 1 if batch else 0
  if mask.ndim not in (2 + lead, 3 + lead):
    layout = ("(N, H, W) or (N, H, W, K) (a batch of label maps, or of masks with one channel "
              "per class)" if batch else
              "(H, W) or (H, W, K) (a label map, or one channel per class)")
    raise ValueError(f"{op}: `mask` must have shape {layout}, got shape {mask.shape}"
                     f"{'' if batch else '; for a batch use jax.vmap'}.")
  if jnp.issubdtype(mask.dtype, jnp.floating):
    if mask.ndim == 2 + lead:
      raise TypeError(f"{op}: `mask` of shape {mask.shape} is a label map, copied or resampled "
                      f"nearest, and must be integer or bool, got dtype {mask.dtype}. Cast "
                      f"class ids with `mask.astype(jnp.int32)`, or give a soft or one-hot "
                      f"mask a class axis, {'(N, H, W, K)' if batch else '(H, W, K)'}.")
  elif not (jnp.issubdtype(mask.dtype, jnp.integer) or mask.dtype == jnp.bool_):
    raise TypeError(f"{op}: `mask` must be {expected}, got dtype {mask.dtype}.")
  check_drawn_size(mask.shape[lead:], image_size, op, "mask")
  return mask


def check_fill(fill, dtype, op: str, name: str = "fill") -> float | int | bool:
  """A concrete scalar the mask's dtype holds exactly: a whole number in range for integers."""
  if _checks.is_traced(fill):
    raise TypeError(f"{op}: `{name}` must be a number known at trace time, got a traced value "
                    f"{fill!r}.")
  array = None if fill is None or isinstance(fill, (str, bytes)) else np.asarray(fill)
  if array is None or not (array.dtype == jnp.bool_ or np.issubdtype(array.dtype, np.integer)
                           or np.issubdtype(array.dtype, np.floating)):
    raise TypeError(f"{op}: `{name}` must be a real number, got {fill!r}.")
  if array.ndim != 0:
    raise ValueError(f"{op}: `{name}` must be a scalar, got shape {array.shape}.")
  value = array.item()
  if not math.isfinite(value):
    raise ValueError(f"{op}: `{name}` must be a finite number, got {fill!r}.")
  if jnp.issubdtype(dtype, jnp.floating):
    return float(value)
  if value != int(value):
    raise TypeError(f"{op}: `{name}` must be a whole number for a {dtype} mask (a label), got "
                    f"{fill!r}.")
  info = None if dtype == jnp.bool_ else jnp.iinfo(dtype)
  lo, hi = (0, 1) if info is None else (int(info.min), int(info.max))
  if not lo <= value <= hi:
    raise ValueError(f"{op}: `{name}` must be in [{lo}, {hi}] for a {dtype} mask, got "
                     f"{fill!r}.")
  return bool(value) if dtype == jnp.bool_ else int(value)


def check_mask_values(mask, fill, erased, op: str):
  """``(fill, erased)`` checked for ``mask``'s dtype (``erased`` may be None)."""
  return (check_fill(fill, mask.dtype, op),
          None if erased is None else check_fill(erased, mask.dtype, op, "erased"))


# --------------------------------------------------------------------------------------------
# Boxes and keypoints through any point map
# --------------------------------------------------------------------------------------------


def _steps(point_map) -> list[PointMap]:
  return [point_map] if isinstance(point_map, PointMap) else list(point_map)


def _select(active, new, old):
  return new if active is True else jnp.where(active, new, old)


def map_boxes(point_map, boxes, valid, min_size):
  """`apply_to_boxes` on checked arguments: the box around each box's mapped corners, clamped,
  step by step. A step that moves a box off its canvas cuts it away for good (a later one
  must not bring a clamped edge back): the box is invalid."""
  dtype = _checks.float32_or_wider(boxes.dtype)
  x0, y0, x1, y1 = (boxes[:, i].astype(dtype) for i in range(4))
  keep = valid & (x0 <= x1) & (y0 <= y1)
  left, top, right, bottom = x0, y0, x1, y1
  for step in _steps(point_map):
    u, v = step.forward(jnp.stack([left, right, left, right]),
                        jnp.stack([top, top, bottom, bottom]))
    height, width = step.canvas
    lo_u, hi_u, lo_v, hi_v = u.min(0), u.max(0), v.min(0), v.max(0)
    # NaN anywhere fails every comparison: such a box is invalid.
    overlaps = (lo_u < width) & (hi_u > 0) & (lo_v < height) & (hi_v > 0)
    keep = keep & (overlaps | ~jnp.asarray(step.active))
    left, right = (_select(step.active, jnp.clip(e, 0, width), old)
                   for e, old in ((lo_u, left), (hi_u, right)))
    top, bottom = (_select(step.active, jnp.clip(e, 0, height), old)
                   for e, old in ((lo_v, top), (hi_v, bottom)))
  box_w, box_h = right - left, bottom - top
  keep = keep & (box_w > 0) & (box_h > 0) & (box_w >= min_size) & (box_h >= min_size)
  return jnp.stack([left, top, right, bottom], -1).astype(boxes.dtype), keep


def map_keypoints(point_map, keypoints, visible):
  """`apply_to_keypoints` on checked arguments: mapped step by step, visible while inside
  every step's canvas."""
  dtype = _checks.float32_or_wider(keypoints.dtype)
  u, v = keypoints[:, 0].astype(dtype), keypoints[:, 1].astype(dtype)
  for step in _steps(point_map):
    new_u, new_v = step.forward(u, v)
    height, width = step.canvas
    inside = (new_u >= 0) & (new_u <= width) & (new_v >= 0) & (new_v <= height)  # not NaN
    visible = visible & (inside | ~jnp.asarray(step.active))
    u, v = _select(step.active, new_u, u), _select(step.active, new_v, v)
  return jnp.stack([u, v], -1).astype(keypoints.dtype), visible
