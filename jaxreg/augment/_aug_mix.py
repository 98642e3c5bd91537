"""AugMix: an image mixed with chains of random policy ops, and its consistency loss."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxreg import _checks
from jaxreg.augment._dtypes import on_levels, to_float
from jaxreg.augment._image_checks import Interpolation, check_policy_image
from jaxreg.augment._params import AugMixParams, register
from jaxreg.augment._policies import apply, check_drawn_image
from jaxreg.augment._policy_space import AUG_MIX, AUG_MIX_ALL, AUG_MIX_BINS, draw_aug_mix, table


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
  params = _draw_aug_mix(key, image, severity=severity, width=width, depth=depth, alpha=alpha,
                         all_ops=all_ops, interpolation=interpolation, fill=fill)
  return _apply_aug_mix(params, image)


def _draw_aug_mix(key, image, *, severity=3, width=3, depth=-1, alpha=1.0, all_ops=True,
                  interpolation="bilinear", fill=0.0) -> AugMixParams:
  op = "aug_mix"
  image, interpolation, fill = check_policy_image(image, op, interpolation=interpolation,
                                                  fill=fill)
  severity = _checks.check_int(severity, op, "severity", lo=1, hi=AUG_MIX_BINS)
  width = _checks.check_int(width, op, "width", lo=1)
  depth = _checks.check_int(depth, op, "depth", lo=-1,
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
  return AugMixParams(ops=ops, magnitudes=values, image_weight=w_image, chain_weights=w_chains,
                      fill=fill, interpolation=interpolation, image_size=image.shape[:2])


def _apply_aug_mix(params: AugMixParams, image):
  image = check_drawn_image(params, image, "apply")
  # A uint8 image: the chains and the mix on q / 255, rounded to levels once, at the end.
  return on_levels(functools.partial(_mix, params))(image)


def _mix(params: AugMixParams, image):
  chains = apply(image, params.ops, params.magnitudes, params.fill, params.interpolation)
  x = to_float(image)  # half precision mixes in float32
  mixed = params.image_weight.astype(x.dtype) * x + jnp.tensordot(
      params.chain_weights.astype(x.dtype), chains.astype(x.dtype), axes=1)
  return mixed.astype(image.dtype)


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
  return _jensen_shannon(*logits)


@jax.jit
def _jensen_shannon(*logits) -> jax.Array:
  """`aug_mix_consistency_loss` of checked logits. Jitted, so that an eager call runs one
  compiled program, not one per operation."""
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


register(aug_mix, _draw_aug_mix, AugMixParams, _apply_aug_mix)
