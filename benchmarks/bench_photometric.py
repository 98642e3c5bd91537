"""Photometric ops over a batch vs torchvision's per-image loop, dm_pix and augmax.

    python -m benchmarks.bench_photometric            # 128 images of 224x224x3, CPU
    python -m benchmarks.bench_photometric --smoke    # tiny, seconds (CI)

jaxreg: one jitted `vmap` of the op over the batch, each example with its own magnitude (a
traced scalar, as a policy passes it), float32 HWC in [0, 1]; the ops that take uint8 images
(equalize, autocontrast, posterize, solarize, invert) also on the uint8 batch.

Anchors, each timed interleaved with jaxreg in the same process (medians of per-round ratios):
- torchvision (`transforms.v2.functional`), a Python loop over the 128 uint8 CHW tensors, one
  call per image with its magnitude: how a torchvision data loader runs a policy. Also one call
  on the whole uint8 batch (one magnitude for all), which v2 vectorizes. torch runs with 1
  thread or its default count, whichever a probe on 8 images finds faster for that op (under
  load, OpenMP's spinning threads can make the default 10x slower); the anchor's name says
  which. Skipped if torchvision is not installed (it is in the `bench` extra).
- dm_pix, where it has the op (gaussian blur, solarize, greyscale), vmapped.
- augmax, where it has the op (its 9x9 GaussianBlur, Solarization, RandomGrayscale with p=1),
  vmapped over split keys.
- Keras 3 has no functional equalize and runs its layers per batch; not installed here, so not
  measured.
"""

from __future__ import annotations

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg as jr
from benchmarks import _harness as H  # noqa: N812

A = jr.augment


def _per_example(op, images, magnitudes=None):
  if magnitudes is None:
    return jax.vmap(op)(images)
  return jax.vmap(op)(images, magnitudes)


# name -> (jaxreg op, magnitude, torchvision call(tensor, magnitude), dm_pix op, augmax transform)
# A magnitude of None: the op has none. Magnitudes for torchvision are in uint8 units.
def _ops():
  return {
      "equalize": (A.equalize, None, "equalize", None, None),
      "autocontrast": (A.autocontrast, None, "autocontrast", None, None),
      "posterize (bits 4)": (A.posterize, 4, "posterize", None, None),
      "solarize (0.5)": (A.solarize, 0.5, "solarize", "solarize", "Solarization"),
      "sharpness (1.5)": (A.enhance_sharpness, 1.5, "adjust_sharpness", None, None),
      "gaussian blur (9x9, 1.5)": (functools.partial(A.gaussian_blur, kernel_size=9), 1.5,
                                   "gaussian_blur", "gaussian_blur", "GaussianBlur"),
      "enhance_brightness (1.5)": (A.enhance_brightness, 1.5, "adjust_brightness", None, None),
      "enhance_contrast (1.5)": (A.enhance_contrast, 1.5, "adjust_contrast", None, None),
      "enhance_color (1.5)": (A.enhance_color, 1.5, "adjust_saturation", None, None),
      "invert": (A.invert, None, "invert", None, None),
      "grayscale": (A.grayscale, None, "rgb_to_grayscale", "rgb_to_grayscale",
                    "RandomGrayscale"),
  }


# The ops that also take uint8 images (uint8 in, uint8 out): timed on them too, against the
# same torchvision loop, the like-for-like comparison.
UINT8 = ("equalize", "autocontrast", "posterize (bits 4)", "solarize (0.5)", "invert",
         "sharpness (1.5)", "enhance_brightness (1.5)", "enhance_contrast (1.5)",
         "enhance_color (1.5)")


def _jaxreg_fn(op, magnitude, n):
  if magnitude is None:
    return jax.jit(lambda images: _per_example(op, images)), ()
  dtype = jnp.int32 if isinstance(magnitude, int) else jnp.float32
  mags = jnp.full((n,), magnitude, dtype)
  if isinstance(op, functools.partial):  # gaussian_blur: sigma per example
    fn = jax.jit(lambda images, s: jax.vmap(lambda x, v: op(x, sigma=v))(images, s))
  else:
    fn = jax.jit(lambda images, m: _per_example(op, images, m))
  return fn, (mags,)


def _torchvision_calls(name, magnitude):
  """(per-image loop, one batched call) over uint8 NCHW tensors, or None if not installed."""
  try:
    import torch
    from torchvision.transforms.v2 import functional as F  # noqa: N812
  except ImportError:
    return None
  fn = getattr(F, name)
  if name == "solarize":
    args = (round(magnitude * 255),)
  elif name == "gaussian_blur":
    args = ([9, 9], [magnitude, magnitude])
  elif name == "rgb_to_grayscale":
    args = (3,)
  elif magnitude is None:
    args = ()
  else:
    args = (magnitude,)

  def loop(tensors):
    with torch.inference_mode():
      return [fn(t, *args) for t in tensors]

  def batch(tensor):
    with torch.inference_mode():
      return fn(tensor, *args)

  return loop, batch


def _torch_images(u8):
  """The uint8 NHWC batch as a list of CHW tensors and one NCHW tensor; None without torch."""
  try:
    import torch
  except ImportError:
    return None, None
  tensors = [torch.from_numpy(np.ascontiguousarray(u.transpose(2, 0, 1))) for u in u8]
  return tensors, torch.stack(tensors)


def _dm_pix_fn(name, magnitude):
  try:
    import dm_pix as pix
  except ImportError:
    return None
  if name == "gaussian_blur":
    one = lambda x: pix.gaussian_blur(x, magnitude, 9)  # noqa: E731
  elif name == "solarize":
    one = lambda x: pix.solarize(x, magnitude)  # noqa: E731
  else:
    one = lambda x: jnp.repeat(pix.rgb_to_grayscale(x), 3, axis=-1)  # noqa: E731
  return jax.jit(jax.vmap(one))


def _augmax_fn(name, magnitude):
  try:
    import augmax
  except ImportError:
    return None
  if name == "GaussianBlur":
    transform = augmax.GaussianBlur(sigma=4.5, p=1.0)  # its kernel side is ceil(2 sigma) = 9
  elif name == "Solarization":
    transform = augmax.Solarization(threshold=magnitude, p=1.0)
  else:
    transform = augmax.RandomGrayscale(p=1.0)
  chain = augmax.Chain(transform)
  return jax.jit(lambda key, images: jax.vmap(chain)(jax.random.split(key, images.shape[0]),
                                                         images))


def run(smoke: bool = False) -> list[dict]:
  n, side = (4, 32) if smoke else (128, 224)
  rounds = 3 if smoke else 5
  shape = f"{n}x{side}x{side}x3"
  u8 = np.random.default_rng(0).integers(0, 256, (n, side, side, 3), dtype=np.uint8)
  images = jnp.asarray(u8.astype(np.float32) / 255)
  levels = jnp.asarray(u8)
  key = jax.random.key(0)
  tensors, batch = _torch_images(u8)
  rows = []
  ops = _ops()
  if smoke:  # one op of each kind: a histogram, a stencil blend, a separable filter
    ops = {k: v for k, v in ops.items() if k.startswith(("equalize", "sharpness", "gaussian"))}
  for label, (op, magnitude, tv_name, pix_name, augmax_name) in ops.items():
    slug = label.split(" (")[0].replace(" ", "_")
    mine, args = _jaxreg_fn(op, magnitude, n)
    run_mine = lambda f=mine, a=args: f(images, *a)  # noqa: E731
    anchors = []
    tv = _torchvision_calls(tv_name, magnitude)
    if tv is not None:
      threads = H.torch_threads(lambda f=tv[0]: f(tensors[:8]))
      plural = "s" * (threads > 1)
      anchors.append(("torchvision",
                      f"torchvision per-image loop, uint8 ({threads} thread{plural})",
                      lambda f=tv[0]: f(tensors)))
      if not smoke:
        anchors.append(("torchvision_batch",
                        f"torchvision one batched call, uint8 ({threads} thread{plural})",
                        lambda f=tv[1]: f(batch)))
    if pix_name:
      pix_fn = _dm_pix_fn(pix_name, magnitude)
      if pix_fn is not None:
        anchors.append(("dm_pix", "dm_pix", lambda f=pix_fn: f(images)))
    if augmax_name:
      augmax_fn = _augmax_fn(augmax_name, magnitude)
      if augmax_fn is not None:
        anchors.append(("augmax", "augmax", lambda f=augmax_fn: f(key, images)))
    if not anchors:
      t = H.time_interleaved([run_mine], rounds=rounds)[0]
      rows.append(H.row(f"{label} (no anchor installed)", shape, "float32", t, None, None,
                        f"{n / t:.0f} img/s", key=slug, items=n))
    for suffix, name, anchor in anchors:
      t_m, t_a, ratio = H.median_ratio(run_mine, anchor, rounds=rounds)
      rows.append(H.row(label, shape, "float32", t_m, t_a, ratio,
                        f"{n / t_m:.0f} vs {n / t_a:.0f} img/s", anchor_name=name,
                        key=f"{slug}_{suffix}", items=n))
    if label in UINT8 and tv is not None:
      _, name, anchor = anchors[0]  # the per-image loop
      t_m, t_a, ratio = H.median_ratio(lambda f=mine, a=args: f(levels, *a), anchor,
                                       rounds=rounds)
      rows.append(H.row(f"{label}, uint8", shape, "uint8", t_m, t_a, ratio,
                        f"{n / t_m:.0f} vs {n / t_a:.0f} img/s", anchor_name=name,
                        key=f"{slug}_uint8_torchvision", items=n))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  H.print_table(run(parser.parse_args().smoke))
