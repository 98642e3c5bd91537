"""Batch norm vs flax.linen.BatchNorm: forward+backward time and training-step memory.

    python -m benchmarks.bench_batchnorm            # full sizes, ~1 min on CPU (batch 256 on GPU)
    python -m benchmarks.bench_batchnorm --smoke    # tiny sizes, seconds (CI)

Timings are interleaved with the anchor in this process and reported as the median of the
per-round ratios; memory is XLA's temporary allocation of one compiled training step.
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812


def jaxreg_train(x, scale, bias, state):
  return jr.batch_norm(x, scale, bias, state, train=True)


def flax_train(fast_variance, dtype=jnp.float32):
  # dtype=x.dtype: flax then returns the input dtype (statistics stay float32), like jaxreg.
  module = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5,
                        use_fast_variance=fast_variance, dtype=dtype)

  def apply(x, scale, bias, state):
    variables = {"params": {"scale": scale, "bias": bias},
                 "batch_stats": {"mean": state.mean, "var": state.var}}
    y, updates = module.apply(variables, x, mutable=["batch_stats"])
    return y, jr.BatchNormState(updates["batch_stats"]["mean"], updates["batch_stats"]["var"])

  return apply


def _forward_backward(bn):
  @jax.jit
  def step(x, scale, bias, state, g):
    def f(x, s, b):
      return bn(x, s, b, state)

    (y, new_state), vjp = jax.vjp(f, x, scale, bias)
    grads = vjp((g, jax.tree.map(jnp.zeros_like, new_state)))
    return y, new_state, grads

  return step


def _timing_rows_for(dtype, shape, rounds, smoke):
  x = (jax.random.normal(jax.random.key(0), shape) * 2 + 3).astype(dtype)
  g = jax.random.normal(jax.random.key(1), shape).astype(dtype)
  c = shape[-1]
  scale, bias, state = jnp.ones(c), jnp.zeros(c), jr.batch_norm_init(c)
  # In a default process every call's outputs and temporaries are fresh pages that the kernel
  # maps in and, once freed, takes back, and a call pays for the previous call's pages too:
  # jaxreg's step is slower right after flax's two-pass step (which frees three full-size
  # buffers) than right after flax's default. One untimed call of the same step before each
  # sample makes every sample pay only for its own library's pages. See
  # docs/design/measuring.md.
  lead_calls = 0 if smoke else 1
  copy = jax.jit(lambda x: x * 2)
  (t_copy,) = H.time_interleaved([lambda: copy(x)], rounds=rounds, lead_calls=lead_calls)
  mine = _forward_backward(jaxreg_train)
  label = "x".join(map(str, shape))
  rows = []
  dtype_name = jnp.dtype(dtype).name
  for name, fast in (("flax default", True), ("flax two-pass", False)):
    anchor = _forward_backward(flax_train(fast, dtype))
    t_m, t_a, ratio = H.median_ratio(lambda: mine(x, scale, bias, state, g),
                                     lambda a=anchor: a(x, scale, bias, state, g),
                                     rounds=rounds, lead_calls=lead_calls)
    rows.append(H.row(f"batch_norm forward+backward, {dtype_name}", label, dtype_name, t_m,
                      t_a, ratio, anchor_name=f"{name} nn.BatchNorm",
                      temp=f"{t_m / t_copy:.1f}x copy",
                      key=f"fwd_bwd_{dtype_name}_{'default' if fast else 'two_pass'}",
                      copy_seconds=t_copy))
  return rows


def _timing_rows(smoke, rounds):
  # Benchmark sizes: 64x56x56x64 on the CPU, 256x56x56x64 on an accelerator.
  batch = 64 if jax.devices()[0].platform == "cpu" else 256
  shape = (8, 8, 8, 16) if smoke else (batch, 56, 56, 64)
  return [row for dtype in (jnp.float32, jnp.bfloat16)
          for row in _timing_rows_for(dtype, shape, rounds, smoke)]


def _mlp_step(bn_apply, blocks):
  """SGD step of `blocks` x (Dense -> BatchNorm -> ReLU) with batch statistics."""

  def loss(params, states, x):
    h, new_states = x, []
    for (w, scale, bias), state in zip(params, states, strict=True):
      h, state = bn_apply(h @ w, scale, bias, state)
      h = jax.nn.relu(h)
      new_states.append(state)
    return jnp.mean(jnp.square(h.astype(jnp.float32))), new_states

  @jax.jit
  def step(params, states, x):
    grads, new_states = jax.grad(loss, has_aux=True)(params, states, x)
    params = jax.tree.map(lambda p, g: p - (1e-3 * g).astype(p.dtype), params, grads)
    return params, new_states

  return step


def mlp_sizes(smoke: bool) -> tuple[int, int, int]:
  """(blocks, batch, width) of the memory rows' training step."""
  return (8, 16, 32) if smoke else (8, 512, 1024)


def mlp_inputs(blocks: int, batch: int, width: int, dtype) -> tuple[list, list, jax.Array]:
  """(params, states, x) of `_mlp_step`'s network: ``blocks`` (kernel, scale, bias) triples
  and batch-norm states, and a (batch, width) input, in ``dtype``."""
  keys = jax.random.split(jax.random.key(0), blocks)
  params = [((jax.random.normal(k, (width, width)) / width**0.5).astype(dtype),
             jnp.ones(width, dtype), jnp.zeros(width, dtype)) for k in keys]
  states = [jr.batch_norm_init(width) for _ in range(blocks)]
  return params, states, jnp.ones((batch, width), dtype)


def _memory_rows(smoke):
  blocks, batch, width = mlp_sizes(smoke)
  rows = []
  for dtype in (jnp.float32, jnp.bfloat16):
    params, states, x = mlp_inputs(blocks, batch, width, dtype)
    mine = H.temp_bytes(_mlp_step(jaxreg_train, blocks), params, states, x)
    theirs = H.temp_bytes(_mlp_step(flax_train(True, dtype), blocks), params, states, x)
    name = jnp.dtype(dtype).name
    rows.append(H.row(f"{blocks} x (Dense -> BatchNorm -> ReLU) training step, {name}",
                      f"{batch}x{width}", name, None, None, mine / theirs,
                      anchor_name="flax default nn.BatchNorm", key=f"mlp_step_{name}",
                      temp_bytes=mine, anchor_temp_bytes=theirs, temp_ratio=mine / theirs))
  return rows


def run(smoke: bool = False) -> list[dict]:
  rounds = 3 if smoke else 15
  return _timing_rows(smoke, rounds) + _memory_rows(smoke)


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
