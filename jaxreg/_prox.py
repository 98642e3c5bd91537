"""Proximal optax transforms: L1 and elastic-net steps that set small weights to exactly 0.

`l1_prox` and `elastic_net_prox` follow the optimizer's step with the proximal operator of the
penalty (soft-thresholding, then an L2 shrink): ``p + u' = prox(p + u)``. The penalties they
correspond to, and how to convert other libraries' coefficients, are in `jaxreg._penalties`.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxreg import _checks
from jaxreg._penalties import MaskOrFn, path_str, resolve_mask

__all__ = ["ProxState", "elastic_net_prox", "l1_prox"]


class ProxState(NamedTuple):
  """State of `l1_prox` / `elastic_net_prox`: the step count a learning-rate schedule reads.

  An optax state like ``optax.ScaleByScheduleState``: a pytree that goes in and out of
  ``update`` and survives `jax.jit`, `jax.vmap` and checkpointing.

  Attributes:
    count: int32 scalar, the updates applied so far (the step a schedule is evaluated at).

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> prox = jr.l1_prox(0.1, 0.01)
    >>> params = jnp.ones(3)
    >>> state = prox.init(params)
    >>> _, state = prox.update(jnp.zeros(3), state, params)
    >>> state
    ProxState(count=Array(1, dtype=int32))
  """

  count: jax.Array  # int32 scalar


def _soft_threshold(z, threshold):
  return jnp.sign(z) * jnp.maximum(jnp.abs(z) - threshold, 0)


def _per_leaf(strength, treedef, op: str, name: str) -> list:
  """A scalar strength repeated for every leaf, or a per-leaf pytree flattened like the params."""
  if strength is None:
    return [None] * treedef.num_leaves
  if isinstance(strength, numbers.Real) or getattr(strength, "ndim", None) == 0:
    return [strength] * treedef.num_leaves
  try:
    return treedef.flatten_up_to(strength)
  except (ValueError, TypeError) as err:
    raise ValueError(f"{op}: `{name}` must be a scalar or a per-leaf pytree with the structure "
                     f"of the parameters; {err}") from err


def _check_nonnegative_leaves(value, op: str, name: str) -> None:
  """Checks a scalar or per-leaf pytree of strengths (whose None entries mean 0)."""
  # A None strength as a whole is refused: it used to mean "no term" without a word (or fail
  # inside `update`). Inside a per-leaf pytree None marks a leaf the term leaves alone.
  if value is None:
    raise TypeError(
        f"{op}: `{name}` must be a number >= 0 or a pytree of them, got None. Use 0.0 for no "
        "penalty (`l1_prox` is elastic_net_prox with l2=0), or `mask=` to leave leaves out."
    )
  for leaf in jax.tree.leaves(value):
    _checks.check_interval(leaf, op, name, lo=0.0)


def _proximal_transform(op: str, l1, l2, learning_rate, mask) -> optax.GradientTransformation:
  """The shared body of the proximal transforms: ``p + u' = prox(p + u)``.

  `l1_prox` passes ``l2=None`` for "no L2 term"; a user's None is rejected for every strength.
  """
  _check_nonnegative_leaves(l1, op, "strength" if op == "l1_prox" else "l1")
  if op != "l1_prox":
    _check_nonnegative_leaves(l2, op, "l2")
  if not callable(learning_rate):
    _checks.check_interval(learning_rate, op, "learning_rate", lo=0.0)

  def init_fn(params):
    del params
    return ProxState(count=jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError(
          f"{op}: the proximal step needs the parameters, got `params`=None; call "
          "`tx.update(updates, state, params)` (optax.apply_updates follows as usual)."
      )
    if not isinstance(state, ProxState):
      raise TypeError(f"{op}: `state` must be the ProxState this transform's init returned, "
                      f"got {type(state).__name__} (another transform's state?).")
    step = learning_rate(state.count) if callable(learning_rate) else learning_rate
    # A schedule's value is known only now (traced under jit): negative or NaN gives NaN.
    step = _checks.checked_or_nan(step, op, "learning_rate", lo=0.0)
    flags, leaves_with_paths = resolve_mask(mask, params, op)
    treedef = jax.tree.structure(params)
    names = {"l1": "strength" if op == "l1_prox" else "l1", "l2": "l2"}
    per_leaf = {term: _per_leaf(value, treedef, op, names[term])
                for term, value in (("l1", l1), ("l2", l2))}
    try:
      flat_updates = treedef.flatten_up_to(updates)
    except (ValueError, TypeError) as err:
      raise ValueError(f"{op}: `updates` must have the structure of the parameters "
                       f"(`params`); {err}") from err
    new = []
    for i, ((path, p), u) in enumerate(zip(leaves_with_paths, flat_updates, strict=True)):
      if not flags[i] or u is None:
        new.append(u)
        continue
      if not jnp.issubdtype(p.dtype, jnp.floating):
        raise TypeError(f"{op}: the leaf of `params` at {path_str(path)!r} has dtype "
                        f"{p.dtype}, not floating point; leave it out with `mask=`.")
      if jnp.shape(u) != jnp.shape(p):
        raise ValueError(f"{op}: the update at {path_str(path)!r} has shape {jnp.shape(u)}, "
                         f"its parameter {jnp.shape(p)}; `updates` must be shaped like "
                         "`params`.")
      z = p + u
      l1_i, l2_i = (None if per_leaf[term][i] is None else _checks.checked_or_nan(
          per_leaf[term][i], op, names[term], lo=0.0) for term in ("l1", "l2"))
      shrunk = z if l1_i is None else _soft_threshold(z, jnp.asarray(step * l1_i, z.dtype))
      if l2_i is not None:
        shrunk = shrunk / jnp.asarray(1 + step * l2_i, z.dtype)
      new.append((shrunk - p).astype(u.dtype))
    return treedef.unflatten(new), ProxState(count=optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def l1_prox(strength: Any, learning_rate: optax.ScalarOrSchedule, *,
            mask: MaskOrFn = None) -> optax.GradientTransformation:
  """Proximal L1 step: soft-thresholding after the optimizer's update, with exact zeros.

  Place it after the learning-rate scaling (at the end of the chain). Given updates ``u`` and
  parameters ``p`` it returns ``u'`` with ``p + u' = prox(p + u)``, where
  ``prox(z) = sign(z) * max(|z| - learning_rate * strength, 0)`` is the proximal operator of
  ``learning_rate * strength * |.|``. With plain SGD this is proximal gradient descent (ISTA),
  which converges to the Lasso solution and sets small weights to exactly 0; a subgradient of
  ``|p|`` in the loss only makes them oscillate around it.

  Args:
    strength: the L1 coefficient ``lambda`` of ``lambda * sum|p|``, >= 0: a scalar or a pytree of
      per-leaf coefficients shaped like the parameters (a None entry leaves its leaf alone).
    learning_rate: the step size of the optimizer it follows: a float or the same optax
      schedule (its step count lives in this transform's state).
    mask: which leaves to shrink (pytree of bools or a function of the params); None: all.

  A schedule's value, and a traced strength, cannot be checked when the transform is made:
  one that is negative, NaN or infinite when ``update`` runs raises if it is concrete then (an
  eager call) and makes the updates NaN under `jit`, never a growing weight.

  Returns:
    An ``optax.GradientTransformation`` whose state is a `ProxState`.

  Raises:
    ValueError: negative or non-finite ``strength``/``learning_rate`` (a schedule's value
      included, when concrete); a per-leaf strength, mask or ``updates`` whose structure does
      not match the params, an update shaped unlike its parameter; ``update`` called without
      ``params``.
    TypeError: ``strength`` None; a shrunk leaf that is not floating point; a ``state`` that
      is not this transform's `ProxState`.

  Example:
    >>> import jax, jax.numpy as jnp, optax, jaxreg as jr
    >>> tx = optax.chain(optax.sgd(0.1), jr.l1_prox(1.0, 0.1))
    >>> params = jnp.array([0.05, -0.5, 2.0])
    >>> updates, _ = tx.update(jnp.zeros(3), tx.init(params), params)
    >>> optax.apply_updates(params, updates)  # |p| shrinks by 0.1; small ones become 0
    Array([ 0. , -0.4,  1.9], dtype=float32)
  """
  return _proximal_transform("l1_prox", strength, None, learning_rate, mask)


def elastic_net_prox(l1: Any, l2: Any, learning_rate: optax.ScalarOrSchedule, *,
                     mask: MaskOrFn = None) -> optax.GradientTransformation:
  """Proximal elastic-net step: soft-threshold then shrink, after the optimizer's update.

  The proximal operator of ``eta * (l1 * |p| + l2/2 * p**2)`` with ``eta = learning_rate``:
  ``prox(z) = sign(z) * max(|z| - eta * l1, 0) / (1 + eta * l2)``. Returns ``u'`` with
  ``p + u' = prox(p + u)``. Exact zeros, like `l1_prox`; see `elastic_net_penalty` for
  converting scikit-learn's and Keras' coefficients.

  Args:
    l1: L1 coefficient, >= 0 (scalar or per-leaf pytree; a None entry: no L1 term there).
    l2: coefficient of half the squared L2 norm, >= 0 (scalar or per-leaf pytree; a None
      entry: no L2 term there).
    learning_rate: the step size of the optimizer it follows (float or optax schedule).
    mask: which leaves to shrink (pytree of bools or a function of the params); None: all.

  As in `l1_prox`, a schedule's value or a traced coefficient that is negative, NaN or
  infinite when ``update`` runs raises if concrete then and makes the updates NaN under `jit`.

  Returns:
    An ``optax.GradientTransformation`` whose state is a `ProxState`.

  Raises:
    ValueError: negative or non-finite coefficients or learning rate (a schedule's value
      included, when concrete); per-leaf coefficients, mask or ``updates`` whose structure
      does not match the params, an update shaped unlike its parameter; no params.
    TypeError: ``l1`` or ``l2`` None as a whole (use 0.0 for no term; `l1_prox` is ``l2=0``);
      a shrunk leaf that is not floating point; a ``state`` that is not this transform's
      `ProxState`.

  Example:
    >>> import jax.numpy as jnp, optax, jaxreg as jr
    >>> tx = optax.chain(optax.sgd(0.5), jr.elastic_net_prox(0.2, 2.0, 0.5))
    >>> params = jnp.array([0.05, 1.1])
    >>> updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
    >>> optax.apply_updates(params, updates)  # (|p| - 0.1) / 2, or 0
    Array([0. , 0.5], dtype=float32)
  """
  return _proximal_transform("elastic_net_prox", l1, l2, learning_rate, mask)
