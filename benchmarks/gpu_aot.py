"""GPU memory and bytes moved, measured without a GPU: XLA compiles for an H100 here.

    python -m venv /tmp/gpu-aot && JAX=$(python -c "import jax; print(jax.__version__)")
    /tmp/gpu-aot/bin/pip install -e ".[bench]" "jax[cuda12]==$JAX"
    /tmp/gpu-aot/bin/python -m benchmarks.gpu_aot

JAX compiles for a GPU it does not have (deviceless ahead-of-time compilation): the CUDA plugin
describes the device from a target description (`H100_TARGET` below), and XLA runs its whole GPU
pipeline, fusion, scheduling and buffer assignment included, without running anything. So:

Batch norm and dropout: their training steps' temp bytes against flax, and the kernels of
their forward+backward.

- Memory (`temp_size_in_bytes`) is the compiler's own buffer assignment, not an estimate.
  GEMM autotuning needs a device and is off here.
- Time cannot be measured. The traffic rows count the bytes each kernel of the compiled
  forward+backward reads and writes (operands plus outputs of every top-level fusion or library
  call, in units of a copy of the tensor), which bounds a memory-bound op's time from below: it
  ranks graphs, it does not replace a GPU.

The augmentation pipeline (``--pipeline``, only those rows): random resized crop + flip +
colour jitter over a batch, jaxreg in both jitter orders and augmax, as kernels, bytes moved
and image-sized gathers.

The study's training step (``--study``, only those rows): kernels and bytes moved for 8 seeds
in one vmapped step and for one seed (the single-seed program run 8 times is the sequential
alternative).

Augmentation policies (``--policies``, only those rows): each op TrivialAugmentWide draws from
over a 128x224x224x3 batch, the batched policies, and a per-example `switch` under `vmap`, as
kernels, bytes moved and the gathers image-sized kernels run per output element (a select over
branches moves the bytes of one, but gathers for each).

The CUDA plugin is kept out of the project's environment (on a machine without a GPU, JAX tries
it at every import); this module re-runs itself with the two variables the plugin needs to load
with no GPU (`JAX_PLATFORMS=cpu`, `JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1`). Not run by CI.

Each run writes `benchmarks/results/gpu_aot[-pipeline|-policies|-study].json` (the metadata of
`benchmarks/_results.py`, the target it compiled for, and every row's counts under a stable
key), from which the documentation renders its "compiled for an H100" figures.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import sys
import time

from benchmarks import _results

PLUGIN_ENV = {"JAX_PLATFORMS": "cpu", "JAX_SKIP_CUDA_CONSTRAINTS_CHECK": "1",
              # Sharded autotuning is for fleets of devices; deviceless compiles can hang on it.
              "XLA_FLAGS": "--xla_gpu_shard_autotuning=false"}

# An H100 SXM (80 GB HBM3): compute capability 9.0, 132 SMs, 50 MiB L2, 3.35 TB/s. XLA's fusion
# and buffer decisions read the capability and these sizes.
H100_TARGET = """
platform_name: "CUDA"
device_description_str: "NVIDIA H100 80GB HBM3"
runtime_version { major: 12 minor: 9 patch: 0 }
dnn_version_info { major: 9 minor: 8 }
gpu_device_info {
  cuda_compute_capability { major: 9 minor: 0 }
  core_count: 132
  fpus_per_core: 128
  threads_per_warp: 32
  threads_per_block_limit: 1024
  threads_per_core_limit: 2048
  shared_memory_per_block: 49152
  shared_memory_per_block_optin: 232448
  shared_memory_per_core: 233472
  registers_per_core_limit: 65536
  registers_per_block_limit: 65536
  block_dim_limit_x: 2147483647
  block_dim_limit_y: 65535
  block_dim_limit_z: 65535
  l2_cache_size: 52428800
  memory_bandwidth: 3352320000000
  clock_rate_ghz: 1.98
  device_memory_size: 84929347584
}
"""

# The headline network (8 blocks, batch 512, width 1024) first, then neighbours: XLA's scheduler
# decides what a step keeps, and a small change of shape can move it by a buffer.
NETWORKS = ((8, 512, 1024), (4, 512, 1024), (12, 512, 1024), (8, 256, 1024), (8, 512, 512),
            (8, 512, 2048))
_ITEM_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "f32": 4, "s32": 4, "u32": 4,
               "f64": 8, "s64": 8, "u64": 8}
_ARRAY = re.compile(r"\b(" + "|".join(_ITEM_BYTES) + r")\[([0-9,]*)\]")
_INSTRUCTION = re.compile(r"\s*(?:ROOT )?%(\S+) = (.*?) ([a-z][\w-]*)\((.*?)\)(?:, |$)")
_KERNELS = ("fusion", "custom-call", "copy", "reduce", "transpose")


def array_bytes(hlo_type: str) -> int:
  """Bytes of every array in an HLO type such as ``(f32[8,4]{1,0}, bf16[4])``."""
  total = 0
  for dtype, dims in _ARRAY.findall(hlo_type):
    count = 1
    for d in filter(None, dims.split(",")):
      count *= int(d)
    total += count * _ITEM_BYTES[dtype]
  return total


def kernel_traffic(hlo_text: str, min_bytes: int = 1 << 16) -> tuple[int, int]:
  """(kernels, bytes) read and written by the top-level kernels of a compiled HLO module.

  Each fusion, library call, copy, reduce or transpose of the entry computation counts its
  operands and outputs once; kernels moving less than ``min_bytes`` (per-feature vectors) are
  left out. Bitcasts and tuple plumbing move nothing.
  """
  start = hlo_text.find("\nENTRY")
  if start < 0:
    raise ValueError("kernel_traffic expects a compiled HLO module with an ENTRY computation")
  types: dict[str, str] = {}
  kernels = moved = 0
  for line in hlo_text[start:].splitlines()[1:]:
    match = _INSTRUCTION.match(line)
    if not match:
      continue
    name, out_type, opcode, operands = match.groups()
    types[name] = out_type
    if opcode in _KERNELS:
      nbytes = array_bytes(out_type) + sum(
          array_bytes(types.get(o, "")) for o in re.findall(r"%([\w.\-]+)", operands))
      if nbytes >= min_bytes:
        kernels += 1
        moved += nbytes
  return kernels, moved


def fused_gathers(hlo_text: str, min_elements: int) -> int:
  """Gathers inside the top-level fusions of a compiled HLO module that write at least
  ``min_elements`` elements: per output element, the gathers an image-sized kernel runs.

  A fusion that gathers from its input once per branch of a select (a per-example `switch`
  under `vmap`) moves the same bytes as one that gathers once, but does the address
  arithmetic and the scattered reads of every branch; this counts them.
  """
  start = hlo_text.find("\nENTRY")
  if start < 0:
    raise ValueError("fused_gathers expects a compiled HLO module with an ENTRY computation")
  total = 0
  for line in hlo_text[start:].splitlines()[1:]:
    match = _INSTRUCTION.match(line)
    if not match or match.group(3) != "fusion":
      continue
    called = re.search(r"calls=%?([\w.\-]+)", line)
    elements = max((math.prod(int(d) for d in filter(None, dims.split(",")))
                    for _, dims in _ARRAY.findall(match.group(2))), default=0)
    if called and elements >= min_elements:
      body_start = hlo_text.find(f"%{called.group(1)} ")
      body = hlo_text[body_start:hlo_text.find("\n}\n", body_start)]
      total += body.count(" gather(")
  return total


def gpu_device():
  """An H100 described by `H100_TARGET`, to compile for (CUDA plugin needed, no GPU)."""
  from jax.experimental import topologies

  try:
    topology = topologies.get_topology_desc("h100", "cuda", target_config=H100_TARGET,
                                            topology="1x1x1")
  except (NotImplementedError, RuntimeError) as err:
    raise RuntimeError(
        "compiling for a GPU needs JAX's CUDA plugin, loaded without a GPU: install "
        "'jax[cuda12]' at the installed jax version and run `python -m benchmarks.gpu_aot` "
        f"(see its docstring); JAX said: {err}") from err
  return topology.devices[0]


def _compiled(jitted, device, *args):
  import jax

  sharding = jax.sharding.SingleDeviceSharding(device)
  specs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), args)
  return jitted.lower(*specs).compile()


def memory_rows(device, networks=NETWORKS) -> list[dict]:
  """Temp bytes of the batch-norm network's training step, jaxreg and flax, per network."""
  import jax.numpy as jnp

  import jaxreg as jr
  from benchmarks import bench_batchnorm as bench

  rows = []
  for blocks, batch, width in networks:
    for dtype in (jnp.float32, jnp.bfloat16):
      params = [(jnp.zeros((width, width), dtype), jnp.ones(width, dtype),
                 jnp.zeros(width, dtype)) for _ in range(blocks)]
      states = [jr.batch_norm_init(width) for _ in range(blocks)]
      x = jnp.ones((batch, width), dtype)
      mine, theirs = [_compiled(bench._mlp_step(bn, blocks), device, params, states, x)
                      .memory_analysis().temp_size_in_bytes
                      for bn in (bench.jaxreg_train, bench.flax_train(True, dtype))]
      name = jnp.dtype(dtype).name
      rows.append({"key": f"bn_mlp_{blocks}x{batch}x{width}_{name}",
                   "label": f"{blocks} x (Dense -> BatchNorm -> ReLU) {batch}x{width}, {name}",
                   "dtype": name, "anchor": "flax default nn.BatchNorm", "temp_bytes": mine,
                   "anchor_temp_bytes": theirs, "temp_ratio": mine / theirs})
  return rows


def traffic_rows(device, shape=(256, 56, 56, 64)) -> list[dict]:
  """Kernels and bytes moved (in copies) of the compiled batch-norm forward+backward."""
  import jax
  import jax.numpy as jnp

  import jaxreg as jr
  from benchmarks import bench_batchnorm as bench

  rows = []
  for dtype in (jnp.float32, jnp.bfloat16):
    x = jnp.zeros(shape, dtype)
    args = (x, jnp.ones(shape[-1]), jnp.zeros(shape[-1]), jr.batch_norm_init(shape[-1]), x)
    _, copy = kernel_traffic(_compiled(jax.jit(lambda a: a * 2), device, x).as_text())
    for key, name, bn in (("jaxreg", "jaxreg", bench.jaxreg_train),
                          ("flax_default", "flax default", bench.flax_train(True, dtype)),
                          ("flax_two_pass", "flax two-pass", bench.flax_train(False, dtype))):
      text = _compiled(bench._forward_backward(bn), device, *args).as_text()
      kernels, moved = kernel_traffic(text)
      dtype_name = jnp.dtype(dtype).name
      rows.append({"key": f"bn_fwd_bwd_{dtype_name}_{key}",
                   "label": f"batch_norm forward+backward, {dtype_name}, {name}",
                   "shape": "x".join(map(str, shape)), "dtype": dtype_name, "library": name,
                   "kernels": kernels, "bytes_moved": moved, "copies": moved / copy})
  return rows


def dropout_rows(device) -> list[dict]:
  """Kernels and copies moved by dropout at the benchmark's sizes, and its MLP step's temp."""
  import jax
  import jax.numpy as jnp

  import jaxreg as jr
  from benchmarks import bench_dropout as bench

  x, key = jnp.zeros((12800, 1000)), jax.random.key(0)
  _, copy = kernel_traffic(_compiled(jax.jit(lambda a: a * 2), device, x).as_text())
  rows = []
  for lib, name, op in (("jaxreg", "jaxreg", lambda k, x: jr.dropout(k, x, 0.1, train=True)),
                        ("jaxreg_recompute", "jaxreg recompute_mask",
                         lambda k, x: jr.dropout(k, x, 0.1, train=True, recompute_mask=True)),
                        ("flax", "flax", bench.flax_dropout(0.1))):
    for case, label, wrap in (("fwd_bwd", "forward+backward", bench._forward_backward),
                              ("fwd", "forward", bench._forward)):
      compiled = _compiled(wrap(op), device, key, x, x)
      kernels, moved = kernel_traffic(compiled.as_text())
      rows.append({"key": f"dropout_{case}_{lib}",
                   "label": f"dropout {label} 12800x1000, rate 0.1, {name}", "library": name,
                   "kernels": kernels, "bytes_moved": moved, "copies": moved / copy,
                   "temp_bytes": compiled.memory_analysis().temp_size_in_bytes})
    params = [jnp.zeros((1024, 1024)) for _ in range(8)]
    h = jnp.ones((512, 1024))
    temp = _compiled(bench._mlp_step(op, 8), device, params, key, h, h).memory_analysis()
    rows.append({"key": f"dropout_mlp_step_{lib}",
                 "label": f"8-layer MLP step 512x1024, dropout 0.1, {name}", "library": name,
                 "temp_bytes": temp.temp_size_in_bytes})
  flax = next(r for r in rows if r["key"] == "dropout_mlp_step_flax")["temp_bytes"]
  for r in rows:
    if r["key"].startswith("dropout_mlp_step_"):
      r["anchor_temp_bytes"], r["temp_ratio"] = flax, r["temp_bytes"] / flax
  return rows


def policy_rows(device, shape=(128, 224, 224, 3)) -> list[dict]:
  """Kernels, copies moved and image-sized gathers of the compiled augmentation policies.

  Each op TrivialAugmentWide draws from, applied to the whole batch at its largest magnitude
  (`vmap` of the public op), then the batched policies (each example its own ops; on a GPU
  the library's form: one warp with a per-example matrix and one photometric select per
  slot), and the same TrivialAugmentWide draws through a per-example `switch` under `vmap`.
  ``vs_costliest``: copies moved against the op that moves the most.
  """
  import jax
  import jax.numpy as jnp

  from benchmarks import bench_policies as bench

  images, key = jnp.zeros(shape, jnp.float32), jax.random.key(0)
  _, copy = kernel_traffic(_compiled(jax.jit(lambda a: a * 2), device, images).as_text())

  def measure(name, fn, *args, key=None):
    text = _compiled(jax.jit(fn), device, *args).as_text()
    kernels, moved = kernel_traffic(text)
    key = key or (f"op_{name[3:].lower()}" if name.startswith("op ") else bench.key_of(name))
    return {"key": key, "label": name, "kernels": kernels, "bytes_moved": moved,
            "copies": moved / copy, "gathers": fused_gathers(text, math.prod(shape))}

  rows = [measure(f"op {name}", jax.vmap(fn), images) for name, fn in bench.OPS.items()]
  for name, fn in bench.policies().items():
    rows.append(measure(name, fn, key, images))
  rows.append(measure("trivial_augment_wide, vmap of switch", bench.switch_under_vmap, key,
                      images))
  # The NaN guard of the accelerators' form (docs/policies.md, "A non-finite magnitude"): the
  # library's against none and against the rejected select; extra_bytes: over no guard.
  guards = {guard: measure(f"trivial_augment_wide, vectorized, NaN guard: {guard}",
                           functools.partial(bench.vectorized, guard=guard), key, images,
                           key=f"trivial_augment_wide_guard_{guard}")
            for guard in ("none", "slot", "select")}
  for row in guards.values():
    row["extra_bytes"] = row["bytes_moved"] - guards["none"]["bytes_moved"]
    row["extra_kernels"] = row["kernels"] - guards["none"]["kernels"]
  rows += guards.values()
  costliest = max((r for r in rows if r["key"].startswith("op_")), key=lambda r: r["copies"])
  for r in rows:
    r["vs_costliest"] = r["copies"] / costliest["copies"]
    r["costliest"] = costliest["label"][3:]
  return rows


def pipeline_rows(device, shape=(128, 256, 256, 3), size=224) -> list[dict]:
  """Kernels, copies moved and image-sized gathers of random resized crop + flip + colour
  jitter over a batch, jaxreg in both jitter orders and augmax (benchmarks/bench_augment).

  Copies are in units of one 224x224 output batch (float32).
  """
  import jax
  import jax.numpy as jnp

  from benchmarks import bench_augment as bench

  images, key = jnp.zeros(shape, jnp.float32), jax.random.key(0)
  out = jnp.zeros((shape[0], size, size, shape[3]), jnp.float32)
  _, copy = kernel_traffic(_compiled(jax.jit(lambda a: a * 2), device, out).as_text())
  cases = (("jaxreg_random", "jaxreg, random jitter order", bench.jaxreg_pipeline(size)),
           ("jaxreg_fixed", "jaxreg, fixed jitter order",
            bench.jaxreg_pipeline(size, random_order=False)),
           ("augmax", "augmax (its ColorJitter: fixed order, in HSV)",
            bench.augmax_pipeline(size)))
  rows = []
  for key_, name, fn in cases:
    text = _compiled(jax.jit(fn), device, key, images).as_text()
    kernels, moved = kernel_traffic(text)
    rows.append({"key": key_, "label": name, "kernels": kernels, "bytes_moved": moved,
                 "copies": moved / copy, "gathers": fused_gathers(text, math.prod(out.shape))})
  augmax = rows[-1]["copies"]
  for r in rows:
    r["vs_augmax"] = r["copies"] / augmax
  return rows


def study_rows(device) -> list[dict]:
  """Kernels and bytes moved of the study's training step for 8 seeds in one vmapped step and
  for one seed: on a GPU the convolutions keep `vmap`'s grouped form."""
  import jax
  import numpy as np

  from examples import regularization_study as study

  # The digits' shapes (what compiles); their values do not matter here.
  data = (np.zeros((300, 8, 8, 1), np.float32), np.zeros(300, np.int32),
          np.zeros((1497, 8, 8, 1), np.float32), np.zeros(1497, np.int32))
  programs = study.build(data, lr=2e-3, batch_size=64, num_classes=10)
  rows = []
  for cfg in (study.CONFIGS[0], study.CONFIGS[-1]):
    for seeds in (8, 1):
      keys = jax.random.split(jax.random.key(0), seeds)
      state = jax.eval_shape(programs.init, keys)
      step = jax.jit(lambda p, b, o, k, n, cfg=cfg: programs.step(p, b, o, k, 0, n,
                                                               batch_norm=cfg.batch_norm))
      text = _compiled(step, device, *state, keys, cfg.knobs()).as_text()
      kernels, moved = kernel_traffic(text, min_bytes=0)
      rows.append({"key": f"{cfg.name}_{seeds}seeds", "label": cfg.name, "seeds": seeds,
                   "kernels": kernels, "bytes_moved": moved})
  for r in rows:
    if r["seeds"] > 1:
      one = next(o for o in rows if o["label"] == r["label"] and o["seeds"] == 1)
      r["sequential_kernels"] = r["seeds"] * one["kernels"]
      r["vs_sequential_bytes"] = r["bytes_moved"] / (r["seeds"] * one["bytes_moved"])
  return rows


def _print(rows: list[dict], columns: dict) -> None:
  print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
  for r in rows:
    print("| " + " | ".join(format(r[f], spec) if r.get(f) is not None else ""
                            for f, spec in columns.values()) + " |")


def main(argv=None) -> list[dict]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--only-headline-network", action="store_true",
                      help="memory of the headline network only (8 blocks, 512x1024)")
  parser.add_argument("--policies", action="store_true",
                      help="the augmentation policies' rows only")
  parser.add_argument("--pipeline", action="store_true",
                      help="crop + flip + colour jitter, jaxreg and augmax, only")
  parser.add_argument("--study", action="store_true",
                      help="the study's training step, 8 seeds vmapped and 1 seed, only")
  parser.add_argument("--results-dir", default=_results.RESULTS_DIR,
                      help="where gpu_aot[-<part>].json goes (benchmarks/results by default)")
  args = parser.parse_args(argv)
  argv = sys.argv[1:] if argv is None else argv
  missing = {k: v for k, v in PLUGIN_ENV.items() if k not in os.environ}
  if missing:  # the plugin reads these when JAX starts: start again with them
    command = [sys.executable, "-m", "benchmarks.gpu_aot", *argv]
    os.execve(sys.executable, command, {**os.environ, **missing})
  start = time.perf_counter()
  device = gpu_device()
  print(f"compiled for: {device.device_kind} (deviceless; nothing runs)\n")
  if args.pipeline:
    part, rows = "pipeline", pipeline_rows(device)
    _print(rows, {"RRC + flip + jitter, 128x256x256x3 -> 224": ("label", ""),
                  "kernels": ("kernels", "d"), "bytes moved, in output copies": ("copies", ".2f"),
                  "image-sized gathers": ("gathers", "d")})
  elif args.study:
    part, rows = "study", study_rows(device)
    _print(rows, {"study training step": ("label", ""), "seeds": ("seeds", "d"),
                  "kernels": ("kernels", "d"), "bytes moved": ("bytes_moved", ",")})
  elif args.policies:
    part, rows = "policies", policy_rows(device)
    _print(rows, {"128x224x224x3 float32": ("label", ""), "kernels": ("kernels", "d"),
                  "bytes moved, in copies": ("copies", ".2f"),
                  "vs the costliest op": ("vs_costliest", ".2f"),
                  "image-sized gathers": ("gathers", "d")})
  else:
    part = "headline" if args.only_headline_network else ""
    memory = memory_rows(device, NETWORKS[:1] if args.only_headline_network else NETWORKS)
    _print(memory, {"network": ("label", ""), "jaxreg temp bytes": ("temp_bytes", ","),
                    "flax temp bytes": ("anchor_temp_bytes", ","), "ratio": ("temp_ratio", ".3f")})
    rows = memory
    if not args.only_headline_network:
      traffic, dropout = traffic_rows(device), dropout_rows(device)
      print()
      _print(traffic, {"fwd+bwd 256x56x56x64": ("label", ""), "kernels": ("kernels", "d"),
                       "bytes moved, in copies": ("copies", ".2f")})
      print()
      _print(dropout, {"dropout": ("label", ""), "kernels": ("kernels", "d"),
                       "bytes moved, in copies": ("copies", ".2f"),
                       "temp bytes": ("temp_bytes", ",")})
      rows = memory + traffic + dropout
  _results.check_keys(rows)
  if args.results_dir:
    meta = _results.metadata(["-m", "benchmarks.gpu_aot", *argv],
                             wall_seconds=time.perf_counter() - start)
    path = os.path.join(args.results_dir, f"gpu_aot{'-' + part if part else ''}.json")
    _results.write(path, {**meta, "compiled_for": f"{device.device_kind} (deviceless "
                                                  "compilation: nothing runs, nothing is timed)",
                          "rows": rows})
    print(f"\nwrote {os.path.relpath(path)}")
  return rows


if __name__ == "__main__":
  main()
