"""Data-parallel training of the study's network, the batch sharded over every device.

The network, optimizer and data are those of examples/regularization_study.py (configuration
"all": dropout, batch norm, augmentation, drop-path and decoupled L2). Every example of the
batch owns a PRNG key, split from the step's key on the GLOBAL batch before it is sharded, and
every random draw for that example (its augmentation, its dropout masks, its drop-path coin)
folds in from that key. So where an example lands, on which device and at which position,
changes nothing: the sharded run draws exactly what a single-device run draws. The script checks
that the parameters and batch-norm statistics after the first step agree with a single-device
step to float tolerance (the sums run in another order: nothing else may differ), and reports
their difference after N steps, where Adam has magnified those roundings: its normalized update
moves a parameter whose gradient is near zero by about the learning rate either way.

    python examples/data_parallel.py                    # both ways, over all devices
    python examples/data_parallel.py --mode jit         # plain jit over a sharded batch only
    python examples/data_parallel.py --devices 4        # CPU: how many devices to simulate

Two ways to shard, both JAX's own SPMD machinery:

* ``--mode shard_map``: the step runs per device under `jax.shard_map`; batch norm takes
  ``axis_name="data"`` (global statistics from summed counts and sums), and the gradients of the
  replicated parameters come back summed over devices (JAX types them as device-invariant).
* ``--mode jit``: the single-device step itself, jitted with the batch constrained to be sharded;
  XLA partitions it and inserts the collectives, batch norm needs no ``axis_name``.

On a machine with only a CPU, XLA is told to expose ``--devices`` (default 8) host devices; on a
GPU/TPU machine every accelerator is used. Multi-host: call ``jax.distributed.initialize()``
first (tests/test_distributed.py runs `train` in two processes); nothing else changes.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time


def _simulate_host_devices(argv) -> None:
  """Asks XLA for several CPU devices. Must run before JAX initializes its backends."""
  count = "8"
  for i, arg in enumerate(argv):
    if arg.startswith("--devices="):
      count = arg.split("=", 1)[1]
    elif arg == "--devices" and i + 1 < len(argv):
      count = argv[i + 1]
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


if __name__ == "__main__":
  _simulate_host_devices(sys.argv[1:])

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

try:
  from examples import regularization_study as study
except ImportError:  # run as a script: examples/ is on sys.path, the repository root is not
  import regularization_study as study

AXIS = "data"


def make_step(cfg, data, *, lr, batch_size, mode, mesh=None):
  """A jitted ``step(params, bn_states, opt_state, key, step) -> (..., loss)``.

  Args:
    cfg: a `study.Config`.
    data: ``(x_train, y_train)`` arrays, replicated on every device (the digits are tiny).
    lr: Adam learning rate.
    batch_size: the global batch, a multiple of the device count when sharded.
    mode: "single" (one device), "shard_map" or "jit" (the batch sharded over ``mesh``).
    mesh: a 1-D `jax.sharding.Mesh` with axis "data", for the sharded modes.
  """
  x_train, y_train = (jnp.asarray(a) for a in data)
  tx = study.make_optimizer(cfg, lr)
  n_train = x_train.shape[0]

  def local_update(params, bn_states, opt_state, example_keys, x, y, axis_name):
    """The update from this device's share of the batch (all of it when axis_name is None)."""
    aug_keys, model_keys = (jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(example_keys)
                            for i in range(2))
    if cfg.augment:
      x = jax.vmap(study.augment_image)(aug_keys, x)

    def loss_fn(params):
      logits, states = study.apply_model(cfg, params, bn_states, None, x, train=True,
                                         example_keys=model_keys, axis_name=axis_name)
      # The local SUM over the global batch size: summed over devices, the global mean.
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).sum() / batch_size
      return loss, states

    (loss, bn_states), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    if axis_name is not None:
      # `params` are replicated (device-invariant) inputs of the shard_map, so JAX already
      # returns their gradients summed over devices; only the loss value is still local.
      loss = jax.lax.psum(loss, axis_name)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), bn_states, opt_state, loss

  def step(params, bn_states, opt_state, key, step_index):
    key = jax.random.fold_in(key, step_index)
    k_batch, k_examples = jax.random.split(key)
    idx = jax.random.choice(k_batch, n_train, (batch_size,), replace=False)
    x, y = x_train[idx], y_train[idx]
    example_keys = jax.random.split(k_examples, batch_size)  # on the global batch
    if mode == "single":
      return local_update(params, bn_states, opt_state, example_keys, x, y, None)
    if mode == "jit":
      shard = NamedSharding(mesh, P(AXIS))
      x, y, example_keys = (jax.lax.with_sharding_constraint(a, shard)
                            for a in (x, y, example_keys))
      return local_update(params, bn_states, opt_state, example_keys, x, y, None)
    if mode == "shard_map":
      per_device = jax.shard_map(
          lambda p, b, o, k, x, y: local_update(p, b, o, k, x, y, AXIS), mesh=mesh,
          in_specs=(P(), P(), P(), P(AXIS), P(AXIS), P(AXIS)), out_specs=P())
      return per_device(params, bn_states, opt_state, example_keys, x, y)
    raise ValueError(f"mode must be 'single', 'shard_map' or 'jit', got {mode!r}")

  return jax.jit(step, donate_argnums=(0, 1, 2))


def init_training_state(key, data, tx):
  """``(params, bn_states, opt_state)`` of the study's network for ``data = (x, y)``."""
  x_train, y_train = data
  num_classes = int(np.max(y_train)) + 1
  params = study.init_params(key, x_train.shape[-1], x_train.shape[1:3], num_classes)
  return params, study.init_bn_states(), tx.init(params)


def train(cfg, data, *, steps, lr, batch_size, mode, seed=0, devices=None):
  """Trains for ``steps`` steps.

  Returns ``(params, bn_states, losses, seconds_per_step, first)``: ``first`` is
  ``(params, bn_states)`` after the first step, as NumPy arrays.

  ``devices``: the devices to shard over (default: all of them, every process's); "single"
  mode uses the first. Outputs are replicated, so every process can read them.
  """
  devices = list(jax.devices() if devices is None else devices)
  if mode == "single":
    devices = devices[:1]
  if batch_size % len(devices):
    raise ValueError(f"--batch-size {batch_size} must be a multiple of the {len(devices)} "
                     "devices it is sharded over.")
  mesh = jax.sharding.Mesh(np.asarray(devices), (AXIS,))
  replicated = NamedSharding(mesh, P())
  tx = study.make_optimizer(cfg, lr)
  root = jax.random.key(seed)
  init_key, train_key = jax.random.fold_in(root, 0), jax.random.fold_in(root, 1)
  init = functools.partial(init_training_state, data=data, tx=tx)
  params, bn_states, opt_state = jax.jit(init, out_shardings=replicated)(init_key)
  step = make_step(cfg, data, lr=lr, batch_size=batch_size, mode=mode, mesh=mesh)
  losses = []
  params, bn_states, opt_state, loss = step(params, bn_states, opt_state, train_key, 0)
  losses.append(loss)
  to_host = lambda tree: jax.tree.map(np.asarray, tree)  # noqa: E731
  first = to_host((params, bn_states))  # the first step compiles: time the others
  start = time.perf_counter()
  for s in range(1, steps):
    params, bn_states, opt_state, loss = step(params, bn_states, opt_state, train_key, s)
    losses.append(loss)
  jax.block_until_ready(params)
  seconds = (time.perf_counter() - start) / max(steps - 1, 1)
  return to_host(params), to_host(bn_states), np.asarray(losses), seconds, first


def max_difference(a, b) -> float:
  """Largest absolute difference between two pytrees of arrays, relative to each leaf's scale."""
  diffs = [float(np.max(np.abs(x - y)) / max(1.0, float(np.max(np.abs(y)))))
           for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)]
  return max(diffs)


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--mode", choices=("shard_map", "jit", "both"), default="both",
                 help="how to shard the batch")
  p.add_argument("--steps", type=int, default=30, help="training steps N")
  p.add_argument("--batch-size", type=int, default=64, help="global batch size")
  p.add_argument("--train-size", type=int, default=300, help="training images")
  p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
  p.add_argument("--config", default="all", help="a configuration of the study")
  p.add_argument("--devices", type=int, default=8,
                 help="CPU only: how many host devices XLA simulates (read before JAX starts)")
  p.add_argument("--tolerance", type=float, default=1e-4,
                 help="largest accepted relative difference to the single-device run's "
                      "parameters and statistics after the first step")
  p.add_argument("--seed", type=int, default=0, help="root seed")
  args = p.parse_args(argv)
  names = {c.name: c for c in study.CONFIGS}
  if args.config not in names:
    p.error(f"unknown --config {args.config!r}; choose from {list(names)}")
  if args.steps < 1:
    p.error("--steps must be >= 1")
  args.cfg = names[args.config]
  return args


def main(argv=None) -> dict:
  args = parse_args(argv)
  x_train, y_train, _, _ = study.load_digits_split(args.train_size, args.seed)
  data = (x_train, y_train)
  devices = jax.devices()
  print(f"{len(devices)} {devices[0].platform} device(s); global batch {args.batch_size} "
        f"({args.batch_size // len(devices)} per device); config {args.cfg.name!r}; "
        f"{args.steps} steps")
  common = dict(steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
  ref_params, ref_bn, ref_losses, ref_seconds, ref_first = train(args.cfg, data, mode="single",
                                                                  **common)
  print(f"  single device: loss {ref_losses[0]:.4f} -> {ref_losses[-1]:.4f}, "
        f"{ref_seconds * 1e3:.1f} ms/step")
  report = {"devices": len(devices), "single_ms": ref_seconds * 1e3}
  ok = True
  for mode in (("shard_map", "jit") if args.mode == "both" else (args.mode,)):
    params, bn, losses, seconds, first = train(args.cfg, data, mode=mode, **common)
    first_diff = max_difference(first, ref_first)
    diff = max_difference((params, bn), (ref_params, ref_bn))
    same = first_diff <= args.tolerance
    ok &= same
    report[mode] = {"ms": seconds * 1e3, "first_step_max_rel_diff": first_diff,
                    "max_rel_diff": diff}
    print(f"  {mode:>9} over {len(devices)}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
          f"{seconds * 1e3:.1f} ms/step ({seconds / ref_seconds:.2f}x single); parameters and "
          f"batch-norm statistics vs single device, max relative difference: after the first "
          f"step {first_diff:.2e} -> {'EQUAL' if same else 'DIFFERENT'} (tolerance "
          f"{args.tolerance:g}), after {args.steps} steps {diff:.2e}")
  if not ok:
    raise SystemExit(1)
  return report


if __name__ == "__main__":
  main()
