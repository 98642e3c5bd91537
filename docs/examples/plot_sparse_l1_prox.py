"""
Sparse models: exact zeros with the proximal L1 step
====================================================

An L1 penalty added to the loss shrinks weights, but gradient descent on it almost never puts a
weight exactly on zero: the subgradient ``sign(w)`` overshoots and the weight oscillates
around 0. `jaxreg.l1_prox` applies the penalty's proximal operator (soft-thresholding) after
the optimizer's update instead, and a weight whose magnitude falls below
``learning_rate * strength`` becomes exactly 0. With plain SGD at step size ``1/L`` this is
ISTA, which solves the Lasso. The :doc:`sparse models guide <../guides/sparse_models>` has the
details, `jaxreg.elastic_net_prox` and the neural-network case.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import make_regression
from sklearn.linear_model import Lasso

import jaxreg as jr

X, y = make_regression(n_samples=200, n_features=30, n_informative=5, noise=5.0,
                       random_state=0)
X, y = X.astype(np.float32), y.astype(np.float32)
lr = float(1.0 / np.linalg.eigvalsh(X.T @ X / len(y)).max())  # 1 / L


def data_term(w):
  return 0.5 * jnp.mean((y - X @ w) ** 2)  # scikit-learn's Lasso data term


def fit(tx, loss, steps=1000):
  def body(_, carry):
    w, state = carry
    updates, state = tx.update(jax.grad(loss)(w), state, w)
    return optax.apply_updates(w, updates), state

  w = jnp.zeros(X.shape[1])
  return jax.lax.fori_loop(0, steps, body, (w, tx.init(w)))[0]


# %%
# The Lasso path in one program
# -----------------------------
# The strength may be a traced value, so ``jax.vmap`` fits every strength of the path at once.


@jax.jit
@jax.vmap
def lasso_path(alpha):
  return fit(optax.chain(optax.sgd(lr), jr.l1_prox(alpha, lr)), data_term)


alphas = np.geomspace(0.1, 100.0, 24).astype(np.float32)
path = np.asarray(lasso_path(alphas))
for alpha, w in list(zip(alphas, path, strict=True))[::4]:
  print(f"alpha {alpha:7.2f}: {np.sum(w == 0):2d} of {w.size} coefficients exactly 0")

alpha, w_prox = float(alphas[10]), path[10]  # one point of the path, against scikit-learn
w_sklearn = Lasso(alpha=alpha, fit_intercept=False, tol=1e-8).fit(X.astype(float), y).coef_
print(f"alpha {alpha:.2f}: largest difference from scikit-learn's Lasso",
      np.abs(w_prox - w_sklearn).max())

# %%
# The penalty in the loss instead
# -------------------------------
# The same strength as a loss term, ``alpha * jaxreg.l1_penalty(w)``, with the same optimizer:
# the small coefficients shrink towards 0 and stay near it, none of them exactly 0. On the
# right, a symmetric-log axis separates the values near 0 from 0 itself.


@jax.jit
def fit_with_penalty(alpha):
  return fit(optax.sgd(lr), lambda w: data_term(w) + alpha * jr.l1_penalty(w))


w_subgradient = np.asarray(fit_with_penalty(alpha))
print("exact zeros: proximal", np.sum(w_prox == 0), "| penalty in the loss",
      np.sum(w_subgradient == 0))

fig, (ax_path, ax_zeros) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_path.plot(alphas, path, lw=1)
ax_path.set(xscale="log", xlabel="alpha (L1 strength)", ylabel="coefficient",
            title="Lasso path by proximal SGD")
index = np.arange(X.shape[1])
ax_zeros.plot(index, w_subgradient, "o", mfc="none", label="penalty in the loss")
ax_zeros.plot(index, w_prox, "x", label="jaxreg.l1_prox")
ax_zeros.set_yscale("symlog", linthresh=1e-4)
ax_zeros.set(xlabel="coefficient index", ylabel="value (symlog)",
             title=f"alpha {alpha:.2f}")
ax_zeros.legend(fontsize=8)
fig.tight_layout()
plt.show()
