"""Quick start: dropout and stochastic depth in one jitted training step.

A residual MLP classifies two interleaved spirals (made here, no download). Every residual block
ends in dropout and drop-path; the per-block drop-path rates follow the linear rule of
stochastic depth. The training step is a pure jitted function of (params, opt_state, key,
batch); the test path (`train=False`) is evaluated with the same code, and Monte-Carlo dropout
gives a predictive mean and spread.

    python examples/quickstart.py            # about 10 s on a 2-core CPU
    python examples/quickstart.py --steps 50 # a smoke run
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax

import jaxreg as jr

WIDTH, DEPTH, CLASSES = 64, 6, 2
DROPOUT = 0.1
DROP_PATH = jr.drop_path_rates(0.3, DEPTH)  # 0 for the first block ... 0.3 for the last


def spirals(key, n, noise=0.25):
  """Two interleaved spirals in 2-D, labels 0/1."""
  k_t, k_noise, k_label = jax.random.split(key, 3)
  t = jnp.sqrt(jax.random.uniform(k_t, (n,))) * 3 * jnp.pi
  label = jax.random.bernoulli(k_label, 0.5, (n,)).astype(jnp.int32)
  sign = jnp.where(label == 1, 1.0, -1.0)
  x = sign[:, None] * jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], 1) / (3 * jnp.pi)
  return x + noise / 3 * jax.random.normal(k_noise, x.shape), label


def init(key):
  keys = jax.random.split(key, DEPTH + 2)
  dense = lambda k, i, o: jax.random.normal(k, (i, o)) * jnp.sqrt(2.0 / i)  # noqa: E731
  return {
      "embed": dense(keys[0], 2, WIDTH),
      "blocks": [dense(k, WIDTH, WIDTH) for k in keys[1:-1]],
      "head": 0.1 * dense(keys[-1], WIDTH, CLASSES),
  }


def apply(params, key, x, *, train):
  """Residual MLP; every op that is random at train time gets its own key via fold_in."""
  h = jnp.tanh(x @ params["embed"])
  for i, (w, rate) in enumerate(zip(params["blocks"], DROP_PATH, strict=False)):
    k_drop, k_path = jax.random.split(jax.random.fold_in(key, i)) if train else (None, None)
    branch = jr.dropout(k_drop, jax.nn.relu(h @ w), DROPOUT, train=train)
    h = h + jr.drop_path(k_path, branch, rate, train=train)
  return h @ params["head"]


def loss_fn(params, key, x, y):
  logits = apply(params, key, x, train=True)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


optimizer = optax.adamw(3e-3, weight_decay=1e-4)


@jax.jit
def train_step(params, opt_state, key, x, y):
  loss, grads = jax.value_and_grad(loss_fn)(params, key, x, y)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


@jax.jit
def accuracy(params, x, y):
  return jnp.mean(jnp.argmax(apply(params, None, x, train=False), -1) == y)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=1500, help="training steps (default 1500)")
  parser.add_argument("--seed", type=int, default=0, help="root PRNG seed")
  args = parser.parse_args(argv)

  root = jax.random.key(args.seed)
  k_data, k_test, k_init, k_train, k_mc = jax.random.split(root, 5)
  x_train, y_train = spirals(k_data, 512)
  x_test, y_test = spirals(k_test, 2048)
  params = init(k_init)
  opt_state = optimizer.init(params)

  start = time.perf_counter()
  for step in range(args.steps):
    idx = jax.random.choice(jax.random.fold_in(k_data, step), 512, (128,), replace=False)
    params, opt_state, loss = train_step(params, opt_state, jax.random.fold_in(k_train, step),
                                         x_train[idx], y_train[idx])
    if step % max(1, args.steps // 5) == 0 or step == args.steps - 1:
      print(f"step {step:5d}  loss {float(loss):.4f}")
  elapsed = time.perf_counter() - start

  mean, var = jr.mc_dropout_predict(
      k_mc, lambda k, x: jax.nn.softmax(apply(params, k, x, train=True)), x_test,
      num_samples=32)
  mc_acc = jnp.mean(jnp.argmax(mean, -1) == y_test)
  print(f"\n{args.steps} jitted steps in {elapsed:.1f} s")
  print(f"train accuracy (test path):       {float(accuracy(params, x_train, y_train)):.3f}")
  print(f"test accuracy (test path):        {float(accuracy(params, x_test, y_test)):.3f}")
  print(f"test accuracy (MC dropout, 32):   {float(mc_acc):.3f}")
  print(f"mean predictive std (MC dropout): {float(jnp.sqrt(var).mean()):.3f}")
  return float(accuracy(params, x_test, y_test))


if __name__ == "__main__":
  main()
