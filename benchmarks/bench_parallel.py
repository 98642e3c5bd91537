"""Data-parallel training step (examples/data_parallel.py) vs the same step on one device.

    python -m benchmarks.bench_parallel            # 8 simulated CPU devices, batch 256
    python -m benchmarks.bench_parallel --smoke    # batch 16, a few rounds (CI)

On a CPU-only machine the devices are simulated (``--xla_force_host_platform_device_count``),
which XLA reads once per process: the measurement runs in a child process. The 8 "devices" share
the machine's cores, so the ratio is a sanity figure for the collectives' overhead, not a
speed-up. On an accelerator machine the devices are the real ones (a single GPU gives the
single-device numbers, and a 1-device "mesh" for the sharded step).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks import _harness as H  # noqa: N812

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _measure(batch: int, rounds: int) -> list[dict]:
  import jax
  import numpy as np

  from examples import data_parallel as dp

  study = dp.study
  cfg = study.CONFIGS[-1]
  data = study.load_digits_split(300)[:2]
  devices = jax.devices()
  tx = study.make_optimizer(cfg, 2e-3)

  def runner(mode):
    mesh = jax.sharding.Mesh(np.asarray(devices[:1] if mode == "single" else devices), ("data",))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    state = list(jax.device_put(dp.init_training_state(jax.random.key(0), data, tx), replicated))
    step = dp.make_step(cfg, data, lr=2e-3, batch_size=batch, mode=mode, mesh=mesh)
    key, count = jax.random.key(1), [0]

    def one_step():  # the step donates its state: thread it through
      count[0] += 1
      *state[:], loss = step(*state, key, count[0])
      return loss

    return one_step

  single = runner("single")
  rows = []
  for mode in ("shard_map", "jit"):
    t_m, t_s, ratio = H.median_ratio(runner(mode), single, rounds=rounds)
    rows.append(H.row(f"data-parallel step ({mode}) over {len(devices)} devices vs 1 device",
                      f"batch {batch} digits", "float32", t_m, t_s, ratio,
                      anchor_name="same step, 1 device", key=mode, devices=len(devices)))
  return rows


def run(smoke: bool = False) -> list[dict]:
  """Runs the measurement in a child process that sees 8 host devices."""
  batch, rounds = (16, 3) if smoke else (256, 21)
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  flags = env.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=8".strip()
  result = subprocess.run(
      [sys.executable, "-m", "benchmarks.bench_parallel", "--child", str(batch), str(rounds)],
      capture_output=True, text=True, env=env, cwd=ROOT, check=False)
  if result.returncode != 0:
    raise RuntimeError(f"bench_parallel child failed:\n{result.stdout}\n{result.stderr}")
  return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
  parser.add_argument("--child", nargs=2, type=int, metavar=("BATCH", "ROUNDS"),
                      help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    import jax

    with jax.debug_key_reuse(False):
      print(json.dumps(_measure(*args.child)))
  else:
    H.print_table(run(args.smoke))
