"""Dense targets: the label maps, boxes and keypoints of an image, moved by its parameter set.

A parameter set from `draw` moves the image's pixels; the functions here move what is drawn on
the image with it. Each parameter class supplies two maps (`register_targets`; every class's
are in `jaxreg.augment._target_maps`):

* a point map (`PointMap`): where an input point lands, ``(x, y) -> (x', y')`` in continuous
  pixel coordinates, and the output canvas. Boxes and keypoints only go through it, so a
  geometric op adds targets by supplying its map (an affine op: the inverse of its matrix; a
  policy: one map per slot, in turn).
* a mask map: the label map resampled as the image is, nearest for integer labels.

The sets that move no pixel through a geometry (the mixes, erasing, the colour sets, AugMix)
register rules instead (`register_rules`; every class's are in `jaxreg.augment._target_rules`):
one function per kind of target, or the reason it has no answer.

Coordinates are those of `warp_affine` (and torchvision's for boxes): an image of H rows and W
columns covers ``[0, W] x [0, H]``, x along the width to the right, y down; pixel ``(i, j)`` is
the square ``[j, j + 1) x [i, i + 1)``, its centre at ``(j + 0.5, i + 0.5)``. A box covering
pixel column 0 has ``x0 = 0`` and ``x1 = 1``. Design: docs/design/targets.md.
"""

from __future__ import annotations

import functools
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


# parameter class -> (params, op) -> PointMap (or a list, one per step), and
# -> (params, mask, fill, op) -> mask
POINT_MAPS: dict[type, Callable[[Any, str], PointMap]] = {}
MASK_MAPS: dict[type, Callable[[Any, jax.Array, Any, str], jax.Array]] = {}


def register_targets(params_cls: type, point_map: Callable, mask_map: Callable) -> None:
  """Declares how a parameter class moves points and masks, for the ``apply_to_*`` functions."""
  POINT_MAPS[params_cls] = point_map
  MASK_MAPS[params_cls] = mask_map


class TargetRules(NamedTuple):
  """What a set that moves no pixel through a geometry does to each kind of target: a function
  (which checks what the public function has not), or why there is no answer (a TypeError)."""

  mask: Callable | str  # (params, mask, fill, erased, op) -> mask; checks mask, fill, erased
  boxes: Callable | str  # (params, boxes, valid, hide_erased, op) -> (boxes, valid)
  keypoints: Callable | str  # (params, keypoints, visible, hide_erased, op) -> (.., visible)


RULES: dict[type, TargetRules] = {}


def register_rules(params_cls: type, rules: TargetRules) -> None:
  """Declares what a non-geometric parameter class does to masks, boxes and keypoints."""
  RULES[params_cls] = rules


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _lookup(params, kind: str, op: str) -> Callable | None:
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



def _check_points(value, op: str, name: str, columns: int, layout: str) -> jax.Array:
  points = _checks.check_float_array(value, op, name)
  if points.ndim != 2 or points.shape[1] != columns:
    raise ValueError(f"{op}: `{name}` must have shape (K, {columns}) ({layout}), got shape "
                     f"{points.shape}; for a batch use jax.vmap.")
  return points


def _check_flags(value, op: str, name: str, count: int, what: str) -> jax.Array:
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
# Boxes and keypoints through any point map, and the public functions
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


# Each public function checks its arguments, then runs one compiled program per parameter class
# and shape: called eagerly, a dozen small ops would otherwise each dispatch (and first compile)
# on their own. Under an outer `jit` or `vmap` the program is inlined.


@functools.partial(jax.jit, static_argnames=("fill", "op"))
def _mask_kernel(params, mask, fill, op: str):
  return MASK_MAPS[type(params)](params, mask, fill, op)


@functools.partial(jax.jit, static_argnames=("op",))
def _boxes_kernel(params, boxes, valid, min_size, op: str):
  return map_boxes(POINT_MAPS[type(params)](params, op), boxes, valid, min_size)


@functools.partial(jax.jit, static_argnames=("op",))
def _keypoints_kernel(params, keypoints, visible, op: str):
  return map_keypoints(POINT_MAPS[type(params)](params, op), keypoints, visible)


def apply_to_mask(params: Any, mask: jax.typing.ArrayLike, *, fill: float = 0,
                  erased: float | None = None) -> jax.Array:
  """Applies a parameter set from `draw` to a segmentation mask of the image (or batch).

  Integer and bool masks are label maps: every output pixel holds a label of the input, never
  a blend. A crop is a window and a flip a mirror copy, as for the image; a resized crop, an
  affine warp and each geometric slot of a policy take the input pixel under each output
  pixel's centre (for a warp `warp_affine`'s ``"nearest"``, whatever the set's
  interpolation): a centre on a pixel boundary, or within 1/1024 pixel before it, takes the
  pixel below or to the right. Float masks (soft or one-hot, one channel per class) are
  resampled as the image is (with ``fill=0``, bit for bit ``jax.jit(apply)`` for the crops,
  flips and affine warps): a resized crop, or a ``"bilinear"`` warp, blends them with the
  image's weights, so along class boundaries a one-hot mask becomes class probabilities.

  Output pixels from outside the image (`random_crop`'s ``"constant"`` padding, the corners
  a rotation uncovers) get ``fill``, e.g. an ignore index such as 255; ``"reflect"`` and
  ``"edge"`` padding copy labels as they copy pixels. A set whose warp the image turns NaN
  turns a float mask NaN too; an integer mask gets ``fill`` where the warp has no sample.

  The other sets: a `CutmixParams` takes a batch of masks and pastes each partner's mask
  exactly where the image got its partner's pixels; a `MixupParams` blends a batch of float
  masks with a class axis as it blends the images, ``lam m + (1 - lam) m[perm]`` (soft
  labels); an `ErasingParams` leaves the mask as it is unless ``erased`` is given; the colour
  sets (`ColorParams`, `GrayscaleParams`, `ColorJitterParams`) leave it as it is.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `AffineParams`, `PolicyParams`, `CutmixParams`, `MixupParams`, `ErasingParams`, the
      colour sets), or one built by hand. Under `jax.vmap`, a batch of sets with a batch of
      masks (for the mixes, a batch of batches).
    mask: ``(H, W)`` or ``(H, W, K)``: an integer or bool label map (any channel count), or a
      floating-point mask with a class axis, of the image ``params`` were drawn for; for the
      mixes, ``(N, H, W)`` or ``(N, H, W, K)``, the batch (for `MixupParams` floating point
      with a class axis: one-hot a label map first).
    fill: the value of pixels from outside the image, a real scalar known at trace time; for
      an integer or bool mask, a whole number its dtype holds.
    erased: for an `ErasingParams`, the value written where the image is erased (an ignore
      index such as 255; for a float mask, e.g. 0.0: no class), checked as ``fill``; None
      (the default), the mask is left as it is. Sets that erase nothing ignore it.

  Returns:
    The transformed mask: the output size of ``params``, ``mask``'s rank, channels and dtype.

  Raises:
    TypeError: ``params`` not a parameter set of jaxreg.augment, or an `AugMixParams` (it
      blends differently warped copies of the image, which no one map of the mask follows);
      a ``mask`` neither integer, bool nor floating point, a floating-point mask without a
      class axis, an integer or bool mask for a `MixupParams`; a ``fill`` or ``erased`` not a
      real number, fractional for an integer mask, or traced.
    ValueError: a ``mask`` not of rank 2 or 3 (3 or 4 for the mixes), or of another height
      and width than ``params.image_size``; a batch of another size than the mix's; a
      ``fill`` or ``erased`` not finite or outside an integer dtype's range; a window larger
      than the padded mask; a resized crop of a mask with no pixels; an affine matrix not of
      shape (2, 3); a policy's ``ops`` and ``magnitudes`` not of one shape ``(slots,)``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> image, labels = jnp.zeros((4, 4, 3)), jnp.arange(16, dtype=jnp.uint8).reshape(4, 4)
    >>> params = A.draw(A.random_crop)(jax.random.key(0), image, 4, padding=1)
    >>> A.apply_to_mask(params, labels, fill=255).shape
    (4, 4)
    >>> flip = A.draw(A.random_flip_left_right)(jax.random.key(0), image, probability=1.0)
    >>> A.apply_to_mask(flip, labels)[0]
    Array([3, 2, 1, 0], dtype=uint8)
    >>> masks = jnp.stack([labels, labels + 100])  # a batch of two
    >>> mix = A.draw(A.cutmix)(jax.random.key(1), jnp.zeros((2, 4, 4, 3)), jnp.eye(2))
    >>> out = A.apply_to_mask(mix, masks)  # each mask with its partner's in the pasted box
    >>> as_image = A.apply(mix, masks[..., None].astype(jnp.float32), jnp.eye(2))[0]
    >>> bool((out == as_image[..., 0]).all())  # exactly where an image takes its partner's
    True
  """
  op = "apply_to_mask"
  rule = _lookup(params, "mask", op)
  if rule is not None:
    return rule(params, mask, fill, erased, op)
  mask = check_mask(mask, params.image_size, op)
  fill, _ = check_mask_values(mask, fill, erased, op)
  return _mask_kernel(params, mask, fill, op)


def apply_to_boxes(params: Any, boxes: jax.typing.ArrayLike, *,
                   valid: jax.typing.ArrayLike | None = None, min_size: float = 1.0,
                   hide_erased: bool = False) -> tuple[jax.Array, jax.Array]:
  """Applies a parameter set from `draw` to the image's bounding boxes.

  Boxes are XYXY in pixels, torchvision's convention: ``(x0, y0, x1, y1)``, x along the width,
  on pixel edges (a box covering pixel column 0 has ``x0 = 0``, ``x1 = 1``; the image spans
  ``[0, W] x [0, H]``). Each box becomes the box around its four transformed corners, clamped
  to the output canvas (torchvision's rule; for a rotation or a shear this box holds the
  turned box, and is larger than it). A policy moves boxes slot by slot, as chaining its
  geometric slots' own sets would: each slot boxes the mapped corners and clamps the box, and
  a slot that moves a box off the canvas cuts it away for good. Shapes are static: ``K`` is a
  fixed maximum, and ``valid`` says which rows hold boxes. A box stays valid when it was
  valid, is ordered (``x0 <= x1``, ``y0 <= y1``), and its clamped width and height are
  positive and at least ``min_size``: a box cropped away, or cut to a sliver, becomes
  invalid; a NaN coordinate (or a set whose warp the image turns NaN) makes it invalid.
  Invalid rows still hold their mapped, clamped coordinates. With `random_crop`'s
  ``"reflect"`` or ``"edge"`` padding, a box follows its object; the mirrored copies that
  padding shows are not boxed.

  An `ErasingParams` and the colour sets return ``(boxes, valid)`` as given (with
  ``hide_erased``, a box inside the erased rectangle is invalid). `CutmixParams` and
  `MixupParams` raise: each example then shows parts of two images' objects, a number of
  boxes that no static shape holds.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `AffineParams`, `PolicyParams`, `ErasingParams`, the colour sets; a flip, an affine
      set and a policy need their ``image_size``, which `draw` records). Under `jax.vmap`, a
      batch of sets with a batch of boxes: ``jax.vmap(apply_to_boxes)(params, boxes,
      valid=valid)``.
    boxes: ``(K, 4)`` floating-point XYXY boxes in input pixels.
    valid: ``(K,)`` bool, which rows are boxes; None: all of them.
    min_size: the smallest width and height, in output pixels, of a box kept valid; >= 0.
    hide_erased: for an `ErasingParams`, a box that lies wholly inside the erased rectangle
      (nothing of its object left to see) becomes invalid; a bool. Other sets ignore it.

  Returns:
    ``(boxes, valid)``: the ``(K, 4)`` boxes in output pixels (``boxes``' dtype) and the
    ``(K,)`` bool flags.

  Raises:
    TypeError: ``params`` not a parameter set that moves boxes: an `AugMixParams` (no one map
      moves the boxes of its blend of differently warped copies), a `CutmixParams` or a
      `MixupParams`; non-float ``boxes``; a ``valid`` that is not bool; a ``hide_erased``
      that is not a bool.
    ValueError: ``boxes`` not of shape (K, 4); ``valid`` not of shape (K,); a ``min_size``
      negative or not finite; a flip, affine set or policy without ``image_size``; an affine
      matrix not of shape (2, 3); a policy's ``ops`` and ``magnitudes`` not of one shape.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> image = jnp.zeros((10, 20, 3))
    >>> flip = A.draw(A.random_flip_left_right)(jax.random.key(0), image, probability=1.0)
    >>> boxes, valid = A.apply_to_boxes(flip, jnp.array([[0.0, 2.0, 5.0, 8.0]]))
    >>> boxes, valid
    (Array([[15.,  2., 20.,  8.]], dtype=float32), Array([ True], dtype=bool))
    >>> turn = A.draw(A.rotate)(image, 90.0)  # counter-clockwise about (10, 5)
    >>> A.apply_to_boxes(turn, jnp.array([[10.0, 5.0, 14.0, 6.0]]))[0]
    Array([[10.,  1., 11.,  5.]], dtype=float32)
  """
  op = "apply_to_boxes"
  rule = _lookup(params, "boxes", op)
  boxes = _check_points(boxes, op, "boxes", 4, "XYXY boxes, one per row")
  valid = _check_flags(valid, op, "valid", boxes.shape[0], "box")
  _checks.check_interval(min_size, op, "min_size", lo=0.0)
  hide_erased = _checks.check_bool(hide_erased, op, "hide_erased")
  if rule is not None:
    return rule(params, boxes, valid, hide_erased, op)
  return _boxes_kernel(params, boxes, valid, min_size, op)


def apply_to_keypoints(params: Any, keypoints: jax.typing.ArrayLike, *,
                       visible: jax.typing.ArrayLike | None = None,
                       hide_erased: bool = False) -> tuple[jax.Array, jax.Array]:
  """Applies a parameter set from `draw` to the image's keypoints.

  Keypoints are ``(x, y)`` in continuous pixel coordinates, the boxes' convention: the image
  spans ``[0, W] x [0, H]`` and the centre of pixel ``(row i, column j)`` is
  ``(j + 0.5, i + 0.5)`` (for keypoints given as pixel indices, add 0.5 before and subtract
  it after). A keypoint that leaves the output canvas, the closed rectangle ``[0, W'] x
  [0, H']``, loses its visibility; its coordinates are still mapped, never clamped. A policy
  maps keypoints slot by slot; one that leaves the canvas at any slot, where the image loses
  its pixel, stays invisible. An `ErasingParams` and the colour sets return ``(keypoints,
  visible)`` as given (with ``hide_erased``, a keypoint on an erased pixel is invisible);
  `CutmixParams` and `MixupParams` raise (each example shows parts of two images).

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `AffineParams`, `PolicyParams`, `ErasingParams`, the colour sets; a flip, an affine
      set and a policy need their ``image_size``, which `draw` records). Under `jax.vmap`, a
      batch of sets with a batch of keypoints.
    keypoints: ``(K, 2)`` floating-point ``(x, y)`` in input pixels.
    visible: ``(K,)`` bool, which keypoints are visible (or present); None: all of them.
    hide_erased: for an `ErasingParams`, a keypoint on an erased pixel (``left <= x < left +
      width``, ``top <= y < top + height``) becomes invisible; a bool. Other sets ignore it.

  Returns:
    ``(keypoints, visible)``: the ``(K, 2)`` keypoints in output pixels (``keypoints``' dtype)
    and the ``(K,)`` bool flags, visible and inside the output canvas.

  Raises:
    TypeError: ``params`` not a parameter set that moves keypoints: an `AugMixParams` (no one
      map moves the keypoints of its blend of differently warped copies), a `CutmixParams` or
      a `MixupParams`; non-float ``keypoints``; a ``visible`` that is not bool; a
      ``hide_erased`` that is not a bool.
    ValueError: ``keypoints`` not of shape (K, 2); ``visible`` not of shape (K,); a flip,
      affine set or policy without ``image_size``; an affine matrix not of shape (2, 3); a
      policy's ``ops`` and ``magnitudes`` not of one shape.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> window = A.CropParams(top=jnp.array(2), left=jnp.array(3), size=(6, 6))
    >>> A.apply_to_keypoints(window, jnp.array([[5.0, 5.0], [0.5, 9.5]]))
    (Array([[ 2. ,  3. ],
           [-2.5,  7.5]], dtype=float32), Array([ True, False], dtype=bool))
    >>> erasing = A.draw(A.random_erasing)(jax.random.key(0), jnp.zeros((10, 10, 3)),
    ...                                     probability=1.0, scale=(0.3, 0.3))
    >>> corner = (erasing.left + 0.5, erasing.top + 0.5)  # on the first erased pixel
    >>> A.apply_to_keypoints(erasing, jnp.array([corner]), hide_erased=True)[1]
    Array([False], dtype=bool)
  """
  op = "apply_to_keypoints"
  rule = _lookup(params, "keypoints", op)
  keypoints = _check_points(keypoints, op, "keypoints", 2, "(x, y) points, one per row")
  visible = _check_flags(visible, op, "visible", keypoints.shape[0], "keypoint")
  hide_erased = _checks.check_bool(hide_erased, op, "hide_erased")
  if rule is not None:
    return rule(params, keypoints, visible, hide_erased, op)
  return _keypoints_kernel(params, keypoints, visible, op)
