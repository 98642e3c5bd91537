"""The timm / torchvision ImageNet recipe's data augmentation, as one jitted function of a batch.

Per image, each with its own key (`batched`): random resized crop to 224 -> horizontal flip
(p = 0.5) -> TrivialAugmentWide -> random erasing (p = 0.25). Then, for the batch: labels
smoothed by `optax.smooth_labels` (0.1), and either mixup (alpha 0.8) or cutmix (alpha 1.0),
one of the two per batch with probability 1/2 each, as timm's ``Mixup(mixup_alpha=0.8,
cutmix_alpha=1.0, switch_prob=0.5, label_smoothing=0.1)`` does (it smooths before mixing).

    python examples/timm_recipe.py            # 128 uint8 images of 256x256, images per second
    python examples/timm_recipe.py --smoke    # 4 images of 64x64 -> 48
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import optax

import jaxreg as jr

A = jr.augment


def per_image(*, size: int = 224, erasing: float = 0.25):
  """``recipe(key, image) -> image``: the recipe's per-image part, for `batched`.

  Random resized crop to ``size`` -> horizontal flip -> TrivialAugmentWide -> random erasing
  (probability ``erasing``). On a uint8 image (as decoded) it runs on uint8, as torchvision's
  does, and returns uint8. `compose` runs the crop and the flip as one resampling.
  """
  return A.compose(_geometry_and_policy(size), functools.partial(A.random_erasing,
                                                                 probability=erasing))


def _geometry_and_policy(size: int):
  return A.compose(functools.partial(A.random_resized_crop, size=size),
                   A.random_flip_left_right, A.trivial_augment_wide)


def mix_batch(key, images, labels, *, num_classes: int = 1000, smoothing: float = 0.1,
              mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, switch_prob: float = 0.5,
              erasing: A.ErasingParams | None = None):
  """``(images, targets)``: the recipe's batch part, after `per_image`.

  Labels smoothed by `optax.smooth_labels`, then cutmix (probability ``switch_prob``) or mixup
  of the whole batch. uint8 images become float32 in [0, 1] inside each branch, so the
  conversion fuses into the mixing. ``erasing``: per-example `random_erasing` parameters
  (from ``batched(draw(random_erasing))``), applied in the same pass, before the mixing.
  """
  k_switch, k_mix = jax.random.split(key)
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), smoothing)

  def as_float():
    x = images.astype(jnp.float32) / 255 if images.dtype == jnp.uint8 else images
    return x if erasing is None else jax.vmap(A.apply)(erasing, x)

  return jax.lax.cond(
      jax.random.bernoulli(k_switch, switch_prob),
      lambda: A.cutmix(k_mix, as_float(), targets, alpha=cutmix_alpha),
      lambda: A.mixup(k_mix, as_float(), targets, alpha=mixup_alpha))


def make_augment(*, size: int = 224, num_classes: int = 1000, smoothing: float = 0.1,
                 mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, switch_prob: float = 0.5,
                 erasing: float = 0.25):
  """``augment(key, images, labels) -> (images, targets)``, jitted.

  ``images``: (N, H, W, 3) uint8 (as decoded) or floats in [0, 1]; ``labels``: (N,) integer
  classes. Returns (N, size, size, 3) float32 images in [0, 1] and (N, num_classes) soft
  targets for a cross-entropy loss (`optax.softmax_cross_entropy`). On uint8 the per-image
  part runs on uint8 as torchvision's does (a quarter of the bytes), and the batch becomes
  float for the mixing.
  """
  # The erasing is drawn per image and applied in the batch part's float conversion, where it
  # fuses with the mixing instead of being a pass over the batch of its own: draw, then apply
  # where it is cheapest.
  recipe = A.batched(_geometry_and_policy(size))
  draw_erasing = A.batched(functools.partial(A.draw(A.random_erasing), probability=erasing))
  mix = functools.partial(mix_batch, num_classes=num_classes, smoothing=smoothing,
                          mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
                          switch_prob=switch_prob)

  @jax.jit
  def augment(key, images, labels):
    k_images, k_erasing, k_batch = jax.random.split(key, 3)
    images = recipe(k_images, images)
    return mix(k_batch, images, labels, erasing=draw_erasing(k_erasing, images))

  return augment


def main(argv=None) -> float:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="4 images of 64x64, cropped to 48")
  args = parser.parse_args(argv)
  n, side, size = (4, 64, 48) if args.smoke else (128, 256, 224)
  k_images, k_labels, key = jax.random.split(jax.random.key(0), 3)
  images = jax.random.randint(k_images, (n, side, side, 3), 0, 256).astype(jnp.uint8)
  labels = jax.random.randint(k_labels, (n,), 0, 1000)
  augment = make_augment(size=size)
  out, targets = jax.block_until_ready(augment(key, images, labels))  # compiles
  start = time.perf_counter()
  steps = 3
  for step in range(steps):
    out, targets = augment(jax.random.fold_in(key, step), images, labels)
  jax.block_until_ready(out)
  rate = steps * n / (time.perf_counter() - start)
  print(f"{out.shape} images, {targets.shape} targets: {rate:.0f} images/s on "
        f"{jax.devices()[0].platform}")
  return rate


if __name__ == "__main__":
  main()
