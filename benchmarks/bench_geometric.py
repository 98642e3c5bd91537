"""Geometric ops on a batch, per-example parameters, vs torchvision, dm_pix and augmax.

    python -m benchmarks.bench_geometric            # 128 images of 224x224x3, CPU
    python -m benchmarks.bench_geometric --smoke    # tiny, seconds (CI)

jaxreg: `rotate` and `affine` under one `jax.jit(jax.vmap(...))` over the batch, float32
images in [0, 1], each example its own angle (uniform in +-30 degrees) and, for `affine`,
translation (+-10% of the side), scale (0.9-1.1) and shear (+-10 degrees each); nearest
(torchvision's default and the policies') and bilinear.

Anchors, in this process, interleaved, median of per-round ratios (jaxreg / anchor, below 1
is faster):
- torchvision.transforms.v2.functional on uint8 CHW tensors, one image at a time in a Python
  loop (the per-image work of a DataLoader worker), the same parameters. torch runs with one
  thread or its default count, whichever a probe on a few images finds faster here (under
  load, OpenMP's spinning threads can make the default 10x slower).
- dm_pix: `rotate` and `affine_transform` (the same inverse matrix, scipy's coordinates),
  vmapped; `order` 0 or 1. Slow: timed over fewer rounds, and its bilinear (about 40 s for the
  whole batch) against jaxreg on the first 16 images only.
- augmax: `Rotate` (its own random angles in +-30, bilinear), vmapped over keys.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812
from jaxreg.augment import _warp

A = jr.augment


def parameters(n: int, side: int, seed: int = 0) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  return {"angle": rng.uniform(-30, 30, n),
          "translate": rng.uniform(-0.1, 0.1, (n, 2)) * side,
          "scale": rng.uniform(0.9, 1.1, n),
          "shear": rng.uniform(-10, 10, (n, 2))}


def jaxreg_ops(interpolation: str):
  rotate = jax.jit(jax.vmap(lambda im, a: A.rotate(im, a, interpolation=interpolation)))
  affine = jax.jit(jax.vmap(lambda im, a, t, s, sh: A.affine(
      im, angle=a, translate=t, scale=s, shear=sh, interpolation=interpolation)))
  return rotate, affine


def torchvision_ops(images_u8: np.ndarray, params: dict, interpolation: str):
  import torch
  from torchvision.transforms import InterpolationMode
  from torchvision.transforms.v2 import functional as F  # noqa: N812

  mode = InterpolationMode.NEAREST if interpolation == "nearest" else InterpolationMode.BILINEAR
  batch = torch.from_numpy(images_u8).permute(0, 3, 1, 2).contiguous()
  angles = params["angle"].tolist()
  translations, scales = params["translate"].tolist(), params["scale"].tolist()
  shears = params["shear"].tolist()

  def rotate(count=None):
    return [F.rotate(batch[i], angles[i], interpolation=mode)
            for i in range(count or len(angles))]

  def affine():
    return [F.affine(batch[i], angle=angles[i], translate=translations[i], scale=scales[i],
                     shear=shears[i], interpolation=mode) for i in range(len(angles))]

  threads = H.torch_threads(lambda: rotate(min(8, len(angles))))
  return rotate, affine, threads


def dm_pix_ops(order: int, side: int):
  import dm_pix as pix

  def scipy_matrix(matrix):
    # jaxreg's warp: (u, v) = M (x, y, 1) with pixel centres at +0.5, as scipy's (row, col,
    # channel) map with centres at integers: the same sample points.
    m = matrix
    rows = jnp.stack([m[1, 1], m[1, 0], 0.0 * m[0, 0]])
    cols = jnp.stack([m[0, 1], m[0, 0], 0.0 * m[0, 0]])
    linear = jnp.stack([rows, cols, jnp.array([0.0, 0.0, 1.0])])
    offset = jnp.stack([m[1, 2] + 0.5 * (m[1, 0] + m[1, 1]) - 0.5,
                        m[0, 2] + 0.5 * (m[0, 0] + m[0, 1]) - 0.5, 0.0 * m[0, 0]])
    return linear, offset

  def affine_one(im, a, t, s, sh):
    matrix = _warp.affine_inverse_matrix(side, side, angle=a, translate=t, scale=s,
                                              shear=sh)
    linear, offset = scipy_matrix(matrix)
    return pix.affine_transform(im, linear, offset=offset, order=order, mode="constant")

  rotate = jax.jit(jax.vmap(lambda im, a: pix.rotate(im, jnp.deg2rad(a), order=order,
                                                      mode="constant")))
  return rotate, jax.jit(jax.vmap(affine_one))


def augmax_rotate():
  import augmax

  rotate = augmax.Rotate((-30, 30))
  return jax.jit(lambda key, images: jax.vmap(rotate)(jax.random.split(key, images.shape[0]),
                                                      images))


def run(smoke: bool = False) -> list[dict]:
  n, side = (4, 32) if smoke else (128, 224)
  rounds, slow_rounds = (2, 1) if smoke else (9, 3)
  rng = np.random.default_rng(0)
  images_u8 = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
  images = jnp.asarray(images_u8, jnp.float32) / 255
  params = parameters(n, side)
  angle = jnp.asarray(params["angle"], jnp.float32)
  args = {"rotate": (images, angle),
          "affine": (images, angle, *(jnp.asarray(params[k], jnp.float32)
                                      for k in ("translate", "scale", "shear")))}
  shape = f"{n}x{side}x{side}x3"
  rows = []
  for interpolation in ("nearest", "bilinear"):
    mine = dict(zip(("rotate", "affine"), jaxreg_ops(interpolation), strict=True))
    temp = {op: H.temp_bytes(fn, *args[op]) for op, fn in mine.items()}
    times = H.time_interleaved([lambda f=fn, op=op: f(*args[op]) for op, fn in mine.items()],
                               rounds=rounds)
    for op, t in zip(mine, times, strict=True):
      rows.append(H.row(f"{op} {interpolation} (jaxreg alone)", shape, "float32", t, None,
                        None, f"{n / t:.0f} img/s", key=f"{op}_{interpolation}", items=n,
                        temp_bytes=temp[op]))
    try:
      tv_rotate, tv_affine, threads = torchvision_ops(images_u8, params, interpolation)
    except ImportError:  # torch and torchvision come with the `bench` extra
      rows.append(H.row(f"{interpolation} vs torchvision: not installed", shape, "float32",
                        None, None, None, key=f"torchvision_{interpolation}_missing"))
    else:
      for op, anchor in (("rotate", tv_rotate), ("affine", tv_affine)):
        t_m, t_a, ratio = H.median_ratio(lambda f=mine[op], op=op: f(*args[op]), anchor,
                                         rounds=rounds)
        rows.append(H.row(f"{op} {interpolation}", shape, "float32 vs uint8", t_m, t_a, ratio,
                          f"{n / t_m:.0f} vs {n / t_a:.0f} img/s",
                          f"torchvision loop ({threads} thread{'s' * (threads > 1)})",
                          key=f"{op}_{interpolation}_torchvision", items=n,
                          temp_bytes=temp[op], anchor_threads=threads))
    try:
      pix_rotate, pix_affine = dm_pix_ops(0 if interpolation == "nearest" else 1, side)
    except ImportError:
      pix_rotate = None
    if pix_rotate is not None:
      count = n if interpolation == "nearest" else min(n, 16)
      for op, anchor in (("rotate", pix_rotate), ("affine", pix_affine)):
        some = tuple(a[:count] for a in args[op])
        t_m, t_a, ratio = H.median_ratio(lambda f=mine[op], some=some: f(*some),
                                         lambda a=anchor, some=some: a(*some),
                                         rounds=slow_rounds)
        rows.append(H.row(f"{op} {interpolation}", f"{count}x{side}x{side}x3", "float32", t_m,
                          t_a, ratio, f"{count / t_m:.0f} vs {count / t_a:.0f} img/s", "dm_pix",
                          key=f"{op}_{interpolation}_dm_pix", items=count))
  try:
    aug_rotate = augmax_rotate()
  except ImportError:
    aug_rotate = None
  if aug_rotate is not None:
    key = jax.random.key(0)
    rotate = jaxreg_ops("bilinear")[0]
    t_m, t_a, ratio = H.median_ratio(lambda: rotate(*args["rotate"]),
                                     lambda: aug_rotate(key, images), rounds=rounds)
    rows.append(H.row("rotate bilinear", shape, "float32", t_m, t_a, ratio,
                      f"{n / t_m:.0f} vs {n / t_a:.0f} img/s", "augmax Rotate",
                      key="rotate_bilinear_augmax", items=n))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
