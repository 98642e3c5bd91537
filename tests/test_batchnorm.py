"""Batch norm against a float64 numpy computation graph, flax, autodiff and finite differences."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from conftest import compile_as_shipped, run_on_simulated_devices
from x64 import enable_x64

import jaxreg as jr

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------------------
# Independent reference: the classic staged computation graph, forward and backward, float64.
# ---------------------------------------------------------------------------------------------


def reference_batch_norm(x, gamma, beta, dy, reduce_axes, eps, keep=None):
  """Forward and backward of the staged graph (CS231n style), node by node, in float64."""
  x = np.asarray(x, np.float64)
  dy = np.asarray(dy, np.float64)
  m = np.ones_like(x) if keep is None else np.broadcast_to(keep, x.shape).astype(np.float64)
  kd = {"axis": reduce_axes, "keepdims": True}
  n = m.sum(**kd)
  # forward, one node per line
  mu = (m * x).sum(**kd) / n
  xmu = x - mu
  sq = m * xmu**2
  var = sq.sum(**kd) / n
  sqrtvar = np.sqrt(var + eps)
  ivar = 1.0 / sqrtvar
  xhat = xmu * ivar
  out = gamma * xhat + beta
  # backward, node by node in reverse
  dbeta = dy.sum(axis=reduce_axes)
  dgamma = (dy * xhat).sum(axis=reduce_axes)
  dxhat = dy * gamma
  divar = (dxhat * xmu).sum(**kd)
  dxmu1 = dxhat * ivar
  dsqrtvar = -divar / sqrtvar**2
  dvar = 0.5 * dsqrtvar / np.sqrt(var + eps)
  dsq = dvar / n * np.ones_like(x)
  dxmu2 = 2 * m * xmu * dsq
  dx1 = dxmu1 + dxmu2
  dmu = -dx1.sum(**kd)
  dx2 = m * dmu / n
  dx = dx1 + dx2
  return out, mu, var, dx, dgamma, dbeta, n


def random_case(shape, axis, dtype=np.float32):
  x = RNG.normal(2.0, 3.0, size=shape).astype(dtype)
  ndim = len(shape)
  axes = (axis,) if isinstance(axis, int) else axis
  axes = tuple(a % ndim for a in axes)
  feature_shape = tuple(shape[a] for a in axes)
  param_shape = tuple(shape[a] if a in axes else 1 for a in range(ndim))
  gamma = RNG.normal(1.0, 0.5, size=feature_shape).astype(dtype)
  beta = RNG.normal(0.0, 0.5, size=feature_shape).astype(dtype)
  dy = RNG.normal(size=shape).astype(dtype)
  reduce_axes = tuple(a for a in range(ndim) if a not in axes)
  return x, gamma, beta, dy, reduce_axes, feature_shape, param_shape


CASES = [  # (shape, axis)
    ((16, 5), -1),  # dense
    ((4, 5, 6, 3), -1),  # NHWC spatial
    ((4, 3, 5, 6), 1),  # NCHW
    ((4, 5, 6, 3), (1, 3)),  # two feature axes
]


@pytest.mark.parametrize(("shape", "axis"), CASES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("backward", ["custom", "autodiff"])
def test_matches_float64_computation_graph(shape, axis, masked, backward):
  x, gamma, beta, dy, reduce_axes, feature_shape, param_shape = random_case(shape, axis)
  keep = None
  if masked:
    keep = np.zeros((shape[0],) + (1,) * (len(shape) - 1), bool)
    keep[: shape[0] // 2 + 1] = True
  eps, momentum = 1e-3, 0.8
  state = jr.BatchNormState(jnp.asarray(RNG.normal(size=feature_shape), jnp.float32),
                            jnp.asarray(RNG.uniform(0.5, 2, size=feature_shape), jnp.float32))

  def f(x, gamma, beta):
    return jr.batch_norm(x, gamma, beta, state, train=True, momentum=momentum, eps=eps,
                         axis=axis, mask=keep, backward=backward)

  (y, new_state), vjp = jax.vjp(f, x, gamma, beta)
  dx, dgamma, dbeta = vjp((jnp.asarray(dy), jax.tree.map(jnp.zeros_like, new_state)))
  ref = reference_batch_norm(x, gamma.reshape(param_shape), beta.reshape(param_shape), dy,
                             reduce_axes, eps, keep)
  out, mu, var, rdx, rdgamma, rdbeta, _ = ref
  np.testing.assert_allclose(y, out, rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(dx, rdx, rtol=2e-4, atol=2e-5)
  np.testing.assert_allclose(dgamma, rdgamma.reshape(feature_shape), rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(dbeta, rdbeta.reshape(feature_shape), rtol=2e-5, atol=2e-5)
  np.testing.assert_allclose(
      new_state.mean, momentum * state.mean + (1 - momentum) * mu.reshape(feature_shape),
      rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      new_state.var, momentum * state.var + (1 - momentum) * var.reshape(feature_shape),
      rtol=1e-5, atol=1e-6)


def test_test_path_formula_and_state_identity():
  x, gamma, beta, _, _, _feature_shape, _ = random_case((6, 4, 4, 3), -1)
  state = jr.BatchNormState(jnp.asarray([0.5, -1.0, 2.0], jnp.float32),
                            jnp.asarray([0.3, 1.5, 4.0], jnp.float32))
  y, same = jr.batch_norm(x, gamma, beta, state, train=False, eps=1e-3)
  assert same is state
  expected = (np.float64(x) - np.float64(state.mean)) / np.sqrt(np.float64(state.var) + 1e-3)
  np.testing.assert_allclose(y, expected * gamma + beta, rtol=1e-5, atol=1e-5)


def test_unbiased_running_variance_matches_pytorch_convention():
  x, _, _, _, _, _, _ = random_case((10, 3), -1)
  state = jr.batch_norm_init(3)
  _, biased = jr.batch_norm(x, None, None, state, train=True, momentum=0.9)
  _, unbiased = jr.batch_norm(x, None, None, state, train=True, momentum=0.9,
                              unbiased_running_var=True)
  np.testing.assert_allclose(biased.var, 0.9 + 0.1 * np.float64(x).var(0), rtol=1e-5)
  np.testing.assert_allclose(unbiased.var, 0.9 + 0.1 * np.float64(x).var(0, ddof=1), rtol=1e-5)


@pytest.mark.parametrize("fast_variance", [False, True])
def test_matches_flax_over_several_steps(fast_variance):
  module = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5,
                        use_fast_variance=fast_variance)
  test_module = nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=1e-5)
  x0 = jnp.asarray(RNG.normal(size=(8, 4, 4, 3)), jnp.float32)
  variables = module.init(jax.random.key(0), x0)
  params = {"scale": jnp.asarray([1.0, 2.0, 0.5]), "bias": jnp.asarray([0.0, -1.0, 1.0])}
  variables = {"params": params, "batch_stats": variables["batch_stats"]}
  state = jr.batch_norm_init(3)
  for step in range(4):
    x = jnp.asarray(RNG.normal(step, 1 + step, size=(8, 4, 4, 3)), jnp.float32)
    y_flax, updates = module.apply(variables, x, mutable=["batch_stats"])
    variables = {"params": params, "batch_stats": updates["batch_stats"]}
    y, state = jr.batch_norm(x, params["scale"], params["bias"], state, train=True)
    np.testing.assert_allclose(y, y_flax, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(state.mean, updates["batch_stats"]["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.var, updates["batch_stats"]["var"], rtol=1e-4, atol=1e-5)
  y_flax = test_module.apply(variables, x)
  y, _ = jr.batch_norm(x, params["scale"], params["bias"], state, train=False)
  np.testing.assert_allclose(y, y_flax, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


def test_gradient_flows_through_batch_statistics():
  # With a constant cotangent the direct term cancels exactly against the statistics terms:
  # sum(y) does not depend on x. A backward that ignored the statistics would give scale*inv.
  x, gamma, beta, dy, reduce_axes, _, _ = random_case((12, 4), -1)
  state = jr.batch_norm_init(4)
  grad = jax.jit(jax.grad(lambda x, w: jnp.sum(w * jr.batch_norm(x, gamma, beta, state,
                                                                 train=True)[0])))
  np.testing.assert_allclose(grad(x, jnp.ones_like(x)), 0.0, atol=1e-5)
  # A non-constant cotangent w (the same compiled program): the float64 staged graph's
  # gradient, which is far from 0 and from the direct term alone, w * scale * inv.
  rdx = reference_batch_norm(x, gamma, beta, dy, reduce_axes, 1e-5)[3]
  inv = 1 / np.sqrt(np.float64(x).var(0) + 1e-5)
  assert np.abs(rdx).max() > 0.1
  assert np.abs(rdx - dy * gamma * inv).max() > 0.1
  np.testing.assert_allclose(grad(x, jnp.asarray(dy)), rdx, rtol=2e-4, atol=2e-5)


def test_second_order_reverse_over_reverse_and_hessian():
  x, gamma, beta, _, _, _, _ = random_case((6, 3), -1)
  state = jr.batch_norm_init(3)

  def loss(x, backward):
    y, _ = jr.batch_norm(x, gamma, beta, state, train=True, backward=backward)
    return jnp.sum(jnp.tanh(y) * jnp.arange(18.0).reshape(6, 3))

  v = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
  hvp = jax.jit(jax.grad(lambda x, b: jnp.vdot(jax.grad(loss)(x, b), v)), static_argnums=1)
  np.testing.assert_allclose(hvp(x, "custom"), hvp(x, "autodiff"), rtol=1e-4, atol=1e-4)
  jax.test_util.check_grads(lambda x: loss(x, "custom"), (jnp.asarray(x),), order=2,
                            modes=("rev",), eps=1e-2, atol=5e-2, rtol=5e-2)
  hessian, gamma = jax.jit(jax.hessian(loss_scale), static_argnums=1), jnp.asarray(gamma)
  np.testing.assert_allclose(hessian(gamma, "custom"), hessian(gamma, "autodiff"), rtol=1e-4,
                             atol=1e-4)


def loss_scale(scale, backward):
  x = jnp.arange(18.0).reshape(6, 3) ** 1.5
  y, _ = jr.batch_norm(x, scale, None, jr.batch_norm_init(3), train=True, backward=backward)
  return jnp.sum(jnp.tanh(y))


def test_forward_mode_says_what_to_use():
  x = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
  f = lambda x, b: jr.batch_norm(x, None, None, jr.batch_norm_init(3), train=True,  # noqa: E731
                                 backward=b)[0]
  with pytest.raises(TypeError, match="backward='autodiff'"):
    jax.jvp(lambda x: f(x, "custom"), (x,), (x,))
  v = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
  _, tangent = jax.jvp(lambda x: f(x, "autodiff"), (x,), (v,))
  jacobian = jax.jacrev(lambda x: f(x, "custom"))(x)  # reverse mode of the custom backward
  np.testing.assert_allclose(tangent, jnp.einsum("ijkl,kl->ij", jacobian, v), atol=1e-5)
  # Forward mode through the parameters or the running state (which a mask makes an input of
  # the custom_vjp) gets the same message, not JAX's.
  g = lambda b: jr.batch_norm(x, None, b, jr.batch_norm_init(3), train=True)[0]  # noqa: E731
  h = lambda m: jr.batch_norm(x, None, None, jr.BatchNormState(m, jnp.ones(3)),  # noqa: E731
                              train=True, mask=jnp.ones((6, 1), bool))[0]
  for transform in (lambda: jax.jvp(g, (jnp.zeros(3),), (jnp.ones(3),)),
                    lambda: jax.jacfwd(g)(jnp.zeros(3)),
                    lambda: jax.jvp(h, (jnp.zeros(3),), (jnp.ones(3),))):
    with pytest.raises(TypeError, match="backward='autodiff'"):
      transform()


def test_forward_over_reverse_works_with_the_custom_backward():
  # jax.hessian is forward mode over reverse mode: the custom backward is pushed forward.
  x = jnp.asarray(RNG.normal(size=(5, 2)), jnp.float32)
  loss = lambda x, b: jnp.sum(jnp.sin(jr.batch_norm(  # noqa: E731
      x, None, None, jr.batch_norm_init(2), train=True, backward=b)[0]) * jnp.arange(10.0)
      .reshape(5, 2))
  hessian = jax.jit(jax.hessian(loss), static_argnums=1)
  np.testing.assert_allclose(hessian(x, "custom"), hessian(x, "autodiff"), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# Numerics
# ---------------------------------------------------------------------------------------------


def test_large_mean_small_spread_normalizes_correctly():
  x = jnp.asarray(RNG.normal(1e4, 0.1, size=(256, 8)), jnp.float32)
  y, state = jr.batch_norm(x, None, None, jr.batch_norm_init(8), train=True, momentum=0.0)
  batch_var = np.float64(x).var(0)
  np.testing.assert_allclose(np.float64(y).var(0), batch_var / (batch_var + 1e-5), rtol=1e-3)
  np.testing.assert_allclose(state.var, batch_var, rtol=1e-3)
  # The one-pass formula E[x^2] - E[x]^2 in float32 (flax's default) gets it badly wrong.
  one_pass = jnp.mean(x * x, 0) - jnp.mean(x, 0) ** 2
  assert np.max(np.abs(np.asarray(one_pass) - batch_var) / batch_var) > 0.5


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_half_precision_input_uses_float32_statistics(dtype):
  x32 = jnp.asarray(RNG.normal(3.0, 2.0, size=(64, 4, 4, 8)), jnp.float32)
  x = x32.astype(dtype)
  gamma, beta = jnp.ones(8), jnp.zeros(8)
  y, state = jr.batch_norm(x, gamma, beta, jr.batch_norm_init(8), train=True)
  y_ref, state_ref = jr.batch_norm(x.astype(jnp.float32), gamma, beta, jr.batch_norm_init(8),
                                   train=True)
  assert y.dtype == dtype
  assert state.mean.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(y, np.float32)))
  np.testing.assert_allclose(np.asarray(y, np.float32), y_ref, atol=0.05)
  np.testing.assert_allclose(state.var, state_ref.var, rtol=1e-5)
  grad = jax.grad(lambda x: jnp.sum(jr.batch_norm(x, gamma, beta, state, train=True)[0]
                                    .astype(jnp.float32) ** 2))(x)
  assert grad.dtype == dtype
  assert np.all(np.isfinite(np.asarray(grad, np.float32)))


# ---------------------------------------------------------------------------------------------
# Transformations and state
# ---------------------------------------------------------------------------------------------


def test_jit_and_vmap_over_independent_models():
  xs = jnp.asarray(RNG.normal(size=(3, 8, 4)), jnp.float32)  # 3 models, batch 8, 4 features
  scales = jnp.asarray(RNG.normal(1, 0.2, size=(3, 4)), jnp.float32)
  states = jax.vmap(lambda _: jr.batch_norm_init(4))(jnp.arange(3))
  step = lambda x, s, st: jr.batch_norm(x, s, None, st, train=True)  # noqa: E731
  ys, new_states = jax.jit(jax.vmap(step))(xs, scales, states)
  # The hand-written backward under vmap (and jit): per-model gradients, as for an ensemble.
  weights = jnp.asarray(RNG.normal(size=(8, 4)), jnp.float32)
  loss = lambda x, s, st: jnp.sum(jnp.tanh(step(x, s, st)[0]) * weights)  # noqa: E731
  grads = jax.jit(jax.vmap(jax.grad(loss, (0, 1))))(xs, scales, states)
  for i in range(3):
    y, st = step(xs[i], scales[i], jr.batch_norm_init(4))
    np.testing.assert_allclose(ys[i], y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(new_states.mean[i], st.mean, rtol=1e-6)
    dx, ds = jax.grad(loss, (0, 1))(xs[i], scales[i], jr.batch_norm_init(4))
    np.testing.assert_allclose(grads[0][i], dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[1][i], ds, rtol=1e-5, atol=1e-6)


def assert_every_device_has_the_full_batch_state(states, state_full, x):
  """Every device's running mean and variance (leading axes: devices) equal the full batch's,
  which is the default blend 0.9 * init + 0.1 * the batch statistic, in float64."""
  x = np.asarray(x, np.float64)
  np.testing.assert_allclose(state_full.mean, 0.1 * x.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(state_full.var, 0.9 + 0.1 * x.var(0), rtol=1e-5)
  for field in ("mean", "var"):
    per_device = np.asarray(getattr(states, field)).reshape(-1, 3)
    full = np.asarray(getattr(state_full, field))
    assert per_device.shape[0] > 1
    np.testing.assert_allclose(per_device, np.broadcast_to(full, per_device.shape), rtol=1e-5,
                               atol=1e-6)


def test_named_vmap_axis_gives_global_statistics():
  x = jnp.asarray(RNG.normal(2, 3, size=(4, 6, 3)), jnp.float32)  # 4 "devices" x 6 examples
  ys, states = jax.vmap(lambda x: jr.batch_norm(x, None, None, jr.batch_norm_init(3),
                                                train=True, axis_name="dev"),
                        axis_name="dev")(x)
  y_full, state_full = jr.batch_norm(x.reshape(24, 3), None, None, jr.batch_norm_init(3),
                                     train=True)
  np.testing.assert_allclose(ys.reshape(24, 3), y_full, rtol=1e-5, atol=1e-5)
  assert_every_device_has_the_full_batch_state(states, state_full, x.reshape(24, 3))


def test_several_named_axes_as_a_list_give_global_statistics():
  x = jnp.asarray(RNG.normal(2, 3, size=(2, 3, 4, 3)), jnp.float32)  # 2 x 3 "devices"
  bn = lambda x: jr.batch_norm(x, None, None, jr.batch_norm_init(3), train=True,  # noqa: E731
                               axis_name=["a", "b"])
  ys, states = jax.vmap(jax.vmap(bn, axis_name="b"), axis_name="a")(x)
  y_full, state_full = jr.batch_norm(x.reshape(24, 3), None, None, jr.batch_norm_init(3),
                                     train=True)
  np.testing.assert_allclose(ys.reshape(24, 3), y_full, rtol=1e-5, atol=1e-5)
  assert_every_device_has_the_full_batch_state(states, state_full, x.reshape(24, 3))
  # The hand-written backward sums over both axes too.
  w = jnp.asarray(RNG.normal(size=(2, 3, 4, 3)), jnp.float32)
  dx = jax.vmap(jax.vmap(jax.grad(lambda x, w: jnp.sum(bn(x)[0] * w)), axis_name="b"),
                axis_name="a")(x, w)
  full = jax.grad(lambda x: jnp.sum(jr.batch_norm(x, None, None, jr.batch_norm_init(3),
                                                  train=True)[0] * w.reshape(24, 3)))
  np.testing.assert_allclose(dx.reshape(24, 3), full(x.reshape(24, 3)), rtol=1e-4, atol=1e-5)


@pytest.mark.xla_schedule("docs/design/batch_norm.md")
@pytest.mark.skipif(jax.devices()[0].platform != "cpu", reason="XLA:CPU's fusion of reductions")
@pytest.mark.parametrize(("dtype", "with_scale", "masked"), [
    ("float32", True, False), ("float32", False, False), ("bfloat16", True, False),
    ("float32", True, True)])
def test_cpu_step_writes_no_full_size_intermediate(dtype, with_scale, masked):
  # The forward+backward step must write only its two full-size outputs, y and dx: x - mean is
  # recomputed inside each reduction that reads it, not written out once and shared. (Writing
  # it out cost 15% of the step and, in a network, a full-size buffer per layer.) In bfloat16
  # the backward must not write x or dy out as float32; the forward writes one transient
  # float32 copy of x (see jaxreg/_backend.py, cpu_barrier). With a mask, two selects are
  # written too (XNNPACK fusions take none): the masked copy of x, read by both statistics, and
  # the backward's masked dy * (x - mean), which keeps NaN padding out of the gradients. Large
  # enough for XLA to run the reductions as XNNPACK fusions, as at real sizes.
  x, gamma, beta, dy, _, _, _ = random_case((16, 8, 8, 16), -1)
  x, dy = jnp.asarray(x, dtype), jnp.asarray(dy, dtype)
  if not with_scale:
    gamma = beta = None
  mask = jnp.arange(16).reshape(16, 1, 1, 1) % 3 > 0 if masked else None

  @jax.jit
  def step(x, dy):
    f = lambda x: jr.batch_norm(x, gamma, beta, jr.batch_norm_init(16), train=True,  # noqa: E731
                                mask=mask)[0]
    y, vjp = jax.vjp(f, x)
    return y, vjp(dy)

  hlo = compile_as_shipped(step.lower(x, dy)).as_text()
  entry = hlo[hlo.index("ENTRY"):]
  written = {d: [line.split(", metadata")[0] for line in entry.splitlines()
                 if f" {d}[16,8,8,16]{{3,2,1,0}} fusion(" in line] for d in ("f32", "bf16")}
  if dtype == "float32":
    assert len(written["f32"]) == 2 + 2 * masked, "\n".join(written["f32"])
  else:
    assert len(written["bf16"]) == 2, "\n".join(written["bf16"])  # y and dx
    assert len(written["f32"]) <= 1, "\n".join(written["f32"])  # the forward's copy of x


def test_state_is_a_pytree_that_round_trips(tmp_path):
  state = jr.batch_norm_init((2, 3))
  doubled = jax.tree.map(lambda a: a * 2, state)
  assert isinstance(doubled, jr.BatchNormState)
  np.savez(tmp_path / "bn.npz", **doubled._asdict())
  with np.load(tmp_path / "bn.npz") as data:
    loaded = jr.BatchNormState(**{k: jnp.asarray(data[k]) for k in data.files})
  np.testing.assert_array_equal(loaded.var, 2.0)
  assert jax.jit(lambda s: s)(state).mean.shape == (2, 3)


def test_non_finite_padding_stays_out_of_the_statistics():
  x = jnp.asarray(RNG.normal(2, 3, size=(10, 4)), jnp.float32)
  mask = jnp.arange(10)[:, None] < 7
  padded = jnp.where(mask, x, jnp.asarray([jnp.nan, jnp.inf, -jnp.inf, jnp.nan]))
  gamma, beta = jnp.ones(4), jnp.zeros(4)
  for fn in (lambda x: jr.batch_norm(x, gamma, beta, jr.batch_norm_init(4), train=True,
                                     mask=mask),
             jax.jit(lambda x: jr.batch_norm(x, gamma, beta, jr.batch_norm_init(4), train=True,
                                             mask=mask))):
    y, state = fn(padded)
    y_ref, state_ref = jr.batch_norm(x[:7], gamma, beta, jr.batch_norm_init(4), train=True)
    np.testing.assert_allclose(y[:7], y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state.mean, state_ref.mean, rtol=1e-6)
    np.testing.assert_allclose(state.var, state_ref.var, rtol=1e-6)


@pytest.mark.parametrize("backward", ["custom", "autodiff"])
def test_non_finite_padding_stays_out_of_the_gradients(backward):
  # The loss ignores the padded outputs: the gradients of the valid entries and of the
  # parameters must be those of the same batch padded with zeros. With backward="autodiff"
  # (plain autodiff of the forward) 0 * NaN spreads, as documented.
  x = jnp.asarray(RNG.normal(2, 3, size=(10, 4)), jnp.float32)
  mask = jnp.arange(10)[:, None] < 7
  gamma, beta = jnp.asarray(RNG.normal(size=4), jnp.float32), jnp.zeros(4)
  w = jnp.asarray(RNG.normal(size=(10, 4)), jnp.float32)

  def loss(x, gamma, beta):
    y, _ = jr.batch_norm(x, gamma, beta, jr.batch_norm_init(4), train=True, mask=mask,
                         backward=backward)
    # Mask y itself: where(mask, sin(y), 0) would make the cotangent cos(NaN) * 0 = NaN at
    # the padding before batch norm's backward sees it (JAX's usual where-gradient trap).
    return jnp.sum(jnp.sin(jnp.where(mask, y, 0.0)) * w)

  grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
  reference = grad(jnp.where(mask, x, 0.0), gamma, beta)
  padded = grad(jnp.where(mask, x, jnp.asarray([jnp.nan, jnp.inf, -jnp.inf, jnp.nan])), gamma,
                beta)
  if backward == "autodiff":
    assert not np.all(np.isfinite(padded[1]))
    return
  np.testing.assert_allclose(padded[0][:7], reference[0][:7], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(padded[0][7:], 0.0)
  np.testing.assert_allclose(padded[1], reference[1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(padded[2], reference[2], rtol=1e-5, atol=1e-6)


def test_padded_outputs_the_loss_uses_get_their_exact_gradient():
  # Masked-out entries are still normalized; where the loss uses them, their terms count.
  x, gamma, beta, dy, _, _, _ = random_case((8, 3), -1)
  mask = jnp.arange(8)[:, None] % 3 > 0
  f = lambda x, g, b, backward: jr.batch_norm(  # noqa: E731
      x, g, b, jr.batch_norm_init(3), train=True, mask=mask, backward=backward)[0]
  custom = jax.vjp(lambda *a: f(*a, "custom"), x, gamma, beta)[1](dy)
  autodiff = jax.vjp(lambda *a: f(*a, "autodiff"), x, gamma, beta)[1](dy)
  for c, a in zip(custom, autodiff, strict=True):
    np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16])
def test_fully_masked_feature_uses_and_keeps_running_statistics(dtype):
  # Feature 1 has no valid entry: it is normalized with the running statistics (not with
  # mean 0 and var 0, which scaled it by 1/sqrt(eps) = 316 and overflowed float16), its
  # gradient is that of the test-path formula, and its running statistics stay.
  x = jnp.asarray(RNG.normal(300, 10, size=(4, 3)), dtype)
  mask = jnp.asarray([[True, False, True]] * 4)
  state = jr.BatchNormState(jnp.asarray([1.0, 290.0, 3.0]), jnp.asarray([4.0, 50.0, 6.0]))
  gamma, beta = jnp.asarray([1.0, 2.0, 3.0]), jnp.asarray([0.0, 0.5, 0.0])
  for backward in ("custom", "autodiff"):
    f = lambda x, backward=backward: jr.batch_norm(  # noqa: E731
        x, gamma, beta, state, train=True, mask=mask, backward=backward)
    (y, new), vjp = jax.vjp(f, x)
    x1 = np.float64(x[:, 1])
    # atol: x - 290 cancels; float32 rounds x (about 300) to 2e-5, times 2 / sqrt(50) = 0.28.
    np.testing.assert_allclose(np.float64(y[:, 1]), (x1 - 290) / np.sqrt(50 + 1e-5) * 2 + 0.5,
                               rtol=2e-3 if dtype == jnp.float16 else 1e-5,
                               atol=0 if dtype == jnp.float16 else 1e-5)
    assert float(new.mean[1]) == 290.0
    assert float(new.var[1]) == 50.0
    dy = jnp.ones_like(y)
    (dx,) = vjp((dy, jax.tree.map(jnp.zeros_like, new)))
    np.testing.assert_allclose(np.float64(dx[:, 1]), 2 / np.sqrt(50 + 1e-5), rtol=2e-3)
    assert np.all(np.isfinite(np.float64(y)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("backward", ["custom", "autodiff"])
def test_one_valid_value_gives_nan_and_keeps_the_running_statistics(dtype, jit, backward):
  # PyTorch refuses a training batch with one value per channel, and so does batch_norm
  # without a mask. A mask's count is known only at run time: feature 0 (one valid value)
  # gives NaN and keeps its running statistics, with or without the unbiased n / (n - 1),
  # which used to blend a variance of 0 in; feature 1 (three values) is normalized as usual.
  with enable_x64(dtype == "float64"):
    x = jnp.asarray([[1.0, 2.0], [5.0, 3.0], [7.0, 7.0], [9.0, 9.0]], dtype)
    mask = jnp.asarray([[True, True], [False, True], [False, True], [False, False]])
    state = jr.BatchNormState(jnp.asarray([0.5, 0.5], dtype), jnp.asarray([2.0, 2.0], dtype))
    for unbiased in (False, True):
      def f(x, unbiased=unbiased):
        return jr.batch_norm(x, None, None, state, train=True, mask=mask,
                             unbiased_running_var=unbiased, backward=backward)
      y, new = (jax.jit(f) if jit else f)(x)
      assert y.dtype == x.dtype
      assert np.isnan(np.asarray(y[:, 0])).all()
      valid = np.array([2.0, 3.0, 7.0])
      want = (valid - valid.mean()) / np.sqrt(valid.var() + 1e-5)
      np.testing.assert_allclose(np.asarray(y[:3, 1]), want, rtol=1e-5)
      assert float(new.mean[0]) == 0.5
      assert float(new.var[0]) == 2.0
      var = valid.var(ddof=1 if unbiased else 0)
      np.testing.assert_allclose(float(new.var[1]), 0.9 * 2.0 + 0.1 * var, rtol=1e-6)
      dx = jax.grad(lambda x, f=f: jnp.sum(jnp.where(mask, f(x)[0], 0.0)[:, 1]))(x)
      assert np.isfinite(np.asarray(dx[:, 1])).all()


def test_one_valid_value_across_a_named_axis_gives_nan():
  # Two "devices" with one valid value between them: the global count is 1.
  x = jnp.asarray(RNG.normal(size=(2, 3, 2)), jnp.float32)
  mask = jnp.zeros((2, 3, 1), bool).at[1, 2].set(True)
  state = jr.batch_norm_init(2)
  ys, states = jax.vmap(lambda x, m: jr.batch_norm(
      x, None, None, state, train=True, mask=m, axis_name="dev", unbiased_running_var=True),
                        axis_name="dev")(x, mask)
  assert np.isnan(np.asarray(ys)).all()
  np.testing.assert_array_equal(states.var, np.ones((2, 2)))
  np.testing.assert_array_equal(states.mean, np.zeros((2, 2)))
  # Unmasked, one value over the whole named axis is known statically: a ValueError.
  with pytest.raises(ValueError, match="one value per feature"):
    jax.vmap(lambda x: jr.batch_norm(x, None, None, state, train=True, axis_name="dev"),
             axis_name="dev")(x[:1, :1])


def test_float32_range_normalizes_correctly_and_overflow_gives_nan():
  base = jnp.asarray(RNG.normal(3, 2, size=(64, 3)), jnp.float32)
  for magnitude in (1e-10, 1e15):  # squares of deviations stay finite: exact normalization
    x = base * magnitude
    y, state = jr.batch_norm(x, None, None, jr.batch_norm_init(3), train=True, momentum=0.0)
    x64 = np.float64(x)
    var = x64.var(0)
    np.testing.assert_allclose(y, (x64 - x64.mean(0)) / np.sqrt(var + 1e-5), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(state.var, var, rtol=1e-4)
  # Squared deviations past float32's range: the variance is inf. Every output is NaN
  # (rsqrt(inf) = 0 used to turn them all into `bias`), and the running variance is inf,
  # which the test path turns into NaN as well.
  y, state = jr.batch_norm(base * 1e30, None, None, jr.batch_norm_init(3), train=True)
  assert np.isnan(np.asarray(y)).all()
  assert np.isinf(np.asarray(state.var)).all()
  y_test, _ = jr.batch_norm(base, None, None, state, train=False)
  assert np.isnan(np.asarray(y_test)).all()
  y_test, _ = jax.jit(lambda x, s: jr.batch_norm(x, None, None, s, train=False))(base, state)
  assert np.isnan(np.asarray(y_test)).all()


def test_eps_must_be_a_normal_number_of_the_compute_dtype():
  x = jnp.asarray(RNG.normal(size=(8, 3)), jnp.float32)
  state = jr.batch_norm_init(3)
  for eps in (1e-45, 1e-39):  # subnormal in float32: flushed to 0, rsqrt(0) = inf
    with pytest.raises(ValueError, match=r"`eps`.*subnormal in float32"):
      jr.batch_norm(x, None, None, state, train=True, eps=eps)
  with pytest.raises(ValueError, match=r"`eps`.*subnormal in float32"):
    jr.batch_norm(x.astype(jnp.bfloat16), None, None, state, train=True, eps=1e-40)
  jr.batch_norm(x, None, None, state, train=True, eps=1.2e-38)  # normal: accepted
  with enable_x64(True):  # float64 input is normalized in float64, where 1e-300 is normal
    y, _ = jr.batch_norm(jnp.asarray(x, jnp.float64), None, None,
                         jr.batch_norm_init(3, dtype=jnp.float64), train=True, eps=1e-300)
    assert np.isfinite(np.asarray(y)).all()


def test_flags_must_be_bools():
  x = jnp.asarray(RNG.normal(size=(8, 3)), jnp.float32)
  state = jr.batch_norm_init(3)
  # "False" is truthy: it used to act as True
  with pytest.raises(TypeError, match=r"`unbiased_running_var`.*'False'"):
    jr.batch_norm(x, None, None, state, train=True, unbiased_running_var="False")
  with pytest.raises(TypeError, match=r"`unbiased_running_var`.*traced"):
    jax.jit(lambda u: jr.batch_norm(x, None, None, state, train=True,
                                    unbiased_running_var=u))(True)
  with pytest.raises(TypeError, match=r"`axis_name`.*positional array axis"):
    jr.batch_norm(x, None, None, state, train=True, axis_name=0)
  # A traced momentum cannot be checked: out of [0, 1] it makes the new state NaN.
  new = jax.jit(lambda m: jr.batch_norm(x, None, None, state, train=True, momentum=m)[1])
  assert np.isfinite(np.asarray(new(0.5).var)).all()
  assert np.isnan(np.asarray(new(1.5).var)).all()


def test_gradient_reaches_the_running_statistics_an_empty_feature_used():
  # Feature 1 is normalized with the running statistics: the loss depends on them there, and
  # the custom backward must say so as autodiff does (also through the blended new state).
  x = jnp.asarray(RNG.normal(3, 2, size=(6, 3)), jnp.float32)
  mask = jnp.asarray([[True, False, True]] * 6)
  w = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)

  def loss(mean, var, x, backward):
    y, new = jr.batch_norm(x, jnp.asarray([1.0, 2.0, 3.0]), None, jr.BatchNormState(mean, var),
                           train=True, mask=mask, backward=backward)
    return jnp.sum(jnp.sin(y) * w) + jnp.sum(new.mean * 0.3 + new.var * 0.7)

  args = (jnp.asarray([0.5, 1.5, 2.5]), jnp.asarray([1.0, 2.0, 3.0]), x)
  grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)
  custom, autodiff = grad(*args, "custom"), grad(*args, "autodiff")
  for c, a in zip(custom, autodiff, strict=True):
    np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6)
  assert abs(float(custom[0][1]) - 0.3) > 0.1  # more than the kept state's own share


MULTIDEVICE_SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxreg as jr

assert jax.device_count() == 8, jax.devices()
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(3, 2, size=(32, 5, 5, 4)), jnp.float32)
keep = np.ones((32, 1, 1, 1), bool)
keep[3:8] = False      # device 0 keeps 3 of its 4 examples ...
keep[8:12] = False     # ... device 2 keeps none
keep[20:22] = False
gamma, beta = jnp.asarray(rng.normal(1, .3, 4), jnp.float32), jnp.zeros(4)
state = jr.batch_norm_init(4)
g = jnp.asarray(rng.normal(size=x.shape), jnp.float32)

def full(x, gamma):
  y, st = jr.batch_norm(x, gamma, beta, state, train=True, mask=jnp.asarray(keep))
  return jnp.sum(y * g), (y, st)

(_, (y_ref, st_ref)), grads_ref = jax.value_and_grad(full, (0, 1), has_aux=True)(x, gamma)

mesh = jax.make_mesh((8,), ("data",))
def sharded(x, g, mask, gamma):
  def f(x, gamma):
    y, st = jr.batch_norm(x, gamma, beta, state, train=True, mask=mask, axis_name="data")
    return jnp.sum(y * g), (y, st)
  (_, (y, st)), (dx, dgamma) = jax.value_and_grad(f, (0, 1), has_aux=True)(x, gamma)
  return y, st, dx, dgamma  # gamma is replicated: its gradient is already the global sum

run = jax.jit(jax.shard_map(sharded, mesh=mesh,
                            in_specs=(P("data"), P("data"), P("data"), P()),
                            out_specs=(P("data"), P(), P("data"), P())))
shard = lambda a: jax.device_put(a, NamedSharding(mesh, P("data")))
y, st, dx, dgamma = run(shard(x), shard(g), shard(jnp.asarray(keep)), gamma)
np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(st.mean, st_ref.mean, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(st.var, st_ref.var, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(dx, grads_ref[0], rtol=1e-4, atol=1e-5)
np.testing.assert_allclose(dgamma, grads_ref[1], rtol=1e-4, atol=1e-5)

# A feature no device sees is normalized with the running statistics, replicated across the
# devices: their gradient must be the global sum of the per-device contributions.
empty = np.broadcast_to(keep, (32, 1, 1, 4)).copy()
empty[..., 3] = False
run_state = jnp.asarray([0.5, 1.0, 1.5, 2.5]), jnp.asarray([1.0, 2.0, 3.0, 4.0])

def state_loss(x, g, mask, gamma, mean, var):
  y, st = jr.batch_norm(x, gamma, beta, jr.BatchNormState(mean, var), train=True, mask=mask,
                        axis_name="data" if x.shape[0] < 32 else None)
  total = jnp.sum(jnp.sin(y) * g)
  return (jax.lax.psum(total, "data") if x.shape[0] < 32 else total) + jnp.sum(st.var * 0.5)

want = jax.grad(state_loss, (3, 4, 5))(x, g, jnp.asarray(empty), gamma, *run_state)
state_grad = jax.jit(jax.shard_map(jax.grad(state_loss, (3, 4, 5)), mesh=mesh,
                                   in_specs=(P("data"),) * 3 + (P(),) * 3, out_specs=P()))
got = state_grad(shard(x), shard(g), shard(jnp.asarray(empty)), gamma, *run_state)
assert abs(float(want[1][3])) > 1e-3  # the empty feature's mean matters
for a, b in zip(got, want):
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

# pmap with axis_name
y_p, st_p = jax.pmap(lambda x, m: jr.batch_norm(x, gamma, beta, state, train=True, mask=m,
                                                axis_name="d"), axis_name="d")(
    x.reshape(8, 4, 5, 5, 4), jnp.asarray(keep).reshape(8, 4, 1, 1, 1))
np.testing.assert_allclose(y_p.reshape(x.shape), y_ref, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(st_p.var[0], st_ref.var, rtol=1e-5, atol=1e-6)

# plain jit over a sharded batch, no axis_name: XLA's reductions are global
xs = jax.device_put(x, NamedSharding(mesh, P("data")))
ms = jax.device_put(jnp.asarray(keep), NamedSharding(mesh, P("data")))
y_j, st_j = jax.jit(lambda x, m: jr.batch_norm(x, gamma, beta, state, train=True, mask=m))(xs, ms)
np.testing.assert_allclose(y_j, y_ref, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(st_j.var, st_ref.var, rtol=1e-5, atol=1e-6)
# One valid value across all devices: NaN outputs, running statistics kept.
single = np.zeros((32, 5, 5, 1), bool)
single[17, 2, 3] = True
y_1, st_1 = jax.jit(jax.shard_map(
    lambda x, m: jr.batch_norm(x, gamma, beta, state, train=True, mask=m, axis_name="data",
                               unbiased_running_var=True),
    mesh=mesh, in_specs=(P("data"), P("data")), out_specs=(P("data"), P())))(
        shard(x), shard(jnp.asarray(single)))
assert np.isnan(np.asarray(y_1)).all()
np.testing.assert_array_equal(st_1.mean, state.mean)
np.testing.assert_array_equal(st_1.var, state.var)
print("MULTIDEVICE OK")
"""


def test_sharded_statistics_equal_single_device_with_unequal_masks():
  assert "MULTIDEVICE OK" in run_on_simulated_devices(MULTIDEVICE_SCRIPT)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input():
  x = jnp.ones((4, 3))
  state = jr.batch_norm_init(3)
  bn = lambda *a, **k: jr.batch_norm(*a, **({"train": True} | k))  # noqa: E731
  with pytest.raises(ValueError, match="one value per feature"):
    bn(jnp.ones((1, 3)), None, None, state)
  jr.batch_norm(jnp.ones((1, 3)), None, None, state, train=False)  # fine at test time
  with pytest.raises(ValueError, match=r"`scale` must have the feature shape \(3,\)"):
    bn(x, jnp.ones(4), None, state)
  with pytest.raises(ValueError, match="`bias`"):
    bn(x, None, jnp.ones((3, 1)), state)
  with pytest.raises(ValueError, match=r"state.mean"):
    bn(x, None, None, jr.batch_norm_init(4))
  with pytest.raises(TypeError, match="BatchNormState"):
    bn(x, None, None, (jnp.zeros(3), jnp.ones(3)))
  with pytest.raises(ValueError, match="out of range"):
    bn(x, None, None, state, axis=2)
  with pytest.raises(ValueError, match="covers every axis"):
    bn(x, None, None, jr.batch_norm_init((4, 3)), axis=(0, 1))
  with pytest.raises(TypeError, match="floating-point"):
    bn(jnp.ones((4, 3), jnp.int32), None, None, state)
  with pytest.raises(ValueError, match=r"momentum.*\[0.0, 1.0\]"):
    bn(x, None, None, state, momentum=1.5)
  with pytest.raises(ValueError, match="eps"):
    bn(x, None, None, state, eps=0.0)
  with pytest.raises(TypeError, match="boolean"):
    bn(x, None, None, state, mask=jnp.ones((4, 1)))
  with pytest.raises(ValueError, match="does not broadcast"):
    bn(x, None, None, state, mask=jnp.ones((3, 1), bool))
  with pytest.raises(ValueError, match="not bound"):
    bn(x, None, None, state, axis_name="batch")
  # The same axis-name rules as device_key: () used to give this device's statistics silently,
  # a set a bare "unhashable type".
  with pytest.raises(ValueError, match=r"at least one mesh axis, got \(\)"):
    bn(x, None, None, state, axis_name=())
  for bad in ({"batch"}, b"batch", ("batch", None)):
    with pytest.raises(TypeError, match=r"axis_name.*mesh axis name"):
      bn(x, None, None, state, axis_name=bad)
  with pytest.raises(ValueError, match="backward"):
    bn(x, None, None, state, backward="fast")
  with pytest.raises(TypeError, match="train"):
    jr.batch_norm(x, None, None, state, train=None)
  with pytest.raises(TypeError, match="ints"):
    jr.batch_norm_init([2.5])
  with pytest.raises(TypeError, match="floating"):
    jr.batch_norm_init(3, dtype=jnp.int32)
  with pytest.raises(ValueError, match=r"eps.*finite"):
    bn(x, None, None, state, eps=float("inf"))
  with pytest.raises(TypeError, match=r"state\.mean.*floating"):
    bn(x, None, None, jr.BatchNormState(jnp.zeros(3, jnp.int32), jnp.ones(3)))
  # The mask is checked on the test path too, where it is unused.
  for mask, error in ((jnp.ones((4, 1), jnp.int32), TypeError), ("abc", TypeError),
                      (jnp.ones((5, 7), bool), ValueError)):
    with pytest.raises(error, match="mask"):
      jr.batch_norm(x, None, None, state, train=False, mask=mask)
