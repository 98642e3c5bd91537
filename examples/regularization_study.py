"""Regularization study: does each regularizer reduce overfitting? Many seeds at once with vmap.

Trains a small residual CNN on scikit-learn's handwritten digits (shipped with scikit-learn, no
download) from a deliberately small training subset, under several configurations: baseline,
L2 (through optax), dropout, batch norm, data augmentation, stochastic depth, and all together.
Each configuration trains K seeds in ONE jitted, vmapped training step (the seed's key drives
initialization, minibatches, dropout masks and augmentation), then reports train and test
accuracy on the test paths, plus Monte-Carlo dropout and multi-crop marginalized predictions.

    python examples/regularization_study.py            # the full study (minutes on 2 cores)
    python examples/regularization_study.py --quick    # a smoke run, under a minute
    python examples/regularization_study.py --data cifar10.npz   # your own images

Writes results.json (all numbers; written only when the run completes) and results.png (train
and test curves per configuration) into --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxreg as jr

A = jr.augment


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


class DataError(ValueError):
  """A --data file that cannot be used, with a message for the user."""


def load_digits_split(train_size: int, seed: int = 0):
  from sklearn.datasets import load_digits

  digits = load_digits()
  x = (digits.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1) in [0, 1]
  y = digits.target.astype(np.int32)
  order = np.random.default_rng(seed).permutation(len(x))
  x, y = x[order], y[order]
  if not 10 <= train_size <= len(x) - 100:
    raise DataError(f"--train-size must be between 10 and {len(x) - 100}, got {train_size}.")
  return x[:train_size], y[:train_size], x[train_size:], y[train_size:]


def load_npz(path: str, train_size: int | None):
  """x_train, y_train, x_test, y_test from an npz, NHWC in [0, 1] (float) or uint8."""
  try:
    data = np.load(path)
  except (OSError, ValueError) as err:
    raise DataError(f"cannot read {path!r} as an .npz file: {err}") from err
  missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data.files]
  if missing:
    raise DataError(f"{path}: missing arrays {missing}; expected x_train, y_train, x_test, "
                    f"y_test (found {data.files}).")
  arrays = {}
  for split in ("train", "test"):
    x, y = data[f"x_{split}"], data[f"y_{split}"]
    if x.ndim == 3:
      x = x[..., None]
    if x.ndim != 4:
      raise DataError(f"{path}: x_{split} must be NHWC (or NHW), got shape {x.shape}.")
    if x.dtype == np.uint8:
      x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
      x = x.astype(np.float32)
      if x.min() < 0 or x.max() > 1:
        raise DataError(f"{path}: float x_{split} must be in [0, 1], got range "
                        f"[{x.min():.3g}, {x.max():.3g}] (or store uint8).")
    else:
      raise DataError(f"{path}: x_{split} must be uint8 or float, got {x.dtype}.")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
      raise DataError(f"{path}: y_{split} must be integer labels of shape ({len(x)},), got "
                      f"{y.dtype} {y.shape}.")
    arrays[split] = (x, y.astype(np.int32))
  num_classes = int(max(arrays["train"][1].max(), arrays["test"][1].max())) + 1
  for split in ("train", "test"):
    if arrays[split][1].min() < 0:
      raise DataError(f"{path}: y_{split} has negative labels.")
  if arrays["train"][0].shape[1:] != arrays["test"][0].shape[1:]:
    raise DataError(f"{path}: train and test images differ in shape.")
  x_train, y_train = arrays["train"]
  if train_size is not None:
    x_train, y_train = x_train[:train_size], y_train[:train_size]
  return x_train, y_train, *arrays["test"], num_classes


# ---------------------------------------------------------------------------------------------
# Model: conv stem, residual blocks, dense head
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
  name: str
  weight_decay: float = 0.0
  dropout: float = 0.0
  batch_norm: bool = False
  augment: bool = False
  drop_path: float = 0.0


CONFIGS = (
    Config("baseline"),
    Config("l2", weight_decay=0.2),
    Config("dropout", dropout=0.3),
    Config("batch_norm", batch_norm=True),
    Config("augment", augment=True),
    Config("drop_path", drop_path=0.3),
    Config("all", weight_decay=0.2, dropout=0.3, batch_norm=True, augment=True, drop_path=0.3),
)

WIDTH, BLOCKS, HIDDEN = 16, 2, 64


def conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def init_params(key, in_channels, image_hw, num_classes):
  keys = jax.random.split(key, BLOCKS + 3)
  he = lambda k, shape, fan_in: jax.random.normal(k, shape) * math.sqrt(2.0 / fan_in)  # noqa
  params = {
      "stem": he(keys[0], (3, 3, in_channels, WIDTH), 9 * in_channels),
      "blocks": [he(k, (3, 3, WIDTH, WIDTH), 9 * WIDTH) * 0.5 for k in keys[1:1 + BLOCKS]],
      "bn_scale": [jnp.ones(WIDTH) for _ in range(BLOCKS + 1)],
      "bn_bias": [jnp.zeros(WIDTH) for _ in range(BLOCKS + 1)],
  }
  flat = WIDTH * (image_hw[0] // 2) * (image_hw[1] // 2)
  params["hidden"] = he(keys[-2], (flat, HIDDEN), flat)
  params["hidden_b"] = jnp.zeros(HIDDEN)
  params["out"] = he(keys[-1], (HIDDEN, num_classes), HIDDEN) * 0.1
  params["out_b"] = jnp.zeros(num_classes)
  return params


def init_bn_states():
  return [jr.batch_norm_init(WIDTH) for _ in range(BLOCKS + 1)]


def apply_model(cfg: Config, params, bn_states, key, x, *, train: bool,
                mc_dropout: bool = False, example_keys=None, axis_name=None):
  """Logits and new batch-norm states. `key` is only used when train=True or mc_dropout.

  ``mc_dropout=True`` with ``train=False`` is Monte-Carlo dropout: dropout samples, everything
  else (batch norm, drop-path) takes its test path.

  ``example_keys`` (one key per example, instead of ``key``) makes every random draw a function
  of the example's own key, so a batch split over devices draws exactly what it draws on one
  device (examples/data_parallel.py); ``axis_name`` then names the device axis for batch norm.
  """
  sample = train or mc_dropout
  if example_keys is not None:
    keys = iter(range(2 * BLOCKS + 4))  # the op's index, folded into each example's key
  else:
    keys = iter(jax.random.split(key, 2 * BLOCKS + 4)) if sample else iter([None] * 64)
  new_states = []

  def draw(op, h, rate, op_train):
    """``op(key, h, rate)`` with one key for the batch, or one key per example."""
    if not op_train:
      return op(None, h, rate, train=False)
    k = next(keys)
    if example_keys is None:
      return op(k, h, rate, train=True)
    one = lambda ek, e: op(jax.random.fold_in(ek, k), e[None], rate, train=True)[0]  # noqa
    return jax.vmap(one)(example_keys, h)

  def norm(h, i):
    if not cfg.batch_norm:
      return h + params["bn_bias"][i]
    h, state = jr.batch_norm(h, params["bn_scale"][i], params["bn_bias"][i], bn_states[i],
                             train=train, axis_name=axis_name if train else None)
    new_states.append(state)
    return h

  h = jax.nn.relu(norm(conv(x, params["stem"]), 0))
  rates = jr.drop_path_rates(cfg.drop_path, BLOCKS)
  for i, w in enumerate(params["blocks"]):
    branch = jax.nn.relu(norm(conv(h, w), i + 1))
    branch = draw(jr.dropout, branch, cfg.dropout / 2, sample)
    h = h + draw(jr.drop_path, branch, rates[i], train)
  h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
  h = jax.nn.relu(h.reshape(h.shape[0], -1) @ params["hidden"] + params["hidden_b"])
  h = draw(jr.dropout, h, cfg.dropout, sample)
  logits = h @ params["out"] + params["out_b"]
  return logits, (new_states if cfg.batch_norm else bn_states)


def augment_image(key, image):
  """Digits-safe augmentation of one HWC image: shifts by a pixel, small brightness/contrast."""
  pipeline = A.compose(
      functools.partial(A.random_crop, size=image.shape[:2], padding=1),
      functools.partial(A.random_brightness, max_delta=0.1, clip=True),
      functools.partial(A.random_contrast, lower=0.8, upper=1.2, clip=True),
  )
  return pipeline(key, image)


def augment_batch(key, images):
  """`augment_image` on every image of an NHWC batch, each with its own key (no flips)."""
  return A.batched(augment_image)(key, images)


# ---------------------------------------------------------------------------------------------
# Training: K seeds in one jitted, vmapped step
# ---------------------------------------------------------------------------------------------


def make_optimizer(cfg: Config, lr: float):
  if cfg.weight_decay:
    # Decoupled (AdamW) L2 on kernels only: decay_mask leaves biases and norm parameters out.
    # (Coupled L2 before Adam, 1e-3, made some seeds unstable: see the README.)
    return optax.chain(optax.scale_by_adam(), jr.add_l2_decay(cfg.weight_decay),
                       optax.scale_by_learning_rate(lr))
  return optax.adam(lr)


def build(cfg: Config, data, *, lr: float, batch_size: int, num_classes: int):
  x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in data)
  tx = make_optimizer(cfg, lr)
  n_train = x_train.shape[0]

  def init_one(key):
    params = init_params(key, x_train.shape[-1], x_train.shape[1:3], num_classes)
    return params, init_bn_states(), tx.init(params)

  def loss_fn(params, bn_states, key, x, y):
    logits, bn_states = apply_model(cfg, params, bn_states, key, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), bn_states

  def step_one(params, bn_states, opt_state, key, step):
    key = jax.random.fold_in(key, step)
    k_batch, k_aug, k_model = jax.random.split(key, 3)
    idx = jax.random.choice(k_batch, n_train, (batch_size,), replace=False)
    x, y = x_train[idx], y_train[idx]
    if cfg.augment:
      x = augment_batch(k_aug, x)
    (loss, bn_states), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, bn_states, k_model, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), bn_states, opt_state, loss

  def accuracy_one(params, bn_states, x, y):
    logits, _ = apply_model(cfg, params, bn_states, None, x, train=False)
    return jnp.mean(jnp.argmax(logits, -1) == y)

  def marginal_one(params, bn_states, key, x, y):
    """Test accuracy of the marginalized predictions: MC dropout and multi-crop."""
    def mc_model(k, x):
      logits, _ = apply_model(cfg, params, bn_states, k, x, train=False, mc_dropout=True)
      return jax.nn.softmax(logits)

    mc_mean, _ = jr.mc_dropout_predict(key, mc_model, x, num_samples=16)
    mc_acc = jnp.mean(jnp.argmax(mc_mean, -1) == y)
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    probs = A.multi_crop_predict(
        lambda b: jax.nn.softmax(apply_model(cfg, params, bn_states, None, b, train=False)[0]),
        padded, size=x.shape[1:3], crops="five")
    crop_acc = jnp.mean(jnp.argmax(probs, -1) == y)
    return mc_acc, crop_acc

  init = jax.jit(jax.vmap(init_one))
  step = jax.jit(jax.vmap(step_one, in_axes=(0, 0, 0, 0, None)), donate_argnums=(0, 1, 2))
  accuracy = jax.jit(jax.vmap(accuracy_one, in_axes=(0, 0, None, None)))
  marginal = jax.jit(jax.vmap(marginal_one, in_axes=(0, 0, 0, None, None)))
  return init, step, accuracy, marginal, (x_train, y_train, x_test, y_test)


def train_config(cfg: Config, data, args, num_classes, progress):
  init, step, accuracy, marginal, (x_train, y_train, x_test, y_test) = build(
      cfg, data, lr=args.lr, batch_size=args.batch_size, num_classes=num_classes)
  seed_keys = jax.random.split(jax.random.key(args.seed), args.seeds)
  init_keys, train_keys, eval_keys = (jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(
      seed_keys) for i in range(3))
  params, bn_states, opt_state = init(init_keys)
  curve = {"step": [], "train_acc": [], "test_acc": []}
  start = time.perf_counter()
  for s in range(args.steps):
    params, bn_states, opt_state, loss = step(params, bn_states, opt_state, train_keys, s)
    if (s + 1) % args.eval_every == 0 or s + 1 == args.steps:
      curve["step"].append(s + 1)
      curve["train_acc"].append(np.asarray(accuracy(params, bn_states, x_train, y_train)).tolist())
      curve["test_acc"].append(np.asarray(accuracy(params, bn_states, x_test, y_test)).tolist())
    progress.update(1)
  jax.block_until_ready(params)
  seconds = time.perf_counter() - start
  mc_acc, crop_acc = marginal(params, bn_states, eval_keys, x_test, y_test)
  train_acc = np.asarray(curve["train_acc"][-1])
  test_acc = np.asarray(curve["test_acc"][-1])
  return {
      "config": dataclasses.asdict(cfg),
      "train_acc": train_acc.tolist(), "test_acc": test_acc.tolist(),
      "gap": (train_acc - test_acc).tolist(),
      "mc_dropout_test_acc": np.asarray(mc_acc).tolist(),
      "multi_crop_test_acc": np.asarray(crop_acc).tolist(),
      "final_loss": np.asarray(loss).tolist(),
      "train_seconds": seconds,
      "curve": curve,
  }


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def pm(values) -> str:
  values = np.asarray(values) * 100
  return f"{values.mean():5.1f} ± {values.std():4.1f}"


def results_table(results) -> str:
  lines = ["| config | train acc % | test acc % | gap | MC-dropout test % | 5-crop test % |",
           "|---|---|---|---|---|---|"]
  for r in results:
    lines.append(f"| {r['config']['name']} | {pm(r['train_acc'])} | {pm(r['test_acc'])} | "
                 f"{pm(r['gap'])} | {pm(r['mc_dropout_test_acc'])} | "
                 f"{pm(r['multi_crop_test_acc'])} |")
  return "\n".join(lines)


def save_figure(results, path):
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  cols = min(4, len(results))
  rows = math.ceil(len(results) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), sharey=True,
                           squeeze=False)
  for ax, r in zip(axes.flat, results, strict=False):
    steps = r["curve"]["step"]
    for key, color in (("train_acc", "tab:blue"), ("test_acc", "tab:orange")):
      acc = np.asarray(r["curve"][key]) * 100
      ax.plot(steps, acc.mean(1), color=color, label=key.replace("_acc", ""))
      ax.fill_between(steps, acc.min(1), acc.max(1), color=color, alpha=0.2)
    ax.set_title(r["config"]["name"])
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(results):]:
    ax.axis("off")
  for row in axes:
    row[0].set_ylabel("accuracy %")
  axes[0, 0].legend(loc="lower right")
  seeds = len(results[0]["test_acc"])
  fig.suptitle(f"train and test accuracy: mean over {seeds} seeds, band = min..max")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_json_atomically(obj, path):
  """Write to a temporary file and rename: an interrupted run leaves no partial results."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(obj, f, indent=1)
    os.chmod(tmp, 0o644)  # mkstemp makes it private
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--quick", action="store_true",
                 help="smoke run: 2 seeds, 100 steps, 3 configurations (under a minute)")
  p.add_argument("--seeds", type=int, default=8, help="seeds per configuration (vmapped)")
  p.add_argument("--steps", type=int, default=1000, help="training steps per configuration")
  p.add_argument("--train-size", type=int, default=300,
                 help="training images (small, so the baseline overfits)")
  p.add_argument("--batch-size", type=int, default=64, help="minibatch size")
  p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
  p.add_argument("--eval-every", type=int, default=100, help="steps between curve points")
  p.add_argument("--configs", default=",".join(c.name for c in CONFIGS),
                 help="comma-separated subset of: " + ", ".join(c.name for c in CONFIGS))
  p.add_argument("--data", default=None,
                 help="an .npz with x_train, y_train, x_test, y_test (NHWC in [0, 1] or uint8, "
                      "integer labels) instead of the digits")
  p.add_argument("--seed", type=int, default=0, help="root seed")
  p.add_argument("--out", default=".", help="directory for results.json and results.png")
  args = p.parse_args(argv)
  if args.quick:
    args.seeds, args.steps, args.eval_every = 2, 100, 50
    if args.configs == p.get_default("configs"):
      args.configs = "baseline,dropout,all"
  names = {c.name: c for c in CONFIGS}
  chosen = [n.strip() for n in args.configs.split(",") if n.strip()]
  unknown = [n for n in chosen if n not in names]
  if unknown:
    p.error(f"unknown configuration(s) {unknown}; choose from {list(names)}")
  args.config_list = [names[n] for n in chosen]
  for name in ("seeds", "steps", "batch_size", "eval_every"):
    if getattr(args, name) < 1:
      p.error(f"--{name.replace('_', '-')} must be >= 1")
  return args


def main(argv=None) -> dict:
  args = parse_args(argv)
  try:
    if args.data:
      x_train, y_train, x_test, y_test, num_classes = load_npz(args.data, args.train_size)
    else:
      x_train, y_train, x_test, y_test = load_digits_split(args.train_size, args.seed)
      num_classes = 10
  except DataError as err:
    print(f"error: {err}", file=sys.stderr)
    raise SystemExit(2) from None
  if args.batch_size > len(x_train):
    args.batch_size = len(x_train)
  data = (x_train, y_train, x_test, y_test)
  print(f"{len(x_train)} training / {len(x_test)} test images of shape {x_train.shape[1:]}, "
        f"{num_classes} classes; {args.seeds} seeds x {args.steps} steps per configuration")
  try:
    from tqdm import tqdm
  except ImportError:  # the examples extra brings tqdm; run without a bar otherwise
    tqdm = None
  total = args.steps * len(args.config_list)
  progress = tqdm(total=total, unit="step", dynamic_ncols=True) if tqdm else _NoBar()
  results = []
  try:
    for cfg in args.config_list:
      progress.set_description(cfg.name)
      results.append(train_config(cfg, data, args, num_classes, progress))
  except KeyboardInterrupt:
    progress.close()
    print("\ninterrupted: no results written", file=sys.stderr)
    raise SystemExit(130) from None
  progress.close()
  table = results_table(results)
  print("\n" + table)
  os.makedirs(args.out, exist_ok=True)
  summary = {"args": {k: v for k, v in vars(args).items() if k != "config_list"},
             "device": str(jax.devices()[0]), "results": results}
  try:
    save_figure(results, os.path.join(args.out, "results.png"))
  except ImportError:
    print("(matplotlib not installed: no figure; pip install -e '.[examples]')")
  write_json_atomically(summary, os.path.join(args.out, "results.json"))
  print(f"\nwrote {os.path.join(args.out, 'results.json')} and results.png")
  return summary


class _NoBar:
  def update(self, n):
    pass

  def set_description(self, text):
    print(text, flush=True)

  def close(self):
    pass


if __name__ == "__main__":
  main()
