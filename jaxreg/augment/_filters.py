"""Filters: torchvision's Gaussian blur and Pillow's 3x3 ``SMOOTH``, on float HWC images.

Rows are filtered on the (H, W*C) view of an image, where a step along W is a step of C along
the minor axis, so that XLA:CPU vectorizes the taps, and the rows' reflect padding is never
formed; the blur's column pass slices W of the image itself.
Design: docs/design/photometric.md#cpu-formulation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import _checks
from jaxreg.augment._dtypes import compute_dtype, pixel_op
from jaxreg.augment._image_checks import (
  check_image,
  check_magnitude,
  check_size,
  nan_if_bad_magnitude,
)


def smooth(image):
  """Pillow's 3x3 ``SMOOTH`` filter (weights 1, centre 5, over 13) on an HWC image; border
  pixels kept.

  Computed on the (H, W*C) view, where a step along W is a step of C along the minor axis:
  XLA:CPU vectorizes those slices, not those of the HWC array.
  """
  height, width, channels = image.shape
  if height <= 2 or width <= 2:  # no interior (torchvision returns such images unchanged)
    return image
  flat = image.reshape(height, width * channels)
  total = sum(flat[i:height - 2 + i, channels * j:channels * (width - 2 + j)]
              for i in range(3) for j in range(3))
  interior = (total + 4 * flat[1:-1, channels:-channels]) / 13
  return flat.at[1:-1, channels:-channels].set(interior).reshape(height, width, channels)


def _check_kernel_size(kernel_size, op: str, *, image_shape) -> tuple[int, int]:
  sizes = check_size(kernel_size, op, "kernel_size")
  if not all(k % 2 for k in sizes):
    raise ValueError(f"{op}: `kernel_size` must be odd (a centred kernel), got {kernel_size!r}.")
  for k, side, axis in zip(sizes, image_shape[:2], ("height", "width"), strict=True):
    if k // 2 >= side:
      raise ValueError(f"{op}: `kernel_size` {kernel_size!r} needs a reflect padding of {k // 2} "
                       f"pixels, which must be smaller than the image {axis} {side} (as in "
                       f"torchvision).")
  return sizes


def _check_sigma(sigma, op: str) -> tuple:
  """A positive scalar or a (height, width) pair of them; each may be traced."""
  if isinstance(sigma, (tuple, list)) or (isinstance(sigma, (np.ndarray, jax.Array))
                                          and jnp.ndim(sigma) == 1):
    items = tuple(sigma[i] for i in range(len(sigma)))
    if len(items) != 2:
      raise ValueError(f"{op}: `sigma` must be a number or an (height, width) pair, got "
                       f"{sigma!r} ({len(items)} items).")
  else:
    items = (sigma, sigma)
  for s in items:
    check_magnitude(s, op, "sigma")
    concrete = _checks.concrete_scalar(s, op, "sigma")
    if concrete is not None and not concrete > 0:
      raise ValueError(f"{op}: `sigma` must be > 0, got {sigma!r}.")
  return items


def gaussian_weights(size: int, sigma, dtype):
  # torchvision's kernel: exp(-x^2 / (2 sigma^2)) at x = -(size - 1)/2 ... (size - 1)/2, summed to 1
  x = jnp.arange(size, dtype=dtype) - (size - 1) / 2
  pdf = jnp.exp(-0.5 * jnp.square(x / jnp.asarray(sigma, dtype)))
  return pdf / jnp.sum(pdf)


def correlate_rows(rows, weights, size: int):
  """Valid correlation along axis 0: (R, L) -> (R - size + 1, L)."""
  count = rows.shape[0] - size + 1
  return sum(weights[i] * rows[i:i + count] for i in range(size))


def blur_rows(rows, weights, size: int):
  """Correlation along axis 0 of an (R, L) array with reflect padding, same shape.

  The padded array is never formed: the interior rows come from the rows themselves and only
  the ``size // 2`` rows at each end from small reflected strips. A padded copy fused into the
  taps makes XLA:CPU branch on every element.
  """
  half = size // 2
  count = rows.shape[0]
  if half == 0:
    return rows
  if count <= 2 * half:  # too short for separate strips
    return correlate_rows(jnp.pad(rows, ((half, half), (0, 0)), mode="reflect"), weights, size)
  top = jnp.concatenate([rows[half:0:-1], rows[:2 * half]])
  bottom = jnp.concatenate([rows[count - 2 * half:], rows[count - 2:count - half - 2:-1]])
  return jnp.concatenate([correlate_rows(top, weights, size),
                          correlate_rows(rows, weights, size),
                          correlate_rows(bottom, weights, size)])


def blur_columns(image, weights, size: int):
  """Correlation along axis 1 of an (H, W, C) image with reflect padding, same shape: the
  reflected columns concatenated to the image, then one slice of W columns per tap."""
  half, width = size // 2, image.shape[1]
  padded = jnp.concatenate([image[:, half:0:-1], image, image[:, width - 2:width - half - 2:-1]],
                           axis=1)
  return sum(weights[i] * padded[:, i:i + width] for i in range(size))


@pixel_op(static_argnames="sizes", loop_on_cpu=True)
def _gaussian_blur(x, sigma_h, sigma_w, *, sizes):
  # Separable: along the rows of the (H, W*C) view, then along W of the image itself.
  # Design: docs/design/photometric.md#cpu-formulation.
  (size_h, size_w), (height, width, channels) = sizes, x.shape
  weights_h = gaussian_weights(size_h, sigma_h, x.dtype)
  x = blur_rows(x.reshape(height, width * channels), weights_h, size_h)
  x = x.reshape(height, width, channels)
  if size_w == 1:
    return x
  return blur_columns(x, gaussian_weights(size_w, sigma_w, x.dtype), size_w)


def gaussian_blur(image: jax.typing.ArrayLike, kernel_size: int | tuple[int, int],
                  sigma: jax.typing.ArrayLike | tuple) -> jax.Array:
  """Gaussian blur with torchvision's ``gaussian_blur`` semantics (not Pillow's).

  The kernel is ``exp(-x^2 / (2 sigma^2))`` sampled at the ``kernel_size`` integer offsets
  around the centre and normalized to sum 1, separably along rows and columns; the image is
  padded by reflection (``reflect``: the border pixel is not repeated). Pillow's
  ``GaussianBlur(radius)`` is a different filter (box-blur passes).

  Sizes and sigmas are given as (height, width), jaxreg's order for sizes; torchvision's
  ``kernel_size`` and ``sigma`` pairs are (x, y), i.e. (width, height).

  Args:
    image: HWC float image (any number of channels).
    kernel_size: an odd positive int, or an (height, width) pair of them; each half-size must be
      smaller than the image side (reflect padding).
    sigma: a scalar > 0, or an (height, width) pair of them; each may be traced (one per example
      under `vmap`).

  Returns:
    The blurred image, same shape and dtype (half precision is computed in float32 and rounded
    once). Differentiable in the image and ``sigma``.

  Raises:
    ValueError: an even or non-positive kernel size, or one too large for the image; a
      non-positive or non-scalar ``sigma``; not an HWC image.
    TypeError: not floating point; a non-int kernel size; a non-real ``sigma``.

  Example:
    >>> import jax.numpy as jnp, jaxreg as jr
    >>> image = jnp.zeros((5, 5, 1)).at[2, 2].set(1.0)
    >>> out = jr.augment.gaussian_blur(image, 3, 1.0)
    >>> round(float(out.sum()), 4), bool(out[2, 2, 0] < 1)
    (1.0, True)
  """
  op = "gaussian_blur"
  image = check_image(image, op, keyed=False)
  size_h, size_w = _check_kernel_size(kernel_size, op, image_shape=image.shape)
  sigma_h, sigma_w = (jnp.asarray(s, compute_dtype(image)) for s in _check_sigma(sigma, op))
  out = _gaussian_blur(image, sigma_h, sigma_w, sizes=(size_h, size_w))
  for s in (sigma_h, sigma_w):
    out = nan_if_bad_magnitude(s, out, lo=0.0, lo_open=True)
  return out
