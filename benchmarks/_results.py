"""Results files: what a measuring command writes, so that the documentation quotes it.

Every command that measures something the documentation quotes (`python -m benchmarks.run`,
`python -m benchmarks.gpu_aot`, `examples/regularization_study.py`) writes one JSON file:

    {"schema": 1,
     "command": "python -m benchmarks.run --only dropout",    # the exact command line
     "date": "2025-01-31T12:00:00+00:00",                     # UTC, when the run ended
     "wall_seconds": 61.2,                                    # the run's own wall time
     "machine": {"cpu": ..., "cores": 2, "memory_gib": 23.4, "system": ..., "libc": ...,
                 "load_average": [1.2, 1.5, 1.9]},               # os.getloadavg() at the end
     "device": {"platform": "cpu", "kind": "cpu", "count": 1},
     "versions": {"python": ..., "jax": ..., "jaxlib": ..., "numpy": ..., "optax": ...,
                  "flax": ..., "torch": ..., ...},            # every anchor that was imported
     ...                                                      # the command's own fields
     "rows": [{"key": "fwd_bwd_rate0.1", ...}, ...]}          # each row's raw numbers

A row's ``key`` is stable across runs, so that a page can name one value as
``FILE/KEY.FIELD`` (``dropout/fwd_bwd_rate0.1.ratio``); docs/_ext/results.py renders those
references at build time, and tests/test_figures.py fails when a page types a figure by hand.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import sys
import tempfile

SCHEMA = 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")

# Distributions whose version a file records when the run imported them (import name first).
CORE = (("jax", "jax"), ("jaxlib", "jaxlib"), ("numpy", "numpy"), ("optax", "optax"))
ANCHORS = (("flax", "flax"), ("torch", "torch"), ("torchvision", "torchvision"),
           ("dm_pix", "dm-pix"), ("augmax", "augmax"), ("grain", "grain"), ("keras", "keras"),
           ("equinox", "equinox"), ("PIL", "pillow"), ("sklearn", "scikit-learn"),
           ("jax_plugins", "jax-cuda12-plugin"))


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemTotal:"):
          return round(int(line.split()[1]) / 2**20, 1)
  except OSError:
    pass
  return None


def machine() -> dict:
  """The host: CPU model, cores, memory, operating system and C library."""
  libc, libc_version = platform.libc_ver()
  try:  # other work on the machine while it measured: 1, 5 and 15 minute averages at the end
    load = [round(v, 2) for v in os.getloadavg()]
  except OSError:
    load = None
  return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _memory_gib(),
          "system": platform.platform(terse=True),
          "libc": f"{libc} {libc_version}".strip() or None, "load_average": load}


def device() -> dict:
  """What JAX computes on: platform (cpu, gpu, tpu), device kind and count."""
  import jax

  devices = jax.devices()
  return {"platform": devices[0].platform, "kind": getattr(devices[0], "device_kind", ""),
          "count": len(devices)}


def _version(distribution: str) -> str | None:
  try:
    return importlib.metadata.version(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None


def versions() -> dict:
  """Python, JAX and the core libraries, and every anchor library this process imported."""
  found = {"python": platform.python_version()}
  for module, distribution in CORE + ANCHORS:
    if (module, distribution) in CORE or module in sys.modules:
      found[distribution] = _version(distribution) or getattr(sys.modules.get(module),
                                                              "__version__", None)
  return {name: v for name, v in found.items() if v}


def command_line(argv: list[str]) -> str:
  """``python ...`` as a user types it, whatever the interpreter's path."""
  return shlex.join(["python", *argv])


def metadata(argv: list[str], *, wall_seconds: float | None = None) -> dict:
  """The block every results file starts with (see the module docstring)."""
  return {"schema": SCHEMA, "command": command_line(argv),
          "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
          "wall_seconds": wall_seconds, "machine": machine(), "device": device(),
          "versions": versions()}


def write(path: str, obj: dict) -> None:
  """Writes ``obj`` as JSON through a temporary file: an interrupted run leaves no partial file."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(obj, f, indent=1)
      f.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it private
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def check_keys(rows: list[dict]) -> None:
  """Every row has a key, and no two rows of one file share it."""
  keys = [r.get("key") for r in rows]
  if None in keys or "" in keys:
    raise ValueError(f"every row needs a key; got {keys}")
  dupes = sorted({k for k in keys if keys.count(k) > 1})
  if dupes:
    raise ValueError(f"row keys must be unique within a file; repeated: {dupes}")
