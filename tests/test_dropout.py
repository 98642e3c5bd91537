"""Tests for the dropout family against statistics, numpy references and published vectors."""

import functools
import math
import re

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from conftest import compile_as_shipped, reuse_keys
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.extend.random import threefry2x32_p

import jaxreg as jr
from jaxreg import _drop_block, _dropout, _prng

KEY_KINDS = {"typed": jax.random.key, "legacy": jax.random.PRNGKey}


def binomial_tolerance(p, n, sigmas=5.0):
  return sigmas * math.sqrt(p * (1 - p) / n) + 1e-12


def realised_scale(rate):
  """The documented survivor scale: 2**16 / threshold, with threshold = round((1-rate) * 2**16).

  The mask keeps an element with probability threshold / 2**16 (within 2**-17 of 1 - rate), and
  the survivors are scaled by its inverse so the expectation is exactly x; 1 / (1 - rate) differs
  from it by up to 2**-17 / (1 - rate) relatively (4e-6 at rate 0.3).
  """
  threshold = round((1.0 - rate) * 2**16)
  return 2**16 / threshold if threshold else 0.0


# ---------------------------------------------------------------------------------------------
# The random stream
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "counter", "expected"),
    [  # Known-answer vectors of Threefry-2x32-20 (Random123's kat_vectors).
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ],
)
def test_threefry_known_answers(key, counter, expected):
  hi, lo = _prng.threefry2x32(jnp.array(key, jnp.uint32), jnp.uint32(counter[0]),
                                  jnp.uint32(counter[1]))
  assert (int(hi), int(lo)) == expected


def test_threefry_matches_jax_primitive():
  data = jax.random.key_data(jax.random.key(123))
  hi = jnp.arange(1000, dtype=jnp.uint32) * np.uint32(2654435761)
  lo = jnp.arange(1000, dtype=jnp.uint32)
  ours = _prng.threefry2x32(data, hi, lo)
  theirs = threefry2x32_p.bind(data[0], data[1], hi, lo)
  assert len(ours) == len(theirs) == 2
  for a, b in zip(ours, theirs, strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("word_arrays", [1, 2])
def test_packed_keep_bits_follow_code_order(word_arrays):
  # Bit b of packed word p is the decision for code 32 p + b; a hash's codes are the low and
  # high halves of its first word, then of its second. Reference: numpy, bit by bit.
  rng = np.random.default_rng(word_arrays)
  hashes = 3 * 32 // (2 * word_arrays)  # three packed words
  words = [rng.integers(0, 2**32, hashes, dtype=np.uint64).astype(np.uint32)
           for _ in range(word_arrays)]
  threshold = 40_000
  codes = np.stack([half for w in words for half in (w & 0xFFFF, w >> 16)], -1).reshape(-1)
  expected = [sum(int(codes[32 * p + b] < threshold) << b for b in range(32)) for p in range(3)]
  packed = jax.jit(_prng.pack_keep_bits)(tuple(map(jnp.asarray, words)),
                                             jnp.uint32(threshold))
  assert packed.dtype == jnp.uint32
  np.testing.assert_array_equal(np.asarray(packed), np.array(expected, np.uint32))


def reference_keep_mask(key, num, threshold):
  """The documented mask layout, from the primitive JAX itself uses, in numpy."""
  data = jax.random.key_data(key)
  counter = jnp.arange(-(-num // 4), dtype=jnp.uint32)
  hi, lo = (np.asarray(w) for w in threefry2x32_p.bind(data[0], data[1], counter,
                                                          jnp.zeros_like(counter)))
  codes = np.stack([hi & 0xFFFF, hi >> 16, lo & 0xFFFF, lo >> 16], -1).reshape(-1)[:num]
  return codes < threshold, codes


@pytest.mark.parametrize("num", [1, 7, 2**15, 4 * 2**15 + 3])
def test_keep_mask_matches_reference_layout(num):
  key = jax.random.key(num)
  threshold = round(0.7 * 2**16)
  with reuse_keys():
    mask = np.asarray(_prng.keep_mask(key, (num,), jnp.uint32(threshold)))
    expected, codes = reference_keep_mask(key, num, threshold)
  np.testing.assert_array_equal(mask, expected)
  if num > 10_000:  # the codes are uniform: chi-square over 16 bins (15 dof), p ~ 1e-6 at 60
    counts = np.bincount(codes >> 12, minlength=16)
    assert ((counts - num / 16) ** 2 / (num / 16)).sum() < 60


def test_other_prng_implementations_work():
  key = jax.random.key(0, impl="rbg")
  y = np.asarray(jr.dropout(key, jnp.ones(10_000), 0.3, train=True))
  assert abs((y == 0).mean() - 0.3) < binomial_tolerance(0.3, y.size)


# ---------------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("recompute_mask", [False, True])
def test_dropout_statistics(rate, recompute_mask):
  x = jnp.asarray(np.random.default_rng(0).uniform(0.5, 2.0, size=(256, 400)), jnp.float32)
  y = np.asarray(jr.dropout(jax.random.key(1), x, rate, train=True,
                            recompute_mask=recompute_mask))
  dropped = y == 0
  assert abs(dropped.mean() - rate) < binomial_tolerance(rate, x.size)
  # Survivors are x times the inverse of the realised keep probability, against a float64
  # reference (x / (1 - rate) is off by up to 4e-6 relatively, e.g. at rate 0.3).
  expected = np.asarray(x, np.float64)[~dropped] * realised_scale(rate)
  np.testing.assert_allclose(y[~dropped], expected, rtol=1e-6)


def test_dropout_is_unbiased_over_keys():
  x = jnp.linspace(-2.0, 3.0, 64, dtype=jnp.float32)  # no element is 0
  rate, num_keys = 0.3, 4000
  keys = jax.random.split(jax.random.key(2), num_keys)
  ys = np.asarray(jax.vmap(lambda k: jr.dropout(k, x, rate, train=True))(keys), np.float64)
  x64 = np.asarray(x, np.float64)
  kept = ys != 0
  # E[y] = x: every survivor is exactly x / q (q = the realised keep probability), and each
  # element is kept with probability q (a binomial band per element and over all of them).
  q = 1 / realised_scale(rate)
  np.testing.assert_allclose(ys[kept], np.broadcast_to(x64 / q, ys.shape)[kept], rtol=1e-6)
  assert np.all(np.abs(kept.mean(0) - q) <= binomial_tolerance(q, num_keys))
  assert abs(kept.mean() - q) <= binomial_tolerance(q, kept.size)
  # The mean itself, per element (5 sigma: about 5% of x) and over all elements: the average of
  # mean / x has a standard deviation of sqrt(rate / (1 - rate) / (64 * 4000)) = 0.13%.
  mean = ys.mean(0)
  std_of_mean = np.abs(x64) * math.sqrt(rate / (1 - rate) / num_keys)
  assert np.all(np.abs(mean - x64) <= 5 * std_of_mean + 1e-6)
  assert abs((mean / x64).mean() - 1) <= 5 * math.sqrt(rate / (1 - rate) / ys.size)


def test_keep_probability_is_quantised_within_2_to_minus_17():
  # The library's own threshold for a 16-bit code: the realised keep probability is
  # threshold / 2**16, and the scale its inverse. Concrete rates ...
  rates = np.linspace(0.0, 1.0, 1001)
  for rate in rates:
    threshold, scale = _dropout.threshold_and_scale(float(rate), float(rate), jnp.float32)
    threshold = int(threshold)
    assert threshold == round((1.0 - rate) * 2**16)  # the documented formula
    assert abs(threshold / 2**16 - (1.0 - rate)) <= 2.0**-17
    assert float(scale) == pytest.approx(2**16 / threshold if threshold else 0.0, rel=2**-23)
  # ... and traced ones, which are rounded to float32 first (1 - r in float32: error <= 2**-25).
  rates32 = rates.astype(np.float32)
  thresholds, scales = jax.jit(jax.vmap(
      lambda r: _dropout.threshold_and_scale(r, None, jnp.float32)))(jnp.asarray(rates32))
  realised = np.asarray(thresholds, np.float64) / 2**16
  assert np.all(np.abs(realised - (1.0 - rates32.astype(np.float64))) <= 2.0**-17 + 2.0**-25)
  kept = realised > 0
  np.testing.assert_allclose(np.asarray(scales)[kept] * realised[kept], 1.0, rtol=2**-23)
  np.testing.assert_array_equal(np.asarray(scales)[~kept], 0.0)
  # Exact for multiples of 2**-16; check one against the codes themselves.
  kept = np.asarray(_prng.keep_mask(jax.random.key(3), (2**20,),
                                         jnp.uint32(round(0.75 * 2**16)))).mean()
  assert abs(kept - 0.75) < binomial_tolerance(0.75, 2**20)


# Ops whose mask uses the quantised keep probability, each on an input of 2**20 ones whose mask
# has 2**20 entries (one per element, example or channel).
MASKED_OPS = {
    "dropout": (lambda k, x, r: jr.dropout(k, x, r, train=True), (2**20,)),
    "dropout_recompute": (lambda k, x, r: jr.dropout(k, x, r, train=True, recompute_mask=True),
                          (2**20,)),
    "channel_dropout": (lambda k, x, r: jr.channel_dropout(k, x, r, train=True),
                        (2**10, 1, 2**10)),
    "drop_path": (lambda k, x, r: jr.drop_path(k, x, r, train=True), (2**20, 1)),
}


@pytest.mark.parametrize("op", MASKED_OPS)
@pytest.mark.parametrize("rate", [0.3, 0.999, 0.9999])
@pytest.mark.parametrize("traced", [False, True])
def test_scale_is_the_inverse_of_the_realised_keep_probability(op, rate, traced):
  # The mask keeps an element with probability threshold / 2**16; the survivors' scale times
  # that is 1, so E[y] == x. (The old scale 1 / (1 - rate) gave 0.9999956 at rate 0.3 and
  # 1.0071 at 0.999.)
  fn, shape = MASKED_OPS[op]
  x = jnp.ones(shape)
  run = jax.jit(fn) if traced else fn
  y = np.asarray(run(jax.random.key(21), x, rate))
  survivors = np.unique(y[y != 0])
  assert survivors.size == 1  # one scale; the mask has a few survivors at least at these rates
  keep_probability = round((1.0 - rate) * 2**16) / 2**16
  assert float(survivors[0]) * keep_probability == pytest.approx(1.0, rel=2**-23)


def test_mean_is_unbiased_at_a_high_rate():
  # E[y] = 1 for ones, with q = round((1 - rate) * 2**16) / 2**16 = 66 / 2**16 the realised
  # keep probability: the count of survivors K ~ Binomial(n, q), and mean(y) = K / (n q) exactly.
  # A statistical band on the mean is +-15% here (K is about 1000), so the scale is checked
  # exactly: every survivor is 1 / q to float32 rounding, where 1 / (1 - rate) is 0.7% off.
  n, rate = 2**20, 0.999
  q = round((1 - rate) * 2**16) / 2**16
  y = np.asarray(jr.dropout(jax.random.key(22), jnp.ones(n), rate, train=True), np.float64)
  kept = y != 0
  assert kept.sum() > 0
  np.testing.assert_allclose(y[kept], 1 / q, rtol=2**-24)
  assert abs(kept.mean() - q) < binomial_tolerance(q, n)
  assert y.mean() == pytest.approx(kept.mean() / q, rel=1e-6)
  assert abs(y.mean() - 1.0) < binomial_tolerance(q, n) / q


@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("recompute_mask", [False, True])
def test_rates_that_keep_nothing_give_exact_zeros_and_zero_gradients(traced, recompute_mask):
  # round((1 - rate) * 2**16) == 0: no code is below the threshold, so the realised keep
  # probability is 0 and the output is exactly 0 (no 1/0, no NaN in value or gradient).
  x = jnp.arange(1.0, 9.0)

  def loss(x, r):
    return jnp.sum(jr.dropout(jax.random.key(0), x, r, train=True,
                              recompute_mask=recompute_mask) ** 2)

  value_and_grad = jax.value_and_grad(loss)
  for rate in (1 - 2**-17, 1 - 1e-6):
    value, grad = jax.jit(value_and_grad)(x, rate) if traced else value_and_grad(x, rate)
    assert float(value) == 0.0
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("traced", [False, True])
def test_float16_survivors_do_not_overflow_through_the_scale(traced):
  # At rate 0.99999 the scale is 2**16 / 1, above float16's largest value 65504: it is applied
  # in float32, so only results that really exceed float16 overflow.
  fn = lambda k, x: jr.dropout(k, x, 0.99999, train=True)  # noqa: E731
  x = jnp.full(2**20, 0.25, jnp.float16)
  y = np.asarray((jax.jit(fn) if traced else fn)(jax.random.key(23), x))
  assert np.all(np.isfinite(y))
  np.testing.assert_array_equal(np.unique(y[y != 0]), [2.0**14])


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_same_key_same_mask_eager_jit_and_key_kinds(kind):
  x = jnp.ones((5, 33))
  with reuse_keys():
    key = KEY_KINDS[kind](7)
    eager = jr.dropout(key, x, 0.4, train=True)
    jitted = jax.jit(lambda k, x: jr.dropout(k, x, 0.4, train=True))(key, x)
    traced_rate = jax.jit(lambda k, x, r: jr.dropout(k, x, r, train=True))(key, x, 0.4)
    recomputed = jr.dropout(key, x, 0.4, train=True, recompute_mask=True)
  other_kind = jr.dropout(jax.random.key(7) if kind == "legacy" else jax.random.PRNGKey(7), x,
                          0.4, train=True)
  for y in (jitted, traced_rate, recomputed, other_kind):
    np.testing.assert_array_equal(eager, y)


def test_different_keys_and_vmap_rows_are_independent():
  keys = jax.random.split(jax.random.key(4), 8)
  masks = np.asarray(jax.vmap(lambda k: jr.dropout(k, jnp.ones(4096), 0.5, train=True))(keys))
  masks = masks != 0
  assert len({row.tobytes() for row in masks}) == 8
  corr = np.corrcoef(masks.astype(np.float64))[np.triu_indices(8, 1)]
  assert np.all(np.abs(corr) < 5 / math.sqrt(4096))


def test_vmap_over_keys_equals_loop():
  keys = jax.random.split(jax.random.key(5), 3)
  x = jnp.arange(3 * 10, dtype=jnp.float32).reshape(3, 10) + 1
  with reuse_keys():
    batched = jax.vmap(lambda k, x: jr.dropout(k, x, 0.25, train=True))(keys, x)
    looped = jnp.stack([jr.dropout(keys[i], x[i], 0.25, train=True) for i in range(3)])
  np.testing.assert_array_equal(batched, looped)


def test_test_path_is_identity_and_needs_no_key():
  x = jnp.arange(1.0, 33.0).reshape(2, 4, 4, 1)
  assert jr.dropout(None, x, 0.5, train=False) is x
  assert jr.channel_dropout(None, x, 0.5, train=False) is x
  assert jr.drop_path(None, x, 0.5, train=False) is x
  assert jr.drop_block(None, x, 0.5, train=False, block_size=2) is x


def test_rate_zero_and_one():
  x = jnp.arange(1.0, 7.0)
  assert jr.dropout(jax.random.key(0), x, 0.0, train=True) is x
  np.testing.assert_array_equal(jr.dropout(jax.random.key(1), x, 1.0, train=True), 0.0)


@pytest.mark.parametrize("recompute_mask", [False, True])
@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_traced_extreme_rates_give_finite_gradients(rate, recompute_mask):
  x = jnp.arange(1.0, 9.0)

  def loss(x, r):
    return jnp.sum(jr.dropout(jax.random.key(0), x, r, train=True,
                              recompute_mask=recompute_mask) ** 2)

  value, grad = jax.jit(jax.value_and_grad(loss))(x, rate)
  assert np.isfinite(value)
  assert np.all(np.isfinite(grad))
  expected = 2 * x if rate == 0.0 else jnp.zeros_like(x)
  np.testing.assert_allclose(grad, expected, rtol=1e-6)


@pytest.mark.parametrize("recompute_mask", [False, True])
def test_gradient_equals_mask_times_scale(recompute_mask):
  rate = 0.3
  x = jnp.asarray(np.random.default_rng(1).normal(size=(16, 24)) + 5.0, jnp.float32)
  w = jnp.asarray(np.random.default_rng(2).normal(size=(16, 24)), jnp.float32)
  with reuse_keys():
    key = jax.random.key(9)
    y = jr.dropout(key, x, rate, train=True)
    grad = jax.grad(lambda x: jnp.sum(w * jr.dropout(key, x, rate, train=True,
                                                      recompute_mask=recompute_mask)))(x)
  expected = np.where(np.asarray(y) != 0, np.asarray(w, np.float64) * realised_scale(rate), 0.0)
  np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_gradients_against_finite_differences():
  x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 8)), jnp.float32)
  with reuse_keys():
    key = jax.random.key(11)
    for recompute in (False, True):
      jax.test_util.check_grads(
          lambda x, rc=recompute: jr.dropout(key, x, 0.4, train=True, recompute_mask=rc),
          (x,), order=1, modes=("rev",), eps=1e-2)
    # Forward mode and second order work on the default path ...
    jax.test_util.check_grads(lambda x: jr.dropout(key, x, 0.4, train=True), (x,), order=2,
                              modes=("fwd", "rev"), eps=1e-2)
  # ... and the recompute path says it is reverse-mode only.
  with pytest.raises(TypeError, match="custom_vjp"):
    jax.jvp(lambda x: jr.dropout(jax.random.key(12), x, 0.4, train=True, recompute_mask=True),
            (x,), (x,))


def test_broadcast_dims_share_the_mask():
  y = jr.dropout(jax.random.key(3), jnp.ones((8, 5, 6)), 0.5, train=True, broadcast_dims=(1,))
  y = np.asarray(y)
  assert np.all(y == y[:, :1, :])
  assert 0 < (y == 0).mean() < 1


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_dtypes_preserved(dtype):
  x = jnp.ones((4, 6, 6, 8), dtype)
  k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
  assert jr.dropout(k1, x, 0.5, train=True).dtype == dtype
  assert jr.channel_dropout(k2, x, 0.5, train=True).dtype == dtype
  assert jr.drop_path(k3, x, 0.5, train=True).dtype == dtype
  assert jr.drop_block(k4, x, 0.5, train=True, block_size=2).dtype == dtype


@settings(max_examples=25, deadline=None)
@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
                 elements=st.floats(-100, 100, width=32)),
    rate=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_outputs_are_zero_or_scaled_input(x, rate, seed):
  with reuse_keys():
    key = jax.random.key(seed)
    y = np.asarray(jr.dropout(key, x, rate, train=True))
    # The reference mask for the largest input hypothesis draws (one program for every
    # example): entry i depends only on the key and i, so its head is the mask of x.
    keep = reference_keep_mask(key, 9**3, round((1 - rate) * 2**16))[0][:x.size]
  keep = keep.reshape(x.shape)
  assert y.shape == x.shape
  assert y.dtype == x.dtype
  # The realised scale, not 1 / (1 - rate): the two differ at high rates, and rates of
  # 1 - 2**-17 and above drop everything (realised_scale 0, and an all-False mask).
  scaled = x * np.float32(realised_scale(rate))
  assert np.all((y == 0) | np.isclose(y, scaled, rtol=1e-6))
  # Which elements survive is the reference mask, wherever x is a normal (XLA:CPU flushes
  # subnormals to 0) nonzero number; the survivors are exactly x times the scale.
  normal = np.abs(x) >= np.finfo(np.float32).tiny
  np.testing.assert_array_equal(y[normal] != 0, keep[normal])
  np.testing.assert_allclose(y[keep & normal], scaled[keep & normal], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# channel dropout, drop-path
# ---------------------------------------------------------------------------------------------


def test_channel_dropout_drops_whole_maps_nhwc_and_nchw():
  y = np.asarray(jr.channel_dropout(jax.random.key(0), jnp.ones((64, 5, 5, 16)), 0.3,
                                    train=True))
  per_map = y.reshape(64, 25, 16)
  assert np.all(per_map.min(1) == per_map.max(1))
  assert abs((per_map[:, 0] == 0).mean() - 0.3) < binomial_tolerance(0.3, 64 * 16)
  y = np.asarray(jr.channel_dropout(jax.random.key(1), jnp.ones((8, 6, 4, 4)), 0.5, train=True,
                                    channel_axis=1))
  assert np.all(y.min((2, 3)) == y.max((2, 3)))


def test_drop_path_drops_whole_examples():
  n, rate = 20_000, 0.2
  y = np.asarray(jr.drop_path(jax.random.key(0), jnp.ones((n, 3, 2)), rate, train=True))
  per_example = y.reshape(n, -1)
  assert np.all(per_example.min(1) == per_example.max(1))
  assert abs((per_example[:, 0] == 0).mean() - rate) < binomial_tolerance(rate, n)
  # the realised scale, 1 / (52429 / 2**16): 1 / 0.8 is 4e-6 away from it
  np.testing.assert_allclose(per_example[per_example[:, 0] != 0], realised_scale(rate), rtol=1e-6)


def test_drop_path_rates_linear_rule():
  assert jr.drop_path_rates(0.2, 5) == pytest.approx((0.0, 0.05, 0.1, 0.15, 0.2))
  assert jr.drop_path_rates(0.5, 1) == (0.0,)
  rates = jr.drop_path_rates(0.3, 12)
  assert rates[0] == 0.0
  assert rates[-1] == pytest.approx(0.3)
  assert all(isinstance(r, float) for r in rates)


# ---------------------------------------------------------------------------------------------
# DropBlock
# ---------------------------------------------------------------------------------------------


def brute_force_dropped_fraction(gamma, height, width, block_size):
  """Expected dropped fraction from explicit block origins, in float64."""
  cover = np.zeros((height, width))
  for i in range(height - block_size + 1):
    for j in range(width - block_size + 1):
      cover[i:i + block_size, j:j + block_size] += 1
  return 1.0 - np.mean((1.0 - gamma) ** cover)


@pytest.mark.parametrize(("height", "width", "block_size"), [(7, 7, 3), (14, 10, 5), (5, 8, 1)])
@pytest.mark.parametrize("rate", [0.05, 0.2, 0.6])
def test_drop_block_gamma_gives_exact_expected_fraction(height, width, block_size, rate):
  gamma = float(_drop_block.seed_probability(rate, height, width, block_size))
  assert brute_force_dropped_fraction(gamma, height, width, block_size) == pytest.approx(
      rate, abs=1e-9)
  traced = jax.jit(lambda r: _drop_block.seed_probability(r, height, width, block_size))(rate)
  assert float(traced) == pytest.approx(gamma, rel=1e-4)
  # Ghiasi et al.'s closed form undershoots because blocks overlap.
  ghiasi = rate / block_size**2 * height * width / (
      (height - block_size + 1) * (width - block_size + 1))
  if block_size > 1:
    assert brute_force_dropped_fraction(ghiasi, height, width, block_size) < rate


def is_union_of_blocks(dropped, block_size):
  """Every dropped position lies in some all-dropped block_size x block_size square."""
  h, w = dropped.shape
  covered = np.zeros_like(dropped)
  for i in range(h - block_size + 1):
    for j in range(w - block_size + 1):
      if dropped[i:i + block_size, j:j + block_size].all():
        covered[i:i + block_size, j:j + block_size] = True
  return np.array_equal(covered, dropped)


def test_drop_block_drops_contiguous_blocks_near_rate():
  rate, bs = 0.15, 3
  x = jnp.ones((64, 12, 12, 8))
  y = np.asarray(jr.drop_block(jax.random.key(0), x, rate, train=True, block_size=bs))
  dropped = y == 0
  for n in range(4):
    for c in range(3):
      assert is_union_of_blocks(dropped[n, :, :, c], bs)
  per_map = dropped.mean((1, 2)).ravel()  # one independent sample per (example, channel)
  assert abs(per_map.mean() - rate) < 5 * per_map.std() / math.sqrt(per_map.size)
  # Survivors rescaled by each example's own kept fraction.
  kept = (~dropped).sum((1, 2, 3))
  for n in range(64):
    np.testing.assert_allclose(y[n][~dropped[n]], 12 * 12 * 8 / kept[n], rtol=1e-6)


def test_drop_block_jit_vmap_and_traced_rate():
  x = jnp.ones((2, 9, 9, 3))
  with reuse_keys():
    key = jax.random.key(3)
    eager = jr.drop_block(key, x, 0.3, train=True, block_size=3)
    jitted = jax.jit(lambda k, r: jr.drop_block(k, x, r, train=True, block_size=3))(key, 0.3)
  np.testing.assert_allclose(eager, jitted, rtol=1e-5)
  # vmap over keys: each row is the eager op with its own key (and the rows differ).
  keys = jax.random.split(jax.random.key(4), 5)
  with reuse_keys():
    ys = np.asarray(jax.vmap(lambda k: jr.drop_block(k, x, 0.3, train=True, block_size=3))(keys))
    rows = [np.asarray(jr.drop_block(keys[i], x, 0.3, train=True, block_size=3))
            for i in range(5)]
  for y, row in zip(ys, rows, strict=True):
    np.testing.assert_allclose(y, row, rtol=1e-6)
  assert len({(y == 0).tobytes() for y in ys}) == 5
  # drop_block(key, x) = M * x, with M (the mask times each example's scale) a function of the
  # key only, so the gradient of sum(w * drop_block(key, x)) is w * M, and M is the output for
  # x = ones: kept positions hold H * W * C / kept of their example, the others 0.
  w = jnp.asarray(np.random.default_rng(4).normal(size=x.shape), jnp.float32)
  with reuse_keys():
    key = jax.random.key(5)
    m = np.asarray(jr.drop_block(key, x, 0.3, train=True, block_size=3), np.float64)
    grad = jax.grad(lambda x: jnp.sum(w * jr.drop_block(key, x, 0.3, train=True,
                                                        block_size=3)))(x)
  kept = (m != 0).sum((1, 2, 3), keepdims=True)
  assert np.all((kept > 0) & (kept < m[0].size))
  np.testing.assert_allclose(m, np.where(m != 0, m[0].size / kept, 0.0), rtol=1e-6)
  np.testing.assert_allclose(grad, np.asarray(w, np.float64) * m, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Empty inputs
# ---------------------------------------------------------------------------------------------


EMPTY_CASES = {
    "dropout": (lambda k, x: jr.dropout(k, x, 0.5, train=True), (0, 3)),
    "dropout_recompute": (lambda k, x: jr.dropout(k, x, 0.5, train=True, recompute_mask=True),
                          (0, 3)),
    "dropout_empty_features": (lambda k, x: jr.dropout(k, x, 0.5, train=True), (4, 0)),
    "channel_dropout": (lambda k, x: jr.channel_dropout(k, x, 0.5, train=True), (0, 2, 2, 3)),
    "channel_dropout_no_channels": (lambda k, x: jr.channel_dropout(k, x, 0.5, train=True),
                                    (2, 2, 2, 0)),
    "drop_path": (lambda k, x: jr.drop_path(k, x, 0.5, train=True), (0, 3)),
    "drop_block": (lambda k, x: jr.drop_block(k, x, 0.5, train=True, block_size=2),
                   (0, 4, 4, 3)),
}


@pytest.mark.parametrize("case", EMPTY_CASES)
@pytest.mark.parametrize("traced", [False, True])
def test_empty_inputs_give_empty_outputs(case, traced):
  fn, shape = EMPTY_CASES[case]
  run = jax.jit(fn) if traced else fn
  x = jnp.ones(shape)
  y = run(jax.random.key(0), x)
  assert y.shape == shape
  assert y.dtype == x.dtype
  grad = jax.grad(lambda x: jnp.sum(run(jax.random.key(1), x)))(x)
  assert grad.shape == shape


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------

OPS = {
    "dropout": lambda k, x, r, **kw: jr.dropout(k, x, r, **kw),
    "channel_dropout": lambda k, x, r, **kw: jr.channel_dropout(k, x, r, **kw),
    "drop_path": lambda k, x, r, **kw: jr.drop_path(k, x, r, **kw),
    "drop_block": lambda k, x, r, **kw: jr.drop_block(k, x, r, block_size=2, **kw),
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
@pytest.mark.parametrize("train", [True, False])
def test_rate_out_of_range(op, rate, train):
  with pytest.raises(ValueError, match=r"rate.*\[0, 1\]"):
    OPS[op](jax.random.key(0), jnp.ones((2, 4, 4, 3)), rate, train=train)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("rate", [-0.5, 1.5, float("nan")])
def test_traced_rate_out_of_range_gives_nan(op, rate):
  # A traced rate cannot raise; rather than keeping everything (rate < 0) or dropping everything
  # (rate > 1, NaN) silently, every output is NaN.
  x = jnp.ones((2, 4, 4, 3))
  y = jax.jit(lambda k, r: OPS[op](k, x, r, train=True))(jax.random.key(0), rate)
  assert np.all(np.isnan(np.asarray(y)))
  if op == "dropout":
    y = jax.jit(lambda k, r: jr.dropout(k, x, r, train=True, recompute_mask=True))(
        jax.random.key(0), rate)
    assert np.all(np.isnan(np.asarray(y)))


@pytest.mark.parametrize("op", OPS)
def test_traced_rates_under_vmap_are_checked_per_rate(op):
  # Only the rows with a rate outside [0, 1] are NaN; the valid rates are unaffected.
  rates = jnp.asarray([0.0, 0.5, 1.0, -0.1, 1.1, jnp.nan])
  keys = jax.random.split(jax.random.key(1), rates.size)
  x = jnp.ones((2, 4, 4, 3))
  ys = np.asarray(jax.vmap(lambda k, r: OPS[op](k, x, r, train=True))(keys, rates))
  assert np.all(np.isnan(ys[3:]))
  assert not np.any(np.isnan(ys[:3]))
  np.testing.assert_array_equal(ys[0], 1.0)
  np.testing.assert_array_equal(ys[2], 0.0)


@pytest.mark.parametrize("op", OPS)
def test_bad_types(op):
  x = jnp.ones((2, 4, 4, 3))
  key = jax.random.key(0)
  with pytest.raises(TypeError, match="floating-point"):
    OPS[op](key, jnp.ones((2, 4, 4, 3), jnp.int32), 0.5, train=True)
  with pytest.raises(TypeError, match="train"):
    OPS[op](key, x, 0.5, train=1)
  with pytest.raises(TypeError, match="rate"):
    OPS[op](key, x, "0.5", train=True)
  with pytest.raises(ValueError, match="scalar"):
    OPS[op](key, x, jnp.array([0.5, 0.5]), train=True)
  with pytest.raises(TypeError, match="PRNG key"):
    OPS[op](jnp.ones(2), x, 0.5, train=True)
  with pytest.raises(ValueError, match="needs a PRNG key"):
    OPS[op](None, x, 0.5, train=True)
  with pytest.raises(ValueError, match="vmap"):
    OPS[op](jax.random.split(key, 3), x, 0.5, train=True)
  with pytest.raises(TypeError):
    OPS[op](key, x, 0.5)  # train is required


def test_bad_axes_and_shapes():
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="out of range"):
    jr.dropout(key, jnp.ones((2, 3)), 0.5, train=True, broadcast_dims=(2,))
  with pytest.raises(ValueError, match="repeats"):
    jr.dropout(key, jnp.ones((2, 3)), 0.5, train=True, broadcast_dims=(1, -1))
  with pytest.raises(ValueError, match="batch axis"):
    jr.channel_dropout(key, jnp.ones((2, 3, 3, 4)), 0.5, train=True, channel_axis=0)
  with pytest.raises(ValueError, match="at least 3"):
    jr.channel_dropout(key, jnp.ones((2, 3)), 0.5, train=True)
  with pytest.raises(ValueError, match="at least 1"):
    jr.drop_path(key, jnp.ones(()), 0.5, train=True)
  with pytest.raises(ValueError, match="4 dimensions"):
    jr.drop_block(key, jnp.ones((3, 3, 3)), 0.5, train=True)
  with pytest.raises(ValueError, match="larger than the 4x5"):
    jr.drop_block(key, jnp.ones((1, 4, 5, 2)), 0.5, train=True, block_size=5)
  with pytest.raises(ValueError, match=">= 1"):
    jr.drop_block(key, jnp.ones((1, 4, 5, 2)), 0.5, train=True, block_size=0)
  with pytest.raises(TypeError, match="positive int"):
    jr.drop_block(key, jnp.ones((1, 4, 5, 2)), 0.5, train=True, block_size=2.0)
  with pytest.raises(ValueError, match="max_rate"):
    jr.drop_path_rates(1.2, 3)
  with pytest.raises(ValueError, match="depth"):
    jr.drop_path_rates(0.2, 0)


@pytest.mark.xla_schedule("docs/design/dropout_mask.md")
def test_a_training_step_keeps_the_mask_as_bits():
  # The backward keeps each layer's mask packed, 1 bit per element: a step with dropout after
  # 3 hidden layers needs 3 packed masks more than the same step without (plus a few key bytes),
  # where boolean masks would add 8x that. Read from XLA's compiled buffer assignment.
  depth, batch, width = 4, 256, 256

  def step(params, key, x, drop):
    def loss(params):
      h = x
      for i, w in enumerate(params):
        h = h @ w
        if i < depth - 1:
          h = jax.nn.relu(h)
          h = jr.dropout(jax.random.fold_in(key, i), h, 0.3, train=True) if drop else h
      return jnp.mean(h**2)

    return jax.grad(loss)(params)

  def temp_bytes(drop):
    fn = jax.jit(functools.partial(step, drop=drop))
    args = ([jnp.zeros((width, width))] * depth, jax.random.key(0), jnp.ones((batch, width)))
    return compile_as_shipped(fn.lower(*args)).memory_analysis().temp_size_in_bytes

  extra = temp_bytes(True) - temp_bytes(False)
  packed_mask = batch * width // 8
  assert (depth - 1) * packed_mask <= extra <= (depth - 1) * packed_mask + 1024


@pytest.mark.xla_schedule("docs/design/dropout_mask.md")
def test_recomputed_mask_waits_for_the_cotangent():
  # recompute_mask regenerates the mask in the backward behind a barrier tied to the incoming
  # cotangent, so XLA cannot merge it with the forward's mask (which would keep it alive).
  grad = jax.jit(jax.grad(lambda x: jnp.sum(jr.dropout(jax.random.key(0), x, 0.3, train=True,
                                                       recompute_mask=True) ** 2)))
  assert "optimization_barrier" in grad.lower(jnp.ones((64, 100))).as_text()
  x = jnp.ones((64, 100))
  stored = jax.grad(lambda x: jnp.sum(jr.dropout(jax.random.key(0), x, 0.3, train=True) ** 2))
  np.testing.assert_array_equal(grad(x), stored(x))


def test_what_differentiation_saves_is_the_packed_mask(capsys):
  # jax.vjp, lax.scan and jit boundaries keep residuals as JAX saves them, not as XLA fuses a
  # whole step: the saved mask must be the packed words, with nothing of x's size.
  from jax.ad_checkpoint import print_saved_residuals

  x = jnp.ones((64, 100))
  for rate in (0.3, jnp.float32(0.3)):
    print_saved_residuals(lambda x, r=rate: jr.dropout(jax.random.key(0), x, r, train=True), x)
    lines = capsys.readouterr().out.splitlines()
    shapes = [tuple(int(d) for d in m.group(2).split(",") if d)
              for m in (re.match(r"(\w+)\[([\d,]*)\]", line) for line in lines) if m]
    assert len(shapes) == len(lines) > 0, lines
    assert (64 * 100 // 32,) in shapes, lines  # 6400 decisions in 200 uint32 words
    assert all(math.prod(s) <= 64 * 100 // 32 for s in shapes), lines
