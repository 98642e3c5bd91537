"""Dropout family vs flax.linen.Dropout: time (forward, forward+backward) and step memory.

    python -m benchmarks.bench_dropout            # full sizes (12.8M elements), ~1 min
    python -m benchmarks.bench_dropout --smoke    # tiny sizes, seconds (CI)

Every timing is interleaved with its anchor in this process; the ratio is the median of the
per-round ratios. Memory is XLA's temporary allocation for one compiled training step.
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812


def _forward(op):
  return jax.jit(lambda key, x, g: op(key, x))


def _forward_backward(op):
  """jitted (key, x, g) -> (y, dx) for op(key, x) and an upstream cotangent g."""

  @jax.jit
  def run(key, x, g):
    y, vjp = jax.vjp(lambda x: op(key, x), x)
    (dx,) = vjp(g)
    return y, dx

  return run


def flax_dropout(rate, broadcast_dims=()):
  module = nn.Dropout(rate, broadcast_dims=broadcast_dims, deterministic=False)
  return lambda key, x: module.apply({}, x, rngs={"dropout": key})


def _mlp_step(dropout_fn, depth):
  """One SGD step of a depth-layer MLP with dropout after every hidden layer."""

  def loss(params, key, x, y):
    h = x
    for i, w in enumerate(params):
      h = h @ w
      if i < len(params) - 1:
        h = dropout_fn(jax.random.fold_in(key, i), jax.nn.relu(h))
    return jnp.mean((h - y) ** 2)

  @jax.jit
  def step(params, key, x, y):
    grads = jax.grad(loss)(params, key, x, y)
    return [p - 1e-3 * g for p, g in zip(params, grads, strict=False)]

  return step


def _timing_rows(smoke, rounds):
  rows = []
  n_rows = 128 if smoke else 12_800
  x = jax.random.normal(jax.random.key(1), (n_rows, 1000), jnp.float32)
  g = jax.random.normal(jax.random.key(3), x.shape, jnp.float32)  # cotangent from "upstream"
  key = jax.random.key(0)
  shape = f"{n_rows}x1000"
  copy = jax.jit(lambda x: x * 2.0)
  (t_copy,) = H.time_interleaved([lambda: copy(x)], rounds=rounds)
  rows.append(H.row("copy (x * 2), for scale", shape, "float32", t_copy, None, None,
                    key="copy"))

  cases = []
  for rate in (0.1, 0.5):
    for recompute in (False, True):
      op = lambda k, x, r=rate, rc=recompute: jr.dropout(  # noqa: E731
          k, x, r, train=True, recompute_mask=rc)
      cases.append((f"{'recompute_' * recompute}fwd_bwd_rate{rate}",
                    f"dropout forward+backward, rate {rate}{', recompute_mask' * recompute}",
                    op, flax_dropout(rate), _forward_backward))
  cases.append(("fwd_rate0.1", "dropout forward, rate 0.1",
                lambda k, x: jr.dropout(k, x, 0.1, train=True), flax_dropout(0.1), _forward))
  for key_, name, op, anchor_op, wrap in cases:
    mine, anchor = wrap(op), wrap(anchor_op)
    t_m, t_a, ratio = H.median_ratio(lambda m=mine: m(key, x, g),
                                     lambda a=anchor: a(key, x, g), rounds=rounds)
    rows.append(H.row(name, shape, "float32", t_m, t_a, ratio,
                      anchor_name="flax.linen.Dropout",
                      temp=f"{t_m / t_copy:.1f}x copy", key=key_))

  # Channel dropout and drop-path against flax's broadcast_dims form of the same thing.
  side = 8 if smoke else 56
  maps = jax.random.normal(jax.random.key(4), (64, side, side, 64), jnp.float32)
  gmaps = jnp.ones_like(maps)
  nhwc = f"64x{side}x{side}x64"
  for key_, name, op, anchor_op in (
      ("channel_dropout", "channel_dropout forward+backward, rate 0.1",
       lambda k, x: jr.channel_dropout(k, x, 0.1, train=True), flax_dropout(0.1, (1, 2))),
      ("drop_path", "drop_path forward+backward, rate 0.1",
       lambda k, x: jr.drop_path(k, x, 0.1, train=True), flax_dropout(0.1, (1, 2, 3))),
  ):
    mine, anchor = _forward_backward(op), _forward_backward(anchor_op)
    t_m, t_a, ratio = H.median_ratio(lambda m=mine: m(key, maps, gmaps),
                                     lambda a=anchor: a(key, maps, gmaps), rounds=rounds)
    rows.append(H.row(name, nhwc, "float32", t_m, t_a, ratio,
                      anchor_name="flax.linen.Dropout(broadcast_dims)", key=key_))
  block = _forward_backward(lambda k, x: jr.drop_block(k, x, 0.1, train=True, block_size=7))
  (t_block,) = H.time_interleaved([lambda: block(key, maps, gmaps)], rounds=rounds)
  rows.append(H.row("drop_block forward+backward, rate 0.1, block 7 (no anchor)", nhwc,
                    "float32", t_block, None, None, key="drop_block"))
  return rows


def _memory_rows(smoke, rounds):
  depth, width, batch = (8, 64, 16) if smoke else (8, 1024, 512)
  keys = jax.random.split(jax.random.key(2), depth)
  params = [jax.random.normal(k, (width, width)) / width**0.5 for k in keys]
  xb, yb = jnp.ones((batch, width)), jnp.zeros((batch, width))
  key = jax.random.key(0)
  none_temp = H.temp_bytes(_mlp_step(lambda k, h: h, depth), params, key, xb, yb)
  anchor_step = _mlp_step(flax_dropout(0.1), depth)
  anchor_temp = H.temp_bytes(anchor_step, params, key, xb, yb)
  rows = []
  for label, recompute in (("", False), (", recompute_mask", True)):
    step = _mlp_step(lambda k, h, rc=recompute: jr.dropout(k, h, 0.1, train=True,
                                                           recompute_mask=rc), depth)
    temp = H.temp_bytes(step, params, key, xb, yb)
    t_m, t_a, ratio = H.median_ratio(lambda s=step: s(params, key, xb, yb),
                                     lambda: anchor_step(params, key, xb, yb), rounds=rounds)
    rows.append(H.row(
        f"{depth}-layer MLP training step, dropout 0.1{label}", f"{depth}x({batch}x{width})",
        "float32", t_m, t_a, ratio, anchor_name="flax.linen.Dropout",
        temp=f"no dropout {none_temp:,}", key="mlp_step" + "_recompute" * recompute,
        temp_bytes=temp, anchor_temp_bytes=anchor_temp, no_dropout_temp_bytes=none_temp,
        temp_ratio=temp / anchor_temp))
  return rows


def run(smoke: bool = False) -> list[dict]:
  rounds = 3 if smoke else 15
  return _timing_rows(smoke, rounds) + _memory_rows(smoke, rounds)


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
