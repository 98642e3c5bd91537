"""A grain pipeline feeding the timm recipe: jaxreg on the device against torchvision in grain's
workers (images per second, and the throughput ratio).

    python -m benchmarks.bench_grain            # 512 JPEG scenes 256x256 -> 224, batches of 128
    python -m benchmarks.bench_grain --smoke    # tiny, in the main process (CI)

Both sides read the same JPEG records (`examples/grain_pipeline.py`) through the same grain
pipeline (shuffle, repeat, decode in ``workers`` processes, batch) into a consumer that only
takes the batch:

- jaxreg: the workers decode and batch uint8; the consumer's device (here the same CPU) runs the
  recipe on the batch, every record keyed by `jaxreg.record_keys` (`grain_pipeline.make_augment`);
- torchvision: each worker also runs torchvision.transforms.v2 on every record (random resized
  crop, flip, TrivialAugmentWide, random erasing on a uint8 tensor, one torch thread per worker
  as PyTorch's DataLoader sets) and MixUp or CutMix on the batch.

With 1 worker, the usual host of one core per accelerator, torchvision's side has one core for
everything; jaxreg's moves the augmentation off the loader. The sides alternate, fresh
iterators each round; each run first takes ``warmup`` batches (worker start, compilation, the
prefetch buffers filling), then times the next ones. Each worker decodes (and, for torchvision,
augments) on one thread, two batches ahead: one core per worker, as `grain_pipeline.dataset`.
Needs the `bench` and `grain` extras; torchvision's rows say where torch is missing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from benchmarks import _harness as H  # noqa: N812


def _torch_one_thread(worker_index: int, worker_count: int) -> None:
  del worker_index, worker_count
  import torch

  torch.set_num_threads(1)


class TorchvisionRecord:
  """grain's per-record map for the torchvision side: decode, then v2's per-image recipe."""

  def __init__(self, size: int):
    self.size = size
    self._per_image = None

  def __call__(self, index: int, element: dict) -> dict:
    import torch
    from torchvision.transforms import v2

    from examples import grain_pipeline as gp

    if self._per_image is None:  # built in the worker process
      self._per_image = v2.Compose([v2.RandomResizedCrop(self.size, antialias=True),
                                    v2.RandomHorizontalFlip(), v2.TrivialAugmentWide(),
                                    v2.RandomErasing(p=0.25)])
    record = gp.decode(index, element)
    image = torch.from_numpy(record["image"]).permute(2, 0, 1).contiguous()
    record["image"] = self._per_image(image).numpy()
    return record


class TorchvisionMix:
  """grain's per-batch map for the torchvision side: MixUp (alpha 0.8) or CutMix (alpha 1)."""

  def __init__(self, num_classes: int):
    self.num_classes = num_classes
    self._mix = None

  def __call__(self, batch: dict) -> dict:
    import torch
    from torchvision.transforms import v2

    if self._mix is None:
      self._mix = v2.RandomChoice([v2.MixUp(alpha=0.8, num_classes=self.num_classes),
                                   v2.CutMix(alpha=1.0, num_classes=self.num_classes)])
    images = torch.from_numpy(np.asarray(batch["image"])).float().div_(255)
    images, targets = self._mix(images, torch.from_numpy(np.asarray(batch["label"])).long())
    return {"image": images.numpy(), "target": targets.numpy(), "index": batch["index"]}


def torchvision_dataset(source, *, batch_size: int, workers: int, size: int, epochs: int):
  import grain

  from examples import grain_pipeline as gp

  ds = grain.MapDataset.source(source).shuffle(seed=0).repeat(epochs)
  ds = ds.map_with_index(TorchvisionRecord(size)).batch(batch_size, drop_remainder=True)
  ds = ds.map(TorchvisionMix(len(gp.KINDS))).to_iter_dataset(
      grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))  # as gp.dataset: a core a worker
  if workers == 0:
    return ds
  options = grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=2)
  return ds.mp_prefetch(options, worker_init_fn=_torch_one_thread)


def images_per_second(iterator, consume, *, warmup: int, batches: int) -> float:
  """Takes ``warmup`` batches, then times ``batches`` more through ``consume``."""
  try:
    for _ in range(warmup):
      consume(next(iterator))
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
      seen += consume(next(iterator))
    return seen / (time.perf_counter() - start)
  finally:
    del iterator  # stops the workers


def run(smoke: bool = False) -> list[dict]:
  from examples import grain_pipeline as gp  # the `grain` extra

  # The smoke run's batches are the grain guide's (docs/guides/grain.md).
  count, side, size, batch_size = (16, 64, 48, 8) if smoke else (512, 256, 224, 128)
  worker_counts, rounds, warmup, batches = ((0,), 1, 1, 2) if smoke else ((1, 2), 3, 3, 10)
  epochs = -(-(warmup + batches) * batch_size // count)
  source = gp.JpegScenes.make(count, side)
  augment = gp.make_augment(size=size)
  key = jax.random.key(0)

  def consume_jaxreg(batch) -> int:
    images, _ = jax.block_until_ready(augment(key, gp.device_batch(batch)))
    return images.shape[0]

  def consume_torchvision(batch) -> int:
    return batch["image"].shape[0]

  try:
    import torchvision  # noqa: F401
  except ImportError:
    have_torch = False
  else:
    have_torch = True
  shape = f"{count} JPEG {side}x{side} -> {size}, batches of {batch_size}"
  rows = []
  for workers in worker_counts:
    mine, theirs = [], []
    for _ in range(rounds):
      mine.append(images_per_second(
          iter(gp.dataset(source, batch_size=batch_size, workers=workers, epochs=epochs)),
          consume_jaxreg, warmup=warmup, batches=batches))
      if have_torch:
        theirs.append(images_per_second(
            iter(torchvision_dataset(source, batch_size=batch_size, workers=workers, size=size,
                                     epochs=epochs)),
            consume_torchvision, warmup=warmup, batches=batches))
    rate = statistics.median(mine)
    if not theirs:
      rows.append(H.row(f"grain, {workers} worker(s): timm recipe (torchvision not installed)",
                        shape, "uint8", 1 / rate, None, None, f"{rate:.0f} img/s",
                        key=f"workers{workers}", items=1, workers=workers))
      continue
    anchor = statistics.median(theirs)
    rows.append(H.row(f"grain, {workers} worker(s): timm recipe", shape, "uint8", 1 / rate,
                      1 / anchor, anchor / rate, f"{rate:.0f} vs {anchor:.0f} img/s",
                      anchor_name="torchvision.transforms.v2 in grain's workers",
                      key=f"workers{workers}", items=1, workers=workers,
                      images_per_second=mine, anchor_images_per_second=theirs))
  return rows


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  args = parser.parse_args()
  with jax.debug_key_reuse(False):
    H.print_table(run(args.smoke))
