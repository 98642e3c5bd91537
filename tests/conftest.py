"""Test-suite settings, as equinox does for its own suite.

* `jax_debug_key_reuse` makes JAX raise when a typed key is consumed twice, which catches an op
  that draws two things from one key. Tests that reuse a key on purpose ("same key, same
  output") say so with `reuse_keys()`.
* Strict dtype promotion catches silent float64/weak-type promotions inside the library.
"""

import contextlib

import jax
import pytest

jax.config.update("jax_debug_key_reuse", True)


@pytest.fixture(autouse=True)
def _strict_promotion(request):
  # Third-party code (optax's schedules and Adam, user examples) is written for JAX's standard
  # promotion; tests that run it say so with @pytest.mark.standard_promotion.
  mode = "standard" if request.node.get_closest_marker("standard_promotion") else "strict"
  with jax.numpy_dtype_promotion(mode):
    yield


def pytest_configure(config):
  config.addinivalue_line("markers", "standard_promotion: run under JAX's standard promotion")


@contextlib.contextmanager
def reuse_keys():
  """Allows a deliberately reused key inside the block."""
  with jax.debug_key_reuse(False):
    yield
