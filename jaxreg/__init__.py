"""jaxreg: the regularizers deep-learning models train with, as pure JAX functions.

Each random regularizer has a training path that injects randomness (or uses batch statistics)
and a test path that returns its expectation; where both are one op (the dropout family, batch
norm) the keyword-only ``train`` flag chooses. Augmentation's test-time views are functions of
their own, and penalties have no random path. Randomness comes from an explicit PRNG key passed
first; state goes in and comes out.

    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> y = jr.dropout(jax.random.key(0), jnp.ones(8), 0.1, train=True)
"""

from jaxreg import augment as augment
from jaxreg._batch_norm import BatchNormState as BatchNormState
from jaxreg._batch_norm import batch_norm as batch_norm
from jaxreg._batch_norm import batch_norm_init as batch_norm_init
from jaxreg._drop_block import drop_block as drop_block
from jaxreg._dropout import channel_dropout as channel_dropout
from jaxreg._dropout import drop_path as drop_path
from jaxreg._dropout import drop_path_rates as drop_path_rates
from jaxreg._dropout import dropout as dropout
from jaxreg._marginal import mc_dropout_predict as mc_dropout_predict
from jaxreg._parallel import device_key as device_key
from jaxreg._parallel import record_keys as record_keys
from jaxreg._penalties import add_l2_decay as add_l2_decay
from jaxreg._penalties import decay_mask as decay_mask
from jaxreg._penalties import elastic_net_penalty as elastic_net_penalty
from jaxreg._penalties import l1_penalty as l1_penalty
from jaxreg._penalties import l2_penalty as l2_penalty
from jaxreg._prox import ProxState as ProxState
from jaxreg._prox import elastic_net_prox as elastic_net_prox
from jaxreg._prox import l1_prox as l1_prox

__version__ = "0.1.0"

__all__ = [
    "BatchNormState",
    "ProxState",
    "__version__",
    "add_l2_decay",
    "augment",
    "batch_norm",
    "batch_norm_init",
    "channel_dropout",
    "decay_mask",
    "device_key",
    "drop_block",
    "drop_path",
    "drop_path_rates",
    "dropout",
    "elastic_net_penalty",
    "elastic_net_prox",
    "l1_penalty",
    "l1_prox",
    "l2_penalty",
    "mc_dropout_predict",
    "record_keys",
]
