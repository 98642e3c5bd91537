"""Dense targets: the label maps, boxes and keypoints of an image, moved by its parameter sets.

A parameter set from `draw` moves the image's pixels; `apply_to_mask`, `apply_to_boxes` and
`apply_to_keypoints` move what is drawn on the image with it, through the maps and rules each
parameter class registers (`jaxreg.augment._target_base`). A chain of sets (a tuple, applied in
turn) moves a label map as one gather: the sets' index maps composed. Design:
docs/design/targets.md.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxreg import _checks
from jaxreg.augment._chains import MIX_NOTE, PER_IMAGE, as_chain, check_link
from jaxreg.augment._target_base import (
  INDEX_MAPS,
  MASK_MAPS,
  POINT_MAPS,
  RULES,
  PointMap,
  check_flags,
  check_mask,
  check_mask_values,
  check_points,
  lookup,
  map_boxes,
  map_keypoints,
)

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


# --------------------------------------------------------------------------------------------
# Chains: a tuple of per-image sets, applied in turn
# --------------------------------------------------------------------------------------------


def _as_chain(params, kind: str, op: str) -> tuple | None:
  """``params`` as a checked chain of per-image sets; None for one set."""
  if not isinstance(params, (tuple, list)):
    return None
  per_image = [*POINT_MAPS, *(cls for cls, rules in RULES.items() if not rules.batch)]
  chain = as_chain(params, op, per_image, PER_IMAGE, MIX_NOTE)
  for step in chain:
    lookup(step, kind, op)  # a set whose targets of this kind no map follows (AugMixParams)
  return chain


def _gather_labels(run, mask, fill, op: str):
  """A label map through a run of geometric sets, ``(index in the chain, set)`` pairs: their
  index maps composed, one gather."""
  maps, size = [], mask.shape[:2]
  for i, step in run:
    check_link(step, i, size, op)
    maps.append(INDEX_MAPS[type(step)](step, size, op))
    size = maps[-1].size
  rows, cols, inside = jnp.arange(size[0])[:, None], jnp.arange(size[1])[None, :], True
  for index_map in reversed(maps):  # from the output back to the input
    rows, cols, ok = index_map.source(rows, cols)
    inside = inside & ok
  width = mask.shape[1]
  index = jnp.broadcast_to(jnp.where(inside, rows * width + cols, 0), size)
  flat = mask.reshape(mask.shape[0] * width, *mask.shape[2:])
  out = flat.at[index].get(mode="promise_in_bounds")  # in range: sent to 0 where outside
  inside = jnp.broadcast_to(inside, size).reshape(size + (1,) * (mask.ndim - 2))
  return jnp.where(inside, out, jnp.asarray(fill, mask.dtype))


@functools.partial(jax.jit, static_argnames=("fill", "erased", "op"))
def _chain_mask_kernel(chain, mask, fill, erased, op: str):
  labels = not jnp.issubdtype(mask.dtype, jnp.floating) and 0 not in mask.shape[:2]
  run = []
  for i, step in enumerate((*chain, None)):
    if step is not None and type(step) in POINT_MAPS:
      run.append((i, step))
      continue
    if run and labels:
      mask = _gather_labels(run, mask, fill, op)
    for j, geometric in () if labels else run:  # float masks: each set's own resampling
      check_link(geometric, j, mask.shape[:2], op)
      mask = MASK_MAPS[type(geometric)](geometric, mask, fill, op)
    run = []
    if step is not None:
      check_link(step, i, mask.shape[:2], op)
      mask = RULES[type(step)].mask(step, mask, fill, erased, op)
  return mask


@functools.partial(jax.jit, static_argnames=("kind", "hide_erased", "op"))
def _chain_points_kernel(chain, points, flags, min_size, kind: str, hide_erased: bool, op: str):
  size = None  # the image size between two sets, where one of them says it
  for i, step in enumerate(chain):
    if size is not None:
      check_link(step, i, size, op)
    if type(step) in RULES:
      points, flags = getattr(RULES[type(step)], kind)(step, points, flags, hide_erased, op)
      size = size or getattr(step, "image_size", None)
      continue
    point_map = POINT_MAPS[type(step)](step, op)
    if kind == "boxes":
      points, flags = map_boxes(point_map, points, flags, min_size)
    else:
      points, flags = map_keypoints(point_map, points, flags)
    last = point_map if isinstance(point_map, PointMap) else (point_map or [None])[-1]
    size = step.image_size if last is None else last.canvas
  return points, flags


def apply_to_mask(params: Any, mask: jax.typing.ArrayLike, *, fill: float = 0,
                  erased: float | None = None) -> jax.Array:
  """Applies a parameter set from `draw` to a segmentation mask of the image (or batch).

  Integer and bool masks are label maps: every output pixel holds a label of the input, never
  a blend. A crop is a window and a flip a mirror copy, as for the image; a resized crop, an
  affine warp and each geometric slot of a policy take the input pixel under each output
  pixel's centre (for a warp the geometric ops' ``"nearest"``, whatever the set's
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

  A tuple of per-image sets is a chain, applied in turn (as `apply` applies it to the image):
  a label map goes through it as one gather, the input pixel each output pixel takes composed
  through the sets, equal to one call per set and cheaper than their resamplings.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `AffineParams`, `PolicyParams`, `CutmixParams`, `MixupParams`, `ErasingParams`, the
      colour sets), or one built by hand; or a chain, a tuple of per-image sets, each drawn
      for the output of the one before. Under `jax.vmap`, a batch of sets with a batch of
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
      a chain holding a mix or a tuple; a ``mask`` neither integer, bool nor floating point,
      a floating-point mask without a class axis, an integer or bool mask for a
      `MixupParams`; a ``fill`` or ``erased`` not a real number, fractional for an integer
      mask, or traced.
    ValueError: a ``mask`` not of rank 2 or 3 (3 or 4 for the mixes), or of another height
      and width than ``params.image_size`` (in a chain, than the set before outputs); an
      empty chain; a batch of another size than the mix's; a
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
  chain = _as_chain(params, "mask", op)
  if chain is not None:
    mask = check_mask(mask, getattr(chain[0], "image_size", None), op)
    fill, erased = check_mask_values(mask, fill, erased, op)
    return _chain_mask_kernel(chain, mask, fill, erased, op)
  rule = lookup(params, "mask", op)
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
  boxes that no static shape holds. A chain (a tuple of sets) applies its sets in turn.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `AffineParams`, `PolicyParams`, `ErasingParams`, the colour sets; a flip, an affine
      set and a policy need their ``image_size``, which `draw` records), or a chain of them,
      a tuple. Under `jax.vmap`, a batch of sets with a batch of boxes:
      ``jax.vmap(apply_to_boxes)(params, boxes, valid=valid)``.
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
      `MixupParams`, in a chain too; non-float ``boxes``; a ``valid`` that is not bool; a
      ``hide_erased`` that is not a bool.
    ValueError: ``boxes`` not of shape (K, 4); ``valid`` not of shape (K,); a ``min_size``
      negative or not finite; a flip, affine set or policy without ``image_size``; an empty
      chain, or a set in it drawn for another size than the set before outputs; an affine
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
    >>> A.apply_to_boxes((flip, turn), jnp.array([[6.0, 4.0, 9.0, 6.0]]))[0]  # in turn
    Array([[ 9.,  1., 11.,  4.]], dtype=float32)
  """
  op = "apply_to_boxes"
  chain = _as_chain(params, "boxes", op)
  rule = None if chain is not None else lookup(params, "boxes", op)
  boxes = check_points(boxes, op, "boxes", 4, "XYXY boxes, one per row")
  valid = check_flags(valid, op, "valid", boxes.shape[0], "box")
  _checks.check_interval(min_size, op, "min_size", lo=0.0)
  hide_erased = _checks.check_bool(hide_erased, op, "hide_erased")
  if chain is not None:
    return _chain_points_kernel(chain, boxes, valid, min_size, "boxes", hide_erased, op)
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
  `CutmixParams` and `MixupParams` raise (each example shows parts of two images). A chain (a
  tuple of sets) applies its sets in turn.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `AffineParams`, `PolicyParams`, `ErasingParams`, the colour sets; a flip, an affine
      set and a policy need their ``image_size``, which `draw` records), or a chain of them,
      a tuple. Under `jax.vmap`, a batch of sets with a batch of keypoints.
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
      a `MixupParams`, in a chain too; non-float ``keypoints``; a ``visible`` that is not
      bool; a ``hide_erased`` that is not a bool.
    ValueError: ``keypoints`` not of shape (K, 2); ``visible`` not of shape (K,); a flip,
      affine set or policy without ``image_size``; an empty chain, or a set in it drawn for
      another size than the set before outputs; an affine matrix not of shape (2, 3); a
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
  chain = _as_chain(params, "keypoints", op)
  rule = None if chain is not None else lookup(params, "keypoints", op)
  keypoints = check_points(keypoints, op, "keypoints", 2, "(x, y) points, one per row")
  visible = check_flags(visible, op, "visible", keypoints.shape[0], "keypoint")
  hide_erased = _checks.check_bool(hide_erased, op, "hide_erased")
  if chain is not None:
    return _chain_points_kernel(chain, keypoints, visible, 0.0, "keypoints", hide_erased, op)
  if rule is not None:
    return rule(params, keypoints, visible, hide_erased, op)
  return _keypoints_kernel(params, keypoints, visible, op)
