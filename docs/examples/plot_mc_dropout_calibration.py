"""
Calibration: Monte-Carlo dropout and a reliability diagram
==========================================================

At test time, dropout's expectation over masks is taken in closed form for one layer
(``train=False`` is the identity), but not for a whole network. `jaxreg.mc_dropout_predict`
estimates the network's predictive distribution instead: it runs the training path under many
dropout keys and averages the probabilities (Gal & Ghahramani 2016). Here a small network
trained on 300 of scikit-learn's 8x8 digits (bundled with scikit-learn) is evaluated both ways
on the remaining digits, and a reliability diagram compares how well each path's confidence
matches its accuracy. The :doc:`marginalization guide <../guides/marginalization>` has more.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import load_digits

import jaxreg as jr

digits = load_digits()
x_all = (digits.data / 16).astype(np.float32)  # (1797, 64) in [0, 1]
y_all = digits.target
x_train, y_train, x_test, y_test = x_all[:300], y_all[:300], x_all[300:], y_all[300:]


@jax.jit
def init(key):
  k1, k2 = jax.random.split(key)
  return {"w1": jax.random.normal(k1, (64, 128)) * jnp.sqrt(2 / 64), "b1": jnp.zeros(128),
          "w2": jax.random.normal(k2, (128, 10)) * 0.01, "b2": jnp.zeros(10)}


def apply(params, key, x, *, train):
  h = jax.nn.relu(x @ params["w1"] + params["b1"])
  h = jr.dropout(key, h, 0.5, train=train)
  return h @ params["w2"] + params["b2"]  # logits


tx = optax.adam(3e-3)


@jax.jit
def train(params, key):
  def step(i, carry):
    params, opt_state = carry

    def loss_fn(params):
      logits = apply(params, jax.random.fold_in(key, i), x_train, train=True)
      return optax.softmax_cross_entropy_with_integer_labels(logits, y_train).mean()

    updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state)
    return optax.apply_updates(params, updates), opt_state

  return jax.lax.fori_loop(0, 300, step, (params, tx.init(params)))[0]


params = train(init(jax.random.key(0)), jax.random.key(1))

# %%
# Two test paths
# --------------
# The deterministic path is the network with ``train=False``. The Monte-Carlo path runs the
# training path under 64 keys; it averages probabilities, not logits, and the variance over
# samples is a per-example spread.


@jax.jit
def predict(params, x):
  deterministic = jax.nn.softmax(apply(params, None, x, train=False))
  sample = lambda key, x: jax.nn.softmax(apply(params, key, x, train=True))  # noqa: E731
  mc_mean, mc_var = jr.mc_dropout_predict(jax.random.key(2), sample, x, num_samples=64)
  return deterministic, mc_mean, mc_var


deterministic, mc_mean, mc_var = (np.asarray(a) for a in predict(params, x_test))


def reliability(probs, labels, num_bins=10):
  """Per equal-width confidence bin: count, mean confidence, accuracy; and the ECE."""
  confidence, correct = probs.max(1), probs.argmax(1) == labels
  index = np.clip(np.ceil(confidence * num_bins).astype(int) - 1, 0, num_bins - 1)
  count = np.bincount(index, minlength=num_bins)
  mean = lambda v: np.bincount(index, v, num_bins) / np.maximum(count, 1)  # noqa: E731
  conf, acc = mean(confidence), mean(correct)
  return count, conf, acc, np.sum(count / len(labels) * np.abs(acc - conf))


paths = {"deterministic": deterministic, "MC dropout, 64 samples": mc_mean}
for name, probs in paths.items():
  nll = -np.mean(np.log(probs[np.arange(len(y_test)), y_test] + 1e-12))
  print(f"{name:>24}: accuracy {np.mean(probs.argmax(1) == y_test):.3f}, NLL {nll:.3f}, "
        f"ECE {reliability(probs, y_test)[3]:.3f}")

# %%
# The reliability diagram
# -----------------------
# Each test example falls in the bin of its confidence (its largest probability); a bin's bar
# is the fraction of its examples predicted correctly. A calibrated path has its bars on the
# diagonal; bars below it are overconfidence. On the right, the Monte-Carlo spread of the
# predicted class's probability, for the examples predicted right and wrong.

fig, (ax_rel, ax_spread) = plt.subplots(1, 2, figsize=(9, 3.8))
edges = np.linspace(0, 1, 11)
for (name, probs), offset in zip(paths.items(), (-0.025, 0.025), strict=True):
  count, conf, acc, ece = reliability(probs, y_test)
  shown = count > 0
  ax_rel.bar((edges[:-1] + 0.05 + offset)[shown], acc[shown], width=0.05,
             label=f"{name} (ECE {ece:.3f})")
ax_rel.plot([0, 1], [0, 1], "k--", lw=1)
ax_rel.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
ax_rel.legend(fontsize=8, loc="upper left")

predicted = mc_mean.argmax(1)
spread = np.sqrt(mc_var[np.arange(len(y_test)), predicted])
right = predicted == y_test
ax_spread.hist([spread[right], spread[~right]], bins=20, density=True,
               label=["predicted right", "predicted wrong"])
ax_spread.set(xlabel="MC standard deviation of the predicted class", ylabel="density")
ax_spread.legend(fontsize=8)
fig.tight_layout()
plt.show()
