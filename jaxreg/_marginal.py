"""Test-time marginalization by sampling, where no closed form exists.

At test time a regularizer's randomness is removed by taking the expectation. For a single
dropout layer the expectation is the identity (inverted dropout), but the expectation of a whole
network's output under dropout is not the network without dropout. Monte-Carlo dropout estimates
it by averaging the training path over keys; the spread of the samples is a cheap measure of the
model's uncertainty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxreg import _checks

__all__ = ["mc_dropout_predict"]


def _sample_mean_and_variance(samples: Any) -> tuple[Any, Any]:
  """Mean and (biased, ddof=0) variance over axis 0 of every leaf, two-pass for accuracy."""

  def moments(leaf):
    wide = leaf.astype(_checks.float32_or_wider(leaf.dtype))
    mean = jnp.mean(wide, axis=0)
    var = jnp.mean(jnp.square(wide - mean), axis=0)
    return mean.astype(leaf.dtype), var.astype(leaf.dtype)

  pairs = jax.tree.map(moments, samples)
  if not jax.tree.leaves(samples):  # e.g. () or {}: nothing to average, and nothing to split
    return samples, samples
  # Split the (mean, variance) pair of every leaf by structure, not by looking for 2-tuples:
  # the model's own output may contain 2-tuples (and NamedTuples), which are not pairs here.
  return jax.tree.transpose(jax.tree.structure(samples), jax.tree.structure((0, 0)), pairs)


def mc_dropout_predict(
    key: jax.Array,
    apply_fn: Callable[[jax.Array, Any], Any],
    x: Any,
    *,
    num_samples: int,
    batch_size: int | None = None,
) -> tuple[Any, Any]:
  """Monte-Carlo dropout: predictive mean and variance of a model's stochastic training path.

  Splits ``key`` into ``num_samples`` keys, runs ``apply_fn(sample_key, x)`` for each (in one
  ``jax.vmap``, or ``batch_size`` at a time through ``jax.lax.map`` to bound memory) and returns
  the mean and the variance over the samples. ``apply_fn`` should run the model with
  ``train=True`` for its dropout layers (and the test path for everything else, e.g. batch norm
  with running statistics).

  Args:
    key: a PRNG key (typed or legacy; the sample keys passed to ``apply_fn`` are of the same
      kind).
    apply_fn: ``apply_fn(key, x) -> output``, output any pytree of floating-point arrays
      (tuples, dicts, NamedTuples, ...).
    x: the model input, passed unchanged to every sample (any pytree).
    num_samples: number of Monte-Carlo samples, >= 1.
    batch_size: if given, evaluate this many samples at a time (``jax.lax.map``) instead of all
      at once.

  Returns:
    ``(mean, variance)``: two pytrees shaped like ``apply_fn``'s output. The variance is the
    population variance over samples (ddof=0, so ``num_samples=1`` gives 0, not NaN), computed
    in at least float32 by the two-pass formula.

  Raises:
    TypeError: ``apply_fn`` not callable or returning a non-floating (integer, bool) array,
      ``num_samples``/``batch_size`` not int, bad ``key``.
    ValueError: ``num_samples`` or ``batch_size`` < 1.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> w = jnp.ones((3, 2))
    >>> def model(key, x):
    ...   return jr.dropout(key, x, 0.5, train=True) @ w
    >>> mean, var = jr.mc_dropout_predict(jax.random.key(0), model, jnp.ones((4, 3)),
    ...                                   num_samples=64)
    >>> mean.shape, var.shape
    ((4, 2), (4, 2))

  References:
    Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing Model Uncertainty in
    Deep Learning", ICML 2016.
  """
  op = "mc_dropout_predict"
  _checks.as_key(key, op)
  if not callable(apply_fn):
    raise TypeError(f"{op}: `apply_fn` must be callable as apply_fn(key, x), got {apply_fn!r}.")
  num_samples = _checks.check_positive_int(num_samples, op, "num_samples")
  if batch_size is not None:
    batch_size = _checks.check_positive_int(batch_size, op, "batch_size")
  keys = jax.random.split(key, num_samples)
  sample = lambda k: apply_fn(k, x)  # noqa: E731
  if batch_size is None:
    samples = jax.vmap(sample)(keys)
  else:
    samples = jax.lax.map(sample, keys, batch_size=batch_size)
  _checks.check_floating_outputs(samples, op)
  return _sample_mean_and_variance(samples)
