"""Dropout keep decisions: Threefry-2x32 written out, 4 decisions per hash, packed 32 to a word.

A keep decision compares a 16-bit random code with ``round(keep_prob * 2**16)``. One Threefry-2x32
hash gives 64 bits, so 4 decisions; they are packed 32 to a uint32 word by a reduction the hash
fuses into, so the random words are never written out. The hash is the one ``jax.random`` uses,
bit for bit (tests check the published vectors and JAX's primitive). Design:
docs/design/dropout_mask.md.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# Keep decisions compare a 16-bit random code with round(keep_prob * 2**16).
CODE_BITS = 16
# Keep decisions are made and stored as bits, 32 to a uint32 word.
PACKED_BITS = 32

# Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
# SC 2011), the hash behind JAX's default PRNG. JAX lowers its primitive on CPU as a rolled
# `while` loop whose state round-trips through memory five times; written out here it fuses
# into one loop with its consumer, and tests check it is bit-identical to `jax.random`'s.
_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_THREEFRY_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(v: jax.Array, distance: int) -> jax.Array:
  return (v << np.uint32(distance)) | (v >> np.uint32(32 - distance))


def threefry2x32(key_words: jax.Array, counter_hi: jax.Array, counter_lo: jax.Array):
  """Threefry-2x32 hash of the 64-bit counters (hi, lo) under a uint32[2] key."""
  k0, k1 = key_words[0], key_words[1]
  schedule = (k0, k1, k0 ^ k1 ^ _THREEFRY_PARITY)
  x0, x1 = counter_hi + k0, counter_lo + k1
  for block in range(5):
    for distance in _THREEFRY_ROTATIONS[block % 2]:
      x0 = x0 + x1
      x1 = _rotate_left(x1, distance) ^ x0
    x0 = x0 + schedule[(block + 1) % 3]
    x1 = x1 + schedule[(block + 2) % 3] + np.uint32(block + 1)
  return x0, x1


def threefry_words(key_words: jax.Array, count: int) -> tuple[jax.Array, jax.Array]:
  """Threefry-2x32 of the counters (j, 0) for ``j < count``: two independent word arrays."""
  counter = lax.iota(jnp.uint32, count)
  return threefry2x32(key_words, counter, jnp.zeros_like(counter))


def pack_keep_bits(words: tuple[jax.Array, ...], threshold: jax.Array) -> jax.Array:
  """Keep decisions of the 16-bit codes in ``words``, packed 32 to a uint32 word.

  ``words`` are one or two uint32 arrays of equal length (a multiple of 32 divided by the
  codes per hash), element h of each from the same hash h; hash h's codes are, in order, the low and
  high halves of ``words[0][h]``, then of ``words[1][h]``. Bit b of packed word p is whether
  code ``32 * p + b`` is below ``threshold``. Every word is read once, so XLA fuses the hash
  into this reduction and writes one bit per decision, not the words. (Fused into a consumer
  such as ``where(keep, x, 0)`` instead, the hash would be recomputed for each of the 4
  decisions it feeds: docs/design/dropout_mask.md.)
  """
  codes_per_hash = 2 * len(words)
  bits = None
  for w, word in enumerate(words):
    for half in range(2):
      code = (word >> np.uint32(half * CODE_BITS)) & np.uint32(2**CODE_BITS - 1)
      bit = (code < threshold).astype(jnp.uint32) << np.uint32(2 * w + half)
      bits = bit if bits is None else bits | bit
  group = PACKED_BITS // codes_per_hash
  shift = lax.broadcasted_iota(jnp.uint32, (bits.shape[0] // group, group), 1)
  # The bits are distinct, so their sum is their OR; XLA fuses a sum as a plain reduction.
  return jnp.sum(bits.reshape(-1, group) << (shift * np.uint32(codes_per_hash)), axis=1,
                 dtype=jnp.uint32)


def keep_bits(key: jax.Array, num: int, threshold: jax.Array) -> jax.Array:
  """``num`` keep decisions, packed 32 to a uint32 word (see `pack_keep_bits`).

  Flat decision ``k * h + c`` (``k`` codes per hash: 4 for Threefry, 2 for other PRNGs)
  compares the 16-bit half ``c % 2`` of word ``c // 2`` of hash ``h`` with ``threshold``: True
  with probability ``threshold / 2**16``. The decisions depend only on the key and ``num``, not
  on jit or the backend.
  """
  if num == 0:  # an empty batch: nothing to draw
    return jnp.zeros((0,), jnp.uint32)
  packed = -(-num // PACKED_BITS)
  if str(jax.random.key_impl(key)) == "threefry2x32":
    # One hash gives two independent 32-bit words (`jax.random.bits` XORs them into one), so
    # one hash makes 4 decisions here.
    hashes = packed * (PACKED_BITS // 4)
    if hashes > 2**32:
      raise ValueError(f"{num} keep decisions exceed Threefry's 32-bit counter (at most "
                       f"{2**34}).")
    return pack_keep_bits(threefry_words(jax.random.key_data(key), hashes), threshold)
  # Other PRNGs, through their own API: 2 decisions per 32-bit word.
  words = jax.random.bits(key, (packed * PACKED_BITS // 2,), jnp.uint32)
  return pack_keep_bits((words,), threshold)


def unpack_keep_bits(bits: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """The boolean mask of ``shape`` whose flat entry i is bit ``i % 32`` of ``bits[i // 32]``."""
  num = math.prod(shape)
  position = lax.broadcasted_iota(jnp.uint32, (bits.shape[0], PACKED_BITS), 1)
  keep = (bits[:, None] >> position) & np.uint32(1)
  return (keep.reshape(-1)[:num] != 0).reshape(shape)


def keep_mask(key: jax.Array, shape: tuple[int, ...], threshold: jax.Array) -> jax.Array:
  """Boolean mask of ``shape``, each entry True with probability ``threshold / 2**16``.

  Entry i (in flat order) is decision i of `keep_bits`.
  """
  return unpack_keep_bits(keep_bits(key, math.prod(shape), threshold), shape)
