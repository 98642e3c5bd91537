"""Randomness under SPMD: one root key, a different stream on every device.

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
from jax import lax

from jaxreg import _checks

__all__ = ["device_key"]


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
