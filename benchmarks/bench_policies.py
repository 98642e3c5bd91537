"""Augmentation policies on a batch: each against its most expensive single op (time ratios).

    python -m benchmarks.bench_policies            # 128 images of 224x224x3, this machine
    python -m benchmarks.bench_policies --smoke    # tiny, 3 ops and 1 policy, seconds (CI)
    python -m benchmarks.bench_policies --keras    # also Keras 3's RandAugment (slow; needs keras)

A batched policy (`batched`: every example its own ops, magnitudes and signs) should cost about
one op per slot, not the sum of its branches. Each policy is timed interleaved with every op it
draws from, each of those applied to the whole batch at its largest magnitude (`vmap` of the
public op), and the table reports policy / (most expensive op): TrivialAugmentWide draws one op
per image, so the target is at most 2.

Rows, all jitted over the whole batch:
- each op of TrivialAugmentWide alone (ratio: op / most expensive op);
- the policies (ratio: policy / most expensive op), as the library runs them (on a CPU a loop
  over the examples, each running only its drawn ops);
- "vmap of switch": the same TrivialAugmentWide draws applied by a `lax.switch` over the 14
  ops under `vmap`, which XLA turns into a select computing all 14 for every example: what a
  direct implementation costs, and what the library avoids;
- "vectorized": the library's form for accelerators (one warp with a per-example matrix and
  one select among the photometric ops per slot), forced on this device.
- TrivialAugmentWide on uint8 levels, against the float policy on the levels converted around
  it and rounded after it;
- the timm-style recipe of `examples/timm_recipe.py` (random resized crop, flip,
  TrivialAugmentWide, random erasing, mixup or cutmix with smoothed labels) against
  torchvision.transforms.v2 doing the same per image on uint8 tensors (`bench` extra);
- Keras 3's `RandAugment` layer (JAX backend) where `--keras` is given and keras imports: it
  draws its ops once per batch and computes all of them; run eagerly, as its users call it.

Only ratios are meaningful on a shared machine; the absolute times drift with the load.
"""

from __future__ import annotations

import argparse
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812
from jaxreg import _checks
from jaxreg.augment import _policies, _policy_space
from jaxreg.augment._dtypes import on_levels

A = jr.augment

# Each op of TrivialAugmentWide at its largest magnitude, on one image.
OPS = {
    "ShearX": lambda x: A.shear_x(x, 0.99),
    "ShearY": lambda x: A.shear_y(x, 0.99),
    "TranslateX": lambda x: A.translate_x(x, 32.0),
    "TranslateY": lambda x: A.translate_y(x, 32.0),
    "Rotate": lambda x: A.rotate(x, 135.0),
    "Brightness": lambda x: A.enhance_brightness(x, 1.99),
    "Color": lambda x: A.enhance_color(x, 1.99),
    "Contrast": lambda x: A.enhance_contrast(x, 1.99),
    "Sharpness": lambda x: A.enhance_sharpness(x, 1.99),
    "Posterize": lambda x: A.posterize(x, 2),
    "Solarize": lambda x: A.solarize(x, 0.5),
    "AutoContrast": A.autocontrast,
    "Equalize": A.equalize,
    "Invert": A.invert,
}


def _trivial_draws(key, images):
  """TrivialAugmentWide's (ops, magnitudes) for each image of the batch: (N, 1, 1) each."""
  tab = _policy_space.table(_policy_space.TRIVIAL_AUGMENT_WIDE, *images.shape[1:3], 31)
  keys = jax.random.split(key, images.shape[0])
  ops, values = jax.vmap(lambda k: _policy_space.draw_trivial_augment_wide(k, tab, 31))(keys)
  return ops[:, None], values[:, None]


def switch_under_vmap(key, images):
  """TrivialAugmentWide applied by a per-example `lax.switch` under `vmap` (no CPU loop)."""
  ops, values = _trivial_draws(key, images)
  fill = jnp.zeros((), jnp.float32)
  one = functools.partial(_policies.switched, interpolation="nearest")
  return jax.vmap(lambda x, v, o: one(x, v, fill, o)[0])(images, values, ops)


def vectorized(key, images, guard: str = "slot"):
  """TrivialAugmentWide in the accelerators' form (a warp and a photometric select).

  ``guard``: how a non-finite magnitude makes the result NaN (docs/policies.md, "A non-finite
  magnitude"): the library's poisoned last slot ("slot"), none ("none"), or the rejected
  select on each example's result ("select").
  """
  ops, values = _trivial_draws(key, images)
  fill = jnp.zeros((), jnp.float32)
  one = functools.partial(_policies.selected, interpolation="nearest", nan_guard=guard == "slot")

  def example(x, v, o):
    out = one(x, v, fill, o)[0]
    return _checks.nan_unless(jnp.isfinite(v).all(), out) if guard == "select" else out

  return jax.vmap(example)(images, values, ops)


def policies() -> dict:
  return {
      "trivial_augment_wide": A.batched(A.trivial_augment_wide),
      "rand_augment (2 ops, m9)": A.batched(A.rand_augment),
      "auto_augment imagenet": A.batched(A.auto_augment),
      "aug_mix (3 chains)": A.batched(A.aug_mix),
  }


def key_of(name: str) -> str:
  """A row's stable key: "op_rotate", "rand_augment", "trivial_augment_wide_switch"."""
  name = name.replace(", vmap of switch", "_switch").replace(", vectorized", "_vectorized")
  return name.split(" (")[0].split(" ")[0].lower()


def keras_rand_augment():
  """Keras 3's RandAugment layer on the JAX backend, or None where keras does not import."""
  os.environ.setdefault("KERAS_BACKEND", "jax")
  try:
    import keras
  except ImportError:
    return None
  if keras.backend.backend() != "jax":
    return None
  layer = keras.layers.RandAugment(value_range=(0, 1), num_ops=2, factor=0.3)
  return lambda images: layer(images, training=True)


def torchvision_recipe(images_u8, size: int, num_classes: int):
  """torchvision.transforms.v2 doing what `examples/timm_recipe.py` does, as its users run it.

  Per image on uint8 CHW tensors (a Python loop, as a DataLoader worker runs it): random
  resized crop -> flip -> TrivialAugmentWide -> random erasing (p = 0.25); then the stacked
  batch to float and mixup (alpha 0.8) or cutmix (alpha 1.0), one of the two per batch; label
  smoothing lives in torch's loss, so it is left out of this side. Raises ImportError without
  torch and torchvision (the `bench` extra).
  """
  import torch
  from torchvision.transforms import v2

  per_image = v2.Compose([v2.RandomResizedCrop(size, antialias=True),
                          v2.RandomHorizontalFlip(), v2.TrivialAugmentWide(),
                          v2.RandomErasing(p=0.25)])
  mix = v2.RandomChoice([v2.MixUp(alpha=0.8, num_classes=num_classes),
                         v2.CutMix(alpha=1.0, num_classes=num_classes)])
  tensors = [torch.from_numpy(image).permute(2, 0, 1).contiguous() for image in images_u8]
  labels = torch.randint(0, num_classes, (len(tensors),))

  def run():
    batch = torch.stack([per_image(t) for t in tensors]).float().div_(255)
    return mix(batch, labels)

  return run, torch.get_num_threads()


def uint8_rows(images, key, shape: str, rounds: int) -> list[dict]:
  """TrivialAugmentWide on a uint8 batch, as the library runs it (each op reads and writes
  levels in its own pass), against the float policy on the levels converted around it and
  rounded after it: a pass each way over every image, what the library avoids."""
  levels = jnp.round(images * 255).astype(jnp.uint8)
  policy = A.batched(A.trivial_augment_wide)
  around = jax.jit(lambda k, q: on_levels(lambda x: policy(k, x))(q))
  library = jax.jit(policy)
  mine, anchor, ratio = H.median_ratio(lambda: library(key, levels),
                                       lambda: around(key, levels), rounds=rounds)
  return [H.row("trivial_augment_wide on uint8", shape, "uint8", mine, anchor, ratio,
                anchor_name="the float policy on the levels, rounded after it",
                key="trivial_augment_wide_uint8", items=len(images))]


def recipe_rows(smoke: bool) -> list[dict]:
  """The timm-style recipe (examples/timm_recipe.py) against torchvision.transforms.v2, both
  from the same uint8 images (what a decoder gives); jaxreg also from float32 images."""
  from examples import timm_recipe

  n, side, size = (4, 64, 48) if smoke else (128, 256, 224)
  levels = np.asarray(jax.random.randint(jax.random.key(2), (n, side, side, 3), 0, 256),
                      np.uint8)
  inputs = {"uint8": jnp.asarray(levels), "float32": jnp.asarray(levels / 255, jnp.float32)}
  labels = jax.random.randint(jax.random.key(3), (n,), 0, 1000)
  augment = timm_recipe.make_augment(size=size)
  key = jax.random.key(4)
  shape = f"{n}x{side}x{side}x3 -> {size}"
  # What the recipe saves by running the resized crop and the flip as one resampling (compose)
  # and the erasing inside the batch's float conversion: its compiled bytes against the same
  # ops one pass each (the flip behind a lambda, the erasing in the per-image part).
  one_pass_each = A.batched(A.compose(
      functools.partial(A.random_resized_crop, size=size),
      lambda k, x: A.random_flip_left_right(k, x), A.trivial_augment_wide,
      functools.partial(A.random_erasing, probability=0.25)))

  def apart(key, images, labels):
    k_images, k_batch = jax.random.split(key)
    return timm_recipe.mix_batch(k_batch, one_pass_each(k_images, images), labels)

  fused, unfused = (H.bytes_accessed(fn, key, inputs["uint8"], labels)
                    for fn in (augment, jax.jit(apart)))
  rows = [H.row("timm recipe from uint8, bytes: crop and flip as one resampling, erasing in "
                "the mixing's pass", shape, "uint8", None, None, fused / unfused,
                f"{fused:,} vs {unfused:,} bytes accessed", anchor_name="one pass per op",
                key="recipe_bytes_fused", bytes=fused, anchor_bytes=unfused)]
  try:
    theirs, threads = torchvision_recipe(levels, size, 1000)
  except ImportError:
    return [*rows, H.row("timm recipe vs torchvision: not installed", shape, "uint8", None,
                         None, None, key="recipe_missing")]
  for dtype, images in inputs.items():
    mine, anchor, ratio = H.median_ratio(lambda x=images: augment(key, x, labels), theirs,
                                         rounds=3 if smoke else 7)
    rows.append(H.row(f"timm recipe (RRC, flip, trivial_augment_wide, erasing, mixup/cutmix) "
                      f"from {dtype}", shape, dtype, mine, anchor, ratio,
                      f"{n / mine:.0f} vs {n / anchor:.0f} img/s",
                      anchor_name=f"torchvision.transforms.v2 on uint8, {threads} threads",
                      key=f"recipe_{dtype}", items=n, anchor_threads=threads))
  return rows


def run(smoke: bool = False, keras: bool = False) -> list[dict]:
  n, side = (4, 32) if smoke else (128, 224)
  rounds = 3 if smoke else 7
  images = jax.random.uniform(jax.random.key(0), (n, side, side, 3))
  key = jax.random.key(1)
  shape = f"{n}x{side}x{side}x3"
  ops, runs = dict(OPS), policies()
  if smoke:  # the code paths, not the figures: one warp, one stencil, one histogram op
    ops = {name: ops[name] for name in ("Rotate", "Sharpness", "Equalize")}
    runs = {name: runs[name] for name in ("trivial_augment_wide",)}
  ops = {name: jax.jit(jax.vmap(fn)) for name, fn in ops.items()}
  runs = {name: jax.jit(fn) for name, fn in runs.items()}
  runs["trivial_augment_wide, vmap of switch"] = jax.jit(switch_under_vmap)
  runs["trivial_augment_wide, vectorized"] = jax.jit(vectorized)
  calls = [functools.partial(fn, images) for fn in ops.values()]
  calls += [functools.partial(fn, key, images) for fn in runs.values()]
  seconds = H.time_interleaved(calls, rounds=rounds)
  op_seconds = dict(zip(ops, seconds[:len(ops)], strict=True))
  slowest = max(op_seconds, key=op_seconds.get)
  top = op_seconds[slowest]
  rows = [H.row(f"op {name}", shape, "float32", s, top, s / top,
                anchor_name=f"slowest op ({slowest})", key=f"op_{name.lower()}", items=n)
          for name, s in op_seconds.items()]
  for name, s in zip(runs, seconds[len(ops):], strict=True):
    rows.append(H.row(name, shape, "float32", s, top, s / top,
                      anchor_name=f"slowest op ({slowest})", key=key_of(name), items=n))
  rows += uint8_rows(images, key, shape, rounds)
  rows += recipe_rows(smoke)
  if keras and not smoke:
    layer = keras_rand_augment()
    if layer is not None:
      ours = runs["rand_augment (2 ops, m9)"]
      mine, theirs, ratio = H.median_ratio(lambda: ours(key, images), lambda: layer(images),
                                           rounds=3)
      rows.append(H.row("rand_augment (2 ops)", shape, "float32", mine, theirs, ratio,
                        anchor_name="keras RandAugment (eager)", key="keras_rand_augment",
                        items=n))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  parser.add_argument("--keras", action="store_true", help="also Keras 3's RandAugment")
  args = parser.parse_args()
  H.print_table(run(args.smoke, args.keras))
