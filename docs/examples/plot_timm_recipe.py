"""
Augmentation: the timm recipe on two photographs
================================================

The ImageNet training recipe of timm and torchvision, per image: random resized crop, a
horizontal flip with probability 1/2, TrivialAugmentWide (one op of fourteen at a random
magnitude) and random erasing with probability 1/4. Then, for the batch: smoothed labels and
either mixup or cutmix. ``examples/timm_recipe.py`` in the repository is the same recipe at
ImageNet's sizes.

The photographs are scikit-learn's two sample images (shipped inside scikit-learn, no
download), as ``uint8`` arrays, the way a data loader decodes them: the per-image part runs on
``uint8``, as torchvision's does, and returns ``uint8``.
"""

import functools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from PIL import Image
from sklearn.datasets import load_sample_image

import jaxreg as jr

A = jr.augment


def square(name, side=96):
  """A sample photograph's centre square, resized to ``side`` pixels, as uint8 HWC."""
  photo = load_sample_image(name)
  h, w, _ = photo.shape
  top, left = (h - min(h, w)) // 2, (w - min(h, w)) // 2
  crop = photo[top:top + min(h, w), left:left + min(h, w)]
  return np.asarray(Image.fromarray(crop).resize((side, side), Image.Resampling.BILINEAR))


china, flower = square("china.jpg"), square("flower.jpg")
images = np.stack([china] * 8 + [flower] * 8)  # (16, 96, 96, 3) uint8
labels = np.array([0] * 8 + [1] * 8)

# %%
# One jitted function of the batch
# --------------------------------
# `jaxreg.augment.compose` chains per-image ops, each ``op(key, image) -> image``, with a key
# of its own; `jaxreg.augment.batched` runs the pipeline on a batch, one key per example, so
# every image gets its own crop, flip, op and erased box.
#
# For the batch part, the labels become one-hot targets smoothed by ``optax.smooth_labels``;
# `jaxreg.augment.mixup` blends each image with another of the batch (a Beta-distributed
# weight) and `jaxreg.augment.cutmix` pastes a box of another image, and the targets are mixed
# in the same proportions. timm picks one of the two per batch (mixup with ``alpha`` 0.8,
# cutmix with 1.0); both are returned here. The images become floats in [0, 1] for the mixing.

recipe = A.batched(A.compose(
    functools.partial(A.random_resized_crop, size=64),
    A.random_flip_left_right,
    A.trivial_augment_wide,
    functools.partial(A.random_erasing, probability=0.25),
))


@jax.jit
def augment(key, images, labels):
  k_recipe, k_mixup, k_cutmix = jax.random.split(key, 3)
  augmented = recipe(k_recipe, images)  # uint8 in, uint8 out
  floats = augmented.astype(jnp.float32) / 255
  targets = optax.smooth_labels(jax.nn.one_hot(labels, 2), 0.1)
  return augmented, (A.mixup(k_mixup, floats, targets, alpha=0.8),
                     A.cutmix(k_cutmix, floats, targets, alpha=1.0))


augmented, mixed = augment(jax.random.key(0), images, labels)
print("per image:", augmented.shape, augmented.dtype, "| mixed:", mixed[0][0].dtype)

# %%
# The per-image part
# ------------------
# Sixteen draws: eight of each photograph, each with its own key.

fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, image in zip(axes.flat, np.asarray(augmented), strict=True):
  ax.imshow(image)
  ax.axis("off")
fig.tight_layout()
plt.show()

# %%
# The batch part: mixup and cutmix
# --------------------------------
# Six examples of the batch after each; above each image, its target (china, flower). The
# smoothed targets of the two classes are 0.95 and 0.05 before mixing.

fig = plt.figure(figsize=(10, 4), layout="constrained")
for subfig, name, (batch, targets) in zip(fig.subfigures(2, 1), ("mixup", "cutmix"),
                                          jax.device_get(mixed), strict=True):
  subfig.suptitle(name)
  for ax, i in zip(subfig.subplots(1, 6), (0, 3, 6, 9, 12, 15), strict=True):
    ax.imshow(batch[i])
    ax.set_title("{:.2f}, {:.2f}".format(*targets[i]), fontsize=9)
    ax.axis("off")
plt.show()
