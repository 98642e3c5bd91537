"""Calibration metrics of a classifier's predicted probabilities, as small pure functions.

Accuracy, negative log-likelihood (NLL), expected calibration error (ECE) and the bins of a
reliability diagram, for predicted class probabilities ``probs`` of shape ``(N, C)`` and integer
labels of shape ``(N,)``. They are written in ``jax.numpy``: they run eagerly, under ``jax.jit``
and under ``jax.vmap`` (over seeds, say), and examples/regularization_study.py reports them for
every test-time path (deterministic, Monte-Carlo dropout, multi-crop).

    from examples import calibration as cal
    cal.expected_calibration_error(probs, labels)      # 15 equal-width confidence bins

A prediction's confidence is its largest probability, and the prediction is that class. The
confidence axis [0, 1] is cut into ``num_bins`` equal-width bins ``((m - 1) / M, m / M]``; the
ECE is the mean over examples of ``|accuracy - confidence|`` of their bin, i.e.
``sum_m (n_m / N) |acc_m - conf_m|`` (Naeini et al. 2015; Guo et al. 2017, with M = 15).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

NUM_BINS = 15

__all__ = ["NUM_BINS", "ReliabilityBins", "accuracy", "expected_calibration_error", "nll",
           "reliability_bins"]


class ReliabilityBins(NamedTuple):
  """Per-bin statistics of a reliability diagram; empty bins hold 0 in every field."""

  count: jax.Array  # int32[num_bins]: examples whose confidence falls in the bin
  confidence: jax.Array  # float[num_bins]: their mean confidence
  accuracy: jax.Array  # float[num_bins]: the fraction of them predicted correctly


def _check(probs, labels, op: str) -> tuple[jax.Array, jax.Array]:
  """Converts and checks ``probs`` (N, C) floating and ``labels`` (N,) integer."""
  if probs is None or isinstance(probs, (str, bytes)):
    raise TypeError(f"{op}: `probs` must be a floating-point array of shape (N, C), got "
                    f"{probs!r}.")
  probs = jnp.asarray(probs)
  if not jnp.issubdtype(probs.dtype, jnp.floating):
    raise TypeError(f"{op}: `probs` must be floating-point probabilities, got dtype "
                    f"{probs.dtype}; pass jax.nn.softmax(logits).")
  if probs.ndim != 2 or probs.shape[0] < 1 or probs.shape[1] < 2:
    raise ValueError(f"{op}: `probs` must have shape (N, C) with N >= 1 examples and C >= 2 "
                     f"classes, got shape {probs.shape}.")
  if labels is None or isinstance(labels, (str, bytes)):
    raise TypeError(f"{op}: `labels` must be an integer array of shape (N,), got {labels!r}.")
  labels = jnp.asarray(labels)
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(f"{op}: `labels` must be integer class indices, got dtype {labels.dtype}.")
  if labels.shape != probs.shape[:1]:
    raise ValueError(f"{op}: `labels` must have shape ({probs.shape[0]},) to match `probs` "
                     f"{probs.shape}, got {labels.shape}.")
  try:  # concrete labels are checked here; traced ones make the result NaN instead
    concrete = np.asarray(labels)
  except jax.errors.TracerArrayConversionError:
    concrete = None
  if concrete is not None and (concrete.min() < 0 or concrete.max() >= probs.shape[1]):
    raise ValueError(f"{op}: `labels` must lie in [0, {probs.shape[1] - 1}] for "
                     f"{probs.shape[1]} classes, got values in [{concrete.min()}, "
                     f"{concrete.max()}].")
  return probs, labels


def _valid(labels, num_classes):
  return (labels >= 0) & (labels < num_classes)


def _check_num_bins(num_bins, op: str) -> int:
  if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)):
    raise TypeError(f"{op}: `num_bins` must be an int, got {num_bins!r}.")
  if num_bins < 1:
    raise ValueError(f"{op}: `num_bins` must be >= 1, got {num_bins}.")
  return int(num_bins)


def accuracy(probs: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> jax.Array:
  """Fraction of examples whose most probable class is the label.

  Args:
    probs: predicted probabilities (or any scores: only their argmax counts), shape (N, C).
    labels: integer labels, shape (N,).

  Returns:
    A float32 scalar in [0, 1] (NaN if a traced label is outside [0, C)).

  Raises:
    TypeError: non-floating ``probs``, non-integer ``labels``.
    ValueError: wrong shapes, or concrete labels outside [0, C).

  Example:
    >>> import jax.numpy as jnp
    >>> from examples import calibration as cal
    >>> float(cal.accuracy(jnp.array([[0.9, 0.1], [0.3, 0.7]]), jnp.array([0, 0])))
    0.5
  """
  return _accuracy(*_check(probs, labels, "accuracy"))


@jax.jit
def _accuracy(probs, labels):
  correct = (jnp.argmax(probs, -1) == labels).astype(jnp.float32)
  return jnp.where(jnp.all(_valid(labels, probs.shape[1])), jnp.mean(correct), jnp.nan)


def nll(probs: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> jax.Array:
  """Negative log-likelihood: the mean of ``-log probs[i, labels[i]]`` (nats).

  Probabilities below the dtype's smallest normal number (1.2e-38 in float32, where a softmax
  underflows) count as that number, so one confidently wrong example adds at most 87.3 nats
  (float32) to the sum instead of making the mean infinite.

  Args:
    probs: predicted probabilities, shape (N, C), e.g. ``jax.nn.softmax(logits)`` or the mean
      of several samples' probabilities (Monte-Carlo dropout, multi-crop).
    labels: integer labels, shape (N,).

  Returns:
    A scalar of ``probs``' dtype (NaN if a traced label is outside [0, C)).

  Raises:
    TypeError: non-floating ``probs``, non-integer ``labels``.
    ValueError: wrong shapes, or concrete labels outside [0, C).

  Example:
    >>> import jax.numpy as jnp
    >>> from examples import calibration as cal
    >>> round(float(cal.nll(jnp.array([[0.5, 0.5], [0.2, 0.8]]), jnp.array([0, 1]))), 4)
    0.4581
  """
  return _nll(*_check(probs, labels, "nll"))


@jax.jit
def _nll(probs, labels):
  picked = jnp.take_along_axis(probs, jnp.clip(labels, 0, probs.shape[1] - 1)[:, None], 1)[:, 0]
  tiny = jnp.finfo(probs.dtype).tiny
  value = -jnp.mean(jnp.log(jnp.maximum(picked, tiny)))
  return jnp.where(jnp.all(_valid(labels, probs.shape[1])), value, jnp.nan)


def reliability_bins(probs: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, *,
                     num_bins: int = NUM_BINS) -> ReliabilityBins:
  """Count, mean confidence and accuracy of the examples in each equal-width confidence bin.

  Bin ``m`` (from 1) holds confidences in ``((m - 1) / num_bins, m / num_bins]``; a
  reliability diagram plots each non-empty bin's accuracy against its confidence (the diagonal
  is perfect calibration).

  Args:
    probs: predicted probabilities, shape (N, C).
    labels: integer labels, shape (N,).
    num_bins: number of bins, >= 1 (keyword-only; 15 by default).

  Returns:
    A `ReliabilityBins` of three ``(num_bins,)`` arrays; empty bins have count 0 and 0 in the
    other fields. Under jit, an out-of-range label makes every mean NaN.

  Raises:
    TypeError: non-floating ``probs``, non-integer ``labels``, non-int ``num_bins``.
    ValueError: wrong shapes, ``num_bins`` < 1, concrete labels outside [0, C).

  Example:
    >>> import jax.numpy as jnp
    >>> from examples import calibration as cal
    >>> bins = cal.reliability_bins(jnp.array([[0.9, 0.1], [0.6, 0.4]]), jnp.array([0, 1]),
    ...                             num_bins=2)
    >>> bins.count.tolist(), bins.accuracy.tolist()
    ([0, 2], [0.0, 0.5])
  """
  num_bins = _check_num_bins(num_bins, "reliability_bins")
  return _reliability_bins(*_check(probs, labels, "reliability_bins"), num_bins)


@functools.partial(jax.jit, static_argnums=2)
def _reliability_bins(probs, labels, num_bins):
  confidence = jnp.max(probs, -1)
  correct = (jnp.argmax(probs, -1) == labels).astype(probs.dtype)
  # ceil(c * M) - 1 puts c in ((m - 1) / M, m / M]; a confidence is >= 1 / C > 0.
  index = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
  one_hot = jax.nn.one_hot(index, num_bins, dtype=probs.dtype)  # (N, M)
  count = one_hot.sum(0)
  per_bin = lambda v: jnp.where(count > 0, v @ one_hot / jnp.maximum(count, 1), 0)  # noqa: E731
  nan_if_bad = jnp.where(jnp.all(_valid(labels, probs.shape[1])), 0.0, jnp.nan)
  return ReliabilityBins(count.astype(jnp.int32), per_bin(confidence) + nan_if_bad,
                         per_bin(correct) + nan_if_bad)


def expected_calibration_error(probs: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, *,
                               num_bins: int = NUM_BINS) -> jax.Array:
  """ECE: ``sum_m (n_m / N) |accuracy_m - confidence_m|`` over equal-width confidence bins.

  0 for a perfectly calibrated set (within each bin, the fraction correct equals the mean
  confidence); for a set whose every confidence falls in one bin, ``|mean confidence -
  accuracy|``.

  Args:
    probs: predicted probabilities, shape (N, C).
    labels: integer labels, shape (N,).
    num_bins: number of equal-width bins on [0, 1], >= 1 (keyword-only; 15 by default).

  Returns:
    A scalar in [0, 1] of ``probs``' dtype (NaN if a traced label is outside [0, C)).

  Raises:
    TypeError: non-floating ``probs``, non-integer ``labels``, non-int ``num_bins``.
    ValueError: wrong shapes, ``num_bins`` < 1, concrete labels outside [0, C).

  Example:
    >>> import jax.numpy as jnp
    >>> from examples import calibration as cal
    >>> probs = jnp.array([[0.8, 0.2]] * 4)  # 80% confident, 3 of 4 right
    >>> round(float(cal.expected_calibration_error(probs, jnp.array([0, 0, 0, 1]))), 4)
    0.05

  References:
    Naeini, Cooper & Hauskrecht, "Obtaining Well Calibrated Probabilities Using Bayesian
    Binning", AAAI 2015; Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural
    Networks", ICML 2017.
  """
  num_bins = _check_num_bins(num_bins, "expected_calibration_error")
  return _expected_calibration_error(*_check(probs, labels, "expected_calibration_error"),
                                     num_bins)


@functools.partial(jax.jit, static_argnums=2)
def _expected_calibration_error(probs, labels, num_bins):
  bins = _reliability_bins(probs, labels, num_bins)
  weight = bins.count.astype(probs.dtype) / probs.shape[0]
  return jnp.sum(weight * jnp.abs(bins.accuracy - bins.confidence))
