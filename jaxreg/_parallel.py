"""Randomness that does not depend on how the work is split: per device and per record.

`record_keys` gives every record of a data set a key of its own, derived from one base key and
the record's global index (its position in the shuffled, repeated stream a loader such as grain
numbers), so an example's augmentation is the same whatever batch it lands in, however many
workers load it, and after a restart from a checkpoint. Design: docs/guides/grain.md.

Under `shard_map` or `pmap` a key passed in replicated is the same on every device, so
``dropout(key, local_batch, ...)`` would draw the same mask on every shard: the examples of
shard 3 would be dropped exactly where those of shard 0 are. `device_key` folds the device's
position along the named mesh axes into the key, so shards draw independent masks while the
whole run stays reproducible from the one root key. (Under plain `jit` over sharded arrays
nothing is needed: one global mask is drawn for the global array.)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _checks

__all__ = ["device_key", "record_keys"]


def device_key(key: jax.Array, axis_name: Hashable | Sequence[Hashable]) -> jax.Array:
  """The key folded with this device's index along ``axis_name`` (a per-device stream).

  Call it inside `shard_map` / `pmap` on a replicated key; use the result wherever a per-shard
  random op (dropout, drop-path, DropBlock, augmentation) takes a key. Several axis names fold in
  one after the other (e.g. ``("data", "model")`` gives every device of a 2-D mesh its own key;
  pass only the data axis to share masks across model-parallel replicas of the same examples).

  Args:
    key: a PRNG key (typed or legacy), the same on every device.
    axis_name: a mesh axis name (any hashable JAX accepts; mesh axes are strings), or a tuple
      or list of them, bound by the enclosing transform.

  Returns:
    A key of the same kind, different on every device along those axes.

  Raises:
    ValueError: an axis name that is not bound here (not inside a `shard_map`/`pmap` over it);
      an empty sequence of axis names.
    TypeError: a key that is not a PRNG key; an ``axis_name`` that is None, bytes, a set or
      unhashable.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> keys = jax.vmap(lambda _: jr.device_key(jax.random.key(0), "i"), axis_name="i")(
    ...     jnp.arange(2))
    >>> bool(jax.random.key_data(keys[0])[0] != jax.random.key_data(keys[1])[0])
    True
  """
  op = "device_key"
  _checks.as_key(key, op)
  names = _checks.check_axis_names(axis_name, op)
  for name in names:
    try:
      index = lax.axis_index(name)
    except NameError as err:
      raise ValueError(
          f"{op}: `axis_name` {name!r} is not bound here; call device_key inside a shard_map or "
          "pmap over that axis (under plain jit over sharded arrays no per-device key is "
          "needed)."
      ) from err
    key = jax.random.fold_in(key, index)
  return key


# fold_in takes 32-bit data: indices beyond it would alias earlier records.
_INDEX_LIMIT = 2**32


def record_keys(key: jax.Array, indices: jax.typing.ArrayLike) -> jax.Array:
  """One key per record: ``jax.random.fold_in(key, index)`` for each index.

  A record's key depends only on the base key and its index, not on the batch it is in, the
  batch size, the number of loader workers, prefetching or a restart, so its augmentation does
  not either. Give it the record's global index, e.g. grain's ``map_with_index`` index after
  ``shuffle`` and ``repeat`` (a new index, hence new randomness, every epoch), and pass the
  result to `jaxreg.augment.batched` as the batch's keys. Design: docs/guides/grain.md.

  Args:
    key: a PRNG key (typed or legacy), the same for the whole run.
    indices: non-negative integer indices below 2**32, any shape (a batch's is ``(N,)``).
      Concrete values are checked; traced ones are taken modulo 2**32.

  Returns:
    Typed PRNG keys of shape ``indices.shape``; equal indices give equal keys.

  Raises:
    TypeError: a ``key`` that is not a PRNG key; ``indices`` not integers (booleans and floats
      included).
    ValueError: a concrete index below 0 or at least 2**32.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> keys = jr.record_keys(jax.random.key(0), jnp.arange(8))  # records 0..7
    >>> again = jr.record_keys(jax.random.key(0), jnp.array([5, 2]))  # in another batch
    >>> bool((jax.random.key_data(again) == jax.random.key_data(keys[jnp.array([5, 2])])).all())
    True
  """
  op = "record_keys"
  key = _checks.as_key(key, op)
  if _checks.is_traced(indices):
    if not jnp.issubdtype(indices.dtype, jnp.integer):
      raise TypeError(f"{op}: `indices` must be integers, got a traced array of dtype "
                      f"{indices.dtype}.")
    data = indices.astype(jnp.uint32)
  else:
    if isinstance(indices, (str, bytes)) or not isinstance(
        indices, (int, np.integer, np.ndarray, jax.Array, list, tuple, range)):
      raise TypeError(f"{op}: `indices` must be integer record indices (an int or an integer "
                      f"array), got {indices!r} of type {type(indices).__name__}.")
    values = np.asarray(indices)
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.integer):
      raise TypeError(f"{op}: `indices` must be integers, got dtype {values.dtype} "
                      f"({indices!r}).")
    if values.size and (values.min() < 0 or values.max() >= _INDEX_LIMIT):
      bad = values.min() if values.min() < 0 else values.max()
      raise ValueError(f"{op}: `indices` must be in [0, 2**32), got {int(bad)}; fold a larger "
                       f"index in two steps (high and low 32 bits).")
    data = jnp.asarray(values.astype(np.uint32))
  folded = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, data.reshape(-1))
  return folded.reshape(data.shape)
