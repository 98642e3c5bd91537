"""Dense targets through an augmentation pipeline: what a mask and boxes add, vs torchvision.

    python -m benchmarks.bench_targets            # 128 uint8 images of 224x224, this machine
    python -m benchmarks.bench_targets --smoke    # 4 images of 32x32, no policy, seconds (CI)

The pipeline, per image with its own draws, on uint8: random_resized_crop to 224 ->
random_flip_left_right -> trivial_augment_wide. The targets: one uint8 label map per image and
32 XYXY boxes per image with a validity mask (a fifth of the rows empty).

jaxreg, jitted over the batch:
- image only: `batched(compose(...))`, as a recipe runs it (the crop and the flip as one
  resampling);
- image and targets: the three sets drawn per example (`batched`), then the chain applied to
  the image (`apply`, the crop and flip fused as in `compose`: the same images, checked), the
  label map (`apply_to_mask`: one gather through the chain's composed index maps) and the
  boxes (`apply_to_boxes` with ``valid``).
torchvision.transforms.v2 on uint8 tv_tensors (`Image`, `Mask`, `BoundingBoxes` XYXY), one
image at a time in a Python loop, as a DataLoader worker runs it: `RandomResizedCrop`,
`RandomHorizontalFlip`, then TrivialAugmentWide's draw with its op applied to each tv_tensor
(v2's `TrivialAugmentWide` refuses masks and boxes; its photometric ops leave them alone), and
`SanitizeBoundingBoxes` (torchvision's way of dropping the boxes jaxreg flags invalid). torch
runs with 1 thread or its default, whichever a probe finds faster.

Rows (time ratios, below 1 is faster; anchors in this process, interleaved, medians of
per-round ratios): the targets' added time (jaxreg with targets over jaxreg image only; the
target is at most 1.15), also with one `apply_to_mask` / `apply_to_boxes` call per set (three
resamplings of the label map instead of one gather), and each jaxreg pipeline against
torchvision's (the target for the one with targets is at most 0.5, twice the throughput).
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812

A = jr.augment
BOXES = 32


def inputs(n: int, side: int, seed: int = 0):
  """uint8 images, uint8 label maps (21 classes), (n, 32, 4) XYXY boxes and their flags."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
  masks = rng.integers(0, 21, (n, side, side), dtype=np.uint8)
  corner = rng.uniform(0, side * 0.9, (n, BOXES, 2))
  extent = rng.uniform(side * 0.02, side * 0.3, (n, BOXES, 2))
  boxes = np.concatenate([corner, np.minimum(corner + extent, side)], -1).astype(np.float32)
  valid = rng.random((n, BOXES)) < 0.8
  return images, masks, boxes, valid


def jaxreg_pipelines(size: int, policy: bool = True):
  """``(image_only(key, images), with_targets(key, images, masks, boxes, valid), per_set)``,
  jitted; ``per_set`` moves the targets with one call per set instead of the chain's one.
  Without ``policy``, the crop and the flip only (the smoke run: a policy takes seconds to
  compile)."""
  ops = [functools.partial(A.random_resized_crop, size=size), A.random_flip_left_right]
  ops += [A.trivial_augment_wide] if policy else []
  image_only = A.batched(A.compose(*ops))

  def draw_sets(key, image):
    # The keys `compose` gives its transforms; the flip and the policy are drawn for the
    # crop's output (a stand-in of its shape: their draws read only the shape).
    keys = jax.random.split(key, len(ops))
    out = jnp.zeros((size, size, image.shape[-1]), image.dtype)
    sets = (A.draw(A.random_resized_crop)(keys[0], image, size=size),
            A.draw(A.random_flip_left_right)(keys[1], out))
    return (*sets, A.draw(A.trivial_augment_wide)(keys[2], out)) if policy else sets

  def one(sets, image, mask, boxes, valid):
    return (A.apply(sets, image), A.apply_to_mask(sets, mask),
            *A.apply_to_boxes(sets, boxes, valid=valid))

  def one_per_set(sets, image, mask, boxes, valid):
    for params in sets:  # each label map resampled by each set in turn
      mask = A.apply_to_mask(params, mask)
      boxes, valid = A.apply_to_boxes(params, boxes, valid=valid)
    return A.apply(sets, image), mask, boxes, valid

  def with_targets(key, images, masks, boxes, valid, apply=one):
    sets = A.batched(draw_sets)(key, images)
    return jax.vmap(apply)(sets, images, masks, boxes, valid)

  return (jax.jit(image_only), jax.jit(with_targets),
          jax.jit(functools.partial(with_targets, apply=one_per_set)))


def torchvision_pipelines(images, masks, boxes, valid, size: int, policy: bool = True):
  """``(image_only(), with_targets(), threads)``: torchvision.transforms.v2 per image, as its
  users write it. Raises ImportError without torch and torchvision (the `bench` extra)."""
  import torch
  from torchvision import tv_tensors
  from torchvision.transforms import v2

  head = v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()])
  image_only = v2.Compose([head, v2.TrivialAugmentWide()]) if policy else head
  policy, sanitize = v2.TrivialAugmentWide(), v2.SanitizeBoundingBoxes(labels_getter=None)
  geometric = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}

  def trivial_augment_wide(image, *targets):
    # TrivialAugmentWide.forward's draw, its op applied to the image and, if geometric, to
    # each target.
    if not policy:
      return image, *targets
    height, width = image.shape[-2:]
    name, (magnitudes_of, signed) = policy._get_random_item(policy._AUGMENTATION_SPACE)
    magnitudes = magnitudes_of(policy.num_magnitude_bins, height, width)
    magnitude = 0.0
    if magnitudes is not None:
      magnitude = float(magnitudes[int(torch.randint(policy.num_magnitude_bins, ()))])
      if signed and torch.rand(()) <= 0.5:
        magnitude = -magnitude
    apply = functools.partial(policy._apply_image_or_video_transform, transform_id=name,
                              magnitude=magnitude, interpolation=policy.interpolation,
                              fill=policy._fill)
    return (apply(image), *(apply(t) if name in geometric else t for t in targets))

  side = images.shape[1]
  samples = [(tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1).contiguous()),
              tv_tensors.Mask(torch.from_numpy(mask)),
              tv_tensors.BoundingBoxes(torch.from_numpy(b[v]), format="XYXY",
                                       canvas_size=(side, side)))
             for image, mask, b, v in zip(images, masks, boxes, valid, strict=True)]

  def run_image_only(count=None):
    return [image_only(image) for image, _, _ in samples[:count]]

  def run_with_targets(count=None):
    return [sanitize(*trivial_augment_wide(*head(*sample))) for sample in samples[:count]]

  threads = H.torch_threads(lambda: run_with_targets(min(8, len(samples))))
  return run_image_only, run_with_targets, threads


def run(smoke: bool = False) -> list[dict]:
  n, side, size = (4, 32, 24) if smoke else (128, 224, 224)
  rounds = 3 if smoke else 9
  images, masks, boxes, valid = inputs(n, side)
  image_only, with_targets, per_set = jaxreg_pipelines(size, policy=not smoke)
  key = jax.random.key(0)
  args = tuple(jnp.asarray(a) for a in (images, masks, boxes, valid))
  # The same images both ways: the draws-then-apply chain is compose's pipeline.
  # The same images and targets every way: the draws-then-apply chain is compose's pipeline.
  # (The smoke run leaves out the per-set pipeline: one compilation less.)
  first, moved = image_only(key, args[0]), with_targets(key, *args)
  stepwise = moved if smoke else per_set(key, *args)
  same = [bool((first == moved[0]).all())] + [bool((a == b).all())
                                               for a, b in zip(moved, stepwise, strict=True)]
  if not all(same):
    raise AssertionError(f"bench_targets: the pipelines disagree: {same}")
  mine = lambda: image_only(key, args[0])  # noqa: E731
  ours = lambda: with_targets(key, *args)  # noqa: E731
  shape = f"{n}x{side}x{side}x3 -> {size}, 1 mask, {BOXES} boxes"
  rows = []
  variants = [("targets_vs_image", "chain", ours)]
  if not smoke:
    variants.append(("per_set_vs_image", "one call per set", lambda: per_set(key, *args)))
  for key_, label, fn in variants:
    t_targets, t_image, added = H.median_ratio(fn, mine, rounds=rounds)
    rows.append(H.row(f"jaxreg image + mask + boxes ({label}) vs image only (added time)",
                      shape, "uint8", t_targets, t_image, added,
                      f"{(added - 1) * 100:+.1f}% time", anchor_name="jaxreg image only",
                      key=key_, items=n))
  try:
    tv_image, tv_targets, threads = torchvision_pipelines(images, masks, boxes, valid, size,
                                                          policy=not smoke)
  except ImportError:
    return [*rows, H.row("torchvision: not installed", shape, "uint8", None, None, None,
                         key="torchvision_missing")]
  anchor = f"torchvision.transforms.v2 per image, {threads} threads"
  steps = "RRC, flip" + ("" if smoke else ", trivial_augment_wide")
  for key_, label, fn, theirs in (
      ("image", "image only", mine, tv_image),
      ("targets", "image + mask + boxes", ours, tv_targets)):
    t_m, t_a, ratio = H.median_ratio(fn, theirs, rounds=rounds)
    rows.append(H.row(f"{label}: {steps}", shape, "uint8", t_m, t_a,
                      ratio, f"{n / t_m:.0f} vs {n / t_a:.0f} img/s", anchor_name=anchor,
                      key=key_, items=n, anchor_threads=threads))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  args = parser.parse_args()
  H.print_table(run(args.smoke))
