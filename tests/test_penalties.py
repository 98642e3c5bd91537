"""Penalties and proximal transforms against numpy, optax, flax parameter trees and scikit-learn."""

import dataclasses
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from x64 import enable_x64

import jaxreg as jr

RNG = np.random.default_rng(0)


def params_tree():
  return {
      "dense": {"kernel": jnp.asarray(RNG.normal(size=(3, 4)), jnp.float32),
                "bias": jnp.asarray(RNG.normal(size=4), jnp.float32)},
      "conv": {"kernel": jnp.asarray(RNG.normal(size=(2, 2, 1, 3)), jnp.float32)},
      "norm": {"scale": jnp.ones(4), "offset": jnp.zeros(4)},
  }


def np_leaves(tree, mask=None):
  leaves = jax.tree.leaves(tree)
  flags = jax.tree.leaves(mask) if mask is not None else [True] * len(leaves)
  return [np.asarray(v, np.float64) for v, f in zip(leaves, flags, strict=True) if f]


def np_sums(tree, mask=None):
  """float64 sums over the leaves ``mask`` keeps: of the squares, and of the absolute values."""
  leaves = np_leaves(tree, mask)
  return sum((v**2).sum() for v in leaves), sum(np.abs(v).sum() for v in leaves)


# ---------------------------------------------------------------------------------------------
# Loss terms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("use_mask", [False, True])
def test_penalty_values_against_numpy(use_mask):
  params = params_tree()
  mask = jr.decay_mask(params) if use_mask else None
  squares, l1 = np_sums(params, mask)
  np.testing.assert_allclose(jr.l2_penalty(params, mask=mask), 0.5 * squares, rtol=1e-6)
  np.testing.assert_allclose(jr.l1_penalty(params, mask=mask), l1, rtol=1e-6)
  np.testing.assert_allclose(jr.elastic_net_penalty(params, l1=0.3, l2=0.7, mask=mask),
                             0.3 * l1 + 0.35 * squares, rtol=1e-6)
  # Keras L1L2(a, b) = a*sum|w| + b*sum(w^2) is elastic_net_penalty(l1=a, l2=2b)
  keras = 0.3 * l1 + 0.2 * squares
  np.testing.assert_allclose(jr.elastic_net_penalty(params, l1=0.3, l2=0.4, mask=mask), keras,
                             rtol=1e-6)
  # callable mask == the mask it returns, and jit works
  np.testing.assert_allclose(jax.jit(lambda p: jr.l2_penalty(p, mask=jr.decay_mask))(params),
                             jr.l2_penalty(params, mask=jr.decay_mask(params)), rtol=1e-6)


@pytest.mark.parametrize("use_mask", [False, True])
def test_l2_gradient_equals_add_decayed_weights(use_mask):
  params = params_tree()
  mask = jr.decay_mask(params) if use_mask else None
  grad = jax.grad(lambda p: jr.l2_penalty(p, mask=mask))(params)
  tx = optax.add_decayed_weights(1.0, mask=mask)
  updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
  for g, u in zip(jax.tree.leaves(grad), jax.tree.leaves(updates), strict=True):
    np.testing.assert_allclose(g, u, rtol=1e-6)
  # and jaxreg's route to it decays exactly the default mask
  tx = jr.add_l2_decay(1.0)
  ours, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
  expected = jax.grad(lambda p: jr.l2_penalty(p, mask=jr.decay_mask(p)))(params)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_penalties_vmap_over_parameter_sets():
  # Three unrelated parameter sets, each penalty against its float64 formula per set.
  sets = [params_tree(), params_tree(), jax.tree.map(lambda a: -0.5 * a, params_tree())]
  stacked = jax.tree.map(lambda *a: jnp.stack(a), *sets)
  mask = jr.decay_mask(sets[0])
  squares, absolute = np.array([np_sums(p) for p in sets]).T
  masked_squares, masked_absolute = np.array([np_sums(p, mask) for p in sets]).T
  assert len(set(squares)) == 3
  np.testing.assert_allclose(jax.vmap(jr.l2_penalty)(stacked), 0.5 * squares, rtol=1e-6)
  np.testing.assert_allclose(jax.jit(jax.vmap(jr.l2_penalty))(stacked), 0.5 * squares,
                             rtol=1e-6)
  np.testing.assert_allclose(jax.vmap(jr.l1_penalty)(stacked), absolute, rtol=1e-6)
  net = jax.jit(jax.vmap(lambda p: jr.elastic_net_penalty(p, l1=0.3, l2=0.7, mask=mask)))
  np.testing.assert_allclose(net(stacked), 0.3 * masked_absolute + 0.35 * masked_squares,
                             rtol=1e-6)


def test_float64_parameters_give_a_float64_penalty():
  # The accumulator is the widest leaf dtype: 1e-4**2 and 1e-12 vanish in a float32 sum.
  with enable_x64(True):
    tiny = {"w": jnp.asarray([1.0, 1e-4], jnp.float64)}
    close = {"w": jnp.asarray([1.0 + 1e-12], jnp.float64)}
    mixed = {"a": jnp.asarray([1.0 + 1e-12], jnp.float64), "b": jnp.ones(2, jnp.bfloat16),
             "c": jnp.ones(1, jnp.float32)}
    for fn in (lambda p: p, jax.jit):
      l2 = fn(jr.l2_penalty)(tiny)
      l1 = fn(jr.l1_penalty)(close)
      net = fn(lambda p: jr.elastic_net_penalty(p, l1=1.0, l2=0.0))(close)
      mixed_l1 = fn(jr.l1_penalty)(mixed)
      for value in (l2, l1, net, mixed_l1):
        assert value.dtype == jnp.float64
      assert float(l2) == 0.5 * (1.0 + 1e-4**2) != 0.5  # a float32 sum would give 0.5
      assert float(l1) == float(net) == 1.0 + 1e-12
      assert float(mixed_l1) == 4.0 + 1e-12
    # float32 and half-precision parameters still give float32, x64 or not
    assert jr.l2_penalty({"w": jnp.ones(2, jnp.float32),
                          "b": jnp.ones(2, jnp.bfloat16)}).dtype == jnp.float32


def test_bfloat16_parameters():
  params = {"w": jnp.ones((2, 2), jnp.bfloat16)}
  assert float(jr.l2_penalty(params)) == 2.0
  assert jax.grad(jr.l1_penalty)(params)["w"].dtype == jnp.bfloat16


# ---------------------------------------------------------------------------------------------
# decay_mask
# ---------------------------------------------------------------------------------------------


class Net(nn.Module):
  @nn.compact
  def __call__(self, x, train=True):
    x = nn.Embed(10, 4)(x)
    x = nn.Conv(3, (2, 2))(x[:, :, None, :])
    x = nn.BatchNorm(use_running_average=not train)(x)
    x = nn.LayerNorm()(x)
    return nn.Dense(2)(x.reshape(x.shape[0], -1))


@pytest.mark.standard_promotion  # optax.adamw
def test_decay_mask_on_flax_parameters():
  variables = Net().init(jax.random.key(0), jnp.zeros((2, 3), jnp.int32))
  mask = jr.decay_mask(variables["params"])
  assert mask["Dense_0"] == {"kernel": True, "bias": False}
  assert mask["Conv_0"] == {"kernel": True, "bias": False}
  assert mask["BatchNorm_0"] == {"scale": False, "bias": False}
  assert mask["LayerNorm_0"] == {"scale": False, "bias": False}
  assert mask["Embed_0"] == {"embedding": True}
  excluded = jr.decay_mask(variables["params"], exclude=("*embedding*",))
  assert excluded["Embed_0"] == {"embedding": False}
  assert excluded["Dense_0"]["kernel"]
  # accepted by optax's own masking
  tx = optax.adamw(1e-3, weight_decay=0.1, mask=jr.decay_mask)
  state = tx.init(variables["params"])
  grads = jax.tree.map(jnp.zeros_like, variables["params"])
  updates, _ = tx.update(grads, state, variables["params"])
  assert float(jnp.abs(updates["Dense_0"]["bias"]).max()) == 0.0
  assert float(jnp.abs(updates["Dense_0"]["kernel"]).max()) > 0.0


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class EqxStyleLinear:
  """An equinox-style module: arrays and non-array leaves (an activation) in one pytree."""

  weight: jax.Array
  bias: jax.Array
  activation: object
  steps: jax.Array


def test_decay_mask_on_module_pytrees_with_non_array_leaves():
  layer = EqxStyleLinear(jnp.ones((3, 2)), jnp.zeros(2), jax.nn.relu, jnp.zeros((2, 2), jnp.int32))
  model = [layer, layer]
  mask = jr.decay_mask(model)
  assert [m.weight for m in mask] == [True, True]
  assert [m.bias for m in mask] == [False, False]
  assert [m.activation for m in mask] == [False, False]
  assert [m.steps for m in mask] == [False, False]  # integer arrays are not parameters
  assert jr.decay_mask(model, exclude=("0/*",))[0].weight is False
  assert float(jr.l2_penalty(model, mask=mask)) == 6.0
  with pytest.raises(TypeError, match=r"'0/activation'"):
    jr.l2_penalty(model)


# ---------------------------------------------------------------------------------------------
# Proximal transforms against scikit-learn
# ---------------------------------------------------------------------------------------------


def regression_problem(n=200, d=15, seed=1):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  x = (x - x.mean(0)) / x.std(0)
  w_true = np.zeros(d)
  w_true[:5] = [2.0, -1.5, 1.0, 0.5, -0.3]
  y = x @ w_true + 0.5 * rng.normal(size=n)
  return x, y - y.mean()


def descend(x, y, tx, steps=3000, penalty=lambda w: 0.0):
  """Full-batch descent on mean squared error / 2 (+ penalty), from zero weights."""
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  loss = lambda w: 0.5 * jnp.mean((y - x @ w) ** 2) + penalty(w)  # noqa: E731
  w = jnp.zeros(x.shape[1])

  @jax.jit
  def run(w):
    def step(_, carry):
      w, state = carry
      updates, state = tx.update(jax.grad(loss)(w), state, w)
      return optax.apply_updates(w, updates), state

    return jax.lax.fori_loop(0, steps, step, (w, tx.init(w)))[0]

  return np.asarray(run(w))


def step_size(x):
  return float(1.0 / np.linalg.eigvalsh(x.T @ x / len(x)).max())


def _sklearn_linear_model():
  # Imported by the two tests that use it, not at collection: every xdist worker collects
  # every file, and scikit-learn takes a second to import.
  from sklearn import linear_model

  return linear_model


def test_lasso_matches_scikit_learn_with_exact_zeros():
  x, y = regression_problem()
  alpha = 0.15
  reference = _sklearn_linear_model().Lasso(alpha=alpha, fit_intercept=False, tol=1e-12,
                                            max_iter=100_000).fit(x, y)
  lr = step_size(x)
  w = descend(x, y, optax.chain(optax.sgd(lr), jr.l1_prox(alpha, lr)))
  np.testing.assert_allclose(w, reference.coef_, atol=1e-3)
  assert np.array_equal(w == 0, reference.coef_ == 0)
  assert (w == 0).sum() >= 5  # the problem really is sparse


def test_elastic_net_matches_scikit_learn_with_exact_zeros():
  x, y = regression_problem(seed=2)
  alpha, l1_ratio = 0.2, 0.6
  reference = _sklearn_linear_model().ElasticNet(
      alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(x, y)
  lr = step_size(x)
  tx = optax.chain(optax.sgd(lr),
                   jr.elastic_net_prox(alpha * l1_ratio, alpha * (1 - l1_ratio), lr))
  w = descend(x, y, tx)
  np.testing.assert_allclose(w, reference.coef_, atol=1e-3)
  assert np.array_equal(w == 0, reference.coef_ == 0)
  assert (w == 0).sum() >= 3


def test_subgradient_gives_no_zeros_but_prox_does():
  x, y = regression_problem()
  alpha, lr = 0.15, step_size(x)
  subgradient = descend(x, y, optax.sgd(lr), penalty=lambda w: alpha * jr.l1_penalty(w))
  proximal = descend(x, y, optax.chain(optax.sgd(lr), jr.l1_prox(alpha, lr)))
  assert (subgradient == 0).sum() == 0
  assert (proximal == 0).sum() >= 5
  # both aim at the same minimizer: the subgradient iterates oscillate around it, in a band
  # whose width is set by the step lr * alpha
  np.testing.assert_allclose(subgradient, proximal, atol=2 * lr * alpha)


def test_prox_single_step_against_the_closed_form():
  params = {"a": jnp.asarray([0.05, -0.5, 2.0]), "b": jnp.asarray([[1.0, -0.01]])}
  updates = {"a": jnp.asarray([0.1, 0.0, -0.2]), "b": jnp.asarray([[0.0, 0.0]])}
  strengths = {"a": 1.0, "b": 0.5}
  lr = 0.2
  tx = jr.elastic_net_prox(strengths, 3.0, lr, mask={"a": True, "b": False})
  new, state = jax.jit(tx.update)(updates, tx.init(params), params)
  z = np.asarray(params["a"]) + np.asarray(updates["a"])
  expected = np.sign(z) * np.maximum(np.abs(z) - lr * 1.0, 0) / (1 + lr * 3.0)
  np.testing.assert_allclose(np.asarray(params["a"]) + np.asarray(new["a"]), expected, rtol=1e-6)
  np.testing.assert_array_equal(new["b"], updates["b"])  # masked out: untouched
  assert int(state.count) == 1


@pytest.mark.standard_promotion  # optax's schedule
def test_schedule_step_count_lives_in_the_state():
  schedule = optax.piecewise_constant_schedule(1.0, {1: 0.1})
  tx = jr.l1_prox(1.0, schedule)
  params = jnp.asarray([5.0])
  state = tx.init(params)
  u1, state = tx.update(jnp.zeros(1), state, params)
  u2, state = tx.update(jnp.zeros(1), state, params)
  np.testing.assert_allclose([u1[0], u2[0]], [-1.0, -0.1], rtol=1e-6)
  assert int(state.count) == 2


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input_names_the_problem():
  params = params_tree()
  with pytest.raises(ValueError, match="l1` must be >= 0"):
    jr.elastic_net_penalty(params, l1=-1.0, l2=0.0)
  with pytest.raises(ValueError, match="strength` must be >= 0"):
    jr.l1_prox(-0.1, 0.1)
  with pytest.raises(ValueError, match="strength` must be >= 0"):
    jr.l1_prox({"a": 0.1, "b": -1.0}, 0.1)
  with pytest.raises(ValueError, match="learning_rate"):
    jr.l1_prox(0.1, -1.0)
  with pytest.raises(ValueError, match="weight_decay"):
    jr.add_l2_decay(-1e-4)
  with pytest.raises(ValueError, match="structure of the parameters"):
    jr.l2_penalty(params, mask={"dense": True})
  with pytest.raises(TypeError, match="'conv/kernel' must be a Python bool, got 1"):
    jr.l2_penalty(params, mask=jax.tree.map(lambda _: 1, params))
  with pytest.raises(TypeError, match=r"'step'.*int32"):
    jr.l1_penalty({"step": jnp.zeros((), jnp.int32), "w": jnp.ones(2)})
  tx = jr.l1_prox(0.1, 0.1)
  with pytest.raises(ValueError, match="needs the parameters"):
    tx.update(jnp.zeros(2), tx.init(jnp.zeros(2)))
  tx = jr.l1_prox({"a": 0.1}, 0.1)
  with pytest.raises(ValueError, match="`strength` must be a scalar or a per-leaf pytree"):
    tx.update({"w": jnp.zeros(2)}, tx.init(None), {"w": jnp.zeros(2)})
  with pytest.raises(TypeError, match="exclude"):
    jr.decay_mask(params, exclude="*bias")


def test_none_strengths_are_rejected_at_construction():
  # None is no documented strength: l1_prox(None, ...) used to fail only inside `update`, and
  # elastic_net_prox(l1, None, ...) silently became a pure L1 prox.
  with pytest.raises(TypeError, match=r"`strength` must be a number >= 0.*got None"):
    jr.l1_prox(None, 0.1)
  with pytest.raises(TypeError, match=r"`l2` must be a number >= 0.*got None"):
    jr.elastic_net_prox(0.1, None, 0.1)
  with pytest.raises(TypeError, match=r"`l1` must be a number >= 0.*got None"):
    jr.elastic_net_prox(None, 0.1, 0.1)
  with pytest.raises(TypeError, match="learning_rate"):
    jr.l1_prox(0.1, None)


@pytest.mark.parametrize("masked", [False, True])
def test_none_inside_per_leaf_strengths_leaves_that_leaf_alone(masked):
  params = {"a": jnp.asarray([0.05, -0.3]), "b": jnp.asarray([0.02, 0.5])}
  updates = jax.tree.map(jnp.zeros_like, params)
  mask = {"a": True, "b": not masked}
  for tx, same in ((jr.l1_prox({"a": 0.1, "b": None}, 1.0, mask=mask),
                    jr.l1_prox({"a": 0.1, "b": 0.0}, 1.0, mask=mask)),
                   (jr.elastic_net_prox({"a": 0.1, "b": 0.1}, {"a": 1.0, "b": None}, 1.0),
                    jr.elastic_net_prox({"a": 0.1, "b": 0.1}, {"a": 1.0, "b": 0.0}, 1.0))):
    got = jax.jit(tx.update)(updates, tx.init(params), params)[0]
    want = same.update(updates, same.init(params), params)[0]
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
      np.testing.assert_allclose(g, w, rtol=1e-6)
  tx = jr.l1_prox({"a": 0.1, "b": None}, 1.0)
  np.testing.assert_array_equal(tx.update(updates, tx.init(params), params)[0]["b"], 0.0)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_non_finite_strengths_and_learning_rates_are_rejected(bad):
  with pytest.raises(ValueError, match="learning_rate` must be a finite number"):
    jr.l1_prox(0.0, bad)
  with pytest.raises(ValueError, match="learning_rate` must be a finite number"):
    jr.elastic_net_prox(0, 0, bad)
  with pytest.raises(ValueError, match="strength` must be a finite number"):
    jr.l1_prox(bad, 0.1)
  with pytest.raises(ValueError, match="l2` must be a finite number"):
    jr.elastic_net_prox(0.1, bad, 0.1)


def test_numpy_float64_parameters_give_float32_without_a_warning():
  # With x64 off JAX computes numpy float64 leaves in float32; asking for a float64
  # accumulator would warn on every call.
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    value = jr.l2_penalty({"w": np.ones(3), "b": np.ones(2)})
  assert value.dtype == jnp.float32
  assert float(value) == 2.5
