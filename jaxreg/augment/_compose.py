"""Composition and batching: `compose` chains transforms, `batched` gives each example its key."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
from jax import lax

from jaxreg import _checks
from jaxreg.augment._crop import (
  apply_resized_crop_and_flip,
  random_flip_left_right,
  random_resized_crop,
  random_scale_crop,
)
from jaxreg.augment._image_checks import check_image
from jaxreg.augment._params import DRAWS


def batched(fn: Callable[..., jax.Array], *, sequential: bool = False) -> Callable[..., jax.Array]:
  """Applies a per-image random transform to an NHWC batch, one independent key per example.

  Args:
    fn: ``fn(key, image, *args, **kwargs) -> image`` (any of this module's random transforms,
      a `compose` pipeline, or your own).
    sequential: run the examples one after another (`jax.lax.map`) instead of `jax.vmap`. Same
      keys, same results (to float rounding). Under `vmap` a per-example choice between code
      paths becomes a select that computes every path for every example; in a loop each example
      runs only its own, with its image in cache. For your own branching transforms on a CPU
      (``color_jitter`` already loops there by itself); crops and resampling are faster
      vmapped. On an accelerator keep the default: a loop runs the examples serially. A bool.

  Returns:
    ``batch_fn(key, images, *args, **kwargs)``: applies ``fn`` to each (key, image) pair; the
    extra arguments are shared by all examples. ``key`` is one key, split into ``N`` (one per
    example), or ``N`` keys already (typed keys of shape ``(N,)`` or raw keys of shape
    ``(N, 2)``): `jaxreg.record_keys` gives each record a key of its own that does not depend
    on the batch it lands in. ``images`` is an NHWC batch, float or uint8 (which ``fn`` must
    take: the crops, flips, ``random_erasing`` and the policies do).

  Raises:
    TypeError: ``fn`` not callable; ``sequential`` not a bool. ``batch_fn`` raises TypeError for
      images neither floating point nor uint8 or a ``key`` that is not a PRNG key, and
      ValueError for a batch that is not NHWC or a number of keys other than ``N``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images = jnp.zeros((8, 32, 32, 3))
    >>> crop = jr.augment.batched(jr.augment.random_crop)
    >>> crop(jax.random.key(0), images, 28, padding=2).shape
    (8, 28, 28, 3)
    >>> keys = jr.record_keys(jax.random.key(0), jnp.arange(100, 108))  # records 100..107
    >>> crop(keys, images, 28, padding=2).shape
    (8, 28, 28, 3)
  """
  if not callable(fn):
    raise TypeError(f"batched: `fn` must be callable, got {fn!r}.")
  sequential = _checks.check_bool(sequential, "batched", "sequential")

  @functools.wraps(fn)
  def batch_fn(key, images, *args, **kwargs):
    images = check_image(images, f"batched({getattr(fn, '__name__', 'fn')})", batch=True,
                         uint8=True)  # what ``fn`` takes is for ``fn`` to check
    keys = _checks.as_keys(key, "batched", count=images.shape[0])
    one = lambda k, image: fn(k, image, *args, **kwargs)  # noqa: E731
    if sequential:
      return lax.map(lambda pair: one(*pair), (keys, images))
    return jax.vmap(one)(keys, images)

  return batch_fn


def compose(*fns: Callable[[jax.Array, jax.Array], jax.Array]) -> Callable:
  """Chains per-image transforms ``fn(key, image)`` into one, each with its own key.

  Args:
    *fns: transforms taking ``(key, image)``; bind other arguments with `functools.partial`.
      A `random_resized_crop` or `random_scale_crop` directly followed by
      `random_flip_left_right` runs as one resampling with mirrored columns: the same result,
      bit for bit, without the flip's pass over the image (design:
      docs/design/augmentation_backends.md#a-resized-crop-then-a-flip).

  Returns:
    ``pipeline(key, image)``; wrap it in `batched` for NHWC batches and in `jax.jit` to compile
    the whole pipeline as one function.

  Raises:
    TypeError: a non-callable argument.
    ValueError: no transforms.

  Example:
    >>> import functools, jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> pipeline = A.compose(functools.partial(A.random_crop, size=24, padding=4),
    ...                      A.random_flip_left_right,
    ...                      functools.partial(A.random_brightness, max_delta=0.1, clip=True))
    >>> out = jax.jit(A.batched(pipeline))(jax.random.key(0), jnp.full((4, 24, 24, 3), 0.5))
    >>> out.shape, bool((out >= 0).all() & (out <= 1).all())
    ((4, 24, 24, 3), True)
  """
  if not fns:
    raise ValueError("compose: got no transforms (`fns` is empty); give at least one.")
  for fn in fns:
    if not callable(fn):
      raise TypeError(f"compose: every transform in `fns` must be callable, got {fn!r}.")

  def pipeline(key, image):
    keys = jax.random.split(_checks.as_key(key, "compose"), len(fns))
    i = 0
    while i < len(fns):
      if i + 1 < len(fns) and _crop_then_mirror(fns[i], fns[i + 1]):
        image = _resized_crop_and_flip(fns[i], fns[i + 1], keys[i], keys[i + 1], image)
        i += 2
      else:
        image = fns[i](keys[i], image)
        i += 1
    return image

  return pipeline


# A resized crop then a left-right flip, the head of most training recipes, runs as one
# resampling whose columns are mirrored where the flip fires: bit for bit the two ops' result,
# one pass over the output fewer.
# Design: docs/design/augmentation_backends.md#a-resized-crop-then-a-flip.
def _unwrapped(fn):
  if isinstance(fn, functools.partial):
    return fn.func, fn.args, fn.keywords
  return fn, (), {}


def _crop_then_mirror(first, second) -> bool:
  return (_unwrapped(first)[0] in (random_resized_crop, random_scale_crop)
          and _unwrapped(second)[0] is random_flip_left_right)


def _resized_crop_and_flip(crop, flip, k_crop, k_flip, image):
  crop_op, crop_args, crop_kwargs = _unwrapped(crop)
  flip_op, flip_args, flip_kwargs = _unwrapped(flip)
  params = DRAWS[crop_op](k_crop, image, *crop_args, **crop_kwargs)
  flipped = DRAWS[flip_op](k_flip, image, *flip_args, **flip_kwargs)
  return apply_resized_crop_and_flip(params, flipped, image)
