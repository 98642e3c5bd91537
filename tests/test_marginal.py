"""Monte-Carlo dropout against an explicit loop and the closed-form variance of one layer."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys

import jaxreg as jr


def linear_model(rate, w):
  return lambda key, x: jr.dropout(key, x, rate, train=True) @ w


def test_matches_explicit_loop_over_split_keys():
  w = jnp.asarray(np.random.default_rng(0).normal(size=(6, 3)), jnp.float32)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 6)), jnp.float32)
  model = linear_model(0.3, w)
  with reuse_keys():
    key = jax.random.key(0)
    mean, var = jr.mc_dropout_predict(key, model, x, num_samples=32)
    samples = np.stack([np.asarray(model(k, x), np.float64)
                        for k in jax.random.split(key, 32)])
    chunked = jr.mc_dropout_predict(key, model, x, num_samples=32, batch_size=5)
    jitted = jax.jit(lambda k, x: jr.mc_dropout_predict(k, model, x, num_samples=32))(key, x)
  np.testing.assert_allclose(mean, samples.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(var, samples.var(0), rtol=1e-4, atol=1e-6)
  for other in (chunked, jitted):
    np.testing.assert_allclose(other[0], mean, rtol=1e-6)
    np.testing.assert_allclose(other[1], var, rtol=1e-5)


def test_converges_to_closed_form_mean_and_variance():
  # y_j = sum_i m_i x_i w_ij / (1 - p): E[y] = x @ w, Var[y_j] = p/(1-p) * sum_i x_i^2 w_ij^2.
  rate, n = 0.25, 20_000
  w = jnp.asarray(np.random.default_rng(2).normal(size=(8, 2)), jnp.float32)
  x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 8)), jnp.float32)
  mean, var = jr.mc_dropout_predict(jax.random.key(1), linear_model(rate, w), x, num_samples=n)
  xw = np.asarray(x, np.float64) @ np.asarray(w, np.float64)
  exact_var = rate / (1 - rate) * (np.asarray(x, np.float64).T ** 2 * np.asarray(w) ** 2).sum(0)
  np.testing.assert_allclose(mean, xw, atol=5 * np.sqrt(exact_var / n).max())
  np.testing.assert_allclose(var[0], exact_var, rtol=0.05)


def test_pytree_outputs_and_single_sample():
  def model(key, x):
    y = jr.dropout(key, x, 0.5, train=True)
    return {"sum": y.sum(), "y": y}

  x = jnp.arange(1.0, 9.0)
  with reuse_keys():
    key = jax.random.key(2)
    mean, var = jr.mc_dropout_predict(key, model, x, num_samples=1)
    (only_key,) = jax.random.split(key, 1)  # the one sample's key, as the op splits it
    sample = np.asarray(model(only_key, x)["y"], np.float64)
  assert set(mean) == set(var) == {"sum", "y"}
  assert mean["y"].shape == (8,)
  assert mean["sum"].shape == ()
  # The mean of one sample is that sample: the model's output for the key it was given, whose
  # survivors are 2 x at rate 0.5; the other leaf is its sum.
  assert 0 < np.count_nonzero(sample) < sample.size
  np.testing.assert_array_equal(sample[sample != 0], 2 * np.asarray(x)[sample != 0])
  np.testing.assert_array_equal(mean["y"], sample)
  np.testing.assert_allclose(mean["sum"], sample.sum(), rtol=1e-6)
  np.testing.assert_array_equal(var["y"], 0.0)
  np.testing.assert_array_equal(var["sum"], 0.0)


class Heads(NamedTuple):
  logits: jax.Array
  value: jax.Array


def tuple_outputs_model(key, x):
  """Outputs full of 2-tuples (and a 2-field NamedTuple), which are not (mean, var) pairs."""
  y = jr.dropout(key, x, 0.5, train=True)
  return {"pair": (y.sum(), 10.0 * y), "nested": {"t": (y[:2], -y)}, "heads": Heads(y, 3.0 * y)}


# Eager: outputs are split into their structure while tracing, as under jit
# (test_matches_explicit_loop_over_split_keys runs the op jitted, and chunked).
@pytest.mark.parametrize("batch_size", [None, 3])
def test_tuple_and_named_tuple_outputs_keep_their_structure(batch_size):
  x = jnp.arange(1.0, 5.0)
  with reuse_keys():
    key = jax.random.key(4)
    mean, var = jr.mc_dropout_predict(key, tuple_outputs_model, x, num_samples=6,
                                      batch_size=batch_size)
    samples = [tuple_outputs_model(k, x) for k in jax.random.split(key, 6)]
  structure = jax.tree.structure(tuple_outputs_model(jax.random.key(5), x))
  assert jax.tree.structure(mean) == structure
  assert jax.tree.structure(var) == structure
  assert isinstance(mean["heads"], Heads)
  for path_mean, path_var, *leaves in zip(jax.tree.leaves(mean), jax.tree.leaves(var),
                                          *(jax.tree.leaves(s) for s in samples), strict=True):
    stacked = np.stack([np.asarray(leaf, np.float64) for leaf in leaves])
    assert path_mean.shape == stacked.shape[1:]
    np.testing.assert_allclose(path_mean, stacked.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(path_var, stacked.var(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
@pytest.mark.parametrize("jit", [False, True])
def test_non_floating_outputs_are_rejected(dtype, jit):
  # The mean of integer or bool samples would be cast back to an integer (or bool): wrong.
  def model(key, x):
    y = jr.dropout(key, x, 0.5, train=True)
    return {"ok": y, "label": (jnp.argmax(y) if dtype == jnp.int32 else y > 0)}

  predict = lambda k, x: jr.mc_dropout_predict(k, model, x, num_samples=4)  # noqa: E731
  with pytest.raises(TypeError, match=r"floating arrays.*\['label'\]"):
    (jax.jit(predict) if jit else predict)(jax.random.key(0), jnp.ones(3))


def test_half_precision_outputs_keep_their_dtype():
  model = lambda k, x: jr.dropout(k, x, 0.5, train=True).astype(jnp.bfloat16)  # noqa: E731
  mean, var = jr.mc_dropout_predict(jax.random.key(6), model, jnp.ones(8), num_samples=16)
  assert mean.dtype == var.dtype == jnp.bfloat16


def test_vmap_over_keys_gives_independent_estimates():
  model = linear_model(0.5, jnp.ones((4, 1)))
  keys = jax.random.split(jax.random.key(3), 3)
  means, _ = jax.vmap(lambda k: jr.mc_dropout_predict(k, model, jnp.ones(4), num_samples=8))(
      keys)
  assert len({float(m[0]) for m in means}) > 1


def test_bad_input():
  model = linear_model(0.5, jnp.ones((4, 1)))
  x = jnp.ones(4)
  with pytest.raises(ValueError, match="num_samples"):
    jr.mc_dropout_predict(jax.random.key(0), model, x, num_samples=0)
  with pytest.raises(TypeError, match="num_samples"):
    jr.mc_dropout_predict(jax.random.key(0), model, x, num_samples=2.5)
  with pytest.raises(ValueError, match="batch_size"):
    jr.mc_dropout_predict(jax.random.key(0), model, x, num_samples=4, batch_size=0)
  with pytest.raises(TypeError, match="callable"):
    jr.mc_dropout_predict(jax.random.key(0), "model", x, num_samples=4)
  with pytest.raises(TypeError, match="PRNG key"):
    jr.mc_dropout_predict(3, model, x, num_samples=4)


@pytest.mark.parametrize("empty", [(), {}, None])
def test_outputs_without_arrays_come_back_as_they_are(empty):
  mean, var = jr.mc_dropout_predict(jax.random.key(0), lambda k, x: empty, jnp.ones(3),
                                    num_samples=4)
  assert mean == empty
  assert var == empty
