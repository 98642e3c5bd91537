"""Augmentation policies: RandAugment, TrivialAugmentWide, AutoAugment and AugMix.

Each policy draws, per image, a few ops from a fixed vocabulary and a signed magnitude for
each, then applies them in turn. The vocabulary, the magnitude ranges and the sign flips are
torchvision's: ``torchvision.transforms`` 0.13 and later, and ``transforms.v2`` (0.15 and
later), which agree on every entry below. Images are floats in [0, 1], so Solarize's threshold
runs from 1 to 0 (``transforms.v2``'s normalized form of v1's 255 to 0 on uint8 images).

Magnitude bin ``m`` of ``B`` bins is torchvision's float32 table entry, value for value:
``torch.linspace(first, last, B)[m]``, about ``first + (last - first) * m / (B - 1)`` (entries
that land near a grey level or a whole pixel fall on torchvision's side of it), and for
Posterize ``round(first - m / ((B - 1) / (first - last)))``, rounded half to even
(``torch.round``). ``W`` and ``H`` are the image's width and height; translations are
truncated to whole pixels (``int``). A fractional bin (RandAugment's ``magnitude_std``, a
traced ``magnitude``) interpolates between its two bins' entries. A signed op is negated with
probability 1/2. "yes" marks an op without a magnitude, "—" an op the
policy does not use. AutoAugment uses 10 bins, AugMix 10 bins of which the first ``severity``
are drawn.

op                      RandAugment,         TrivialAugmentWide   AugMix              sign
                        AutoAugment
Identity                yes (RandAugment)    yes                  —
ShearX, ShearY          0 → 0.3              0 → 0.99             0 → 0.3             ±
TranslateX              0 → 150/331 W        0 → 32               0 → 1/3 W           ±
TranslateY              0 → 150/331 H        0 → 32               0 → 1/3 H           ±
Rotate (degrees)        0 → 30               0 → 135              0 → 30              ±
Brightness, Color,      0 → 0.9              0 → 0.99             0 → 0.9 (all_ops)   ±
  Contrast, Sharpness
Posterize (bits)        8 → 4                8 → 2                4 → 0
Solarize (threshold)    1 → 0                1 → 0                1 → 0
AutoContrast, Equalize  yes                  yes                  yes
Invert                  yes (AutoAugment)    —                    —

What each op does with its magnitude ``v`` (torchvision's ``_apply_op``): ShearX/ShearY shear by
``atan(v)`` about the top-left corner, TranslateX/Y move by ``v`` pixels, Rotate turns by ``v``
degrees counter-clockwise about the centre; Brightness, Color, Contrast and Sharpness are
Pillow's enhancers with factor ``1 + v``; Posterize keeps ``v`` bits, Solarize inverts values
at or above ``v``. docs/policies.md holds the same table, which a test pins against these
tables.
"""

from __future__ import annotations

import fractions
import functools
import math
import numbers
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _backend, _checks
from jaxreg.augment import _geometric as geo
from jaxreg.augment import _photometric as photo
from jaxreg.augment._color_space import from_float, to_float
from jaxreg.augment._image_checks import (
  check_image,
  check_rgb,
  check_unit_scale,
  nan_if_bad_magnitude,
)

# The op vocabulary of all policies, in one order: a drawn op is an index into it.
OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
       "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
       "Invert")
IDENTITY = OPS.index("Identity")
GEOMETRIC = tuple(OPS.index(name) for name in
                  ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"))
_POSTERIZE = OPS.index("Posterize")
_TRANSLATE = (OPS.index("TranslateX"), OPS.index("TranslateY"))


class Range(NamedTuple):
  """One op of a policy and its magnitudes: ``first`` at bin 0, ``last`` at the last bin."""

  op: str
  first: float = 0.0
  last: float = 0.0
  signed: bool = False
  per: str = ""  # "W" or "H": `last` is a fraction of the image's width or height


def _enhancers(last: float) -> tuple[Range, ...]:
  return tuple(Range(name, 0.0, last, True)
               for name in ("Brightness", "Color", "Contrast", "Sharpness"))


_STATS = (Range("AutoContrast"), Range("Equalize"))

RAND_AUGMENT = (
    Range("Identity"),
    Range("ShearX", 0.0, 0.3, True), Range("ShearY", 0.0, 0.3, True),
    Range("TranslateX", 0.0, 150 / 331, True, "W"), Range("TranslateY", 0.0, 150 / 331, True, "H"),
    Range("Rotate", 0.0, 30.0, True),
    *_enhancers(0.9),
    Range("Posterize", 8.0, 4.0), Range("Solarize", 1.0, 0.0),
    *_STATS,
)
TRIVIAL_AUGMENT_WIDE = (
    Range("Identity"),
    Range("ShearX", 0.0, 0.99, True), Range("ShearY", 0.0, 0.99, True),
    Range("TranslateX", 0.0, 32.0, True), Range("TranslateY", 0.0, 32.0, True),
    Range("Rotate", 0.0, 135.0, True),
    *_enhancers(0.99),
    Range("Posterize", 8.0, 2.0), Range("Solarize", 1.0, 0.0),
    *_STATS,
)
AUTO_AUGMENT = (*RAND_AUGMENT[1:], Range("Invert"))
AUG_MIX = (
    Range("ShearX", 0.0, 0.3, True), Range("ShearY", 0.0, 0.3, True),
    Range("TranslateX", 0.0, 1 / 3, True, "W"), Range("TranslateY", 0.0, 1 / 3, True, "H"),
    Range("Rotate", 0.0, 30.0, True),
    Range("Posterize", 4.0, 0.0), Range("Solarize", 1.0, 0.0),
    *_STATS,
)
AUG_MIX_ALL = (*AUG_MIX, *_enhancers(0.9))
AUTO_AUGMENT_BINS = AUG_MIX_BINS = 10

# AutoAugment's learned sub-policies (Cubuk et al. 2019, as torchvision lists them): two
# (op, probability, magnitude bin) steps each; None: the op has no magnitude.
AUTO_AUGMENT_POLICIES = {
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
        (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ),
    "cifar10": (
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
        (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
        (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ),
    "svhn": (
        (("ShearX", 0.9, 4), ("Invert", 0.2, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.6, None), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, None)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, None), ("AutoContrast", 0.8, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
    ),
}


# --------------------------------------------------------------------------------------------
# Drawing ops and magnitudes (per image; `batched` gives every example its own key)
# --------------------------------------------------------------------------------------------


class Table(NamedTuple):
  """A policy's ops as arrays, for drawing by index: vocabulary ids and magnitudes per bin."""

  ids: np.ndarray  # (K,) int32, indices into OPS
  first: np.ndarray  # (K,) float32, magnitude at bin 0
  last: np.ndarray  # (K,) float32, magnitude at the last bin (times W or H where given)
  signed: np.ndarray  # (K,) bool
  values: np.ndarray  # (K, B) float32, magnitude at each bin: torchvision's table entries


# The most bins a policy takes: a table of K x B entries is built for the drawn bins to index.
MAX_BINS = 1024


def _round_to_float32(exact: fractions.Fraction) -> np.float32:
  """The float32 nearest to ``exact`` (ties to even), with a single rounding."""
  guess = np.float32(float(exact))
  candidates = (np.nextafter(guess, np.float32(-np.inf)), guess,
                np.nextafter(guess, np.float32(np.inf)))
  return min(candidates, key=lambda c: (abs(fractions.Fraction(float(c)) - exact),
                                        int(c.view(np.uint32)) & 1))


@functools.lru_cache(maxsize=256)
def _torch_linspace(start: float, end: float, steps: int) -> np.ndarray:
  """``torch.linspace(start, end, steps)`` in float32, entry for entry, as torch's CPU kernel
  computes it on x86 (AVX2 and AVX-512 builds): ``step = (end - start) / (steps - 1)`` in
  float32, then ``start + step * i`` for the first half and ``end - step * (steps - 1 - i)``
  for the rest, each a fused multiply-add (one rounding), computed here exactly."""
  start32, end32 = np.float32(start), np.float32(end)
  step = np.float32((end32 - start32) / np.float32(steps - 1))
  start_q, end_q, step_q = (fractions.Fraction(float(v)) for v in (start32, end32, step))
  return np.array([_round_to_float32(start_q + step_q * i) if i < steps // 2 else
                   _round_to_float32(end_q - step_q * (steps - 1 - i)) for i in range(steps)],
                  np.float32)


def _bin_values(r: Range, last: float, num_bins: int) -> np.ndarray:
  """torchvision's magnitudes of ``r`` at each of ``num_bins`` bins (float32; Posterize's before
  its rounding, which `op_magnitude` applies as torchvision does)."""
  if r.op == "Posterize":  # (first - arange(B) / ((B - 1) / (first - last))).round()
    quotient = np.arange(num_bins, dtype=np.float32) / np.float32((num_bins - 1) / (r.first - last))
    return np.float32(r.first) - quotient
  if r.first == last == 0.0:  # no magnitude
    return np.zeros(num_bins, np.float32)
  return _torch_linspace(r.first, last, num_bins)


def table(space: tuple[Range, ...], height: int, width: int, num_bins: int) -> Table:
  size = {"": 1.0, "W": float(width), "H": float(height)}
  last = [r.last * size[r.per] for r in space]
  return Table(np.array([OPS.index(r.op) for r in space], np.int32),
               np.array([r.first for r in space], np.float32),
               np.array(last, np.float32),
               np.array([r.signed for r in space], bool),
               np.stack([_bin_values(r, v, num_bins) for r, v in zip(space, last, strict=True)]))


def op_magnitude(tab: Table, index, level, negate) -> tuple[jax.Array, jax.Array]:
  """(op id, signed magnitude) of op ``index`` of ``tab`` at bin ``level``, a real number in
  [0, B - 1]: the table's entry at a whole bin, interpolated between two entries otherwise."""
  op = jnp.asarray(tab.ids)[index]
  values = jnp.asarray(tab.values)
  low = jnp.clip(jnp.floor(level), 0, values.shape[1] - 1)
  high = jnp.minimum(low + 1, values.shape[1] - 1)
  at_low = values[index, low.astype(jnp.int32)]
  value = at_low + (values[index, high.astype(jnp.int32)] - at_low) * (level - low)
  value = jnp.where(op == _POSTERIZE, jnp.round(value), value)  # half to even, as torch.round
  value = jnp.where((op == _TRANSLATE[0]) | (op == _TRANSLATE[1]), jnp.trunc(value), value)
  return op, jnp.where(jnp.asarray(tab.signed)[index] & negate, -value, value)


def _sign(key) -> jax.Array:
  return jax.random.bernoulli(key, 0.5)


def draw_rand_augment(key, tab: Table, num_ops: int, level, num_bins: int,
                      level_std: float) -> tuple[jax.Array, jax.Array]:
  """``num_ops`` (op id, magnitude) pairs: uniform ops, bin ``level`` (with timm's noise)."""
  def one(k):
    k_op, k_level, k_sign = jax.random.split(k, 3)
    index = jax.random.randint(k_op, (), 0, len(tab.ids))
    drawn = jnp.asarray(level, jnp.float32)
    if math.isinf(level_std):  # timm's mstd=inf: uniform in [0, magnitude]
      drawn = jax.random.uniform(k_level, (), jnp.float32, 0.0, drawn)
    elif level_std > 0:
      drawn = drawn + level_std * jax.random.normal(k_level, (), jnp.float32)
    drawn = jnp.clip(drawn, 0, num_bins - 1)
    return op_magnitude(tab, index, drawn, _sign(k_sign))

  return jax.vmap(one)(jax.random.split(key, num_ops))


def draw_trivial_augment_wide(key, tab: Table, num_bins: int) -> tuple[jax.Array, jax.Array]:
  """One (op id, magnitude) pair: uniform op, uniform bin, uniform sign; shapes (1,)."""
  k_op, k_bin, k_sign = jax.random.split(key, 3)
  index = jax.random.randint(k_op, (), 0, len(tab.ids))
  level = jax.random.randint(k_bin, (), 0, num_bins).astype(jnp.float32)
  op, value = op_magnitude(tab, index, level, _sign(k_sign))
  return op[None], value[None]


def sub_policies(policy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """AutoAugment's sub-policies as arrays (S, 2): op indices into AUTO_AUGMENT, probabilities
  and magnitude bins (0 for ops without a magnitude)."""
  names = [r.op for r in AUTO_AUGMENT]
  steps = AUTO_AUGMENT_POLICIES[policy]
  index = np.array([[names.index(op) for op, _, _ in sub] for sub in steps], np.int32)
  prob = np.array([[p for _, p, _ in sub] for sub in steps], np.float32)
  level = np.array([[b or 0 for _, _, b in sub] for sub in steps], np.float32)
  return index, prob, level


def draw_auto_augment(key, tab: Table, policy: str) -> tuple[jax.Array, jax.Array]:
  """Two (op id, magnitude) pairs: a uniform sub-policy, each step applied with its
  probability (Identity otherwise), each signed magnitude negated with probability 1/2."""
  index, prob, level = (jnp.asarray(a) for a in sub_policies(policy))
  k_sub, k_steps = jax.random.split(key)
  sub = jax.random.randint(k_sub, (), 0, index.shape[0])

  def step(k, i, p, b):
    k_apply, k_sign = jax.random.split(k)
    op, value = op_magnitude(tab, i, b, _sign(k_sign))
    apply = jax.random.uniform(k_apply) < p
    return jnp.where(apply, op, IDENTITY), jnp.where(apply, value, 0.0)

  return jax.vmap(step)(jax.random.split(k_steps, 2), index[sub], prob[sub], level[sub])


def draw_aug_mix(key, tab: Table, width: int, depth: int, severity: int,
                 alpha: float) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """AugMix's draws: (ops (width, D), magnitudes (width, D), weight of the image, (width,)
  weights of the chains). D is ``depth``, or 3 with ``depth=-1``: then each chain draws its
  depth from {1, 2, 3} and its steps past it are Identity. Ops are uniform, bins uniform in
  [0, severity), and the weights are m * Dirichlet(alpha) for the chains and 1 - m for the image,
  with m ~ Beta(alpha, alpha)."""
  slots = depth if depth > 0 else 3
  k_mix, k_chains, k_ops = jax.random.split(key, 3)
  m = jax.random.beta(k_mix, alpha, alpha)
  chains = jax.random.dirichlet(k_chains, jnp.full((width,), alpha, jnp.float32)) * m

  def chain(k):
    k_depth, k_steps = jax.random.split(k)
    drawn = jax.random.randint(k_depth, (), 1, 4) if depth < 0 else depth

    def step(k, position):
      k_op, k_bin, k_sign = jax.random.split(k, 3)
      index = jax.random.randint(k_op, (), 0, len(tab.ids))
      level = jax.random.randint(k_bin, (), 0, severity).astype(jnp.float32)
      op, value = op_magnitude(tab, index, level, _sign(k_sign))
      active = position < drawn
      return jnp.where(active, op, IDENTITY), jnp.where(active, value, 0.0)

    return jax.vmap(step)(jax.random.split(k_steps, slots), jnp.arange(slots))

  ops, values = jax.vmap(chain)(jax.random.split(k_ops, width))
  return ops, values, 1 - m, chains


# --------------------------------------------------------------------------------------------
# Applying drawn ops: one switch per slot per example on a CPU, one warp and one photometric
# select per slot for the whole batch elsewhere
# --------------------------------------------------------------------------------------------

_IDENTITY_MATRIX = np.array([[1, 0, 0], [0, 1, 0]], np.float32)

# The inverse matrices of Identity and of the geometric ops (OPS order) at magnitude v.
_MATRICES = (
    lambda h, w, v: jnp.asarray(_IDENTITY_MATRIX),
    lambda h, w, v: geo.shear_matrix(h, w, v, 0.0),
    lambda h, w, v: geo.shear_matrix(h, w, 0.0, v),
    lambda h, w, v: geo.translate_matrix(h, w, v, 0.0),
    lambda h, w, v: geo.translate_matrix(h, w, 0.0, v),
    lambda h, w, v: geo.rotate_matrix(h, w, v),
)
_FIRST_PHOTOMETRIC = OPS.index("Brightness")
# The photometric ops (OPS order, Brightness to Invert), given `_photometric_arguments`.
_PHOTOMETRIC = (
    lambda x, a: photo.enhance_brightness(x, a[0]),
    lambda x, a: photo.enhance_color(x, a[0]),
    lambda x, a: photo.enhance_contrast(x, a[0]),
    lambda x, a: photo.adjust_sharpness(x, a[0]),
    lambda x, a: photo.posterize(x, a[1]),
    lambda x, a: photo.solarize(x, a[2]),
    lambda x, a: photo.autocontrast(x),
    lambda x, a: photo.equalize(x),
    lambda x, a: photo.invert(x),
)


def _photometric_arguments(op, value) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(enhancement factor, posterize bits, solarize threshold) for ``op`` at ``value``; the
  arguments of the ops it does not name are neutral (their results are not used)."""
  enhancer = (op >= OPS.index("Brightness")) & (op <= OPS.index("Sharpness"))
  return (jnp.where(enhancer, 1 + value, 1.0),
          jnp.where(op == _POSTERIZE, value, 8).astype(jnp.int32),
          jnp.where(op == OPS.index("Solarize"), value, 1.0))


def _switched(image, values, fill, ops, *, interpolation):
  """Each drawn op by a ``switch``: only the chosen branch runs (one image, or a CPU loop)."""
  height, width = image.shape[:2]

  def geometric(i):
    return lambda x, v: geo._warp(x, _MATRICES[i](height, width, v), interpolation, fill)

  def photometric(i):
    op = _FIRST_PHOTOMETRIC + i
    return lambda x, v: _PHOTOMETRIC[i](x, _photometric_arguments(op, v))

  branches = [lambda x, v: x]
  branches += [geometric(op) for op in GEOMETRIC]
  branches += [photometric(i) for i in range(len(_PHOTOMETRIC))]
  chains = []
  for chain_ops, chain_values in zip(ops, values, strict=True):
    x = image
    for op, value in zip(chain_ops, chain_values, strict=True):
      x = lax.switch(op, branches, x, value)
    chains.append(x)
  return jnp.stack(chains)


def _selected(image, values, fill, ops, *, interpolation, select=True):
  """The drawn ops with no switch: per slot, one warp through the op's matrix (the identity
  for the others) and a select among the photometric ops of the slot's input.

  At most one of the two changes a slot's image, so the photometric ops read the input, not
  the warp's output. Under `vmap` every example computes the warp and every photometric op
  (each a pass, equalize a histogram too), not the 5 warps of a select over all branches.
  """
  del select  # there is no switch to avoid
  height, width = image.shape[:2]
  chains = []
  for chain_ops, chain_values in zip(ops, values, strict=True):
    x = image
    for op, value in zip(chain_ops, chain_values, strict=True):
      geometric = jnp.where(op <= GEOMETRIC[-1], op, IDENTITY)
      matrix = jnp.stack([m(height, width, value) for m in _MATRICES])[geometric]
      warped = geo._warp(x, matrix, interpolation, fill)
      arguments = _photometric_arguments(op, value)
      which = jnp.maximum(op - _FIRST_PHOTOMETRIC + 1, 0)
      x = lax.select_n(which, warped, *(f(x, arguments) for f in _PHOTOMETRIC))
    chains.append(x)
  return jnp.stack(chains)


@functools.partial(jax.jit, static_argnames="interpolation")
def apply(image, ops, values, fill, interpolation: str) -> jax.Array:
  """Applies drawn ops to one image: ``ops`` and ``values`` (chains, slots), each chain from
  ``image``; returns (chains, H, W, C). Under `vmap` on a CPU, a loop over the examples runs
  only each one's ops; elsewhere `_selected`. Derivatives are those of `_selected`.

  A uint8 image is converted to float and rounded back inside each example's computation, so a
  batch never holds a float copy (on a CPU that is inside the loop).

  Jitted, so that an eager call compiles the switches once per shape, not at every call."""

  def on_levels(fn):
    if image.dtype != jnp.uint8:
      return fn
    return lambda image, *a, **k: from_float(fn(to_float(image), *a, **k), jnp.uint8)

  looped = on_levels(functools.partial(_switched, interpolation=interpolation))
  vectorized = on_levels(lambda *a, select=True: _selected(*a, interpolation=interpolation))
  return _backend.loop_on_cpu(looped, vectorized, differentiable=1)(image, values, fill, ops)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

Interpolation = Literal["nearest", "bilinear"]


def _check_image_and_sampling(image, interpolation, fill, op: str):
  image = check_image(image, op, uint8=True)
  check_rgb(image, op)
  checked = geo._check_fill(fill, image.shape[-1], op)  # its type and finiteness first
  check_unit_scale(fill, image, op, "fill")
  interpolation = geo._check_interpolation(interpolation, op)
  return image, interpolation, checked


def _check_int(value, op: str, name: str, lo: int, hi: int | None = None,
               allowed: str = "") -> int:
  """A Python or NumPy int in [lo, hi]; ``allowed`` describes the valid values otherwise."""
  allowed = allowed or (f"an int in [{lo}, {hi}]" if hi is not None else f"an int >= {lo}")
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
    raise TypeError(f"{op}: `{name}` must be {allowed}, got {value!r} of type "
                    f"{type(value).__name__}.")
  if value < lo or (hi is not None and value > hi):
    raise ValueError(f"{op}: `{name}` must be {allowed}, got {value!r}.")
  return int(value)


def _check_num_bins(num_bins, op: str) -> int:
  return _check_int(num_bins, op, "num_magnitude_bins", 2, MAX_BINS,
                    allowed=f"an int in [2, {MAX_BINS}] (the magnitudes run from bin 0 to the "
                    "last bin, one table entry each)")


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def rand_augment(key: jax.Array, image: jax.typing.ArrayLike, *, num_ops: int = 2,
                 magnitude: jax.typing.ArrayLike = 9, num_magnitude_bins: int = 31,
                 magnitude_std: float = 0.0, interpolation: Interpolation = "nearest",
                 fill: float | Sequence[float] = 0.0) -> jax.Array:
  """RandAugment: ``num_ops`` ops, each uniform over 14, all at one magnitude bin.

  torchvision's ``RandAugment``: the ops are Identity, ShearX/Y, TranslateX/Y, Rotate,
  Brightness, Color, Contrast, Sharpness, Posterize, Solarize, AutoContrast and Equalize, with
  torchvision's magnitude ranges (docs/policies.md has the table); every op uses bin
  ``magnitude`` of ``num_magnitude_bins`` and a signed op is negated with probability 1/2.
  ``magnitude_std`` is timm's ``mstd`` rule in bins of this scale (timm counts magnitudes out
  of 10: docs/policies.md converts): each op draws its own bin from ``N(magnitude,
  magnitude_std)`` clipped to ``[0, num_magnitude_bins - 1]`` (``inf``: uniform in ``[0,
  magnitude]``); fractional bins interpolate the ranges. Wrap in `batched` for a batch: each
  example draws its own ops, bins and signs.

  On a CPU a batch runs as a loop over the examples, each computing only its drawn ops;
  elsewhere each slot is one warp with a per-example matrix (the identity for photometric
  ops) and one select among the photometric ops. Both compute the same function;
  derivatives with respect to the image are those of the second.

  Args:
    key: a PRNG key.
    image: HWC RGB float image, values in [0, 1], or uint8: then computed in float32 on
      ``q / 255`` and rounded to the nearest level once, at the end (torchvision rounds a
      uint8 image after every op).
    num_ops: ops applied in turn, an int >= 0 (0 returns the image).
    magnitude: the magnitude bin, a real number in ``[0, num_magnitude_bins - 1]``; may be
      traced (then clipped to that range), e.g. to schedule it during training. A traced NaN
      or infinite magnitude makes a float result all NaN.
    num_magnitude_bins: bins spanning each op's range, an int in [2, 1024].
    magnitude_std: standard deviation of the per-op bin, in bins: a Python number >= 0, or
      ``math.inf`` for uniform bins in ``[0, magnitude]``.
    interpolation: ``"nearest"`` or ``"bilinear"``, for the geometric ops.
    fill: value of pixels moved in from outside the image: a number or one per channel, on
      the [0, 1] scale for a uint8 image too (1.0 fills 255).

  Returns:
    The augmented image, same shape and dtype.

  Raises:
    ValueError: an image that is not HWC RGB; ``num_ops < 0``, ``num_magnitude_bins`` outside
      [2, 1024], ``magnitude`` outside its range, a negative or NaN ``magnitude_std``; an unknown
      ``interpolation``; a ``fill`` of the wrong shape, not finite, or outside [0, 1] on a
      uint8 image.
    TypeError: an image neither floating point nor uint8, a bad key, non-int counts, a traced
      ``magnitude_std``, a ``fill`` that is not a number or a sequence of them.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images = jax.random.uniform(jax.random.key(0), (4, 32, 32, 3))
    >>> augment = jax.jit(jr.augment.batched(jr.augment.rand_augment))
    >>> augment(jax.random.key(1), images).shape
    (4, 32, 32, 3)

  References:
    Cubuk et al., "RandAugment: Practical automated data augmentation with a reduced search
    space", CVPR Workshops 2020.
  """
  op = "rand_augment"
  image, interpolation, fill = _check_image_and_sampling(image, interpolation, fill, op)
  num_ops = _check_int(num_ops, op, "num_ops", 0)
  num_bins = _check_num_bins(num_magnitude_bins, op)
  _checks.check_interval(magnitude, op, "magnitude", lo=0, hi=num_bins - 1)
  std = _checks.concrete_scalar(magnitude_std, op, "magnitude_std")
  if std is None:
    raise TypeError(f"{op}: `magnitude_std` must be a Python number >= 0 or math.inf, got a "
                    "traced value.")
  if not std >= 0:  # also NaN
    raise ValueError(f"{op}: `magnitude_std` must be >= 0 (math.inf: uniform bins), got "
                     f"{magnitude_std!r}.")
  key = _checks.as_key(key, op)
  if num_ops == 0:
    return image
  tab = table(RAND_AUGMENT, *image.shape[:2], num_bins)
  ops, values = draw_rand_augment(key, tab, num_ops, magnitude, num_bins, std)
  out = apply(image, ops[None], values[None], fill, interpolation)[0]
  # A traced NaN or infinite magnitude: all NaN, as the public ops give (the private warp
  # would fill the image instead). Finite ones out of range are clipped, as documented.
  return nan_if_bad_magnitude(magnitude, out)


def trivial_augment_wide(key: jax.Array, image: jax.typing.ArrayLike, *,
                         num_magnitude_bins: int = 31, interpolation: Interpolation = "nearest",
                         fill: float | Sequence[float] = 0.0) -> jax.Array:
  """TrivialAugment Wide: one op, uniform over 14, at a uniform magnitude bin.

  torchvision's ``TrivialAugmentWide``: RandAugment's 14 ops with the wide ranges (shear up to
  0.99, translation 32 pixels, rotation 135 degrees, enhancement factors 0.01 to 1.99,
  posterize down to 2 bits; docs/policies.md has the table), a uniform bin of
  ``num_magnitude_bins`` and a sign negated with probability 1/2. Wrap in `batched` for a
  batch: each example draws its own op, bin and sign. How a batch runs: see `rand_augment`.

  Args:
    key: a PRNG key.
    image: HWC RGB float image, values in [0, 1], or uint8: then computed in float32 on
      ``q / 255`` and rounded to the nearest level once, at the end (torchvision rounds a
      uint8 image after every op).
    num_magnitude_bins: bins spanning each op's range, an int in [2, 1024].
    interpolation: ``"nearest"`` or ``"bilinear"``, for the geometric ops.
    fill: value of pixels moved in from outside the image: a number or one per channel, on
      the [0, 1] scale for a uint8 image too (1.0 fills 255).

  Returns:
    The augmented image, same shape and dtype.

  Raises:
    ValueError: an image that is not HWC RGB; ``num_magnitude_bins`` outside [2, 1024]; an
      unknown ``interpolation``; a ``fill`` of the wrong shape, not finite, or outside [0, 1]
      on a uint8 image.
    TypeError: an image neither floating point nor uint8, a bad key, a non-int
      ``num_magnitude_bins``, a ``fill`` that is not a number or a sequence of them.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images = jax.random.uniform(jax.random.key(0), (4, 32, 32, 3))
    >>> augment = jax.jit(jr.augment.batched(jr.augment.trivial_augment_wide))
    >>> augment(jax.random.key(1), images).shape
    (4, 32, 32, 3)

  References:
    Müller & Hutter, "TrivialAugment: Tuning-free Yet State-of-the-Art Data Augmentation",
    ICCV 2021.
  """
  op = "trivial_augment_wide"
  image, interpolation, fill = _check_image_and_sampling(image, interpolation, fill, op)
  num_bins = _check_num_bins(num_magnitude_bins, op)
  key = _checks.as_key(key, op)
  tab = table(TRIVIAL_AUGMENT_WIDE, *image.shape[:2], num_bins)
  ops, values = draw_trivial_augment_wide(key, tab, num_bins)
  return apply(image, ops[None], values[None], fill, interpolation)[0]


def auto_augment(key: jax.Array, image: jax.typing.ArrayLike, *,
                 policy: Literal["imagenet", "cifar10", "svhn"] = "imagenet",
                 interpolation: Interpolation = "nearest",
                 fill: float | Sequence[float] = 0.0) -> jax.Array:
  """AutoAugment: one of 25 learned sub-policies, each two ops with their probabilities.

  torchvision's ``AutoAugment`` with its ``IMAGENET``, ``CIFAR10`` and ``SVHN`` policies: a
  uniform sub-policy, whose two steps each apply their op at their magnitude bin (of 10) with
  their probability; signed magnitudes are negated with probability 1/2. The ops are
  RandAugment's without Identity, plus Invert (docs/policies.md has the table). Wrap in
  `batched` for a batch: each example draws its own sub-policy, steps and signs. How a batch
  runs: see `rand_augment`.

  Args:
    key: a PRNG key.
    image: HWC RGB float image, values in [0, 1], or uint8: then computed in float32 on
      ``q / 255`` and rounded to the nearest level once, at the end (torchvision rounds a
      uint8 image after every op).
    policy: ``"imagenet"``, ``"cifar10"`` or ``"svhn"``.
    interpolation: ``"nearest"`` or ``"bilinear"``, for the geometric ops.
    fill: value of pixels moved in from outside the image: a number or one per channel, on
      the [0, 1] scale for a uint8 image too (1.0 fills 255).

  Returns:
    The augmented image, same shape and dtype.

  Raises:
    ValueError: an image that is not HWC RGB; an unknown ``policy`` or ``interpolation``;
      a ``fill`` of the wrong shape, not finite, or outside [0, 1] on a uint8 image.
    TypeError: an image neither floating point nor uint8, a bad key, a ``fill`` that is not a
      number or a sequence of them.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jax.random.uniform(jax.random.key(0), (32, 32, 3))
    >>> jr.augment.auto_augment(jax.random.key(1), image, policy="cifar10").shape
    (32, 32, 3)

  References:
    Cubuk et al., "AutoAugment: Learning Augmentation Strategies from Data", CVPR 2019.
  """
  op = "auto_augment"
  image, interpolation, fill = _check_image_and_sampling(image, interpolation, fill, op)
  if not isinstance(policy, str) or policy not in AUTO_AUGMENT_POLICIES:
    raise ValueError(f"{op}: `policy` must be one of {tuple(AUTO_AUGMENT_POLICIES)}, got "
                     f"{policy!r}.")
  key = _checks.as_key(key, op)
  tab = table(AUTO_AUGMENT, *image.shape[:2], AUTO_AUGMENT_BINS)
  ops, values = draw_auto_augment(key, tab, policy)
  return apply(image, ops[None], values[None], fill, interpolation)[0]


def aug_mix(key: jax.Array, image: jax.typing.ArrayLike, *, severity: int = 3, width: int = 3,
            depth: int = -1, alpha: float = 1.0, all_ops: bool = True,
            interpolation: Interpolation = "bilinear",
            fill: float | Sequence[float] = 0.0) -> jax.Array:
  """AugMix: the image mixed with ``width`` chains of random ops by random convex weights.

  torchvision's ``AugMix``: each chain applies ``depth`` ops (``depth=-1``: 1, 2 or 3,
  uniformly, per chain) drawn uniformly from ShearX/Y, TranslateX/Y, Rotate, Posterize,
  Solarize, AutoContrast and Equalize (with ``all_ops``, also Brightness, Color, Contrast and
  Sharpness), each at a uniform bin in ``[0, severity)`` of 10 (docs/policies.md has the
  ranges). The result is ``(1 - m) image + m sum_i w_i chain_i`` with ``m ~ Beta(alpha,
  alpha)`` and ``w ~ Dirichlet(alpha, ..., alpha)``, all drawn per image (torchvision's
  ``AugMix`` draws the ops once per batch). Wrap in `batched` for a batch. How a batch runs:
  see `rand_augment`. Train with `aug_mix_consistency_loss` on two AugMix views for the
  paper's Jensen-Shannon consistency.

  Args:
    key: a PRNG key.
    image: HWC RGB float image, values in [0, 1], or uint8: then computed in float32 on
      ``q / 255`` and rounded to the nearest level once, at the end (torchvision rounds a
      uint8 image after every op).
    severity: bins drawn from, an int in [1, 10].
    width: chains, an int >= 1.
    depth: ops per chain, an int >= 1, or -1 for 1 to 3 drawn per chain.
    alpha: the Beta and Dirichlet concentration, a Python number > 0.
    all_ops: also draw Brightness, Color, Contrast and Sharpness (a bool); the paper leaves
      them out where they overlap a corruption benchmark's corruptions.
    interpolation: ``"nearest"`` or ``"bilinear"`` (the default, as torchvision's AugMix).
    fill: value of pixels moved in from outside the image: a number or one per channel, on
      the [0, 1] scale for a uint8 image too (1.0 fills 255).

  Returns:
    The mixed image, same shape and dtype.

  Raises:
    ValueError: an image that is not HWC RGB; ``severity``, ``width`` or ``depth`` out of
      range; ``alpha <= 0``; an unknown ``interpolation``; a ``fill`` of the wrong shape, not
      finite, or outside [0, 1] on a uint8 image.
    TypeError: an image neither floating point nor uint8, a bad key, non-int counts, a
      non-bool ``all_ops``, a ``fill`` that is not a number or a sequence of them.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> image = jax.random.uniform(jax.random.key(0), (32, 32, 3))
    >>> out = jr.augment.aug_mix(jax.random.key(1), image)
    >>> out.shape, bool((out >= 0).all() & (out <= 1).all())
    ((32, 32, 3), True)

  References:
    Hendrycks et al., "AugMix: A Simple Data Processing Method to Improve Robustness and
    Uncertainty", ICLR 2020.
  """
  op = "aug_mix"
  image, interpolation, fill = _check_image_and_sampling(image, interpolation, fill, op)
  severity = _check_int(severity, op, "severity", 1, AUG_MIX_BINS)
  width = _check_int(width, op, "width", 1)
  depth = _check_int(depth, op, "depth", -1,
                     allowed="an int >= 1, or -1 for 1 to 3 ops drawn per chain")
  if depth == 0:
    raise ValueError(f"{op}: `depth` must be an int >= 1, or -1 for 1 to 3 ops drawn per "
                     f"chain, got {depth!r}.")
  alpha = _checks.check_interval(alpha, op, "alpha", lo=0.0, lo_open=True)
  if alpha is None:
    raise TypeError(f"{op}: `alpha` must be a Python number > 0, got a traced value.")
  all_ops = _checks.check_bool(all_ops, op, "all_ops")
  key = _checks.as_key(key, op)
  tab = table(AUG_MIX_ALL if all_ops else AUG_MIX, *image.shape[:2], AUG_MIX_BINS)
  ops, values, w_image, w_chains = draw_aug_mix(key, tab, width, depth, severity, alpha)
  # A uint8 image: the chains and the mix in float, rounded to levels once, at the end.
  x = to_float(image)
  chains = apply(x if image.dtype == jnp.uint8 else image, ops, values, fill, interpolation)
  mixed = w_image.astype(x.dtype) * x + jnp.tensordot(
      w_chains.astype(x.dtype), chains.astype(x.dtype), axes=1)
  return from_float(mixed, image.dtype)


def aug_mix_consistency_loss(logits_clean: jax.typing.ArrayLike,
                             logits_aug1: jax.typing.ArrayLike,
                             logits_aug2: jax.typing.ArrayLike) -> jax.Array:
  """AugMix's Jensen-Shannon consistency: the mean KL of three predictions to their mixture.

  With ``p_i = softmax(logits_i)`` and ``M = (p_clean + p_aug1 + p_aug2) / 3``, returns
  ``(KL(p_clean || M) + KL(p_aug1 || M) + KL(p_aug2 || M)) / 3`` per example, the
  Jensen-Shannon divergence of the three (0 when they agree, at most ``log 3``), computed in
  log space. A class with probability 0 in a view (a ``-inf`` logit, as a mask gives)
  contributes 0 to that view's KL (``0 log 0 = 0``), with a finite gradient. The paper trains
  on ``cross_entropy(logits_clean, labels) + 12 * mean(loss)`` with two `aug_mix` views of
  each image.

  Args:
    logits_clean: ``(..., classes)`` logits of the clean images.
    logits_aug1: the same for a first AugMix view, same shape.
    logits_aug2: the same for a second AugMix view, same shape.

  Returns:
    The divergence per example, shape ``logits_clean.shape[:-1]``.

  Raises:
    ValueError: shapes that differ, or no class axis.
    TypeError: non-float logits.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> logits = jnp.array([[2.0, 0.0, -1.0]])
    >>> agree = jr.augment.aug_mix_consistency_loss(logits, logits, logits)
    >>> differ = jr.augment.aug_mix_consistency_loss(logits, -logits, logits)
    >>> agree.shape, bool(agree[0] < 1e-6), bool(differ[0] > 0.1)
    ((1,), True, True)

  References:
    Hendrycks et al., "AugMix: A Simple Data Processing Method to Improve Robustness and
    Uncertainty", ICLR 2020.
  """
  op = "aug_mix_consistency_loss"
  names = ("logits_clean", "logits_aug1", "logits_aug2")
  logits = [_checks.check_float_array(x, op, name)
            for x, name in zip((logits_clean, logits_aug1, logits_aug2), names, strict=True)]
  if logits[0].ndim < 1:
    raise ValueError(f"{op}: `logits_clean` needs a class axis (last), got shape "
                     f"{logits[0].shape}.")
  for x, name in zip(logits[1:], names[1:], strict=True):
    if x.shape != logits[0].shape:
      raise ValueError(f"{op}: `{name}` must have the shape of `logits_clean`, "
                       f"{logits[0].shape}, got {x.shape}.")
  log_p = jnp.stack([jax.nn.log_softmax(x, axis=-1) for x in logits])
  # A class with probability 0 in a view (a -inf, masked logit) adds 0 to that view's KL
  # (0 log 0 = 0), not 0 * (-inf + inf). Where all three are 0 the mixture's log is computed on
  # zeros instead, so that neither the value nor the gradient meets an inf - inf.
  zero = jnp.isneginf(log_p)
  safe = jnp.where(zero.all(axis=0), 0.0, log_p)
  log_mixture = jax.nn.logsumexp(safe, axis=0) - math.log(3)
  terms = jnp.exp(log_p) * (jnp.where(zero, 0.0, log_p) - log_mixture)
  kl = jnp.sum(jnp.where(zero, 0.0, terms), axis=-1)
  return jnp.mean(kl, axis=0)
