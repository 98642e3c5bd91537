"""Batch mixing: mixup and cutmix, images and labels alike."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxreg import _checks
from jaxreg.augment._image_checks import check_drawn_size, check_image, check_strength
from jaxreg.augment._params import CutmixParams, MixupParams, register


def _check_batch_and_labels(images, op: str, *, labels):
  images = check_image(images, op, batch=True)
  labels = _checks.check_float_array(labels, op, "labels")
  if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
    raise ValueError(f"{op}: `labels` must be one-hot or soft labels of shape (N, classes) with "
                     f"N = {images.shape[0]}, got {labels.shape}. Convert integer labels with "
                     "jax.nn.one_hot(labels, num_classes).")
  return images, labels


def check_per_example(params, fields: tuple[str, ...], n: int, op: str) -> None:
  """One entry per example of the batch in each of ``params``' ``fields``: a permutation of
  another batch would index past its end (JAX clamps such indices silently)."""
  for name in fields:
    shape = jnp.shape(getattr(params, name))
    if shape != (n,):
      raise ValueError(f"{op}: `{name}` must have one entry per example, shape ({n},) for this "
                       f"batch, got {shape}.")


def mixup(key: jax.Array, images: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, *,
          alpha: float = 0.2) -> tuple[jax.Array, jax.Array]:
  """Mixup: blends each example with a random partner, images and labels alike.

  Example ``i`` is paired with example ``perm[i]`` of a random permutation and gets its own
  weight ``lam_i ~ Beta(alpha, alpha)``: ``x_i' = lam_i x_i + (1 - lam_i) x_perm[i]`` and the same
  for its labels, so each label stays a probability vector matching its image.

  Args:
    key: a PRNG key.
    images: NHWC float batch.
    labels: ``(N, classes)`` one-hot or soft labels (float).
    alpha: Beta distribution parameter, > 0.

  Returns:
    ``(mixed_images, mixed_labels)``.

  Raises:
    ValueError: non-positive ``alpha``; labels not ``(N, classes)``; non-NHWC images.
    TypeError: non-float images or labels (use ``jax.nn.one_hot``), bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images, labels = jnp.ones((4, 8, 8, 3)), jax.nn.one_hot(jnp.arange(4) % 2, 2)
    >>> x, y = jr.augment.mixup(jax.random.key(0), images, labels)
    >>> bool(jnp.allclose(y.sum(1), 1.0))
    True

  References:
    Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
  """
  return _apply_mixup(_draw_mixup(key, images, labels, alpha=alpha), images, labels)


def _draw_mixup(key, images, labels, *, alpha=0.2) -> MixupParams:
  op = "mixup"
  images, labels = _check_batch_and_labels(images, op, labels=labels)
  check_strength(alpha, op, "alpha", lo_open=True)
  return _mixup_draw(_checks.as_key(key, op), alpha, n=images.shape[0])


def symmetric_beta(key, alpha, n: int, dtype=None) -> jax.Array:
  """``n`` draws of ``Beta(alpha, alpha)`` from one gamma sampler: ``G_1 / (G_1 + G_2)`` of
  independent ``Gamma(alpha)`` pairs, in log space as `jax.random.beta` draws them (a small
  ``alpha`` underflows the gammas themselves). `jax.random.beta` runs a gamma sampler per
  argument, each a rejection loop of its own in the compiled program."""
  log_gamma = jax.random.loggamma(key, alpha, (2, n), dtype)
  return jax.nn.softmax(log_gamma, axis=0)[0]


# The draws and the mixing behind the checks, jitted: an eager call compiles one program, not
# a dispatch per step (docs/design/index.md#checks-eagerly-computations-jitted).
@functools.partial(jax.jit, static_argnames="n")
def _mixup_draw(key, alpha, *, n: int) -> MixupParams:
  k_perm, k_lam = jax.random.split(key)
  return MixupParams(perm=jax.random.permutation(k_perm, n), lam=symmetric_beta(k_lam, alpha, n))


def _apply_mixup(params: MixupParams, images, labels):
  op = "apply(MixupParams)"
  images, labels = _check_batch_and_labels(images, op, labels=labels)
  check_per_example(params, ("perm", "lam"), images.shape[0], op)
  return _blended_mix(params, images, labels)


@jax.jit
def _blended_mix(params: MixupParams, images, labels):
  perm, lam = params.perm, params.lam
  lam_x = lam.astype(images.dtype)[:, None, None, None]
  lam_y = lam.astype(labels.dtype)[:, None]
  return (lam_x * images + (1 - lam_x) * images[perm],
          lam_y * labels + (1 - lam_y) * labels[perm])


def cutmix(key: jax.Array, images: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, *,
           alpha: float = 1.0) -> tuple[jax.Array, jax.Array]:
  """CutMix: pastes a random box from a partner image; labels mix by the pasted area.

  Each example draws ``lam ~ Beta(alpha, alpha)``, a box of area ``(1 - lam) H W`` with the
  image's aspect ratio and a uniform center, clipped at the borders, and takes that box from
  example ``perm[i]``. Its label becomes ``(1 - a) y_i + a y_perm[i]`` where ``a`` is the area
  actually pasted (after clipping), so labels always match pixels.

  Args:
    key: a PRNG key.
    images: NHWC float batch. Images with no pixels (``H`` or ``W`` of 0) have nothing to
      paste: they and their labels are returned unchanged.
    labels: ``(N, classes)`` one-hot or soft labels (float).
    alpha: Beta distribution parameter, > 0.

  Returns:
    ``(mixed_images, mixed_labels)``.

  Raises:
    ValueError: non-positive ``alpha``; labels not ``(N, classes)``; non-NHWC images.
    TypeError: non-float images or labels, bad key.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> images = jnp.stack([jnp.zeros((8, 8, 3)), jnp.ones((8, 8, 3))])
    >>> labels = jax.nn.one_hot(jnp.array([0, 1]), 2)
    >>> x, y = jr.augment.cutmix(jax.random.key(3), images, labels)
    >>> bool(jnp.allclose(y[:, 1], x.mean((1, 2, 3))))  # label weight == pasted area
    True

  References:
    Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
    Features", ICCV 2019.
  """
  return _apply_cutmix(_draw_cutmix(key, images, labels, alpha=alpha), images, labels)


def _draw_cutmix(key, images, labels, *, alpha=1.0) -> CutmixParams:
  op = "cutmix"
  images, labels = _check_batch_and_labels(images, op, labels=labels)
  check_strength(alpha, op, "alpha", lo_open=True)
  n, height, width, _ = images.shape
  return _cutmix_draw(_checks.as_key(key, op), alpha, n=n, height=height, width=width)


@functools.partial(jax.jit, static_argnames=("n", "height", "width"))
def _cutmix_draw(key, alpha, *, n: int, height: int, width: int) -> CutmixParams:
  k_perm, k_lam, k_y, k_x = jax.random.split(key, 4)
  perm = jax.random.permutation(k_perm, n)
  # float32 boxes whatever the default float (x64): `pasted` compares them to float32 pixels
  lam = symmetric_beta(k_lam, alpha, n, jnp.float32)
  cut = jnp.sqrt(1.0 - lam)
  half_h, half_w = jnp.round(cut * height) / 2, jnp.round(cut * width) / 2
  cy = jax.random.uniform(k_y, (n,), jnp.float32) * height
  cx = jax.random.uniform(k_x, (n,), jnp.float32) * width
  return CutmixParams(perm=perm, top=jnp.clip(jnp.round(cy - half_h), 0, height),
                      bottom=jnp.clip(jnp.round(cy + half_h), 0, height),
                      left=jnp.clip(jnp.round(cx - half_w), 0, width),
                      right=jnp.clip(jnp.round(cx + half_w), 0, width),
                      image_size=(height, width))


def pasted(params: CutmixParams, height: int, width: int) -> jax.Array:
  """``(N, H, W)`` bool: the pixels each example takes from its partner. The one rule for the
  images and their masks (`apply_to_mask`), so a mask is pasted exactly where its image is."""
  rows = jnp.arange(height, dtype=jnp.float32)[None, :, None]
  cols = jnp.arange(width, dtype=jnp.float32)[None, None, :]
  b = lambda v: jnp.asarray(v, jnp.float32)[:, None, None]  # noqa: E731
  return ((rows >= b(params.top)) & (rows < b(params.bottom)) & (cols >= b(params.left))
          & (cols < b(params.right)))


def _apply_cutmix(params: CutmixParams, images, labels):
  op = "apply(CutmixParams)"
  images, labels = _check_batch_and_labels(images, op, labels=labels)
  check_per_example(params, ("perm", "top", "bottom", "left", "right"), images.shape[0], op)
  check_drawn_size(images.shape[1:], params.image_size, op, "images")
  return _pasted_mix(params, images, labels)


@jax.jit
def _pasted_mix(params: CutmixParams, images, labels):
  _, height, width, _ = images.shape
  top, bottom, left, right = params.top, params.bottom, params.left, params.right
  perm = params.perm
  mixed = jnp.where(pasted(params, height, width)[..., None], images[perm], images)
  # max(.., 1): an image with no pixels has nothing pasted (area 0), not 0 / 0.
  area = ((bottom - top) * (right - left) / max(height * width, 1)).astype(labels.dtype)[:, None]
  return mixed, (1 - area) * labels + area * labels[perm]


register(mixup, _draw_mixup, MixupParams, _apply_mixup)
register(cutmix, _draw_cutmix, CutmixParams, _apply_cutmix)
