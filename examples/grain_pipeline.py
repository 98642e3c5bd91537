"""A grain pipeline feeding on-device augmentation: the host decodes and batches, jaxreg augments.

grain's worker processes read JPEG records, decode them to uint8 and batch them with each
record's global index (its position in the shuffled, repeated stream). The device runs the
timm recipe (`examples/timm_recipe.py`) on the batch, every record keyed by
``jaxreg.record_keys(key, index)``: its augmentation does not depend on the batch size, the
number of workers, prefetching or a restart from a checkpoint of grain's iterator.

    python examples/grain_pipeline.py                  # 256 images of 256x256, 2 workers
    python examples/grain_pipeline.py --workers 0      # in the main process
    python examples/grain_pipeline.py --smoke          # 32 images of 64x64 -> 48

The records are scenes of coloured shapes drawn here (no download); the label is the kind of
the largest shape. Needs the `grain` extra (`pip install -e ".[grain]"`). docs/guides/grain.md
explains the keying and when grain is worth it.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import time

import grain
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from PIL import Image, ImageDraw

import jaxreg as jr

try:
  from examples import timm_recipe
except ImportError:  # run as a script: examples/ is on sys.path, the repository root is not
  import timm_recipe

A = jr.augment
KINDS = ("ellipse", "rectangle", "triangle")

# grain 0.2.18 reads one of its absl flags in its workers' start-up; a script that does not
# run under absl.app has not parsed flags and would fail there. Their defaults are what we want.
if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()


def draw_scene(rng: np.random.Generator, side: int) -> tuple[np.ndarray, int]:
  """A uint8 (side, side, 3) scene of 2-4 coloured shapes on a gradient; its largest's kind."""
  ramp = np.linspace(0, 1, side, dtype=np.float32)
  low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
  pixels = low + (high - low) * ramp[None, :, None] * ramp[:, None, None] ** 0.5
  image = Image.fromarray(np.broadcast_to(pixels, (side, side, 3)).astype(np.uint8))
  pen = ImageDraw.Draw(image)
  largest, label = 0.0, 0
  for _ in range(rng.integers(2, 5)):
    kind = int(rng.integers(len(KINDS)))
    w, h = rng.uniform(0.15, 0.6, 2) * side
    x, y = rng.uniform(0, side - w), rng.uniform(0, side - h)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    if kind == 0:
      pen.ellipse((x, y, x + w, y + h), fill=colour)
    elif kind == 1:
      pen.rectangle((x, y, x + w, y + h), fill=colour)
    else:
      pen.polygon([(x, y + h), (x + w / 2, y), (x + w, y + h)], fill=colour)
    if w * h > largest:
      largest, label = w * h, kind
  return np.asarray(image), label


@dataclasses.dataclass(frozen=True)
class JpegScenes:
  """A grain random-access data source: ``count`` JPEG-encoded scenes and their labels.

  Encoded once here; grain's workers decode them (`decode`), as they would read files.
  """

  jpegs: tuple[bytes, ...]
  labels: tuple[int, ...]

  @classmethod
  def make(cls, count: int, side: int, seed: int = 0) -> JpegScenes:
    rng = np.random.default_rng(seed)
    jpegs, labels = [], []
    for _ in range(count):
      pixels, label = draw_scene(rng, side)
      buffer = io.BytesIO()
      Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
      jpegs.append(buffer.getvalue())
      labels.append(label)
    return cls(tuple(jpegs), tuple(labels))

  def __len__(self) -> int:
    return len(self.jpegs)

  def __getitem__(self, record: int) -> dict:
    return {"jpeg": self.jpegs[record], "label": self.labels[record], "record": record}


def decode(index: int, element: dict) -> dict:
  """Runs in grain's workers: the record's uint8 pixels, its label, its ids."""
  with Image.open(io.BytesIO(element["jpeg"])) as image:
    pixels = np.array(image.convert("RGB"))  # writable, as torch.from_numpy wants
  # ``index``: the position in the shuffled, repeated stream (what keys the augmentation);
  # ``record``: the source's own id (what the record is).
  return {"image": pixels, "label": np.int32(element["label"]), "index": np.int64(index),
          "record": np.int64(element["record"])}


def dataset(source, *, batch_size: int, workers: int = 0, seed: int = 0, epochs: int = 1,
            prefetch: int = 2) -> grain.IterDataset:
  """Batches of ``{"image": uint8 (B, H, W, 3), "label", "index", "record": (B,)}``.

  Shuffled by ``seed``, repeated ``epochs`` times, decoded and batched in ``workers`` processes
  (0: in this one), each with one thread keeping ``prefetch`` batches ready: one core per
  worker. (grain's default is 16 threads and 500 elements ahead in each process.)
  """
  ds = grain.MapDataset.source(source).shuffle(seed=seed).repeat(epochs)
  ds = ds.map_with_index(decode).batch(batch_size, drop_remainder=True)
  ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=prefetch))
  if workers == 0:
    return ds
  return ds.mp_prefetch(
      grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=prefetch))


def make_augment(*, size: int = 224, num_classes: int = len(KINDS), mix: bool = True):
  """``augment(key, batch)``, jitted: the timm recipe on the device.

  ``key`` is the run's base key, the same every step; ``batch`` a `device_batch`. Each record's
  key is ``record_keys(key, index)`` (after one split, so the batch part draws from another
  stream). Returns ``(images, targets)``: the batch's mixing (mixup or cutmix) pairs records of
  the same batch, so its key folds in the batch's first index: the same batch after a restart,
  another one every step. ``mix=False``: the per-record uint8 images alone.
  """
  recipe = A.batched(timm_recipe.per_image(size=size))

  @jax.jit
  def augment(key, batch):
    k_records, k_batch = jax.random.split(key)
    images = recipe(jr.record_keys(k_records, batch["index"]), batch["image"])
    if not mix:
      return images
    return timm_recipe.mix_batch(jax.random.fold_in(k_batch, batch["index"][0]), images,
                                 batch["label"], num_classes=num_classes)

  return augment


def device_batch(batch: dict) -> dict:
  """A grain batch's image, label and index arrays on the default device."""
  index = np.asarray(batch["index"])
  if index.max() >= 2**32:  # record_keys folds in 32 bits
    raise ValueError(f"record index {index.max()} does not fit in 32 bits")
  return {"image": jnp.asarray(batch["image"]), "label": jnp.asarray(batch["label"]),
          "index": jnp.asarray(index.astype(np.uint32))}


def main(argv=None) -> float:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workers", type=int, default=2, help="grain worker processes")
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--smoke", action="store_true", help="32 images of 64x64, cropped to 48")
  args = parser.parse_args(argv)
  count, side, size = (32, 64, 48) if args.smoke else (256, 256, 224)
  batch_size = min(args.batch_size, count // 2)
  source = JpegScenes.make(count, side)
  augment = make_augment(size=size)
  key = jax.random.key(0)
  iterator = iter(dataset(source, batch_size=batch_size, workers=args.workers, epochs=2))
  try:
    first = device_batch(next(iterator))
    jax.block_until_ready(augment(key, first))  # compiles
    start, seen = time.perf_counter(), 0
    for batch in iterator:
      images, targets = augment(key, device_batch(batch))
      seen += images.shape[0]
      del batch  # grain's shared-memory buffers are freed with their last reference
    jax.block_until_ready(images)
    rate = seen / (time.perf_counter() - start)
  finally:
    del iterator  # stops grain's workers before the interpreter shuts down
  print(f"{images.shape} images, {targets.shape} targets from {args.workers} grain worker(s): "
        f"{rate:.0f} images/s on {jax.devices()[0].platform}")
  return rate


if __name__ == "__main__":
  main()
