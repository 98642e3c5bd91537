"""What the sets that move no pixel through a geometry do to masks, boxes and keypoints.

Each class registers with `jaxreg.augment._targets.register_rules` one rule per kind of target:
a function, or the reason there is no answer (the public function raises a TypeError with it).

* `CutmixParams`: a batch of masks; each takes its partner's mask exactly where its image takes
  its partner's pixels (`jaxreg.augment._mix.pasted`, the images' own rule). Boxes and
  keypoints have no single answer: an example shows its own objects, partly covered, and parts
  of its partner's, a number of rows no static shape holds (torchvision.transforms.v2's `CutMix`
  refuses all three).
* `MixupParams`: masks are soft labels, blended as the labels are; float masks with a class axis
  only (an integer label map has no blend). Boxes and keypoints: no single answer, as above.
* `ErasingParams`: targets as they are (torchvision's `RandomErasing` passes them through);
  asked, the mask gets a value where the image is erased (`jaxreg.augment._erasing.erased_pixels`,
  the image's rule), and a box wholly inside the erased rectangle, or a keypoint on an erased
  pixel, loses its flag.
* The colour sets (`ColorParams`, `GrayscaleParams`, `ColorJitterParams`): targets as they are.
* `AugMixParams`: no answer; its chains warp differently.

Design: docs/design/targets.md.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxreg import _checks
from jaxreg.augment._erasing import erased_pixels
from jaxreg.augment._image_checks import nan_if_bad_probability
from jaxreg.augment._mix import check_per_example, pasted
from jaxreg.augment._params import (
  AugMixParams,
  ColorJitterParams,
  ColorParams,
  CutmixParams,
  ErasingParams,
  GrayscaleParams,
  MixupParams,
)
from jaxreg.augment._target_base import TargetRules, check_mask, check_mask_values, register_rules

# --------------------------------------------------------------------------------------------
# Targets left as they are: the colour sets, and erasing unless asked
# --------------------------------------------------------------------------------------------


def _same_mask(params, mask, fill, erased, op: str):
  mask = check_mask(mask, getattr(params, "image_size", None), op)
  check_mask_values(mask, fill, erased, op)
  return mask


def _same_points(params, points, flags, hide_erased, op: str):
  return points, flags


# --------------------------------------------------------------------------------------------
# Erasing: the mask marked, boxes and keypoints hidden, where asked
# --------------------------------------------------------------------------------------------


def _erasing_mask(params: ErasingParams, mask, fill, erased, op: str):
  mask = check_mask(mask, params.image_size, op)
  _, erased = check_mask_values(mask, fill, erased, op)
  return mask if erased is None else _mark_erased(params, mask, erased)


@functools.partial(jax.jit, static_argnames=("value",))
def _mark_erased(params: ErasingParams, mask, value):
  box = erased_pixels(params, *mask.shape[:2])
  box = box.reshape(box.shape + (1,) * (mask.ndim - 2))
  # A bad traced probability: a float mask NaN, as the image.
  return nan_if_bad_probability(params.probability,
                                jnp.where(box, jnp.asarray(value, mask.dtype), mask))


def _erased_rectangle(params: ErasingParams, dtype):
  """``(left, top, right, bottom)`` of the erased pixels in ``dtype``, and whether they are
  erased and the probability valid (where it is not, targets are NaN and lose their flags)."""
  top, left, height, width = (jnp.asarray(v).astype(dtype) for v in (
      params.top, params.left, params.height, params.width))
  valid = _checks.traced_in_interval(params.probability, lo=0.0, hi=1.0)
  return (left, top, left + width, top + height), params.erase, valid


def _erasing_boxes(params: ErasingParams, boxes, valid, hide_erased: bool, op: str):
  return _hide_boxes(params, boxes, valid) if hide_erased else (boxes, valid)


@jax.jit
def _hide_boxes(params: ErasingParams, boxes, valid):
  dtype = _checks.float32_or_wider(boxes.dtype)
  (left, top, right, bottom), erase, ok = _erased_rectangle(params, dtype)
  x0, y0, x1, y1 = (boxes[:, i].astype(dtype) for i in range(4))
  hidden = erase & (x0 >= left) & (x1 <= right) & (y0 >= top) & (y1 <= bottom)
  return _checks.nan_unless(ok, boxes), valid & ~hidden & ok


def _erasing_keypoints(params: ErasingParams, keypoints, visible, hide_erased: bool, op: str):
  return _hide_keypoints(params, keypoints, visible) if hide_erased else (keypoints, visible)


@jax.jit
def _hide_keypoints(params: ErasingParams, keypoints, visible):
  # The erased pixels are the squares [j, j + 1) x [i, i + 1) of the box's rows and columns.
  dtype = _checks.float32_or_wider(keypoints.dtype)
  (left, top, right, bottom), erase, ok = _erased_rectangle(params, dtype)
  x, y = keypoints[:, 0].astype(dtype), keypoints[:, 1].astype(dtype)
  hidden = erase & (x >= left) & (x < right) & (y >= top) & (y < bottom)
  return _checks.nan_unless(ok, keypoints), visible & ~hidden & ok


# --------------------------------------------------------------------------------------------
# The mixes: a batch of masks
# --------------------------------------------------------------------------------------------


def _cutmix_mask(params: CutmixParams, mask, fill, erased, op: str):
  mask = check_mask(mask, params.image_size, op, batch=True)
  check_per_example(params, ("perm", "top", "bottom", "left", "right"), mask.shape[0], op)
  check_mask_values(mask, fill, erased, op)
  return _paste(params, mask)


@jax.jit
def _paste(params: CutmixParams, mask):
  inside = pasted(params, *mask.shape[1:3])
  inside = inside.reshape(inside.shape + (1,) * (mask.ndim - 3))
  return jnp.where(inside, mask[params.perm], mask)


def _mixup_mask(params: MixupParams, mask, fill, erased, op: str):
  mask = check_mask(mask, None, op, batch=True)
  if not jnp.issubdtype(mask.dtype, jnp.floating):
    raise TypeError(f"{op}: a MixupParams blends each mask with its partner's as it blends the "
                    f"labels (soft labels, lam m + (1 - lam) m[perm]), so `mask` must be a "
                    f"floating-point one-hot or soft mask with a class axis (N, H, W, K), got "
                    f"dtype {mask.dtype}. One-hot a label map first: "
                    f"`jax.nn.one_hot(mask, num_classes)` (an ignore index >= num_classes "
                    f"becomes all zeros, no class).")
  check_per_example(params, ("perm", "lam"), mask.shape[0], op)
  check_mask_values(mask, fill, erased, op)
  return _blend(params, mask)


@jax.jit
def _blend(params: MixupParams, mask):
  # `apply(MixupParams)`'s arithmetic for the images, so a mask blends as its image does.
  lam = params.lam.astype(mask.dtype).reshape((-1,) + (1,) * (mask.ndim - 1))
  return lam * mask + (1 - lam) * mask[params.perm]


# --------------------------------------------------------------------------------------------
# Registration, and the reasons for the targets without an answer
# --------------------------------------------------------------------------------------------


def _two_images(what: str, mix: str, how: str) -> str:
  return (f"so an example shows objects of two images and its {what} have no single answer "
          f"with a fixed number of rows (torchvision.transforms.v2's {mix} refuses them too). "
          f"Build them from the set if your task needs them: {how}.")


_PASTED_BOX = "the pasted box (`params.left`, `params.top`, `params.right`, `params.bottom`)"
_AUGMIX = ("which blends the image with chains of differently warped copies of it: no one "
           "geometry moves {what} with the mixed image. Move them with the geometric sets drawn "
           "before the mix (a crop, a flip, a policy's PolicyParams).")

for _cls in (ColorParams, GrayscaleParams, ColorJitterParams):
  register_rules(_cls, TargetRules(_same_mask, _same_points, _same_points))
register_rules(ErasingParams, TargetRules(_erasing_mask, _erasing_boxes, _erasing_keypoints))
register_rules(CutmixParams, TargetRules(
    _cutmix_mask,
    "which pastes a box of its partner into each image, " + _two_images(
        "boxes", "CutMix", f"the example's own beside its partner's (`boxes[params.perm]`) "
                           f"clipped to {_PASTED_BOX}"),
    "which pastes a box of its partner into each image, " + _two_images(
        "keypoints", "CutMix", f"the example's own beside its partner's "
                               f"(`keypoints[params.perm]`) inside {_PASTED_BOX}"), batch=True))
register_rules(MixupParams, TargetRules(_mixup_mask, *(
    "which blends each image with its partner, " + _two_images(
        what, "MixUp", f"the example's own and its partner's (`{what}[params.perm]`), "
                       f"weighted by `params.lam` and `1 - params.lam`")
    for what in ("boxes", "keypoints")), batch=True))
register_rules(AugMixParams, TargetRules(*(_AUGMIX.format(what=what) for what in (
    "a mask", "boxes", "keypoints"))))
