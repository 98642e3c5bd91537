"""Cost of the proximal transforms inside a jitted optax update, on a 10M-parameter pytree.

    python -m benchmarks.bench_penalties            # 10M parameters
    python -m benchmarks.bench_penalties --smoke    # tiny, seconds (CI)

Each step is `updates, state = tx.update(grads, state, params); params = apply_updates(...)`
under one `jax.jit` with the parameters and state donated, as in a training loop. The anchor is
the same chain without the proximal step (`optax.sgd`), timed interleaved in this process.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812


def _stepper(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return jax.jit(step, donate_argnums=(0, 1))


def _time_pair(tx_a, tx_b, params, grads, rounds):
  steps = [_stepper(tx_a), _stepper(tx_b)]
  carries = [(jax.tree.map(jnp.copy, params), tx.init(params)) for tx in (tx_a, tx_b)]
  samples = [[], []]
  for r in range(rounds + 1):
    for i in (0, 1):
      start = time.perf_counter()
      carries[i] = steps[i](*carries[i], grads)
      jax.block_until_ready(carries[i])
      if r:  # the first call compiles
        samples[i].append(time.perf_counter() - start)
  ratios = [a / b for a, b in zip(samples[1], samples[0], strict=True)]
  return statistics.median(samples[1]), statistics.median(samples[0]), statistics.median(ratios)


def run(smoke: bool = False) -> list[dict]:
  leaves, size = (4, 1000) if smoke else (10, 1_000_000)
  rounds = 3 if smoke else 21
  keys = jax.random.split(jax.random.key(0), leaves)
  params = {f"w{i}": jax.random.normal(k, (size,)) for i, k in enumerate(keys)}
  grads = jax.tree.map(lambda p: 0.01 * p, params)
  total = leaves * size
  lr = 0.1
  rows = []
  for key, name, tx in (
      ("l1_prox", "sgd + l1_prox", optax.chain(optax.sgd(lr), jr.l1_prox(1e-4, lr))),
      ("elastic_net_prox", "sgd + elastic_net_prox",
       optax.chain(optax.sgd(lr), jr.elastic_net_prox(1e-4, 1e-3, lr))),
      ("l1_prox_schedule", "sgd + l1_prox, cosine schedule", optax.chain(
          optax.sgd(optax.cosine_decay_schedule(lr, 1000)),
          jr.l1_prox(1e-4, optax.cosine_decay_schedule(lr, 1000)))),
  ):
    t_m, t_a, ratio = _time_pair(optax.sgd(lr), tx, params, grads, rounds)
    rows.append(H.row(f"update: {name}", f"{total / 1e6:g}M params ({leaves} leaves)",
                      "float32", t_m, t_a, ratio, anchor_name="optax.sgd", key=key))
  copy = jax.jit(lambda p: jax.tree.map(lambda a: a * 2, p))
  (t_copy,) = H.time_interleaved([lambda: copy(params)], rounds=rounds)
  rows.append(H.row("copy of the params, for scale", f"{total / 1e6:g}M params", "float32",
                    t_copy, None, None, key="copy"))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
