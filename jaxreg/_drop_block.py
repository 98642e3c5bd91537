"""DropBlock: contiguous squares of NHWC feature maps dropped, with the dropout family's rules.

``rate`` is the probability of DROPPING a position; ``train=False`` returns ``x`` and needs no
key. The mask is applied as `jaxreg._dropout` applies its masks (`apply_mask`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxreg import _checks
from jaxreg._dropout import apply_mask, valid_traced_rate

__all__ = ["drop_block"]


def _coverage_counts(size: int, block_size: int) -> np.ndarray:
  """For each position along one axis, how many valid block origins cover it."""
  positions = np.arange(size)
  last_origin = size - block_size
  return np.minimum(positions, last_origin) - np.maximum(0, positions - block_size + 1) + 1


def seed_probability(rate, height: int, width: int, block_size: int):
  """Seed probability gamma whose expected dropped fraction is exactly ``rate``.

  A position covered by ``c`` possible block origins survives with probability
  ``(1 - gamma)**c``, so the expected dropped fraction is ``1 - mean((1 - gamma)**c)``. That is
  increasing in gamma, and bisection solves it for any rate, concrete or traced. (Ghiasi et al.'s
  closed form, ``rate / bs**2 * HW / ((H - bs + 1)(W - bs + 1))``, ignores overlapping blocks
  and so drops less than ``rate``.)
  """
  counts = np.outer(_coverage_counts(height, block_size), _coverage_counts(width, block_size))
  values, multiplicity = np.unique(counts, return_counts=True)
  weights = multiplicity / counts.size
  if _checks.is_traced(rate):
    xp, dtype = jnp, jnp.float32
  else:  # solved once at trace time, in float64
    xp, dtype = np, np.float64
  rate, values, weights = (xp.asarray(v, dtype) for v in (rate, values, weights))

  def bisect(_, bounds):  # halves [lo, hi]
    lo, hi = bounds
    mid = (lo + hi) / 2
    dropped = 1.0 - xp.sum(weights * (1.0 - mid) ** values)
    too_many = dropped > rate
    return xp.where(too_many, lo, mid), xp.where(too_many, mid, hi)

  bounds = xp.zeros((), dtype), xp.ones((), dtype)
  steps = 50  # reach float64 resolution
  if xp is jnp:  # a loop, not 50 unrolled steps, which would make a much larger program
    bounds = lax.fori_loop(0, steps, bisect, bounds)
  else:
    for step in range(steps):
      bounds = bisect(step, bounds)
  return bounds[0]  # dropped(lo) <= rate: exactly 0 for rate 0, 1 for rate 1


def _max_pool_same(seeds: jax.Array, block_size: int, axis: int) -> jax.Array:
  """Marks every position within ``block_size - 1`` after a seed along ``axis`` (1-D max)."""
  window = [1] * seeds.ndim
  window[axis] = block_size
  padding = [(0, 0)] * seeds.ndim
  padding[axis] = (block_size - 1, block_size - 1)
  return lax.reduce_window(seeds, False, lax.bitwise_or, window, (1,) * seeds.ndim, padding)


def drop_block(
    key: jax.Array | None,
    x: jax.typing.ArrayLike,
    rate: float | jax.Array,
    *,
    train: bool,
    block_size: int = 7,
) -> jax.Array:
  """DropBlock: drops contiguous ``block_size x block_size`` squares of NHWC feature maps.

  Block origins (seeds) are sampled with probability gamma at the positions where a whole block
  fits, each seed drops the block below-right of it, and every feature map (example, channel)
  gets its own seeds. Gamma is solved so that the expected fraction of dropped positions equals
  ``rate`` exactly, overlaps included. The survivors are rescaled by the realised kept fraction
  of each example (``H * W * C / kept``), as in the reference implementation but per example, so
  every example is normalised by its own mask.

  Args:
    key: a PRNG key; may be None when ``train=False``.
    x: floating-point NHWC array ``(N, H, W, C)``. A map with ``H`` or ``W`` of 0 is
      returned as it is (nothing to drop), whatever ``block_size``.
    rate: probability of DROPPING a position, i.e. the expected dropped fraction, in [0, 1];
      a float or a traced scalar. A traced rate outside [0, 1] (or NaN) gives NaN, since it
      cannot be checked at trace time.
    train: keyword-only, required. False returns ``x``.
    block_size: side of the square block, ``1 <= block_size <= min(H, W)``. ``block_size=1``
      is element-wise dropout with per-example normalisation.

  Returns:
    An array with the shape and dtype of ``x``.

  Raises:
    ValueError: ``x`` not 4-D, ``block_size`` larger than a non-empty feature map or < 1,
      ``rate`` outside [0, 1].
    TypeError: non-floating ``x``, non-int ``block_size``, non-bool ``train``, bad ``key``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> x = jnp.ones((2, 16, 16, 4))
    >>> y = jr.drop_block(jax.random.key(0), x, 0.2, train=True, block_size=3)
    >>> y.shape
    (2, 16, 16, 4)

  References:
    Ghiasi, Lin & Le, "DropBlock: A regularization method for convolutional networks",
    NeurIPS 2018.
  """
  op = "drop_block"
  train = _checks.check_train(train, op)
  x = _checks.check_float_array(x, op)
  _checks.check_ndim(x, op, exact=4, layout="NHWC")
  block_size = _checks.check_positive_int(block_size, op, "block_size")
  _, height, width, _ = x.shape
  concrete_rate = _checks.check_rate(rate, op)
  if min(height, width) == 0:
    return x  # an empty feature map: nothing to drop, as in the other dropout ops
  if block_size > min(height, width):
    raise ValueError(
        f"{op}: `block_size`={block_size} is larger than the {height}x{width} feature map; "
        f"use block_size <= {min(height, width)}."
    )
  if not train or concrete_rate == 0.0:
    return x
  if concrete_rate == 1.0:
    return jnp.zeros_like(x)
  key = _checks.as_key(key, op, has_train=True)

  gamma = seed_probability(lax.stop_gradient(rate) if concrete_rate is None else rate,
                            height, width, block_size)
  return _drop_blocks(key, x, gamma, None if concrete_rate is not None else rate,
                      block_size=block_size)


# The computation behind the checks, jitted: an eager call compiles one program, not a dispatch
# per step (docs/design/index.md#checks-eagerly-computations-jitted). ``traced_rate``: the rate
# when it was traced (its validity is checked at run time), else None.
@functools.partial(jax.jit, static_argnames="block_size")
def _drop_blocks(key, x, gamma, traced_rate, *, block_size: int):
  n, height, width, channels = x.shape
  seeds_shape = (n, height - block_size + 1, width - block_size + 1, channels)
  seeds = jax.random.uniform(key, seeds_shape) < jnp.asarray(gamma, jnp.float32)
  # Max-pooling is separable: two 1-D passes cost 2*bs instead of bs**2 per position.
  dropped = _max_pool_same(_max_pool_same(seeds, block_size, 1), block_size, 2)
  keep = ~dropped
  # The scale is the realised kept fraction of each example's own mask, so (unlike the
  # quantised keep probability of `dropout`) there is no gap between the probability the mask
  # has and the one the scale assumes. Counted in int32: a float32 count is inexact past 2**24.
  kept = jnp.sum(keep, axis=(1, 2, 3), keepdims=True, dtype=jnp.int32)
  total = height * width * channels
  wide = _checks.float32_or_wider(x.dtype)
  scale = jnp.where(kept > 0, total / jnp.maximum(kept, 1).astype(wide), 0).astype(wide)
  if traced_rate is not None:
    # A traced rate outside [0, 1] cannot raise: keep everything and scale by NaN, so every
    # output is NaN instead of x (rate < 0) or zeros (rate > 1).
    valid = valid_traced_rate(traced_rate)
    keep = keep | ~valid
    scale = jnp.where(valid, scale, jnp.nan).astype(wide)
  return apply_mask(x, keep, scale)
