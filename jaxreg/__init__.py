"""jaxreg: the regularizers deep-learning models train with, as pure JAX functions.

Each regularizer has a training path that injects randomness (or uses batch statistics) and a
test path that returns its expectation, chosen by the keyword-only ``train`` flag. Randomness comes
from an explicit PRNG key passed first; state goes in and comes out.

    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> y = jr.dropout(jax.random.key(0), jnp.ones(8), 0.1, train=True)
"""

from jaxreg.batchnorm import BatchNormState as BatchNormState
from jaxreg.batchnorm import batch_norm as batch_norm
from jaxreg.batchnorm import batch_norm_init as batch_norm_init
from jaxreg.dropouts import channel_dropout as channel_dropout
from jaxreg.dropouts import drop_block as drop_block
from jaxreg.dropouts import drop_path as drop_path
from jaxreg.dropouts import drop_path_rates as drop_path_rates
from jaxreg.dropouts import dropout as dropout
from jaxreg.marginal import mc_dropout_predict as mc_dropout_predict

__version__ = "0.1.0"

__all__ = [
    "BatchNormState",
    "__version__",
    "batch_norm",
    "batch_norm_init",
    "channel_dropout",
    "drop_block",
    "drop_path",
    "drop_path_rates",
    "dropout",
    "mc_dropout_predict",
]
