"""Augmentation pipeline throughput vs dm_pix and augmax (images per second).

    python -m benchmarks.bench_augment            # 128 images of 256x256x3 -> 224x224, CPU
    python -m benchmarks.bench_augment --smoke    # tiny, seconds (CI)

Pipeline: random resized crop to 224, horizontal flip, colour jitter (brightness, contrast,
saturation, hue; in a random order per example, and with ``random_order=False`` in dm_pix's
fixed order), every example with its own key, one jitted function over the batch (`batched`,
i.e. `vmap`; on a CPU the colour jitter runs as a loop inside it by itself).

Anchors, each vmapped over split keys:
- dm_pix, same pipeline: dm_pix has no random resized crop, so its user composes one: a
  torchvision-style box and `jax.image.scale_and_translate` (bilinear, antialiased: the same
  work per output pixel as jaxreg's resampling; the values agree except in the border pixels,
  where resampling the whole image blends in pixels just outside the box and jaxreg, like
  torchvision, resizes the crop alone), then dm_pix's flip and four colour ops in their fixed
  order. (dm_pix's own resampler, `affine_transform`, is too slow for this batch: not run here.)
- dm_pix, plain crop: `random_crop` to 224 instead of a resampled box. Strictly less work than
  the pipeline asked for; kept as the floor a crop-only pipeline sets.
- augmax: its own `RandomSizedCrop` + `HorizontalFlip` + `ColorJitter` chain. Its
  `ColorJitter` (augmax 0.4.1) is a lighter op than torchvision's: brightness, a per-pixel
  contrast curve (no image mean) and hue, in that fixed order on HSV value and hue; its
  saturation step's result is unused; applied with probability 0.5.
"""

from __future__ import annotations

import argparse
import functools
import math

import jax
import jax.numpy as jnp

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812

A = jr.augment


def jaxreg_pipeline(size, random_order=True):
  return A.batched(A.compose(
      functools.partial(A.random_resized_crop, size=size),
      A.random_flip_left_right,
      functools.partial(A.color_jitter, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
                        random_order=random_order),
  ))


def _resized_crop_via_jax_image(key, image, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
  """What a dm_pix user writes for the missing crop: one box draw, clipped, and jax.image."""
  height, width = image.shape[:2]
  k_area, k_ratio, k_corner = jax.random.split(key, 3)
  area = height * width * jax.random.uniform(k_area, (), minval=scale[0], maxval=scale[1])
  aspect = jnp.exp(jax.random.uniform(k_ratio, (), minval=math.log(ratio[0]),
                                      maxval=math.log(ratio[1])))
  box_w = jnp.clip(jnp.round(jnp.sqrt(area * aspect)), 1, width)
  box_h = jnp.clip(jnp.round(jnp.sqrt(area / aspect)), 1, height)
  box = jnp.stack([box_h, box_w])
  corner = jnp.floor(jax.random.uniform(k_corner, (2,)) * (jnp.array([height, width]) - box + 1))
  factor = size / box
  return jax.image.scale_and_translate(image, (size, size, image.shape[2]), (0, 1), factor,
                                       -corner * factor, method="linear", antialias=True)


def dm_pix_pipeline(size, resized=True):
  import dm_pix as pix

  def one(key, image):
    k = jax.random.split(key, 6)
    if resized:
      image = _resized_crop_via_jax_image(k[0], image, size)
    else:
      image = pix.random_crop(k[0], image, (size, size, 3))
    image = pix.random_flip_left_right(k[1], image)
    image = pix.random_brightness(k[2], image, 0.4)
    image = pix.random_contrast(k[3], image, 0.6, 1.4)
    image = pix.random_saturation(k[4], image, 0.6, 1.4)
    image = jnp.clip(pix.random_hue(k[5], image, 0.1), 0.0, 1.0)
    return image

  return lambda key, images: jax.vmap(one)(jax.random.split(key, images.shape[0]), images)


def augmax_pipeline(size):
  import augmax

  chain = augmax.Chain(augmax.RandomSizedCrop(size, size), augmax.HorizontalFlip(),
                       augmax.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4,
                                          hue=0.1))
  return lambda key, images: jax.vmap(chain)(jax.random.split(key, images.shape[0]), images)


def run(smoke: bool = False) -> list[dict]:
  n, side, size = (8, 40, 32) if smoke else (128, 256, 224)
  rounds = 3 if smoke else 9
  images = jax.random.uniform(jax.random.key(0), (n, side, side, 3))
  key = jax.random.key(1)
  shape = f"{n}x{side}x{side}x3 -> {size}"
  mine = {"random order": jax.jit(jaxreg_pipeline(size)),
          "fixed order": jax.jit(jaxreg_pipeline(size, random_order=False))}
  times = H.time_interleaved([lambda f=f: f(key, images) for f in mine.values()], rounds=rounds)
  slug = {"random order": "random", "fixed order": "fixed"}
  rows = [H.row(f"RRC+flip+jitter ({name}, jaxreg alone)", shape, "float32", t, None, None,
                key=f"jaxreg_{slug[name]}", items=n) for name, t in zip(mine, times, strict=True)]
  # dm_pix's jitter has a fixed order (the one random_order=False uses); augmax's is fixed
  # too but of other ops (see above), set against the random order, torchvision's recipe.
  every = ("random order", "fixed order")
  anchors = (("dm_pix", "dm_pix (same pipeline)", dm_pix_pipeline, every),
             ("dm_pix_crop", "dm_pix (plain crop)",
              functools.partial(dm_pix_pipeline, resized=False), every),
             ("augmax", "augmax", augmax_pipeline, ("random order",)))
  for anchor_key, name, factory, orders in anchors:
    try:
      anchor = jax.jit(factory(size))
    except ImportError:  # anchors come with the `bench` extra
      rows.append(H.row(f"RRC+flip+jitter vs {name}: not installed", shape, "float32", None,
                        None, None, key=f"{anchor_key}_missing"))
      continue
    for order in orders:
      t_m, t_a, ratio = H.median_ratio(lambda f=mine[order]: f(key, images),
                                       lambda a=anchor: a(key, images), rounds=rounds)
      rows.append(H.row(f"RRC+flip+jitter ({order})", shape, "float32", t_m, t_a, ratio,
                        f"{n / t_m:.0f} vs {n / t_a:.0f} img/s", anchor_name=name,
                        key=f"{anchor_key}_{slug[order]}", items=n))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
