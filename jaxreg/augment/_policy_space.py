"""The augmentation policies' op space: the vocabulary, magnitude tables and per-image draws.

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
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# The op vocabulary of all policies, in one order: a drawn op is an index into it.
OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
       "Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
       "Invert")
IDENTITY = OPS.index("Identity")
GEOMETRIC = tuple(OPS.index(name) for name in
                  ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"))
POSTERIZE = OPS.index("Posterize")
TRANSLATE = (OPS.index("TranslateX"), OPS.index("TranslateY"))


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

AutoAugmentPolicy = Literal["imagenet", "cifar10", "svhn"]
# AutoAugment's learned sub-policies (Cubuk et al. 2019, as torchvision lists them), one per
# `AutoAugmentPolicy`: two (op, probability, magnitude bin) steps each; None: the op has no
# magnitude.
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
  value = jnp.where(op == POSTERIZE, jnp.round(value), value)  # half to even, as torch.round
  value = jnp.where((op == TRANSLATE[0]) | (op == TRANSLATE[1]), jnp.trunc(value), value)
  return op, jnp.where(jnp.asarray(tab.signed)[index] & negate, -value, value)


# The draws' integers, signs and coin flips come from 32-bit words of one `jax.random.bits`
# call per draw: `jax.random.randint` (two words per integer and a wider reduction) and a
# `bernoulli` per sign compile to several times the kernels of the whole draw otherwise.
def _below(words, n: int) -> jax.Array:
  """Uniform integers in [0, n) from uniform 32-bit ``words``, as int32: ``words % n``. Each
  value has ``floor(2**32 / n)`` or one more words, so its probability is within ``2**-32`` of
  ``1 / n``: far below what any number of draws can show."""
  return (words % np.uint32(n)).astype(jnp.int32)


def _coin(words) -> jax.Array:
  """A fair coin per uniform 32-bit word: its top bit."""
  return (words >> np.uint32(31)) == 1


def _fraction(words) -> jax.Array:
  """A uniform float32 in [0, 1) per 32-bit word: its top 24 bits over 2**24 (exact)."""
  return (words >> np.uint32(8)).astype(jnp.float32) * np.float32(2.0**-24)


# The draws are jitted: eagerly, each of their small ops (AugMix's gamma sampler above all)
# would compile and dispatch on its own, several times the cost of one program.
_draw_jit = functools.partial(functools.partial, jax.jit)


@_draw_jit(static_argnums=(2, 4, 5))
def draw_rand_augment(key, tab: Table, num_ops: int, level, num_bins: int,
                      level_std: float) -> tuple[jax.Array, jax.Array]:
  """``num_ops`` (op id, magnitude) pairs: uniform ops, bin ``level`` (with timm's noise)."""
  if num_ops == 0:  # no draw: a split into 0 keys trips key-reuse checking on older JAX
    return jnp.zeros((0,), jnp.int32), jnp.zeros((0,), jnp.float32)
  noisy = math.isinf(level_std) or level_std > 0
  k_words, k_level = jax.random.split(key) if noisy else (key, None)
  words = jax.random.bits(k_words, (2, num_ops), jnp.uint32)  # op, sign
  drawn = jnp.broadcast_to(jnp.asarray(level, jnp.float32), (num_ops,))
  if math.isinf(level_std):  # timm's mstd=inf: uniform in [0, magnitude]
    drawn = jax.random.uniform(k_level, (num_ops,), jnp.float32, 0.0, drawn)
  elif level_std > 0:
    drawn = drawn + level_std * jax.random.normal(k_level, (num_ops,), jnp.float32)
  drawn = jnp.clip(drawn, 0, num_bins - 1)
  return op_magnitude(tab, _below(words[0], len(tab.ids)), drawn, _coin(words[1]))


@_draw_jit(static_argnums=2)
def draw_trivial_augment_wide(key, tab: Table, num_bins: int) -> tuple[jax.Array, jax.Array]:
  """One (op id, magnitude) pair: uniform op, uniform bin, uniform sign; shapes (1,)."""
  words = jax.random.bits(key, (3, 1), jnp.uint32)  # op, bin, sign
  level = _below(words[1], num_bins).astype(jnp.float32)
  return op_magnitude(tab, _below(words[0], len(tab.ids)), level, _coin(words[2]))


def sub_policies(policy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """AutoAugment's sub-policies as arrays (S, 2): op indices into AUTO_AUGMENT, probabilities
  and magnitude bins (0 for ops without a magnitude)."""
  names = [r.op for r in AUTO_AUGMENT]
  steps = AUTO_AUGMENT_POLICIES[policy]
  index = np.array([[names.index(op) for op, _, _ in sub] for sub in steps], np.int32)
  prob = np.array([[p for _, p, _ in sub] for sub in steps], np.float32)
  level = np.array([[b or 0 for _, _, b in sub] for sub in steps], np.float32)
  return index, prob, level


@_draw_jit(static_argnums=2)
def draw_auto_augment(key, tab: Table, policy: str) -> tuple[jax.Array, jax.Array]:
  """Two (op id, magnitude) pairs: a uniform sub-policy, each step applied with its
  probability (Identity otherwise), each signed magnitude negated with probability 1/2."""
  index, prob, level = (jnp.asarray(a) for a in sub_policies(policy))
  words = jax.random.bits(key, (5,), jnp.uint32)  # sub-policy, the steps' coins, their signs
  sub = _below(words[0], index.shape[0])
  op, value = op_magnitude(tab, index[sub], level[sub], _coin(words[3:]))
  apply = _fraction(words[1:3]) < prob[sub]
  return jnp.where(apply, op, IDENTITY), jnp.where(apply, value, 0.0)


@_draw_jit(static_argnums=(2, 3, 4, 5))
def draw_aug_mix(key, tab: Table, width: int, depth: int, severity: int,
                 alpha: float) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """AugMix's draws: (ops (width, D), magnitudes (width, D), weight of the image, (width,)
  weights of the chains). D is ``depth``, or 3 with ``depth=-1``: then each chain draws its
  depth from {1, 2, 3} and its steps past it are Identity. Ops are uniform, bins uniform in
  [0, severity), and the weights are m * Dirichlet(alpha) for the chains and 1 - m for the image,
  with m ~ Beta(alpha, alpha).

  The weights come from one gamma sampler, not three (a Beta takes two, a Dirichlet one): with
  independent ``G_i ~ Gamma(alpha)``, ``m = G_1 / (G_1 + G_2)`` and the chains' shares are
  ``G_3.. / sum(G_3..)``. Each gamma sampler compiles to a rejection loop of its own, about as
  large as the rest of the draw. The gammas are drawn in log space, as `jax.random.beta` and
  `jax.random.dirichlet` draw them: for a small ``alpha`` the gammas themselves underflow
  float32."""
  slots = depth if depth > 0 else 3
  k_weights, k_ops = jax.random.split(key)
  log_gamma = jax.random.loggamma(k_weights, alpha, (width + 2,), jnp.float32)
  mix, w_image = jax.nn.softmax(log_gamma[:2])
  chains = jax.nn.softmax(log_gamma[2:]) * mix

  # Per chain: each slot's op, bin and sign, and the chain's depth (with ``depth=-1``).
  words = jax.random.bits(k_ops, (width, 3 * slots + 1), jnp.uint32)
  steps = words[:, :-1].reshape(width, slots, 3)
  level = _below(steps[..., 1], severity).astype(jnp.float32)
  ops, values = op_magnitude(tab, _below(steps[..., 0], len(tab.ids)), level,
                             _coin(steps[..., 2]))
  if depth < 0:  # each chain's depth, uniform in {1, 2, 3}; its later slots are Identity
    active = jnp.arange(slots, dtype=jnp.int32) < 1 + _below(words[:, -1:], 3)
    ops, values = jnp.where(active, ops, IDENTITY), jnp.where(active, values, 0.0)
  return ops, values, w_image, chains
