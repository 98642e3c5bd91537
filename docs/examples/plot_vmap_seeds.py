"""
Many seeds in one step with jax.vmap
====================================

A training step written as a pure function of ``(params, bn_state, opt_state, key, batch)``
trains one model per root key when it is vmapped over them: parameters, batch-norm running
statistics and optimizer states gain a leading seed axis, and each seed draws its own
initialisation and its own dropout masks. One compilation and one call per step serve all the
seeds. The :doc:`training step guide <../guides/training_step>` builds such a step for a
convolutional network, and :doc:`many seeds on a CPU <../guides/vmap_seeds_cpu>` says what to
watch for with convolutions on a CPU.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import make_moons

import jaxreg as jr

SEEDS, WIDTH = 8, 32

x, y = make_moons(n_samples=1064, noise=0.3, random_state=1)
x = x.astype(np.float32)
x_train, y_train, x_test, y_test = x[:64], y[:64], x[64:], y[64:]  # a small training set


def init(key):
  k1, k2 = jax.random.split(key)
  params = {"w1": jax.random.normal(k1, (2, WIDTH)), "b1": jnp.zeros(WIDTH),
            "scale": jnp.ones(WIDTH), "bias": jnp.zeros(WIDTH),
            "w2": jax.random.normal(k2, (WIDTH, 2)) / jnp.sqrt(WIDTH)}
  return params, jr.batch_norm_init(WIDTH)


def apply(params, bn_state, key, x, *, train):
  h = x @ params["w1"] + params["b1"]
  h, bn_state = jr.batch_norm(h, params["scale"], params["bias"], bn_state, train=train)
  h = jr.dropout(key, jax.nn.relu(h), 0.2, train=train)
  return h @ params["w2"], bn_state


tx = optax.adam(1e-2)


def train_step(params, bn_state, opt_state, key, x, y):
  def loss_fn(params):
    logits, new_state = apply(params, bn_state, key, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_state

  (loss, bn_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = tx.update(grads, opt_state)
  return optax.apply_updates(params, updates), bn_state, opt_state, loss


# %%
# Vmapping the step
# -----------------
# ``in_axes`` says which arguments carry a seed axis: the model's state and the key do, the
# batch does not (every seed sees the same data here; give it an axis to feed each seed its
# own). The step itself is unchanged.


@jax.jit
def seeds_step(params, bn_state, opt_state, step, x, y):
  keys = jax.random.split(jax.random.fold_in(jax.random.key(1), step), SEEDS)  # one per seed
  return jax.vmap(train_step, in_axes=(0, 0, 0, 0, None, None))(params, bn_state, opt_state,
                                                                  keys, x, y)


params, bn_state = jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), SEEDS))
opt_state = jax.vmap(tx.init)(params)
print("first-layer kernels:", params["w1"].shape, "| running means:", bn_state.mean.shape)

losses = []
for step in range(200):
  params, bn_state, opt_state, loss = seeds_step(params, bn_state, opt_state, step,
                                                 x_train, y_train)
  losses.append(loss)
losses = np.asarray(losses)  # (steps, seeds)


@jax.jit
@jax.vmap
def predict(params, bn_state):
  """Every seed's test-path probabilities on the test set and on a grid."""
  test = jax.nn.softmax(apply(params, bn_state, None, x_test, train=False)[0])
  grid = jax.nn.softmax(apply(params, bn_state, None, points, train=False)[0])
  return test, grid


xs, ys = np.meshgrid(np.linspace(-2, 3, 80), np.linspace(-1.5, 2, 80))
points = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
test_probs, grid_probs = (np.asarray(a) for a in predict(params, bn_state))
accuracy = (test_probs.argmax(-1) == y_test).mean(1)
print("test accuracy per seed:", accuracy.round(3))
print(f"mean {accuracy.mean():.3f}, standard deviation {accuracy.std(ddof=1):.3f}; "
      f"the average of the {SEEDS} seeds' probabilities: "
      f"{(test_probs.mean(0).argmax(-1) == y_test).mean():.3f}")

# %%
# Eight models, eight decision boundaries
# ---------------------------------------
# The seeds agree where the training points are dense and disagree in between.

fig = plt.figure(figsize=(10, 5))
ax_loss = fig.add_subplot(1, 3, 1)
ax_loss.plot(losses, lw=0.8)
ax_loss.set(xlabel="step", ylabel="training loss", title="one curve per seed")
for seed in range(SEEDS):
  ax = fig.add_subplot(2, 6, 3 + seed + 2 * (seed // 4))
  ax.contourf(xs, ys, grid_probs[seed, :, 1].reshape(xs.shape), levels=10, cmap="RdBu_r",
              alpha=0.6)
  ax.scatter(x_train[:, 0], x_train[:, 1], c=y_train, cmap="bwr", s=8, edgecolors="k",
             linewidths=0.3)
  ax.set(xticks=[], yticks=[], title=f"seed {seed}")
fig.tight_layout()
plt.show()
