"""Augmentation policies: RandAugment, TrivialAugmentWide and AutoAugment, and `apply`, which
runs drawn ops on an image.

Each policy draws, per image, a few ops from the vocabulary of `jaxreg.augment._policy_space`
(torchvision's, with its magnitude tables) and a signed magnitude for each, then applies them
in turn. On a CPU a batch runs as a loop over the examples, each computing only its drawn
ops; elsewhere each slot is one warp and one select among the photometric ops. Design:
docs/policies.md#speed-how-a-batch-runs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import get_args

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _backend, _checks
from jaxreg.augment._dtypes import from_float, on_levels
from jaxreg.augment._enhance import (
  enhance_brightness,
  enhance_color,
  enhance_contrast,
  enhance_sharpness,
)
from jaxreg.augment._image_checks import Interpolation, check_drawn_size, check_policy_image
from jaxreg.augment._levels import autocontrast, equalize, invert, posterize, solarize
from jaxreg.augment._params import PolicyParams, register
from jaxreg.augment._policy_space import (
  AUTO_AUGMENT,
  AUTO_AUGMENT_BINS,
  GEOMETRIC,
  IDENTITY,
  MAX_BINS,
  OPS,
  POSTERIZE,
  RAND_AUGMENT,
  TRIVIAL_AUGMENT_WIDE,
  AutoAugmentPolicy,
  draw_auto_augment,
  draw_rand_augment,
  draw_trivial_augment_wide,
  table,
)
from jaxreg.augment._warp import rotate_matrix, shear_matrix, translate_matrix, warp

# --------------------------------------------------------------------------------------------
# Applying drawn ops: one switch per slot per example on a CPU, one warp and one photometric
# select per slot for the whole batch elsewhere
# --------------------------------------------------------------------------------------------

_IDENTITY_MATRIX = np.array([[1, 0, 0], [0, 1, 0]], np.float32)

# The inverse matrices of Identity and of the geometric ops (OPS order) at magnitude v.
_MATRICES = (
    lambda h, w, v: jnp.asarray(_IDENTITY_MATRIX),
    lambda h, w, v: shear_matrix(h, w, v, 0.0),
    lambda h, w, v: shear_matrix(h, w, 0.0, v),
    lambda h, w, v: translate_matrix(h, w, v, 0.0),
    lambda h, w, v: translate_matrix(h, w, 0.0, v),
    lambda h, w, v: rotate_matrix(h, w, v),
)
_FIRST_PHOTOMETRIC = _BRIGHTNESS = OPS.index("Brightness")

# The photometric ops whose uint8 kernels are not the float op rounded once: autocontrast's
# floors as Pillow does, and solarize compares levels with the threshold (the same for a
# threshold in [0, 1], not for a hand-built one above it). A uint8 policy is the float policy
# rounded once, so in a one-slot switch these run on the levels as floats; the others (the
# enhancers, which compute on levels themselves, posterize, equalize, invert) take the uint8
# image as it is.
_ROUNDED_ONCE = tuple(OPS.index(name) - _FIRST_PHOTOMETRIC for name in ("Solarize",
                                                                         "AutoContrast"))


def slot_matrix(op, value, height: int, width: int) -> jax.Array:
  """The (2, 3) inverse matrix of a slot: its geometric op's at ``value``, the identity for
  Identity and the photometric ops; ``op`` and ``value`` may be traced."""
  geometric = jnp.where(op <= GEOMETRIC[-1], op, IDENTITY)
  return jnp.stack([m(height, width, value) for m in _MATRICES])[geometric]


# The photometric ops (OPS order, Brightness to Invert), given `_photometric_arguments`.
_PHOTOMETRIC = (
    lambda x, a: enhance_brightness(x, a[0]),
    lambda x, a: enhance_color(x, a[0]),
    lambda x, a: enhance_contrast(x, a[0]),
    lambda x, a: enhance_sharpness(x, a[0]),
    lambda x, a: posterize(x, a[1]),
    lambda x, a: solarize(x, a[2]),
    lambda x, a: autocontrast(x),
    lambda x, a: equalize(x),
    lambda x, a: invert(x),
)


def _photometric_arguments(op, value) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(enhancement factor, posterize bits, solarize threshold) for ``op`` at ``value``; the
  arguments of the ops it does not name are neutral (their results are not used)."""
  enhancer = (op >= OPS.index("Brightness")) & (op <= OPS.index("Sharpness"))
  return (jnp.where(enhancer, 1 + value, 1.0),
          jnp.where(op == POSTERIZE, value, 8).astype(jnp.int32),
          jnp.where(op == OPS.index("Solarize"), value, 1.0))


def switched(image, values, fill, ops, *, interpolation):
  """Each drawn op by a ``switch``: only the chosen branch runs (one image, or a CPU loop).

  A uint8 image is computed on its levels (`on_levels`): with one slot, inside each branch, so
  the conversion and the rounding fuse into the op's own pass (Identity returns the image); with
  several, around the chain, rounded once at its end."""
  height, width = image.shape[:2]

  def geometric(i, fill=fill):
    return lambda x, v: warp(x, _MATRICES[i](height, width, v), interpolation, fill)

  def photometric(i):
    op = _FIRST_PHOTOMETRIC + i
    return lambda x, v: _PHOTOMETRIC[i](x, _photometric_arguments(op, v))

  one_slot = ops.shape == (1, 1)
  if one_slot and image.dtype == jnp.uint8 and interpolation == "nearest":
    # A nearest warp moves levels: it gathers the uint8 image itself, the fill as a level.
    warps = [geometric(op, from_float(fill, jnp.uint8)) for op in GEOMETRIC]
  else:
    warps = [on_levels(geometric(op)) if one_slot else geometric(op) for op in GEOMETRIC]
  branches = [lambda x, v: x, *warps]
  branches += [on_levels(photometric(i)) if one_slot and i in _ROUNDED_ONCE else photometric(i)
               for i in range(len(_PHOTOMETRIC))]

  def slot(x, drawn):
    op, value = drawn
    return lax.switch(op, branches, x, value), None

  # Loops over the chains and their slots, so that a program holds the switch's branches once,
  # not once per slot: its compile time grows with the slots (AugMix has 9). One slot of one
  # chain (TrivialAugmentWide) stays a bare switch, as a loop of one costs a pass on a CPU.
  if one_slot:
    return slot(image, (ops[0, 0], values[0, 0]))[0][None]
  return on_levels(lambda x: lax.map(lambda drawn: lax.scan(slot, x, drawn)[0],
                                     (ops, values)))(image)


def selected(image, values, fill, ops, *, interpolation, select=True, nan_guard=False):
  """The drawn ops with no switch: per slot, one warp through the op's matrix (the identity
  for the others) and a select among the photometric ops of the slot's input.

  At most one of the two changes a slot's image, so the photometric ops read the input, not
  the warp's output. Under `vmap` every example computes the warp and every photometric op
  (each a pass, equalize a histogram too), not the 5 warps of a select over all branches.

  ``nan_guard``: a non-finite magnitude makes the result all NaN, as `apply` makes the loop's.
  One chain: its last slot then runs Brightness at a NaN factor, which that op's own check
  turns into a NaN image (zero tangents, as a select gives); several: a select over them.
  """
  del select  # there is no switch to avoid
  height, width = image.shape[:2]
  finite = jnp.isfinite(values).all()
  # One chain (the policies): the poison rides on the last slot's select index and factor,
  # which the slot's image kernel reads anyway; a select would add an operand to it. Several
  # (AugMix): the select over them, with which XLA fuses the chains and the mix smaller than
  # with no guard. Design: docs/policies.md#a-non-finite-magnitude.
  poison_last_slot = nan_guard and len(ops) == 1
  chains = []
  for chain_ops, chain_values in zip(ops, values, strict=True):
    x = image
    for slot, (op, value) in enumerate(zip(chain_ops, chain_values, strict=True)):
      arguments = _photometric_arguments(op, value)
      if poison_last_slot and slot == len(chain_ops) - 1:
        op = jnp.where(finite, op, _BRIGHTNESS)
        arguments = (jnp.where(finite, arguments[0], jnp.nan), *arguments[1:])
      warped = warp(x, slot_matrix(op, value, height, width), interpolation, fill)
      which = jnp.maximum(op - _FIRST_PHOTOMETRIC + 1, 0)
      x = lax.select_n(which, warped, *(f(x, arguments) for f in _PHOTOMETRIC))
    chains.append(x)
  out = jnp.stack(chains)
  return _checks.nan_unless(finite, out) if nan_guard and not poison_last_slot else out


@functools.partial(jax.jit, static_argnames="interpolation")
def apply(image, ops, values, fill, interpolation: str) -> jax.Array:
  """Applies drawn ops to one image: ``ops`` and ``values`` (chains, slots), each chain from
  ``image``; returns (chains, H, W, C). Under `vmap` on a CPU, a loop over the examples runs
  only each one's ops; elsewhere `selected`. Derivatives are those of `selected`.

  A uint8 image is converted to float and rounded back inside each example's computation, so a
  batch never holds a float copy (on a CPU that is inside the loop).

  Jitted, so that an eager call compiles the switches once per shape, not at every call."""

  # A non-finite magnitude (a traced NaN `magnitude`, a hand-built set) makes a float result
  # all NaN, as the public ops give, where a warp would fill the image (a uint8 one holds no
  # NaN: not guarded). Per example: inside the loop, or inside the vectorized form's slots.
  guard = image.dtype != jnp.uint8

  def looped(image, values, fill, ops):
    out = switched(image, values, fill, ops, interpolation=interpolation)
    return _checks.nan_unless(jnp.isfinite(values).all(), out) if guard else out

  @on_levels
  def vectorized(image, values, fill, ops, select=True):
    return selected(image, values, fill, ops, interpolation=interpolation, select=select,
                    nan_guard=guard)

  # The image, the magnitudes and the fill take tangents (a set's float fields: a learned
  # magnitude's gradient), the op indices none.
  return _backend.loop_on_cpu(looped, vectorized, differentiable=3)(image, values, fill, ops)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _check_num_bins(num_bins, op: str) -> int:
  return _checks.check_int(num_bins, op, "num_magnitude_bins", lo=2, hi=MAX_BINS,
                           allowed=f"an int in [2, {MAX_BINS}] (the magnitudes run from bin 0 "
                           "to the last bin, one table entry each)")


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
  params = _draw_rand_augment(key, image, num_ops=num_ops, magnitude=magnitude,
                              num_magnitude_bins=num_magnitude_bins,
                              magnitude_std=magnitude_std, interpolation=interpolation,
                              fill=fill)
  return _apply_policy(params, image)


def _draw_rand_augment(key, image, *, num_ops=2, magnitude=9, num_magnitude_bins=31,
                       magnitude_std=0.0, interpolation="nearest", fill=0.0) -> PolicyParams:
  op = "rand_augment"
  image, interpolation, fill = check_policy_image(image, op, interpolation=interpolation,
                                                  fill=fill)
  num_ops = _checks.check_int(num_ops, op, "num_ops", lo=0)
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
  tab = table(RAND_AUGMENT, *image.shape[:2], num_bins)
  ops, values = draw_rand_augment(key, tab, num_ops, magnitude, num_bins, std)
  # A traced NaN or infinite magnitude: non-finite magnitudes, which apply turns into an all
  # NaN image. Finite ones out of range are clipped, as documented.
  values = jnp.where(jnp.isfinite(jnp.asarray(magnitude, jnp.float32)), values, jnp.nan)
  return PolicyParams(ops=ops, magnitudes=values, fill=fill, interpolation=interpolation,
                      image_size=image.shape[:2])


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
  params = _draw_trivial_augment_wide(key, image, num_magnitude_bins=num_magnitude_bins,
                                      interpolation=interpolation, fill=fill)
  return _apply_policy(params, image)


def _draw_trivial_augment_wide(key, image, *, num_magnitude_bins=31, interpolation="nearest",
                               fill=0.0) -> PolicyParams:
  op = "trivial_augment_wide"
  image, interpolation, fill = check_policy_image(image, op, interpolation=interpolation,
                                                  fill=fill)
  num_bins = _check_num_bins(num_magnitude_bins, op)
  key = _checks.as_key(key, op)
  tab = table(TRIVIAL_AUGMENT_WIDE, *image.shape[:2], num_bins)
  ops, values = draw_trivial_augment_wide(key, tab, num_bins)
  return PolicyParams(ops=ops, magnitudes=values, fill=fill, interpolation=interpolation,
                      image_size=image.shape[:2])


def auto_augment(key: jax.Array, image: jax.typing.ArrayLike, *,
                 policy: AutoAugmentPolicy = "imagenet",
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
  params = _draw_auto_augment(key, image, policy=policy, interpolation=interpolation,
                              fill=fill)
  return _apply_policy(params, image)


def _draw_auto_augment(key, image, *, policy="imagenet", interpolation="nearest",
                       fill=0.0) -> PolicyParams:
  op = "auto_augment"
  image, interpolation, fill = check_policy_image(image, op, interpolation=interpolation,
                                                  fill=fill)
  policy = _checks.check_choice(policy, op, "policy", choices=get_args(AutoAugmentPolicy))
  key = _checks.as_key(key, op)
  tab = table(AUTO_AUGMENT, *image.shape[:2], AUTO_AUGMENT_BINS)
  ops, values = draw_auto_augment(key, tab, policy)
  return PolicyParams(ops=ops, magnitudes=values, fill=fill, interpolation=interpolation,
                      image_size=image.shape[:2])


def check_drawn_image(params, image, op: str):
  """The image a policy's parameter set applies to: checked as the policy checks it, and of
  the size the set was drawn for (its translations and rotation centre are that image's)."""
  image, _, _ = check_policy_image(image, op, interpolation=params.interpolation,
                                   fill=params.fill)
  check_drawn_size(image.shape, params.image_size, op)
  return image


def _apply_policy(params: PolicyParams, image):
  image = check_drawn_image(params, image, "apply")
  if params.ops.shape[-1] == 0:
    return image
  return apply(image, params.ops[None], params.magnitudes[None], params.fill,
               params.interpolation)[0]


register(rand_augment, _draw_rand_augment, PolicyParams, _apply_policy)
register(trivial_augment_wide, _draw_trivial_augment_wide, PolicyParams, _apply_policy)
register(auto_augment, _draw_auto_augment, PolicyParams, _apply_policy)
