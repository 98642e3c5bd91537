"""docs/design/photometric.md's CPU formulation against the alternatives it rejects.

    python -m benchmarks.run --only alternatives_photometric           # 32 images of 224x224x3
    python -m benchmarks.alternatives.photometric --smoke              # tiny, seconds

Each row times one alternative against jaxreg's form of the same step, both under one
`jit(vmap(...))` over the batch (each example its own sigma or factor, as a policy passes it),
float32 HWC in [0, 1]: equalize's histogram (a scatter-add per example, looped on the CPU), its
lookup table (passed through a sort), the Gaussian blur (9x9, looped on the CPU: rows on the
(H, W*C) view with reflect padding from strips, then columns sliced from the image), contrast's
mean luma (a matrix-vector product) and autocontrast's channel extremes (the rows of the (H, W*C)
view first).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from jax import lax

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812
from benchmarks.alternatives import compare
from jaxreg import _backend
from jaxreg.augment import _enhance, _filters, _levels

A = jr.augment
LEVELS = 256
BLUR = 9  # the kernel side bench_photometric times


# Histograms: (H, W, C) float levels 0..255 -> (C, 256) int32 counts.


def _onehot_histogram(levels):
  # level = 16 hi + lo: per channel, onehot(hi)^T @ onehot(lo) is the 16x16 table of counts
  q = levels.astype(jnp.int32).reshape(-1, levels.shape[-1]).T  # (C, pixels)
  hi = jax.nn.one_hot(q // 16, 16, dtype=jnp.float32)
  lo = jax.nn.one_hot(q % 16, 16, dtype=jnp.float32)
  counts = jnp.einsum("cph,cpl->chl", hi, lo, precision=lax.Precision.HIGHEST)
  return counts.reshape(-1, LEVELS).astype(jnp.int32)


def _compare_histogram(levels):
  q = levels.astype(jnp.int32).reshape(-1, levels.shape[-1])  # (pixels, C)
  return jnp.sum(q[:, :, None] == jnp.arange(LEVELS), axis=0, dtype=jnp.int32)


def _sorted_histogram(levels):
  q = jnp.sort(levels.reshape(-1, levels.shape[-1]).T, axis=-1)  # (C, pixels)
  edges = jnp.arange(LEVELS + 1, dtype=levels.dtype) - 0.5
  at = jax.vmap(lambda row: jnp.searchsorted(row, edges))(q)
  return jnp.diff(at, axis=-1).astype(jnp.int32)


def _pair_histogram(levels):
  # pixel pairs (first, second) counted into 2^16 bins, then both marginals added
  channels = levels.shape[-1]
  q = levels.astype(jnp.int32).reshape(-1, 2, channels)  # an even pixel count
  pair = q[:, 0] * LEVELS + q[:, 1] + LEVELS * LEVELS * jnp.arange(channels)
  counts = jnp.zeros(channels * LEVELS * LEVELS, jnp.int32).at[pair.reshape(-1)].add(1)
  counts = counts.reshape(channels, LEVELS, LEVELS)
  return counts.sum(2) + counts.sum(1)


def _equalize_without_sort(x):
  levels = _levels.quantize(x)
  lut = _levels.equalize_lut(_levels.histogram(levels)).astype(x.dtype)
  return _levels.apply_lut(levels, lut) / 255


# Blurs: (H, W, C) image and a sigma -> the 9x9 reflect-padded Gaussian blur.


def _looped(per_image):
  """``per_image(x, sigma)`` under `vmap`, one example after another on the CPU, as jaxreg runs
  its blur."""
  vectorized = lambda x, s, select=False: per_image(x, s)  # noqa: E731
  return _backend.loop_on_cpu(per_image, vectorized, differentiable=2)


def _row_pass_then_columns(x, sigma, blur_rows):
  """The row pass on the (H, W*C) view by ``blur_rows(rows, weights)``, then jaxreg's column
  pass: the alternatives below differ from the chosen form in the row pass's padding only."""
  height, width, channels = x.shape
  weights = _filters.gaussian_weights(BLUR, sigma, x.dtype)
  rows = blur_rows(x.reshape(height, width * channels), weights).reshape(height, width, channels)
  return _filters.blur_columns(rows, weights, BLUR)


def _reflect(rows):
  return jnp.pad(rows, ((BLUR // 2, BLUR // 2), (0, 0)), mode="reflect")


def _padded_blur(x, sigma):
  return _row_pass_then_columns(
      x, sigma, lambda rows, w: _filters.correlate_rows(_reflect(rows), w, BLUR))


def _barrier_blur(x, sigma):
  return _row_pass_then_columns(x, sigma, lambda rows, w: _filters.correlate_rows(
      lax.optimization_barrier(_reflect(rows)), w, BLUR))


def _fixed_up_rows(rows, weights):
  # zero padding, then the border rows recomputed from reflected strips, in place
  half = BLUR // 2
  out = _filters.correlate_rows(jnp.pad(rows, ((half, half), (0, 0))), weights, BLUR)
  top = _filters.correlate_rows(_reflect(rows[:BLUR])[:BLUR + half], weights, BLUR)
  bottom = _filters.correlate_rows(_reflect(rows[-BLUR:])[-(BLUR + half):], weights, BLUR)
  return out.at[:half].set(top[:half]).at[-half:].set(bottom[-half:])


def _fixed_up_blur(x, sigma):
  return _row_pass_then_columns(x, sigma, _fixed_up_rows)


def _transposed_column_blur(x, sigma):
  # the column pass as a row pass (reflect strips) on the (W, H*C) view of the transposed image
  height, width, channels = x.shape
  weights = _filters.gaussian_weights(BLUR, sigma, x.dtype)
  rows = _filters.blur_rows(x.reshape(height, width * channels), weights, BLUR)
  cols = jnp.swapaxes(rows.reshape(height, width, channels), 0, 1)
  cols = _filters.blur_rows(cols.reshape(width, height * channels), weights, BLUR)
  return jnp.swapaxes(cols.reshape(width, height, channels), 0, 1)


def _conv_blur(x, sigma):
  # two depthwise convolutions (under vmap, per-example kernels make them grouped ones)
  half, channels = BLUR // 2, x.shape[-1]
  weights = _filters.gaussian_weights(BLUR, sigma, x.dtype)
  padded = jnp.pad(x, ((half, half), (half, half), (0, 0)), mode="reflect")[None]
  spec = ("NHWC", "HWIO", "NHWC")
  column = jnp.tile(weights.reshape(BLUR, 1, 1, 1), (1, 1, 1, channels))
  row = jnp.tile(weights.reshape(1, BLUR, 1, 1), (1, 1, 1, channels))
  out = lax.conv_general_dilated(padded, column, (1, 1), "VALID", dimension_numbers=spec,
                                 feature_group_count=channels, precision=lax.Precision.HIGHEST)
  out = lax.conv_general_dilated(out, row, (1, 1), "VALID", dimension_numbers=spec,
                                 feature_group_count=channels, precision=lax.Precision.HIGHEST)
  return out[0]


# Reductions


def _summed_mean_gray(image):
  return jnp.mean(_enhance.gray(image)).reshape(1, 1, 1)


def _extremes_over_hw(image):
  return jnp.min(image, axis=(0, 1)), jnp.max(image, axis=(0, 1))


def run(smoke: bool = False) -> list[dict]:
  n, side = (4, 32) if smoke else (32, 224)
  rounds = 3 if smoke else 15
  shape = f"{n}x{side}x{side}x3"
  images = jax.random.uniform(jax.random.key(0), (n, side, side, 3))
  levels = jax.jit(_levels.quantize)(images)
  sigmas = jax.random.uniform(jax.random.key(1), (n,), minval=0.5, maxval=2.0)
  rows = []

  def row(key, label, alternative, chosen, chosen_name, *args, **tolerances):
    alt, mine = jax.jit(jax.vmap(alternative)), jax.jit(jax.vmap(chosen))
    rows.append(compare(key, label, lambda: alt(*args), lambda: mine(*args), chosen_name,
                        shape=shape, dtype="float32", rounds=rounds, items=n, **tolerances))

  exact = {"rtol": 0, "atol": 0}
  scatter = "scatter-add per example (CPU loop)"
  row("histogram_batched_scatter", "histogram: one batched scatter-add (no loop)",
      _levels.histogram_scatter, _levels.histogram, scatter, levels, **exact)
  for key, label, histogram in (
      ("histogram_onehot_matmul", "histogram: onehot(hi)^T @ onehot(lo)", _onehot_histogram),
      ("histogram_compare_256", "histogram: compare with 256 levels, reduce", _compare_histogram),
      ("histogram_sort_searchsorted", "histogram: sort and searchsorted", _sorted_histogram),
      ("histogram_pair_bins", "histogram: pixel pairs into 2^16 bins", _pair_histogram)):
    row(key, label, histogram, _levels.histogram, scatter, levels, **exact)
  row("equalize_lut_unsorted", "equalize: lookup table not passed through a sort",
      _equalize_without_sort, A.equalize, "equalize (sorted table)", images, **exact)

  chosen_blur = lambda x, s: A.gaussian_blur(x, BLUR, s)  # noqa: E731
  chosen_name = "rows from reflect strips, columns sliced, CPU loop"
  for key, label, blur in (
      ("blur_padded_copy", "blur: rows from a reflect-padded copy fused into the taps",
       _looped(_padded_blur)),
      ("blur_barrier_padded_copy", "blur: rows from a padded copy behind optimization_barrier",
       _looped(_barrier_blur)),
      ("blur_zero_pad_fix_ups", "blur: rows zero-padded, border rows fixed up in place",
       _looped(_fixed_up_blur)),
      ("blur_transposed_columns", "blur: the column pass as a row pass on the transposed image",
       _looped(_transposed_column_blur)),
      ("blur_depthwise_conv", "blur: two depthwise convolutions (grouped under vmap)",
       _conv_blur),
      ("blur_vectorized", "blur: vectorized over the batch (no loop)",
       lambda x, s: _row_pass_then_columns(x, s, lambda rows, w: _filters.blur_rows(
           rows, w, BLUR)))):
    row(key, label, blur, chosen_blur, chosen_name, images, sigmas)

  row("mean_gray_reduced", "contrast's mean luma: luma image reduced over H and W",
      _summed_mean_gray, _enhance.mean_gray, "one matrix-vector product", images,
      rtol=1e-5, atol=1e-6)
  row("extremes_over_hw", "autocontrast's extremes: min and max over H and W at once",
      _extremes_over_hw, _levels.channel_extremes, "rows of the (H, W*C) view first", images,
      **exact)
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
