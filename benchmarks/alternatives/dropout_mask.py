"""docs/design/dropout_mask.md's keep mask against the alternatives it rejects, on the CPU.

    python -m benchmarks.run --only alternatives_dropout_mask          # 12800x1000 float32
    python -m benchmarks.alternatives.dropout_mask --smoke             # 128x1000, seconds

Each row times one alternative way of making the keep mask against `jr.dropout` itself, both
forward+backward (the output and the gradient for an upstream cotangent, as bench_dropout times
them), at rate 0.1 unless the row names a rate. Every alternative but one decides element
``4 h + c`` from 16-bit half ``c % 2`` of word ``c // 2`` of the Threefry hash of counter
``(h, 0)``, as jaxreg does, so its output and gradient are checked to be jaxreg's exactly. The
exception, 8-bit codes (8 decisions per hash), cannot draw the same mask: it runs at rate 0.5,
where both forms keep with probability exactly 1/2 and scale by 2, and its output is checked for
that instead. One row is memory: XLA's temporary bytes for forward+backward when the 4 codes
of a hash are combined with `jnp.stack` (in the hash-fused-into-`where` form) instead of selected
from the broadcast words.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import threefry2x32_p

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812
from benchmarks.alternatives import compare
from benchmarks.bench_dropout import _forward_backward
from jaxreg._dropout import apply_mask, apply_packed_mask, threshold_and_scale
from jaxreg._prng import PACKED_BITS, pack_keep_bits, threefry2x32

CHUNK = 2**15  # counters (hashes) per step of the scans
LOW = np.uint32(0xFFFF)
U32 = jnp.uint32


def _hashes(num, per_hash=4):
  """Hashes for ``num`` decisions in whole packed words, as jaxreg draws them."""
  return -(-num // PACKED_BITS) * (PACKED_BITS // per_hash)


def _words(key_words, count, start=0):
  counter = start + lax.iota(U32, count)
  return threefry2x32(key_words, counter, jnp.zeros_like(counter))


def _codes(w0, w1):
  """(hashes, 4) 16-bit codes in decision order, selected from the broadcast words."""
  c = lax.broadcasted_iota(U32, (w0.shape[0], 4), 1)
  word = jnp.where(c < 2, w0[:, None], w1[:, None])
  return (word >> ((c & 1) * np.uint32(16))) & LOW


def _dropout(make, rate):
  """(key, x) -> dropout of x at ``rate`` with decisions from ``make(key_words, threshold,
  num)``: uint32 words applied through jaxreg's checkpoint, or a flat mask through `where`."""

  def op(key, x):
    threshold, scale = threshold_and_scale(rate, rate, jnp.float32)
    out = make(jax.random.key_data(key), threshold, x.size)
    if out.dtype == U32:
      return apply_packed_mask(x, out[:-(-x.size // PACKED_BITS)], scale, x.shape)
    keep = out[:x.size].reshape(x.shape)
    return apply_mask(x, keep if keep.dtype == bool else keep != 0, scale)

  return op


# 1. JAX's primitive (a rolled loop on the CPU) in place of the written-out hash.
def _primitive_bits(key_words, threshold, num):
  counter = lax.iota(U32, _hashes(num))
  words = threefry2x32_p.bind(key_words[0], key_words[1], counter, jnp.zeros_like(counter))
  return pack_keep_bits(tuple(words), threshold)


# 2. No packed words: the hash feeds the 4 compares, and those the `where`.
def _fused_mask(key_words, threshold, num):
  return (_codes(*_words(key_words, _hashes(num))) < threshold).reshape(-1)


# 3 and 4. A scan over chunks of CHUNK counters, each step writing out what `emit` makes, which
# `finish` (if any) then turns into the decisions.
def _scanned(emit, finish=None):
  def make(key_words, threshold, num):
    starts = jnp.arange(-(-_hashes(num) // CHUNK), dtype=U32) * np.uint32(CHUNK)
    step = lambda _, start: (None, emit(_words(key_words, CHUNK, start), threshold))  # noqa: E731
    out = jax.tree.map(lambda a: a.reshape(-1), lax.scan(step, None, starts)[1])
    return out if finish is None else finish(out, threshold)

  return make


def _emit_mask(dtype):
  return lambda words, threshold: (_codes(*words) < threshold).astype(dtype).reshape(-1)


# 4. 8-bit codes, 8 decisions per hash, packed 32 to a word; the threshold is the 16-bit one
# shifted down 8 bits, which keeps exactly 1/2 at rate 0.5 (and about 0.898 at 0.1, not 0.9).
def _byte_code_bits(key_words, threshold, num):
  bits = None
  for w, word in enumerate(_words(key_words, _hashes(num, 8))):
    for b in range(4):
      code = (word >> np.uint32(8 * b)) & np.uint32(0xFF)
      bit = (code < (threshold >> np.uint32(8))).astype(U32) << np.uint32(4 * w + b)
      bits = bit if bits is None else bits | bit
  shift = lax.broadcasted_iota(U32, (bits.shape[0] // 4, 4), 1) * np.uint32(8)
  return jnp.sum(bits.reshape(-1, 4) << shift, axis=1, dtype=U32)


# 5. As 2, with the 4 codes of a hash combined by `jnp.stack` instead of selects.
def _stacked_mask(key_words, threshold, num):
  w0, w1 = _words(key_words, _hashes(num))
  codes = jnp.stack([w0 & LOW, w0 >> np.uint32(16), w1 & LOW, w1 >> np.uint32(16)], axis=1)
  return (codes < threshold).reshape(-1)


def _check_half_kept(key, out, x, g):
  """Rate 0.5: every output is 0 or 2x, the gradient kept where the output is, about half."""
  (y, dx), x, g = jax.tree.map(np.asarray, out), np.asarray(x), np.asarray(g)
  kept = y != 0
  assert np.array_equal(y, np.where(kept, 2 * x, 0)), key
  assert np.array_equal(dx, np.where(kept, 2 * g, 0)), key
  assert abs(kept.mean() - 0.5) < 6 * 0.5 / kept.size**0.5, f"{key}: kept {kept.mean():.4f}"


def run(smoke: bool = False) -> list[dict]:
  n_rows = 128 if smoke else 12_800
  rounds = 3 if smoke else 9
  shape = f"{n_rows}x1000"
  x = jax.random.normal(jax.random.key(1), (n_rows, 1000), jnp.float32)
  g = jax.random.normal(jax.random.key(3), x.shape, jnp.float32)
  key = jax.random.key(0)
  exact = {"rtol": 0, "atol": 0, "shape": shape, "dtype": "float32", "rounds": rounds}
  chosen_op = lambda r: lambda k, x: jr.dropout(k, x, r, train=True)  # noqa: E731
  chosen = lambda r: _forward_backward(chosen_op(r))  # noqa: E731
  name = "written-out Threefry, 4 decisions per hash packed 32 to a word"
  rows = []

  def row(key_, label, make, rate=0.1):
    alt, mine = _forward_backward(_dropout(make, rate)), chosen(rate)
    rows.append(compare(key_, label, lambda: alt(key, x, g), lambda: mine(key, x, g), name,
                        **exact))

  row("threefry_primitive", "JAX's threefry2x32 primitive, 4 codes per hash", _primitive_bits)
  row("hash_fused_into_where", "hash fused straight into where(keep, x, 0), no packed words",
      _fused_mask)
  for rate in (0.1, 0.5):
    row(f"scan_random_words_rate{rate}", f"lax.scan over 2^15 counters writing the hash words, "
        f"packed after, rate {rate}", _scanned(lambda words, t: words, pack_keep_bits), rate)
    row(f"scan_packed_words_rate{rate}", f"lax.scan over 2^15 counters writing packed words, "
        f"rate {rate}", _scanned(pack_keep_bits), rate)
  for dtype in (jnp.bool_, jnp.uint8, jnp.uint16):
    dname = jnp.dtype(dtype).name
    row(f"scan_{dname}_mask", f"lax.scan over 2^15 counters emitting a {dname} mask",
        _scanned(_emit_mask(dtype)))

  bytes8, mine = _forward_backward(_dropout(_byte_code_bits, 0.5)), chosen(0.5)
  _check_half_kept("byte_codes_rate0.5", bytes8(key, x, g), x, g)
  t_alt, t_mine, ratio = H.median_ratio(lambda: bytes8(key, x, g), lambda: mine(key, x, g),
                                        rounds=rounds)
  rows.append(H.row("8-bit codes, 8 per hash, rate 0.5 (another mask: kept ~1/2 checked)",
                    shape, "float32", t_alt, t_mine, ratio, f"{ratio:.2f}x the chosen form",
                    anchor_name=f"jaxreg: {name}", key="byte_codes_rate0.5"))

  row("stack_codes", "as hash_fused_into_where, the 4 codes combined with jnp.stack",
      _stacked_mask)
  alt_bytes, select_bytes, mine_bytes = (
      H.temp_bytes(_forward_backward(op), key, x, g)
      for op in (_dropout(_stacked_mask, 0.1), _dropout(_fused_mask, 0.1), chosen_op(0.1)))
  rows.append(H.row("4 codes combined with jnp.stack: forward+backward temp bytes", shape,
                    "float32", None, None, alt_bytes / mine_bytes,
                    f"codes selected from broadcast words: {select_bytes:,}",
                    anchor_name=f"jaxreg: {name}", key="stack_codes_temp_bytes",
                    temp_bytes=alt_bytes, anchor_temp_bytes=mine_bytes,
                    select_temp_bytes=select_bytes))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
