"""docs/design/geometric.md's warp against the reformulations it rejects, on the CPU.

    python -m benchmarks.run --only alternatives_geometric           # 128 images of 224x224x3
    python -m benchmarks.alternatives.geometric --smoke              # 4 images of 32x32x3

Each row times one way of resampling against `jr.augment.rotate` itself (one fused loop over
output elements; nearest gathers a pixel's row of C values, bilinear clamps each neighbour on
its own and, on a CPU, gathers each channel element on its own), both under one `jit(vmap(...))`
over the batch, float32 HWC in [0, 1], each example its own angle (uniform in +-30 degrees,
bench_geometric's), fill 0.5. The alternatives take rotate's inverse matrix and warp's sample
points (`jaxreg.augment._warp`), so only the resampling differs, and their output is checked to
be the chosen form's: nearest exactly, bilinear within float32 rounding (a sample point on the
image's edge may take the fill in one and a pixel in the other). Each row also records both
forms' temporary bytes. The exception, rotation as three shears, samples differently (not
Pillow's bilinear): it is timed without a value check.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from jax import lax

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812
from benchmarks.alternatives import compare
from benchmarks.bench_geometric import parameters
from jaxreg import _backend
from jaxreg.augment import _warp

A = jr.augment
FILL = 0.5
I32, F32 = jnp.int32, jnp.float32


def _rotation(resample):
  """``resample(image, matrix, fill)`` as `rotate`: its inverse matrix, its NaN rule."""
  def rotate(image, angle):
    height, width, channels = image.shape
    matrix = _warp.rotate_matrix(height, width, angle)
    fill = jnp.full((channels,), FILL, F32)
    return _warp.nan_unless_finite(matrix, resample(image, matrix, fill))
  return rotate


def _pixels(image, index):
  """The rows of C values of the pixels at flat ``index`` (one gather per pixel)."""
  return _backend.gather_by_pixel(image.reshape(-1, image.shape[-1]), index)


def _elements(image, index):
  """The same values, one scalar gather per channel element (the warp's CPU form)."""
  return _backend.gather_by_element(image.reshape(-1, image.shape[-1]), index)


def _windows(image, starts, size):
  """The (size[0], size[1], C) windows of ``image`` at int (row, col) ``starts`` (..., 2)."""
  k = starts.ndim - 1
  dims = lax.GatherDimensionNumbers(offset_dims=(k, k + 1, k + 2), collapsed_slice_dims=(),
                                    start_index_map=(0, 1))
  return lax.gather(image, starts, dims, (*size, image.shape[-1]),
                    mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS)


# Nearest: resample(image, matrix, fill) -> the warp's "nearest" output.


def _nearest(fetch, barrier=False):
  def resample(image, matrix, fill):
    height, width, _ = image.shape
    row, col, inside = _warp.nearest_source(matrix, height, width)
    index = row * width + col
    if barrier:  # indices computed for every pixel and stored, then gathered
      index, inside = lax.optimization_barrier((index, inside))
    return jnp.where(inside[..., None], fetch(image, index), fill)
  return resample


# Bilinear: a plan (the neighbours' indices and the weights from the top-left neighbour x0, y0,
# -1 .. W-1 and -1 .. H-1 inside) and a fetch of the four neighbours by those indices.


def _clamp_each(xs, ys, x0, y0, height, width):
  c0, c1 = jnp.maximum(x0, 0).astype(I32), jnp.minimum(x0 + 1, width - 1).astype(I32)
  r0, r1 = jnp.maximum(y0, 0).astype(I32), jnp.minimum(y0 + 1, height - 1).astype(I32)
  index = (r0 * width + c0, r0 * width + c1, r1 * width + c0, r1 * width + c1)
  return index, xs - x0, ys - y0


def _clamp_to_w_minus_2(xs, ys, x0, y0, height, width):
  # top-left neighbour in 0 .. W-2, the right one next to it; the weight clipped to [0, 1]
  # puts the whole of it on the edge pixel where the clamp moved the pair
  c0, r0 = jnp.clip(x0, 0, width - 2), jnp.clip(y0, 0, height - 2)
  dx, dy = jnp.clip(xs - c0, 0, 1), jnp.clip(ys - r0, 0, 1)
  c0, r0 = c0.astype(I32), r0.astype(I32)
  top, bottom = r0 * width + c0, (r0 + 1) * width + c0
  return (top, top + 1, bottom, bottom + 1), dx, dy


def _padded_starts(xs, ys, x0, y0, height, width):
  # (row, col) of the top-left neighbour in the image padded by one edge pixel all round, and
  # the two rows clamped (for pairs from the image padded left and right only)
  r0, r1 = jnp.maximum(y0, 0).astype(I32), jnp.minimum(y0 + 1, height - 1).astype(I32)
  return (y0.astype(I32) + 1, x0.astype(I32) + 1, r0, r1), xs - x0, ys - y0


def _four(fetch):
  return lambda image, index: tuple(fetch(image, i) for i in index)


def _window_2x2(image, index):
  padded = jnp.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
  w = _windows(padded, jnp.stack(index[:2], axis=-1), (2, 2))
  return w[..., 0, 0, :], w[..., 0, 1, :], w[..., 1, 0, :], w[..., 1, 1, :]


def _pairs(image, index):
  padded = jnp.pad(image, ((0, 0), (1, 1), (0, 0)), mode="edge")
  (_, col, r0, r1), out = index, []
  for row in (r0, r1):
    pair = _windows(padded, jnp.stack((row, col), axis=-1), (1, 2))
    out += [pair[..., 0, 0, :], pair[..., 0, 1, :]]
  return tuple(out)


def _bilinear(plan, fetch, barrier=False):
  def resample(image, matrix, fill):
    height, width, _ = image.shape
    u, v = _warp.sample_points(matrix, height, width)
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    xs, ys = jnp.where(inside, u, 0.5) - 0.5, jnp.where(inside, v, 0.5) - 0.5
    planned = (*plan(xs, ys, jnp.floor(xs), jnp.floor(ys), height, width), inside)
    if barrier:  # indices and weights computed for every pixel and stored, then gathered
      planned = lax.optimization_barrier(planned)
    index, dx, dy, inside = planned
    dx, dy = dx[..., None], dy[..., None]
    top_left, top_right, bottom_left, bottom_right = fetch(image, index)
    top = top_left + (top_right - top_left) * dx
    bottom = bottom_left + (bottom_right - bottom_left) * dx
    return jnp.where(inside[..., None], top + (bottom - top) * dy, fill)
  return resample


# Rotation as three shears: x-shear, y-shear, x-shear, each a 2-tap resampling of rows.


def _shear_rows(image, shift, fill):
  """Row i sampled at x + shift[i] (linear, edge repeated, ``fill`` outside [0, W))."""
  height, width, _ = image.shape
  u = jnp.arange(width, dtype=F32) + 0.5 + shift[:, None]
  inside = (u >= 0) & (u < width)
  xs = jnp.where(inside, u, 0.5) - 0.5
  x0 = jnp.floor(xs)
  start = jnp.arange(height)[:, None] * width
  left = _pixels(image, start + jnp.maximum(x0, 0).astype(I32))
  right = _pixels(image, start + jnp.minimum(x0 + 1, width - 1).astype(I32))
  return jnp.where(inside[..., None], left + (right - left) * (xs - x0)[..., None], fill)


def _three_shears(image, matrix, fill):
  # M's linear part [[c, -s], [s, c]] = X(a) Y(s) X(a), X(a) = [[1, a], [0, 1]],
  # Y(s) = [[1, 0], [s, 1]], a = -tan(angle / 2), about the image's middle
  height, width, _ = image.shape
  cos, sin = matrix[0, 0], matrix[1, 0]
  x_shift = -sin / (1 + cos) * (jnp.arange(height, dtype=F32) + 0.5 - height / 2)
  y_shift = sin * (jnp.arange(width, dtype=F32) + 0.5 - width / 2)
  out = _shear_rows(image, x_shift, fill)
  out = jnp.swapaxes(_shear_rows(jnp.swapaxes(out, 0, 1), y_shift, fill), 0, 1)
  return _shear_rows(out, x_shift, fill)


NEAREST = (
    ("nearest_materialized_indices", "nearest: indices stored first (barrier), then gathered",
     _nearest(_pixels, barrier=True)),
    ("nearest_gather_per_element", "nearest: one gather per channel element",
     _nearest(_elements)))
BILINEAR = (
    ("bilinear_materialized_indices_weights",
     "bilinear: indices and weights stored first (barrier), then gathered",
     _bilinear(_clamp_each, _four(_elements), barrier=True)),
    ("bilinear_gather_per_pixel", "bilinear: one gather of C values per tap (accelerators' form)",
     _bilinear(_clamp_each, _four(_pixels))),
    ("bilinear_window_2x2_padded", "bilinear: one (2, 2, C) window gather, edge-padded image",
     _bilinear(_padded_starts, _window_2x2)),
    ("bilinear_pair_gathers", "bilinear: two gathers of horizontal pixel pairs, edge-padded",
     _bilinear(_padded_starts, _pairs)),
    ("bilinear_clamp_to_w_minus_2", "bilinear: pair clamped to W - 2, not each tap",
     _bilinear(_clamp_to_w_minus_2, _four(_elements))))
CHOSEN = {"nearest": "rotate nearest, one fused loop, a row of C per pixel",
          "bilinear": "rotate bilinear, one fused loop, 4 taps each clamped, gathered per "
                      "channel element"}


def run(smoke: bool = False) -> list[dict]:
  n, side = (4, 32) if smoke else (128, 224)
  rounds = 3 if smoke else 9
  shape = f"{n}x{side}x{side}x3"
  images = jax.random.uniform(jax.random.key(0), (n, side, side, 3))
  angle = jnp.asarray(parameters(n, side)["angle"], F32)
  chosen = {i: jax.jit(jax.vmap(lambda x, a, i=i: A.rotate(x, a, interpolation=i, fill=FILL)))
            for i in CHOSEN}
  rows = []
  # bilinear: float32 sample points move by ~1e-6 pixels between differently fused programs,
  # the blend by that times a neighbour difference, and a point on the image's edge may take
  # the fill in one and a pixel in the other
  for interpolation, alternatives, atol, edge in (("nearest", NEAREST, 0, 0.0),
                                                  ("bilinear", BILINEAR, 1e-4, 1e-3)):
    mine = chosen[interpolation]
    for key, label, resample in alternatives:
      alt = jax.jit(jax.vmap(_rotation(resample)))
      row = compare(key, label, lambda alt=alt: alt(images, angle),
                    lambda mine=mine: mine(images, angle), CHOSEN[interpolation],
                    shape=shape, dtype="float32", rounds=rounds, rtol=0, atol=atol, items=n,
                    edge_fraction=edge)
      row["temp_bytes"], row["anchor_temp_bytes"] = (H.temp_bytes(f, images, angle)
                                                     for f in (alt, mine))
      rows.append(row)
  # Not the same values (each pass resamples the last one's output): timed, not compared.
  alt, mine = jax.jit(jax.vmap(_rotation(_three_shears))), chosen["bilinear"]
  t_alt, t_mine, ratio = H.median_ratio(lambda: alt(images, angle), lambda: mine(images, angle),
                                        rounds=rounds)
  rows.append(H.row("rotation as three shears (2-tap row passes; values differ, not Pillow's "
                    "bilinear)", shape, "float32", t_alt, t_mine, ratio,
                    f"{ratio:.2f}x the chosen form", anchor_name=f"jaxreg: {CHOSEN['bilinear']}",
                    key="rotate_three_shears", items=n))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
