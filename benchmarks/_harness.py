"""Shared timing and memory helpers for the benchmarks.

Anchors and jaxreg are compiled once, then timed interleaved (A, B, A, B, ...) in one process,
and the median of the per-round ratios is reported: on a noisy 2-core machine, interleaving keeps
both sides under the same background load.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import jax


def _block(tree):
  return jax.tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a,
                      tree)


def _calls_per_sample() -> int:
  # An accelerator runs calls asynchronously: a sample of several back-to-back calls measures
  # the device's time per call rather than the host's round trip for one.
  return 1 if jax.devices()[0].platform == "cpu" else 10


def _seconds_per_call(fn: Callable[[], object], calls: int, lead_calls: int = 0) -> float:
  for _ in range(lead_calls):  # untimed: the sample then follows fn's own calls
    _block(fn())
  start = time.perf_counter()
  for _ in range(calls - 1):
    fn()
  _block(fn())
  return (time.perf_counter() - start) / calls


def time_interleaved(fns: Sequence[Callable[[], object]], *, rounds: int = 9,
                     lead_calls: int = 0) -> list[float]:
  """Median seconds per call of each zero-argument function, measured round-robin.

  ``lead_calls``: untimed calls of the same function before each sample (see median_ratio).
  """
  for fn in fns:  # compile + warm up
    _block(fn())
  calls = _calls_per_sample()
  samples: list[list[float]] = [[] for _ in fns]
  for _ in range(rounds):
    for i, fn in enumerate(fns):
      samples[i].append(_seconds_per_call(fn, calls, lead_calls))
  return [statistics.median(s) for s in samples]


def median_ratio(fn: Callable[[], object], anchor: Callable[[], object], *,
                 rounds: int = 9, lead_calls: int = 0) -> tuple[float, float, float]:
  """(median seconds of fn, median seconds of anchor, median of per-round ratios fn/anchor).

  ``lead_calls``: untimed calls of the same function before each sample, so that a sample
  follows its own function's calls and not the other side's (see bench_batchnorm).
  """
  _block(fn())
  _block(anchor())
  calls = _calls_per_sample()
  ratios, mine, theirs = [], [], []
  for _ in range(rounds):
    a = _seconds_per_call(fn, calls, lead_calls)
    b = _seconds_per_call(anchor, calls, lead_calls)
    mine.append(a)
    theirs.append(b)
    ratios.append(a / b)
  return statistics.median(mine), statistics.median(theirs), statistics.median(ratios)


def temp_bytes(jitted: Callable, *args) -> int:
  """Temporary (scratch) bytes XLA allocates for one call, from the compiled executable."""
  return int(jitted.lower(*args).compile().memory_analysis().temp_size_in_bytes)


def bytes_accessed(jitted: Callable, *args) -> int:
  """The bytes XLA's cost analysis counts for one call of ``jitted`` (compiled, not run)."""
  cost = jitted.lower(*args).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return int(cost["bytes accessed"])


def torch_threads(fn: Callable[[], object]) -> int:
  """1 or torch's default thread count, whichever runs ``fn`` faster (best of 3); kept set.

  torchvision's per-image loops over small images often run faster on one thread.
  """
  import torch

  default = torch.get_num_threads()
  best = {}
  for threads in sorted({1, default}):
    torch.set_num_threads(threads)
    fn()
    samples = []
    for _ in range(3):
      start = time.perf_counter()
      fn()
      samples.append(time.perf_counter() - start)
    best[threads] = min(samples)
  threads = min(best, key=best.get)
  torch.set_num_threads(threads)
  return threads


def device_name() -> str:
  dev = jax.devices()[0]
  return f"{dev.platform}:{getattr(dev, 'device_kind', '')}".rstrip(":")


def row(op: str, shape: str, dtype: str, mine: float | None, anchor: float | None,
        ratio: float | None, temp: str = "", anchor_name: str = "", *, key: str,
        items: int | None = None, temp_bytes: int | None = None,
        anchor_temp_bytes: int | None = None, **extra) -> dict:
  """One row of a family's table and results file: its raw numbers, under a stable ``key``.

  ``mine`` and ``anchor`` are seconds per call; ``ratio`` is what the row compares (a time
  ratio, or temp bytes for a memory row); ``items``: images (or examples) per call, for a
  per-second figure; ``temp``: a free-text note for the printed table; ``extra``: any other
  raw number the row measures.
  """
  return {"key": key, "label": op, "shape": shape, "dtype": dtype, "device": device_name(),
          "seconds": mine, "anchor": anchor_name, "anchor_seconds": anchor, "ratio": ratio,
          "items": items, "temp_bytes": temp_bytes, "anchor_temp_bytes": anchor_temp_bytes,
          "note": temp, **extra}


def print_table(rows: list[dict]) -> None:
  head = ("| key | op | shape | dtype | device | jaxreg ms | anchor | anchor ms | ratio "
          "| temp bytes / note |")
  print(head)
  print("|" + "---|" * 10)
  fmt = lambda v, f, scale=1: "" if v is None else format(v * scale, f)  # noqa: E731
  for r in rows:
    temp = " vs ".join(format(b, ",") for b in (r["temp_bytes"], r["anchor_temp_bytes"])
                       if b is not None)
    note = "; ".join(t for t in (temp, r["note"]) if t)
    print(f"| {r['key']} | {r['label']} | {r['shape']} | {r['dtype']} | {r['device']} | "
          f"{fmt(r['seconds'], '.2f', 1e3)} | {r['anchor']} | "
          f"{fmt(r['anchor_seconds'], '.2f', 1e3)} | {fmt(r['ratio'], '.3f')} | {note} |")
