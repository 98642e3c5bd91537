"""
A training step in flax NNX with dropout and batch norm
=======================================================

A small classifier of two interleaved half-moons (``sklearn.datasets.make_moons``, generated,
no download) with one hidden layer, batch norm and dropout, trained by a jitted NNX step. The
two jaxreg ops are pure functions; two thin modules give them their NNX variables, as in the
:doc:`flax NNX guide <../guides/flax_nnx>`:

- `jaxreg.batch_norm` takes a `jaxreg.BatchNormState` and returns the new one; its running
  mean and variance live in two ``nnx.BatchStat`` variables, which the optimizer does not
  touch;
- `jaxreg.dropout` takes a key; it comes from the model's ``"dropout"`` stream, so every step
  draws a new mask.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import make_moons

import jaxreg as jr


class BatchNorm(nnx.Module):
  """jaxreg's batch norm: scale and bias are nnx.Param, the running statistics nnx.BatchStat."""

  def __init__(self, features: int):
    self.scale = nnx.Param(jnp.ones(features))
    self.bias = nnx.Param(jnp.zeros(features))
    running = jr.batch_norm_init(features)  # mean 0, variance 1
    self.mean = nnx.BatchStat(running.mean)
    self.var = nnx.BatchStat(running.var)

  def __call__(self, x, *, train: bool):
    state = jr.BatchNormState(self.mean[...], self.var[...])
    y, state = jr.batch_norm(x, self.scale[...], self.bias[...], state, train=train)
    self.mean[...], self.var[...] = state.mean, state.var  # unchanged on the test path
    return y


class Dropout(nnx.Module):
  """jaxreg's dropout, keyed by a stream of its own forked from the model's "dropout" stream."""

  def __init__(self, rate: float, *, rngs: nnx.Rngs):
    self.rate = rate
    self.rngs = rngs["dropout"].fork()

  def __call__(self, x, *, train: bool):
    return jr.dropout(self.rngs() if train else None, x, self.rate, train=train)


class Model(nnx.Module):
  def __init__(self, *, rngs: nnx.Rngs):
    self.hidden = nnx.Linear(2, 64, rngs=rngs)
    self.norm = BatchNorm(64)
    self.drop = Dropout(0.3, rngs=rngs)
    self.out = nnx.Linear(64, 2, rngs=rngs)

  def __call__(self, x, *, train: bool):
    h = jax.nn.relu(self.norm(self.hidden(x), train=train))
    return self.out(self.drop(h, train=train))


# %%
# The step
# --------
# The forward pass writes the new running statistics and advances the dropout stream;
# ``nnx.value_and_grad`` keeps those updates and differentiates the ``nnx.Param`` only.


@nnx.jit
def train_step(model, optimizer, x, y):
  def loss_fn(model):
    logits = model(x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  loss, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  return loss


@nnx.jit
def predict(model, x):
  return jax.nn.softmax(model(x, train=False))  # running statistics, no dropout


x, y = make_moons(n_samples=512, noise=0.2, random_state=0)
x = x.astype(np.float32)
x_train, y_train, x_test, y_test = x[:256], y[:256], x[256:], y[256:]

model = Model(rngs=nnx.Rngs(params=0, dropout=1))
optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
losses = []
for step in range(150):
  losses.append(float(train_step(model, optimizer, x_train, y_train)))
  if step % 50 == 0:
    print(f"step {step:3d}: loss {losses[-1]:.3f}")
accuracy = (predict(model, x_test).argmax(-1) == y_test).mean()
print(f"test accuracy: {float(accuracy):.3f}")
print("running mean of the first 4 features:", np.asarray(model.norm.mean[...])[:4].round(3) + 0.0)

# %%
# The test path
# -------------
# ``train=False`` normalizes with the running statistics and drops nothing, so it is a
# deterministic function of the input: the decision boundary below.

grid = np.stack(np.meshgrid(np.linspace(-1.6, 2.6, 100), np.linspace(-1.2, 1.7, 100)), -1)
probs = np.asarray(predict(model, grid.reshape(-1, 2).astype(np.float32)))

fig, (ax_loss, ax_boundary) = plt.subplots(1, 2, figsize=(9, 3.5))
ax_loss.plot(losses)
ax_loss.set(xlabel="step", ylabel="training loss (with dropout)")
ax_boundary.contourf(grid[..., 0], grid[..., 1], probs[:, 1].reshape(100, 100),
                     levels=20, cmap="RdBu_r", alpha=0.6)
ax_boundary.scatter(x_test[:, 0], x_test[:, 1], c=y_test, cmap="bwr", s=10,
                    edgecolors="k", linewidths=0.3)
ax_boundary.set(title="test path: P(class 1)", xticks=[], yticks=[])
fig.tight_layout()
plt.show()
