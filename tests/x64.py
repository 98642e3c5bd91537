"""`enable_x64` on every supported JAX: public as `jax.enable_x64` from JAX 0.8.0, and in
`jax.experimental` in the older releases down to the declared minimum (0.6.1)."""

import jax

try:
  enable_x64 = jax.enable_x64
except AttributeError:  # JAX < 0.8.0
  from jax.experimental import enable_x64  # noqa: F401
