"""Parameter penalties: L2, L1 and elastic net as loss terms, and L2 decay as an optax transform.

Loss terms (add them to the training loss, times a coefficient):

    l2_penalty(p)            = 1/2 * sum(p**2)          gradient: p
    l1_penalty(p)            = sum(|p|)
    elastic_net_penalty(p)   = l1 * sum(|p|) + l2/2 * sum(p**2)

Conventions elsewhere, for converting coefficients:

* PyTorch ``weight_decay=wd`` adds ``wd * p`` to the gradient: the same as adding
  ``wd * l2_penalty(params)`` to the loss, and as ``optax.add_decayed_weights(wd)``.
* Keras ``L1L2(l1=a, l2=b)`` adds ``a * sum|p| + b * sum(p**2)`` (no 1/2):
  ``elastic_net_penalty(params, l1=a, l2=2 * b)``.
* scikit-learn ``ElasticNet(alpha, l1_ratio)`` minimizes ``1/(2 n) * ||y - X w||**2 +
  alpha * l1_ratio * ||w||_1 + alpha * (1 - l1_ratio) / 2 * ||w||**2``: with the loss
  ``mean((y - X w)**2) / 2``, use ``l1=alpha * l1_ratio, l2=alpha * (1 - l1_ratio)``.
  ``Lasso(alpha)`` is ``l1=alpha, l2=0``.

A subgradient of ``|p|`` in the loss almost never lands a weight exactly on 0. The proximal
transforms of `jaxreg._prox` do: `l1_prox` and `elastic_net_prox` follow the optimizer's step
with the proximal operator of the penalty (soft-thresholding), which sets small weights to
exactly 0. L2 decay is
optax's own `optax.add_decayed_weights`; `add_l2_decay` is that with a sensible default mask
(`decay_mask`: weight matrices and kernels yes; biases, norm scales and offsets, and non-array
leaves no).
"""

from __future__ import annotations

import fnmatch
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import _checks

__all__ = [
    "add_l2_decay",
    "decay_mask",
    "elastic_net_penalty",
    "l1_penalty",
    "l2_penalty",
]

MaskOrFn = Any  # a pytree of bools shaped like the params, or params -> such a pytree


# --------------------------------------------------------------------------------------------
# Paths and masks
# --------------------------------------------------------------------------------------------


def path_str(path) -> str:
  """``('params', 'Dense_0', 'kernel')`` -> ``'params/Dense_0/kernel'``, for messages/patterns."""
  parts = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
    else:
      parts.append(str(key))
  return "/".join(parts) or "<root>"


def _is_array(leaf) -> bool:
  return isinstance(leaf, (jax.Array, np.ndarray, np.generic))


def resolve_mask(mask: MaskOrFn, params, op: str):
  """A list of bools, one per leaf of ``params`` (in flattening order), from a mask or None."""
  leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(params)
  if mask is None:
    return [True] * len(leaves_with_paths), leaves_with_paths
  if callable(mask) and not _is_array(mask):
    mask = mask(params)
  try:
    flags = treedef.flatten_up_to(mask)
  except (ValueError, TypeError) as err:
    raise ValueError(
        f"{op}: `mask` must have the structure of the parameters (one bool per leaf, as "
        f"returned by jaxreg.decay_mask(params)); {err}"
    ) from err
  resolved = []
  for (path, _), flag in zip(leaves_with_paths, flags, strict=True):
    if not isinstance(flag, (bool, np.bool_)):
      raise TypeError(f"{op}: `mask` leaf at {path_str(path)!r} must be a Python bool, got "
                      f"{flag!r}.")
    resolved.append(bool(flag))
  return resolved, leaves_with_paths


def _selected_float_leaves(params, mask, op: str):
  """The (path, leaf) pairs the mask selects; each must be a floating-point array."""
  flags, leaves_with_paths = resolve_mask(mask, params, op)
  selected = []
  for flag, (path, leaf) in zip(flags, leaves_with_paths, strict=True):
    if not flag:
      continue
    dtype = getattr(leaf, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
      raise TypeError(
          f"{op}: the leaf of `params` at {path_str(path)!r} is {type(leaf).__name__}"
          f"{'' if dtype is None else f' of dtype {dtype}'}, not a floating-point array. "
          "Leave it out with `mask=` (e.g. mask=jaxreg.decay_mask(params))."
      )
    selected.append((path, leaf))
  return selected


def decay_mask(
    params: Any,
    *,
    min_ndim: int = 2,
    exclude: Sequence[str] = (),
) -> Any:
  """The mask users want for weight decay: kernels and matrices yes, everything else no.

  A leaf is decayed when it is a floating-point array with at least ``min_ndim`` dimensions
  (dense kernels, conv kernels, embeddings) and its path matches none of the ``exclude``
  patterns. Biases and norm scales/offsets (1-D), scalars, integer arrays (step counters) and
  non-array leaves (activation functions and other static fields of equinox modules) are not.

  Paths are the pytree keys joined by ``/``, e.g. ``params/Dense_0/kernel`` for a flax
  parameter dict or ``layers/0/weight`` for an equinox model, matched with `fnmatch`
  (``*`` matches across ``/``).

  Args:
    params: any pytree of parameters: a plain dict, a flax ``{'params': ...}`` dict, an equinox
      module.
    min_ndim: smallest rank that is decayed (2 by default).
    exclude: `fnmatch` patterns of paths never decayed, e.g. ``("*embedding*", "*/pos_*")``.

  Returns:
    A pytree of Python bools with the structure of ``params``, accepted by
    ``optax.add_decayed_weights(mask=...)``, ``optax.masked``, ``optax.adamw(mask=...)`` and the
    ``mask=`` of every jaxreg penalty.

  Raises:
    TypeError: ``exclude`` not a sequence of strings (None or a bare string included),
      ``min_ndim`` not an int.
    ValueError: ``min_ndim`` < 0.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> params = {"dense": {"kernel": jnp.ones((3, 4)), "bias": jnp.zeros(4)},
    ...           "norm": {"scale": jnp.ones(4)}}
    >>> jr.decay_mask(params)
    {'dense': {'bias': False, 'kernel': True}, 'norm': {'scale': False}}
  """
  op = "decay_mask"
  if isinstance(min_ndim, bool) or not isinstance(min_ndim, (numbers.Integral, np.integer)):
    raise TypeError(f"{op}: `min_ndim` must be an int, got {min_ndim!r}.")
  if min_ndim < 0:
    raise ValueError(f"{op}: `min_ndim` must be >= 0, got {min_ndim!r}.")
  try:
    patterns = None if isinstance(exclude, (str, bytes)) else tuple(exclude)
  except TypeError:
    patterns = None
  if patterns is None or not all(isinstance(p, str) for p in patterns):
    raise TypeError(f"{op}: `exclude` must be a sequence of path patterns (strings), e.g. "
                    f"('*embedding*',) or () for none, got {exclude!r}.")

  def decide(path, leaf):
    if not _is_array(leaf) or not jnp.issubdtype(leaf.dtype, jnp.floating):
      return False
    if leaf.ndim < min_ndim:
      return False
    name = path_str(path)
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

  return jax.tree_util.tree_map_with_path(decide, params)


# --------------------------------------------------------------------------------------------
# Loss terms
# --------------------------------------------------------------------------------------------


def _sum_over(selected, term) -> jax.Array:
  """``sum(term(leaf))`` over the leaves, in the widest of their float32-or-wider dtypes.

  float32 when there are no leaves or only half-precision and float32 ones; float64 as soon as
  one leaf is float64 (with jax_enable_x64), so float64 parameters get a float64 penalty.
  """
  dtypes = [_checks.float32_or_wider(leaf.dtype) for _, leaf in selected]
  widest = max(dtypes, key=lambda dtype: dtype.itemsize, default=jnp.dtype(jnp.float32))
  # float32 when x64 is off, also for numpy float64 leaves (which JAX converts to float32).
  accumulator = jax.dtypes.canonicalize_dtype(widest)
  total = jnp.zeros((), accumulator)
  for _, leaf in selected:
    total = total + jnp.sum(term(leaf.astype(accumulator)))
  return total


def l2_penalty(params: Any, *, mask: MaskOrFn = None) -> jax.Array:
  """Half the squared L2 norm of the parameters, ``1/2 * sum(p**2)``.

  The 1/2 makes the gradient equal to ``p`` itself, the update ``optax.add_decayed_weights``
  adds: ``wd * l2_penalty(params)`` in the loss is the same regularization as
  ``optax.add_decayed_weights(wd)`` before the optimizer (and as PyTorch's
  ``weight_decay=wd``).

  Args:
    params: a pytree of parameters.
    mask: which leaves to include: a pytree of bools shaped like ``params`` (e.g.
      ``jaxreg.decay_mask(params)``) or a function ``params -> mask``. None: every leaf.

  Returns:
    A float32 scalar (float64 if any included parameter is float64).

  Raises:
    TypeError: an included leaf that is not a floating-point array (the message names its path).
    ValueError: a mask whose structure does not match ``params``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> params = {"w": jnp.array([[1.0, 2.0]]), "b": jnp.array([3.0])}
    >>> float(jr.l2_penalty(params, mask=jr.decay_mask(params)))
    2.5
    >>> jax.grad(jr.l2_penalty)(params)["w"]
    Array([[1., 2.]], dtype=float32)
  """
  selected = _selected_float_leaves(params, mask, "l2_penalty")
  return 0.5 * _sum_over(selected, jnp.square)


def l1_penalty(params: Any, *, mask: MaskOrFn = None) -> jax.Array:
  """The L1 norm of the parameters, ``sum(|p|)``.

  As a loss term its (sub)gradient is ``sign(p)``, which shrinks weights but almost never makes
  one exactly 0; for exact zeros (sparse models) use `l1_prox` in the optimizer instead.

  Args:
    params: a pytree of parameters.
    mask: which leaves to include (pytree of bools or a function of ``params``); None: all.

  Returns:
    A float32 scalar (float64 if any included parameter is float64).

  Raises:
    TypeError: an included leaf that is not a floating-point array (named by path).
    ValueError: a mask whose structure does not match ``params``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> float(jr.l1_penalty({"w": jnp.array([1.0, -2.0])}))
    3.0
  """
  return _sum_over(_selected_float_leaves(params, mask, "l1_penalty"), jnp.abs)


def elastic_net_penalty(params: Any, *, l1: float, l2: float,
                        mask: MaskOrFn = None) -> jax.Array:
  """The elastic-net penalty ``l1 * sum(|p|) + l2/2 * sum(p**2)``.

  scikit-learn's ``ElasticNet(alpha, l1_ratio)`` is ``l1 = alpha * l1_ratio`` and
  ``l2 = alpha * (1 - l1_ratio)`` (with the data term ``mean((y - X w)**2) / 2``); Keras'
  ``L1L2(a, b)`` is ``l1 = a, l2 = 2 * b``.

  Args:
    params: a pytree of parameters.
    l1: coefficient of the L1 norm, >= 0.
    l2: coefficient of half the squared L2 norm, >= 0.
    mask: which leaves to include (pytree of bools or a function of ``params``); None: all.

  A traced ``l1`` or ``l2`` cannot be checked at trace time: one that is negative, NaN or
  infinite at run time makes the penalty NaN, never a negative penalty.

  Returns:
    A float32 scalar (float64 if any included parameter is float64).

  Raises:
    ValueError: negative or non-finite ``l1``/``l2`` (when known at trace time); a mask whose
      structure does not match ``params``.
    TypeError: an included leaf that is not a floating-point array (named by path).

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> float(jr.elastic_net_penalty({"w": jnp.array([1.0, -2.0])}, l1=0.5, l2=2.0))
    6.5
  """
  op = "elastic_net_penalty"
  l1 = _checks.checked_or_nan(l1, op, "l1", lo=0.0)
  l2 = _checks.checked_or_nan(l2, op, "l2", lo=0.0)
  selected = _selected_float_leaves(params, mask, op)
  return l1 * _sum_over(selected, jnp.abs) + 0.5 * l2 * _sum_over(selected, jnp.square)


# --------------------------------------------------------------------------------------------
# optax transforms
# --------------------------------------------------------------------------------------------


def add_l2_decay(weight_decay: optax.ScalarOrSchedule, *,
                 mask: MaskOrFn = decay_mask) -> optax.GradientTransformation:
  """``optax.add_decayed_weights`` with `decay_mask` as its default mask.

  Adds ``weight_decay * p`` to the updates of the masked leaves. Where it goes in the chain
  decides what it means, and the two placements are not interchangeable for adaptive
  optimizers:

  * Before the optimizer (coupled L2, classic "L2 regularization", PyTorch's
    ``SGD(weight_decay=...)`` and ``Adam(weight_decay=...)``): the decay is added to the
    gradient and rescaled with it, so Adam shrinks rarely-updated weights less.
  * After the adaptive scaling and before the learning rate (decoupled, AdamW; Loshchilov &
    Hutter 2019): the decay is the same for every weight. This is what
    ``optax.adamw(..., mask=jr.decay_mask)`` does (see the example).

  Args:
    weight_decay: a float >= 0 or an optax schedule. A schedule's value, and a traced
      constant, cannot be checked when the transform is made: one that is negative, NaN or
      infinite when it is used raises if it is concrete then (an eager ``update``) and makes
      the updates NaN under `jit`, never a weight growth.
    mask: a pytree of bools, or a function of the params returning one. Default `decay_mask`
      (no decay for biases, norm parameters and non-array leaves). None decays every leaf.

  Returns:
    An ``optax.GradientTransformation`` (optax's own `add_decayed_weights`).

  Raises:
    ValueError: a negative or non-finite constant ``weight_decay`` (or schedule value, when
      concrete).

  Example:
    >>> import jax, jax.numpy as jnp, optax, jaxreg as jr
    >>> params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    >>> zeros = jax.tree.map(jnp.zeros_like, params)
    >>> coupled = optax.chain(jr.add_l2_decay(0.5), optax.sgd(1.0))  # L2 before the optimizer
    >>> updates, _ = coupled.update(zeros, coupled.init(params), params)
    >>> updates["w"].tolist(), updates["b"].tolist()  # only the kernel decays
    ([[-0.5, -0.5], [-0.5, -0.5]], [-0.0, -0.0])
    >>> decoupled = optax.chain(optax.scale_by_adam(), jr.add_l2_decay(1e-2),
    ...                         optax.scale_by_learning_rate(1e-3))  # AdamW
    >>> grads = jax.tree.map(lambda p: 0.3 * p, params)
    >>> ours, _ = decoupled.update(grads, decoupled.init(params), params)
    >>> adamw = optax.adamw(1e-3, weight_decay=1e-2, mask=jr.decay_mask)
    >>> theirs, _ = adamw.update(grads, adamw.init(params), params)
    >>> all(bool(jnp.allclose(a, b)) for a, b in zip(jax.tree.leaves(ours),
    ...                                              jax.tree.leaves(theirs)))
    True
  """
  op = "add_l2_decay"
  if callable(weight_decay):
    schedule = weight_decay

    def weight_decay(count):
      return _checks.checked_or_nan(schedule(count), op, "weight_decay", lo=0.0)
  else:
    weight_decay = _checks.checked_or_nan(weight_decay, op, "weight_decay", lo=0.0)
  return optax.add_decayed_weights(weight_decay, mask=mask)
