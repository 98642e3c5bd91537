"""Argument validation shared by every regularizer family.

Everything here runs at trace time: it inspects Python values, shapes and dtypes, never array
contents that might be traced. Errors name the value received and what was expected, so that a
mistake surfaces at the call site instead of as a NaN three layers later.

Every validator takes the value first, then the public op's name and the argument's name,
then keyword-only options: ``check_x(value, op, name, *, lo=..., hi=...)``, and returns the
value it checked (converted where it says). Bounds are always ``lo`` and ``hi``, closed unless
``lo_open`` or ``hi_open`` says otherwise. The allowed values of a string option are the
arguments of its ``Literal`` type (``typing.get_args``), checked by `check_choice`.
`jaxreg/augment/_image_checks.py` adds the image-specific checks in the same style.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_bool(value: object, op: str, name: str, hint: str = "") -> bool:
  """``value`` as a Python bool; only a Python or NumPy bool is accepted.

  Flags choose code paths at trace time: a truthy string or an array would silently pick one,
  and a traced flag has no value to choose with.
  """
  if isinstance(value, (bool, np.bool_)):
    return bool(value)
  if is_traced(value):
    raise TypeError(f"{op}: `{name}` must be a bool (Python or NumPy), got a traced value "
                    f"{value!r}: it chooses a code path at trace time, so pass it as a static "
                    f"argument (e.g. `jax.jit(..., static_argnames=...)`).{hint}")
  raise TypeError(f"{op}: `{name}` must be a bool (Python or NumPy), got {value!r} of type "
                  f"{type(value).__name__}.{hint}")


def check_train(train: object, op: str) -> bool:
  """Returns ``train`` as a Python bool; rejects anything that could be traced or ambiguous."""
  return check_bool(train, op, "train", " True takes the training path, False the test "
                    "path; to switch paths on a traced value, call the op twice under "
                    "`jax.lax.cond`.")


def is_traced(value: object) -> bool:
  """True when ``value`` is an abstract value under `jit`, `vmap` or `grad`."""
  return isinstance(value, jax.core.Tracer)


def as_key(key: object, op: str, *, has_train: bool = False) -> jax.Array:
  """Returns ``key`` as a typed PRNG key array of shape ``()``.

  Accepts typed keys (``jax.random.key``) and legacy raw keys (``jax.random.PRNGKey``: a
  ``uint32`` array whose trailing shape matches the default PRNG implementation).
  ``has_train``: the op has a ``train`` flag whose test path needs no key (the message says so).
  """
  if key is None:
    where = "the training path needs" if has_train else "needs"
    alternative = (", or use `train=False` for the deterministic test path" if has_train
                   else "")
    raise ValueError(
        f"{op}: {where} a PRNG key, got None for `key`. Pass `jax.random.key(seed)` (or a key "
        f"split from one){alternative}."
    )
  if not isinstance(key, (jax.Array, np.ndarray)):
    raise TypeError(
        f"{op}: `key` must be a PRNG key from `jax.random.key` or `jax.random.PRNGKey`, got "
        f"{type(key).__name__}."
    )
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    if key.shape != ():
      raise ValueError(
          f"{op}: `key` must be a single PRNG key (shape ()), got a key array of shape "
          f"{key.shape}. "
          "To use one key per example, `jax.vmap` the op over the keys."
      )
    return key
  if key.dtype == jnp.uint32 and key.ndim == 1:
    return _wrap_raw(key, op)
  raise TypeError(
      f"{op}: `key` must be a PRNG key from `jax.random.key` or `jax.random.PRNGKey`, got an "
      f"array of dtype {key.dtype} and shape {key.shape}. (Keys are passed first: "
      f"`{op}(key, x, ...)`.)"
  )


def as_keys(key: object, op: str, *, count: int) -> jax.Array:
  """``count`` typed PRNG keys, shape ``(count,)``: one per example.

  ``key`` is either one key (typed or legacy), split ``count`` ways, or already one key per
  example: typed keys of shape ``(count,)`` or legacy raw keys of shape ``(count, 2)`` (as
  `jaxreg.record_keys` or ``jax.random.split`` give).
  """
  if isinstance(key, (jax.Array, np.ndarray)):
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if (typed and key.ndim == 1) or (not typed and key.dtype == jnp.uint32 and key.ndim == 2):
      if key.shape[0] != count:
        raise ValueError(
            f"{op}: `key` holds {key.shape[0]} keys (shape {key.shape}), but the batch has "
            f"{count} examples; pass one key, or one key per example."
        )
      return key if typed else _wrap_raw(key, op)
  return jax.random.split(as_key(key, op), count)


def _wrap_raw(key: jax.Array | np.ndarray, op: str) -> jax.Array:
  """Legacy raw uint32 key data (one key or a batch) as typed keys of the default PRNG."""
  try:
    return jax.random.wrap_key_data(key)
  except (ValueError, TypeError) as err:
    raise ValueError(
        f"{op}: `key`, raw uint32 key data of shape {key.shape}, does not match the default "
        f"PRNG implementation: {err}"
    ) from err


def concrete_scalar(value: object, op: str, name: str) -> float | None:
  """Returns ``value`` as a float if it is known at trace time, None if it is traced.

  Raises if the value is not a real scalar.
  """
  if is_traced(value):
    if jnp.ndim(value) != 0:
      raise ValueError(f"{op}: `{name}` must be a scalar, got shape {jnp.shape(value)}.")
    if not jnp.issubdtype(jnp.result_type(value), jnp.floating) and not jnp.issubdtype(
        jnp.result_type(value), jnp.integer
    ):
      raise TypeError(f"{op}: `{name}` must be a real number, got dtype {value.dtype}.")
    return None
  if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
    raise TypeError(
        f"{op}: `{name}` must be a real number, got {value!r} of type {type(value).__name__}."
    )
  if np.ndim(value) != 0:
    raise ValueError(f"{op}: `{name}` must be a scalar, got shape {np.shape(value)}.")
  return float(value)


def check_rate(rate: object, op: str, name: str = "rate") -> float | None:
  """Validates a drop probability; returns it as a float, or None when it is traced."""
  value = concrete_scalar(rate, op, name)
  if value is not None and not 0.0 <= value <= 1.0:  # also rejects NaN
    raise ValueError(
        f"{op}: `{name}` is the probability of DROPPING and must be in [0, 1], got {rate!r}."
    )
  return value


def check_interval(value: object, op: str, name: str, *, lo: float = -math.inf,
                   hi: float = math.inf, lo_open: bool = False,
                   hi_open: bool = False) -> float | None:
  """Checks a scalar lies in [lo, hi] (``lo_open``, ``hi_open``: without that end) when known
  at trace time.

  Returns it as a float, or None when it is traced. NaN and infinities are rejected: no
  parameter of this library means anything at infinity, and inf times a zero is NaN.
  """
  concrete = concrete_scalar(value, op, name)
  if concrete is None:
    return None
  if not math.isfinite(concrete):
    raise ValueError(f"{op}: `{name}` must be a finite number, got {value!r}.")
  if not ((lo < concrete if lo_open else lo <= concrete)
          and (concrete < hi if hi_open else concrete <= hi)):
    if hi == math.inf:
      bound = f"> {lo}" if lo_open else f">= {lo}"
    else:
      bound = f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    raise ValueError(f"{op}: `{name}` must be {bound}, got {value!r}.")
  return concrete


def check_float_array(x: object, op: str, name: str = "x", *,
                      alternative: str | None = None, image: bool = False) -> jax.Array:
  """Converts ``x`` to a JAX array and checks it holds floating-point values (the message names
  an ``alternative`` dtype the caller also takes, checked by the caller). ``image``: ``x`` is
  an image on the [0, 1] scale, so the advice for integer levels divides by 255."""
  kind = "a floating-point" if alternative is None else f"a floating-point or {alternative}"
  if isinstance(x, (str, bytes)) or x is None:
    raise TypeError(f"{op}: `{name}` must be {kind} array, got {x!r}.")
  dtype = jnp.result_type(x) if hasattr(x, "dtype") else None
  x = jnp.asarray(x)
  dtype = x.dtype if dtype is None else dtype
  if not jnp.issubdtype(dtype, jnp.floating):
    if alternative is not None:
      hint = (f"`{name}.astype(jnp.float32) / 255` for levels 0-255 in [0, 1], or "
              f"`{name}.astype(jnp.uint8)`")
    elif image:
      hint = f"`{name}.astype(jnp.float32) / 255` for levels 0-255 in [0, 1]"
    else:
      hint = f"`{name}.astype(jnp.float32)`"
    raise TypeError(f"{op}: `{name}` must be {kind} array, got dtype {dtype}. Convert it "
                    f"first, e.g. {hint}.")
  return x


def check_ndim(x: jax.Array, op: str, name: str = "x", *, min_ndim: int = 0,
               exact: int | None = None, layout: str = "") -> None:
  """Checks the rank of ``x``."""
  hint = f" ({layout})" if layout else ""
  if exact is not None and x.ndim != exact:
    raise ValueError(f"{op}: `{name}` must have {exact} dimensions{hint}, got shape {x.shape}.")
  if x.ndim < min_ndim:
    raise ValueError(
        f"{op}: `{name}` must have at least {min_ndim} dimensions{hint}, got shape {x.shape}."
    )


def normalize_axes(axes: int | Sequence[int], op: str, name: str, *,
                   ndim: int) -> tuple[int, ...]:
  """``axes`` of an ``ndim``-dimensional array as a sorted tuple of non-negative ints; rejects
  bad or repeated axes."""
  items = (axes,) if isinstance(axes, (numbers.Integral, np.integer)) else axes
  try:
    items = tuple(items)
  except TypeError as err:
    raise TypeError(f"{op}: `{name}` must be an int or a sequence of ints, got {axes!r}.") from err
  result = []
  for axis in items:
    if isinstance(axis, bool) or not isinstance(axis, (numbers.Integral, np.integer)):
      raise TypeError(f"{op}: `{name}` must contain ints, got {axis!r} in {axes!r}.")
    if not -ndim <= axis < ndim:
      raise ValueError(
          f"{op}: axis {axis} in `{name}`={axes!r} is out of range for an array with {ndim} "
          f"dimensions (valid: {-ndim}..{ndim - 1})."
      )
    result.append(int(axis) % ndim)
  if len(set(result)) != len(result):
    raise ValueError(f"{op}: `{name}`={axes!r} repeats an axis.")
  return tuple(sorted(result))


def check_positive_int(value: object, op: str, name: str) -> int:
  """Checks ``value`` is a Python/numpy int >= 1 and returns it as int."""
  if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
    raise TypeError(f"{op}: `{name}` must be a positive int, got {value!r}.")
  if value < 1:
    raise ValueError(f"{op}: `{name}` must be >= 1, got {value!r}.")
  return int(value)


def check_int(value: object, op: str, name: str, *, lo: int, hi: int | None = None,
              allowed: str = "") -> int:
  """A Python or NumPy int in [lo, hi] (no upper bound when ``hi`` is None), as an int;
  ``allowed`` describes the valid values in the messages (default: the interval)."""
  allowed = allowed or (f"an int in [{lo}, {hi}]" if hi is not None else f"an int >= {lo}")
  if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
    raise TypeError(f"{op}: `{name}` must be {allowed}, got {value!r} of type "
                    f"{type(value).__name__}.")
  if value < lo or (hi is not None and value > hi):
    raise ValueError(f"{op}: `{name}` must be {allowed}, got {value!r}.")
  return int(value)


def check_choice(value: object, op: str, name: str, *, choices: tuple[str, ...]) -> str:
  """One of the strings ``choices`` (a ``Literal``'s arguments, from ``typing.get_args``)."""
  if not isinstance(value, str) or value not in choices:
    raise ValueError(f"{op}: `{name}` must be one of {choices}, got {value!r}.")
  return value


def float32_or_wider(dtype) -> jnp.dtype:
  """float32 for half-precision dtypes, the dtype itself for float32/float64.

  Spelled out rather than `jnp.promote_types(dtype, float32)`, which refuses bf16 + f32 under
  strict dtype promotion.
  """
  return jnp.dtype(jnp.float32) if jnp.dtype(dtype).itemsize < 4 else jnp.dtype(dtype)


def check_axis_names(axis_name: object, op: str, *, reduces: bool = False) -> tuple:
  """``axis_name`` as a non-empty tuple of axis names; rejects anything else by name.

  Names are whatever JAX accepts (any hashable; mesh axes are strings). A tuple or list holds
  several, used in its order; an unordered set is refused: its order (and so `device_key`'s
  keys) could differ between processes. ``reduces``: the op reduces over the axes with
  `lax.psum` and friends, which read an int as a positional array axis, so numbers are refused.
  """
  if isinstance(axis_name, (tuple, list)):
    names = tuple(axis_name)
  elif (axis_name is None or isinstance(axis_name, (bytes, bool, set, frozenset, dict))
        or not isinstance(axis_name, Hashable)):
    names = None
  else:
    names = (axis_name,)
  if names is None or not all(
      isinstance(n, Hashable) and n is not None and not isinstance(n, (bytes, bool))
      for n in names):
    raise TypeError(
        f"{op}: `axis_name` must be a mesh axis name (e.g. 'data') or a tuple or list of them, "
        f"got {axis_name!r}."
    )
  # JAX's collectives read an int as a positional array axis, not as an axis name: psum over
  # "axis 0" would sum an array dimension instead of reducing across devices.
  numbers_given = [n for n in names if isinstance(n, (numbers.Number, np.number))]
  if reduces and numbers_given:
    raise TypeError(
        f"{op}: `axis_name` must name a mesh or vmap axis (e.g. 'data'), got {axis_name!r}: "
        f"JAX's collectives take the number {numbers_given[0]!r} for a positional array axis."
    )
  if not names:
    # No axis: device_key would return the replicated key unchanged (every device the same
    # mask), and batch_norm would compute each device's own statistics.
    raise ValueError(
        f"{op}: `axis_name` must name at least one mesh axis, got {axis_name!r}; pass the data "
        "axis, e.g. 'data'."
    )
  return names


# --------------------------------------------------------------------------------------------
# Traced values that cannot be checked at trace time
# --------------------------------------------------------------------------------------------


def traced_in_interval(value: Any, *, lo: float = -math.inf, hi: float = math.inf) -> jax.Array:
  """Whether ``value`` (elementwise) is finite and in [lo, hi]: a boolean array, False for NaN.

  The runtime half of `check_interval`, for traced values it could not check. Never
  differentiated (a comparison has no useful derivative).
  """
  value = jax.lax.stop_gradient(jnp.asarray(value))
  return jnp.isfinite(value) & (value >= lo) & (value <= hi)


def nan_unless(valid: jax.Array, x: jax.Array) -> jax.Array:
  """``x`` where ``valid``, NaN elsewhere: the library's answer to a bad traced parameter.

  A value that cannot be checked at trace time and is out of range at run time makes the result
  NaN, never a silently wrong number.
  """
  return jnp.where(valid, x, jnp.asarray(jnp.nan, x.dtype))


def checked_or_nan(value: Any, op: str, name: str, *, lo: float = -math.inf,
                   hi: float = math.inf) -> Any:
  """A scalar parameter checked now if concrete, or made NaN at run time if traced and invalid.

  Concrete values go through `check_interval` (raising) and are returned unchanged; traced
  ones are returned as ``where(lo <= value <= hi, value, NaN)``, so whatever they scale
  becomes NaN. Accepts JAX values computed eagerly (e.g. a schedule's output outside `jit`).
  """
  if not is_traced(value):
    check_interval(value, op, name, lo=lo, hi=hi)
    return value
  concrete_scalar(value, op, name)  # shape and dtype are known: checked
  return nan_unless(traced_in_interval(value, lo=lo, hi=hi), jnp.asarray(value))


# --------------------------------------------------------------------------------------------
# Outputs of user functions, and differentiation modes
# --------------------------------------------------------------------------------------------


def check_floating_outputs(outputs: Any, op: str, name: str = "apply_fn") -> None:
  """Rejects non-floating leaves, whose mean would be cast back to an integer or bool.

  The dtypes are known at trace time, so under `jit` this raises before anything runs.
  """
  for path, leaf in jax.tree_util.tree_flatten_with_path(outputs)[0]:
    dtype = getattr(leaf, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
      shown = f"dtype {dtype}" if dtype is not None else f"{type(leaf).__name__}"
      raise TypeError(
          f"{op}: `{name}` must return floating arrays, got {shown} at output"
          f"{jax.tree_util.keystr(path) or ' (the root)'}; the mean of integer or bool outputs "
          "is not one of them. Return e.g. `jax.nn.one_hot(label, n)` for a class frequency or "
          "`.astype(jnp.float32)`."
      )


@contextlib.contextmanager
def forward_mode_advice(op: str, advice: str) -> Iterator[None]:
  """Turns JAX's bare "can't apply forward-mode autodiff to a custom_vjp" into ``advice``."""
  try:
    yield
  except TypeError as err:
    if "forward-mode" in str(err) and "custom_vjp" in str(err):
      raise TypeError(f"{op}: {advice}") from err
    raise
