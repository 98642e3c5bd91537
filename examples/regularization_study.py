"""Regularization study: does each regularizer reduce overfitting? Many seeds at once with vmap.

Trains a small residual CNN on scikit-learn's handwritten digits (shipped with scikit-learn, no
download) from a deliberately small training subset, under seven configurations: baseline, L2
(through optax), dropout, batch norm, data augmentation, stochastic depth, and all together.
Each configuration trains K seeds in ONE jitted, vmapped training step (the seed's key drives
initialization, minibatches, dropout masks and augmentation). Then, for every seed, it measures
the test set three ways: the deterministic test path, Monte-Carlo dropout (16 samples,
configurations with dropout) and 5-crop averaging, each by accuracy, negative log-likelihood and
expected calibration error (examples/calibration.py).

    python examples/regularization_study.py            # the full study (about 3 minutes, 2 cores)
    python examples/regularization_study.py --quick    # a smoke run, under a minute
    python examples/regularization_study.py --data cifar10.npz   # your own images

Writes results.json (every number, one row per configuration, after the command, date, machine,
device and versions of `benchmarks/_results.py`; written only when the run completes),
results.png (train and test curves per configuration) and reliability.png (reliability
diagrams) into --out. docs/study/index.md renders its tables from the copy in docs/study/.

Two things make the CPU run fast (docs/guides/vmap_seeds_cpu.md has the figures):

* The configurations differ only in numbers and on/off switches, so they are passed to the
  compiled programs as traced values (`Knobs`; switched-off parts are skipped by `lax.cond`):
  two compilations (with and without batch norm) serve all seven configurations.
* Under `vmap` over seeds every convolution has a kernel per seed, which XLA:CPU runs as a slow
  grouped convolution. `conv` loops over the seeds instead (one plain convolution each) on the
  CPU, and keeps the grouped form on accelerators.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import resource
import sys
import tempfile
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxreg as jr

try:
  from examples import calibration as cal
except ImportError:  # run as a script: examples/ is on sys.path, the repository root is not
  import calibration as cal

  sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _results  # the metadata block every results file starts with

A = jr.augment
MC_SAMPLES = 16
# Images (views x seeds x examples) per evaluation call: bounds the evaluation's memory.
EVAL_IMAGES = 16384


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

  def knobs(self) -> Knobs:
    """The configuration as traced values, so that every configuration runs the same programs."""
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    return Knobs(f32(self.weight_decay), f32(self.dropout), jnp.asarray(self.batch_norm),
                 jnp.asarray(self.augment), f32(self.drop_path))


class Knobs(NamedTuple):
  """A `Config` as arrays, passed to the jitted programs (not vmapped: the same for every seed).

  Switched-off parts are skipped by `lax.cond`. The training step takes ``batch_norm`` as a
  static argument instead (one compilation with batch norm, one without): batch norm inside a
  `lax.cond` made the vmapped training step about 35% slower on the CPU.
  """

  weight_decay: jax.Array  # float32[]: decoupled L2 strength, 0 for none
  dropout: jax.Array  # float32[]: dropout rate of the head (half of it inside the blocks)
  batch_norm: jax.Array | bool  # bool[], or a Python bool where static
  augment: jax.Array  # bool[]
  drop_path: jax.Array  # float32[]: drop-path rate of the last block


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


def _when(flag, on, off, *operands):
  """``on(*operands)`` if ``flag`` else ``off(*operands)``: in Python for a Python flag (a
  `Config`), with `lax.cond` for a traced one (`Knobs`), which runs only the chosen branch (the
  flag is the same for every seed, so `vmap` keeps the cond rather than computing both)."""
  if isinstance(flag, (bool, np.bool_)):
    return on(*operands) if flag else off(*operands)
  return jax.lax.cond(flag, on, off, *operands)


def _plain_conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _plain_conv_transposes(x, w, g):
  """``(dx, dw)``: the convolution's vector-Jacobian product for the output cotangent g."""
  return jax.vjp(_plain_conv, x, w)[1](g)


def _one_per_kernel(fn, *, fold_shared_kernel):
  """``fn(x, w, ...)`` whose `vmap` over kernels ``w`` runs one ``fn`` per kernel on the CPU.

  XLA:CPU runs a vmapped convolution (a grouped convolution) several times slower than the same
  convolutions one kernel at a time (docs/guides/vmap_seeds_cpu.md), so on the CPU the batching
  rule unrolls a loop over the vmapped axis; on other platforms it keeps the grouped form. A
  vmapped axis that only ``x`` has (Monte-Carlo samples sharing the kernel) is folded into the
  batch when ``fold_shared_kernel``: one convolution over more images.
  """
  looped = jax.custom_batching.custom_vmap(fn)

  @looped.def_vmap
  def rule(axis_size, in_batched, x, w, *rest):
    args = (x, w, *rest)
    if fold_shared_kernel and in_batched[0] and not any(in_batched[1:]):
      out = looped(x.reshape(-1, *x.shape[2:]), w, *rest)
      return out.reshape(axis_size, -1, *out.shape[1:]), True

    def one_each(*args):
      outs = [looped(*(a[i] if b else a for a, b in zip(args, in_batched, strict=True)))
              for i in range(axis_size)]
      return jax.tree.map(lambda *o: jnp.stack(o), *outs)

    def vectorized(*args):
      return jax.vmap(fn, in_axes=tuple(0 if b else None for b in in_batched))(*args)

    if not in_batched[1]:  # kernel shared: the standard batching rule
      out = vectorized(*args)
    else:
      out = jax.lax.platform_dependent(*args, cpu=one_each, default=vectorized)
    return out, jax.tree.map(lambda _: True, out)

  return looped


_conv_forward = _one_per_kernel(_plain_conv, fold_shared_kernel=True)
_conv_backward = _one_per_kernel(_plain_conv_transposes, fold_shared_kernel=False)


@jax.custom_vjp
def conv(x, w):
  """3x3 'SAME' convolution, NHWC x HWIO; vmapped over seeds it stays one conv per seed on CPU."""
  return _conv_forward(x, w)


conv.defvjp(lambda x, w: (_conv_forward(x, w), (x, w)),
            lambda residuals, g: _conv_backward(*residuals, g))


def max_pool_2x2(h):
  """2x2 max pooling, stride 2, of NHWC maps, written as a reshape and a max.

  `lax.reduce_window`'s gradient (select-and-scatter) under `vmap` becomes a variadic
  reduce-window over five index arrays and a scatter on XLA:CPU: 25 ms of a 90 ms training step
  of 8 vmapped seeds. A plain max over the window axes stays a fused reduction.
  """
  n, height, width, c = h.shape
  windows = h[:, :height // 2 * 2, :width // 2 * 2].reshape(n, height // 2, 2, width // 2, 2, c)
  return windows.max(axis=(2, 4))


def init_params(key, in_channels, image_hw, num_classes):
  """He-normal kernels, zero biases, unit norm scales: every kernel sliced from ONE normal draw.

  One draw, because XLA:CPU compiles each `jax.random.normal` as its own Threefry kernel, and
  five of them in one program took 11 s to compile (vmapped over seeds) against about 1 s for
  one draw of the same total size.
  """
  flat = WIDTH * (image_hw[0] // 2) * (image_hw[1] // 2)
  # (shape, fan_in, gain) of each kernel: stem, blocks, hidden, out.
  kernels = [((3, 3, in_channels, WIDTH), 9 * in_channels, 1.0)]
  kernels += [((3, 3, WIDTH, WIDTH), 9 * WIDTH, 0.5)] * BLOCKS
  kernels += [((flat, HIDDEN), flat, 1.0), ((HIDDEN, num_classes), HIDDEN, 0.1)]
  sizes = [math.prod(shape) for shape, _, _ in kernels]
  draws = jnp.split(jax.random.normal(key, (sum(sizes),)), np.cumsum(sizes)[:-1])
  stem, *blocks, hidden, out = [
      d.reshape(shape) * (gain * math.sqrt(2.0 / fan_in))
      for d, (shape, fan_in, gain) in zip(draws, kernels, strict=True)]
  return {
      "stem": stem,
      "blocks": blocks,
      "bn_scale": [jnp.ones(WIDTH) for _ in range(BLOCKS + 1)],
      "bn_bias": [jnp.zeros(WIDTH) for _ in range(BLOCKS + 1)],
      "hidden": hidden,
      "hidden_b": jnp.zeros(HIDDEN),
      "out": out,
      "out_b": jnp.zeros(num_classes),
  }


def init_bn_states():
  return [jr.batch_norm_init(WIDTH) for _ in range(BLOCKS + 1)]


def apply_model(cfg: Config | Knobs, params, bn_states, key, x, *, train: bool,
                mc_dropout: bool = False, example_keys=None, axis_name=None):
  """Logits and new batch-norm states. `key` is only used when train=True or mc_dropout.

  ``cfg`` is a `Config` (its switches decided in Python) or its `Knobs` (decided by `lax.cond`
  inside one compiled program). ``mc_dropout=True`` with ``train=False`` is Monte-Carlo dropout:
  dropout samples, everything else (batch norm, drop-path) takes its test path.

  ``example_keys`` (one key per example, instead of ``key``) makes every random draw a function
  of the example's own key, so a batch split over devices draws exactly what it draws on one
  device (examples/data_parallel.py); ``axis_name`` then names the device axis for batch norm.
  """
  sample = train or mc_dropout
  if example_keys is not None:
    keys = iter(range(2 * BLOCKS + 4))  # the op's index, folded into each example's key
  else:
    keys = iter(jax.random.split(key, 2 * BLOCKS + 4)) if sample else iter([None] * 64)

  def draw(op, h, rate, op_train):
    """``op(key, h, rate)`` with one key for the batch, or one key per example; nothing where
    the rate is 0."""
    if not op_train:
      return h  # the test path of dropout and drop-path is the identity
    k = next(keys)

    def on(h):
      if example_keys is None:
        return op(k, h, rate, train=True)
      one = lambda ek, e: op(jax.random.fold_in(ek, k), e[None], rate, train=True)[0]  # noqa
      return jax.vmap(one)(example_keys, h)

    return _when(rate > 0, on, lambda h: h, h)

  def norm(h, i, state):
    def on(h, state):
      return jr.batch_norm(h, params["bn_scale"][i], params["bn_bias"][i], state, train=train,
                           axis_name=axis_name if train else None)

    return _when(cfg.batch_norm, on, lambda h, state: (h + params["bn_bias"][i], state), h,
                 state)

  new_states = []
  h, state = norm(conv(x, params["stem"]), 0, bn_states[0])
  new_states.append(state)
  h = jax.nn.relu(h)
  # The linear decay rule of stochastic depth, scaled by the (possibly traced) last-block rate.
  fractions = jr.drop_path_rates(1.0, BLOCKS)
  for i, w in enumerate(params["blocks"]):
    branch, state = norm(conv(h, w), i + 1, bn_states[i + 1])
    new_states.append(state)
    branch = draw(jr.dropout, jax.nn.relu(branch), cfg.dropout / 2, sample)
    if fractions[i] > 0:
      branch = draw(jr.drop_path, branch, cfg.drop_path * fractions[i], train)
    h = h + branch
  h = max_pool_2x2(h)
  h = jax.nn.relu(h.reshape(h.shape[0], -1) @ params["hidden"] + params["hidden_b"])
  h = draw(jr.dropout, h, cfg.dropout, sample)
  logits = h @ params["out"] + params["out_b"]
  return logits, new_states


def augment_image(key, image):
  """Digits-safe augmentation of one HWC image: shifts by a pixel, small brightness/contrast."""
  pipeline = A.compose(
      functools.partial(A.random_crop, size=image.shape[:2], padding=1),
      functools.partial(A.random_brightness, max_delta=0.1, clip=True),
      functools.partial(A.random_contrast, factors=(0.8, 1.2), clip=True),
  )
  return pipeline(key, image)


def augment_batch(key, images):
  """`augment_image` on every image of an NHWC batch, each with its own key (no flips)."""
  return A.batched(augment_image)(key, images)


# ---------------------------------------------------------------------------------------------
# Training and evaluation: K seeds in one jitted, vmapped program for every configuration
# ---------------------------------------------------------------------------------------------


def make_optimizer(cfg: Config | Knobs, lr: float):
  """Adam; with decoupled (AdamW) L2 on kernels only when ``cfg.weight_decay`` is not 0.

  `decay_mask` leaves biases and norm parameters out. (Coupled L2 before Adam, 1e-3, made some
  seeds unstable.) A traced weight decay (`Knobs`) always builds the L2 chain; 0 adds nothing.
  """
  if isinstance(cfg.weight_decay, (int, float)) and not cfg.weight_decay:
    return optax.adam(lr)
  return optax.chain(optax.scale_by_adam(), jr.add_l2_decay(cfg.weight_decay),
                     optax.scale_by_learning_rate(lr))


class Programs(NamedTuple):
  """The study's jitted programs; every one takes a configuration's `Knobs` as an argument."""

  init: object  # (seed keys) -> (params, bn_states, opt_state), one per seed
  step: object  # (params, bn_states, opt_state, keys, step, knobs, batch_norm=) -> (..., loss)
  predict: object  # (params, bn_states, knobs, x) -> probabilities (seeds, N, classes)
  predict_mc: object  # (params, bn_states, knobs, keys, x) -> MC-dropout mean probabilities
  data: tuple  # (x_train, y_train, x_test, y_test) as device arrays


def build(data, *, lr: float, batch_size: int, num_classes: int) -> Programs:
  """The study's programs for ``data = (x_train, y_train, x_test, y_test)``, all configurations.

  Every program takes a configuration's `Knobs` and compiles once per number of seeds (the
  leading axis of every state) for all configurations; the training step compiles once with
  batch norm and once without (its static ``batch_norm`` argument).
  """
  x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in data)
  n_train = x_train.shape[0]

  def init_one(key):
    params = init_params(key, x_train.shape[-1], x_train.shape[1:3], num_classes)
    tx = make_optimizer(CONFIGS[-1], lr)  # the L2 chain: the state every configuration uses
    return params, init_bn_states(), tx.init(params)

  def loss_fn(params, bn_states, knobs, key, x, y):
    logits, bn_states = apply_model(knobs, params, bn_states, key, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), bn_states

  def step_one(params, bn_states, opt_state, key, step, knobs, *, batch_norm):
    knobs = knobs._replace(batch_norm=batch_norm)
    key = jax.random.fold_in(key, step)
    k_batch, k_aug, k_model = jax.random.split(key, 3)
    idx = jax.random.choice(k_batch, n_train, (batch_size,), replace=False)
    x, y = x_train[idx], y_train[idx]
    x = _when(knobs.augment, lambda x: augment_batch(k_aug, x), lambda x: x, x)
    (loss, bn_states), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, bn_states, knobs, k_model, x, y)
    updates, opt_state = make_optimizer(knobs, lr).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), bn_states, opt_state, loss

  def probs_one(params, bn_states, knobs, x):
    return jax.nn.softmax(apply_model(knobs, params, bn_states, None, x, train=False)[0])

  def mc_one(params, bn_states, knobs, key, x):
    def sample(k, x):
      logits, _ = apply_model(knobs, params, bn_states, k, x, train=False, mc_dropout=True)
      return jax.nn.softmax(logits)

    return jr.mc_dropout_predict(key, sample, x, num_samples=MC_SAMPLES)[0]

  def step(params, bn_states, opt_state, keys, step, knobs, *, batch_norm):
    one = functools.partial(step_one, batch_norm=batch_norm)
    return jax.vmap(one, in_axes=(0, 0, 0, 0, None, None))(params, bn_states, opt_state, keys,
                                                            step, knobs)

  seeds = (0, 0, None)
  return Programs(
      init=jax.jit(jax.vmap(init_one)),
      # No lax.scan over steps: in a rolled loop XLA:CPU runs the convolutions' backward ~30x
      # slower (docs/guides/vmap_seeds_cpu.md). One dispatch per step costs far less.
      step=jax.jit(step, static_argnames="batch_norm", donate_argnums=(0, 1, 2)),
      predict=jax.jit(jax.vmap(probs_one, in_axes=(*seeds, None))),
      predict_mc=jax.jit(jax.vmap(mc_one, in_axes=(*seeds, 0, None))),
      data=(x_train, y_train, x_test, y_test))


def eval_chunk(images_per_example: int, n: int) -> int:
  """Examples per evaluation call: EVAL_IMAGES over ``images_per_example`` (seeds x views),
  and no more than ``n`` examples rounded up to a power of two. `in_chunks` pads the last chunk
  to a whole one (one compiled shape), so a chunk much larger than the data would evaluate
  mostly padding (the digits' 1,797 images in one chunk of 8,192 at 2 seeds)."""
  return max(1, min(EVAL_IMAGES // images_per_example, 1 << max(n - 1, 0).bit_length()))


def in_chunks(fn, x, chunk: int) -> np.ndarray:
  """``fn(i, x[i * chunk:(i + 1) * chunk])`` over the images of ``x``, concatenated on axis 1.

  The last chunk is padded to ``chunk`` images (one compiled shape) and the padding dropped.
  """
  n = x.shape[0]
  padded = jnp.concatenate([x, jnp.zeros((-n % chunk, *x.shape[1:]), x.dtype)])
  outs = [np.asarray(fn(i, padded[start:start + chunk]))
          for i, start in enumerate(range(0, padded.shape[0], chunk))]
  return np.concatenate(outs, axis=1)[:, :n]


def path_metrics(probs, labels) -> dict:
  """Accuracy, NLL and ECE (15 bins) per seed of ``probs`` (seeds, N, C), and pooled bins."""
  per_seed = lambda f: np.asarray(jax.vmap(f, in_axes=(0, None))(probs, labels))  # noqa: E731
  pooled = cal.reliability_bins(jnp.reshape(probs, (-1, probs.shape[-1])),
                                jnp.tile(labels, probs.shape[0]))
  return {"acc": per_seed(cal.accuracy), "nll": per_seed(cal.nll),
          "ece": per_seed(cal.expected_calibration_error),
          "reliability": {k: np.asarray(v).tolist() for k, v in pooled._asdict().items()}}


def train_config(cfg: Config, programs: Programs, args, progress) -> dict:
  """Trains ``args.seeds`` seeds of ``cfg``; returns its curves and test metrics per seed."""
  x_train, y_train, x_test, y_test = programs.data
  knobs = cfg.knobs()
  seed_keys = jax.random.split(jax.random.key(args.seed), args.seeds)
  init_keys, train_keys, eval_keys = (jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(
      seed_keys) for i in range(3))
  params, bn_states, opt_state = programs.init(init_keys)
  x_all = jnp.concatenate([x_train, x_test])
  labels_all = np.concatenate([np.asarray(y_train), np.asarray(y_test)])
  chunk = eval_chunk(args.seeds, x_all.shape[0])
  curve = {"step": [], "train_acc": [], "test_acc": []}
  start = time.perf_counter()
  for s in range(args.steps):
    params, bn_states, opt_state, loss = programs.step(
        params, bn_states, opt_state, train_keys, s, knobs, batch_norm=cfg.batch_norm)
    progress.update(1)
    if (s + 1) % args.eval_every == 0 or s + 1 == args.steps:
      predict = functools.partial(programs.predict, params, bn_states, knobs)
      probs = in_chunks(lambda i, x, f=predict: f(x), x_all, chunk)
      hits = probs.argmax(-1) == labels_all
      curve["step"].append(s + 1)
      curve["train_acc"].append(hits[:, :len(x_train)].mean(1).tolist())
      curve["test_acc"].append(hits[:, len(x_train):].mean(1).tolist())
  seconds = {"train": time.perf_counter() - start}
  # The last curve point's test probabilities are the deterministic path's: no second pass.
  paths = {"deterministic": probs[:, len(x_train):]}
  if cfg.dropout > 0:
    start = time.perf_counter()
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    paths["mc_dropout"] = in_chunks(
        lambda i, x: programs.predict_mc(params, bn_states, knobs, fold(eval_keys, i), x),
        x_test, eval_chunk(args.seeds * MC_SAMPLES, x_test.shape[0]))
    seconds["mc_dropout"] = time.perf_counter() - start
  start = time.perf_counter()
  paths["multi_crop"] = five_crop_probs(predict, x_test, chunk)
  seconds["multi_crop"] = time.perf_counter() - start
  metrics = {name: path_metrics(jnp.asarray(p), y_test) for name, p in paths.items()}
  train_acc = np.asarray(curve["train_acc"][-1])
  return {
      "key": cfg.name,
      "config": dataclasses.asdict(cfg),
      "train_acc": summary_stats(train_acc),
      "gap": summary_stats(train_acc - metrics["deterministic"]["acc"]),
      "test": {name: {k: (v if k == "reliability" else summary_stats(v)) for k, v in m.items()}
               for name, m in metrics.items()},
      "final_loss": np.asarray(loss).tolist(),
      "seconds": seconds,
      "curve": curve,
  }


def five_crop_probs(predict, x, chunk: int) -> np.ndarray:
  """Mean probabilities (seeds, N, C) over the 5 crops of each image padded by a pixel.

  ``predict`` is the deterministic program (x -> (seeds, n, C)), run on the crops in chunks of
  its compiled size: no second compilation. `multi_crop_predict` averages over the views of
  axis 0, so the seeds go to axis 1 and back.
  """
  def seeds_second(views):
    return np.swapaxes(in_chunks(lambda i, v: predict(v), views, chunk), 0, 1)

  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  mean = A.multi_crop_predict(seeds_second, padded, size=x.shape[1:3], crops="five")
  return np.swapaxes(mean, 0, 1)


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

PATHS = (("deterministic", "deterministic"), ("mc_dropout", "MC dropout"),
         ("multi_crop", "5-crop"))


def summary_stats(values) -> dict:
  """Per-seed values with their mean and sample standard deviation (ddof=1; 0 for one seed)."""
  values = np.asarray(values, np.float64)
  std = values.std(ddof=1) if values.size > 1 else 0.0
  return {"seeds": values.tolist(), "mean": float(values.mean()), "std": float(std)}


def pm(stats, scale=100.0, digits=1) -> str:
  return f"{stats['mean'] * scale:.{digits}f} ± {stats['std'] * scale:.{digits}f}"


def results_table(results) -> str:
  """Accuracy (%) per test-time path, then NLL (nats) and ECE (%, 15 bins)."""
  lines = ["| config | train acc % | test acc % | gap | MC-dropout acc % | 5-crop acc % |",
           "|---|---|---|---|---|---|"]
  for r in results:
    t = r["test"]
    cells = [pm(r["train_acc"]), pm(t["deterministic"]["acc"]), pm(r["gap"]),
             pm(t["mc_dropout"]["acc"]) if "mc_dropout" in t else "",
             pm(t["multi_crop"]["acc"])]
    lines.append(f"| {r['config']['name']} | " + " | ".join(cells) + " |")
  lines += ["", "| config | NLL | ECE % | MC-dropout NLL | MC-dropout ECE % | 5-crop NLL | "
            "5-crop ECE % |", "|---|---|---|---|---|---|---|"]
  for r in results:
    cells = []
    for path, _ in PATHS:
      m = r["test"].get(path)
      cells += ["", ""] if m is None else [pm(m["nll"], 1, 3), pm(m["ece"])]
    lines.append(f"| {r['config']['name']} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def save_figure(results, path):
  plt = _pyplot()
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
  seeds = len(results[0]["train_acc"]["seeds"])
  fig.suptitle(f"train and test accuracy: mean over {seeds} seeds, band = min..max")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def save_reliability_figure(results, path):
  """Reliability diagrams of the baseline and "all" (or the first and last configuration):
  accuracy against confidence per bin, all seeds pooled, one line per test-time path."""
  plt = _pyplot()
  names = [r["config"]["name"] for r in results]
  chosen = [results[names.index(n)] for n in ("baseline", "all") if n in names]
  if len(chosen) < 2:
    chosen = [results[0], results[-1]] if len(results) > 1 else results[:1]
  fig, axes = plt.subplots(2, len(chosen), figsize=(4.2 * len(chosen), 5.6), squeeze=False,
                           gridspec_kw={"height_ratios": (3, 1)}, sharex=True)
  colors = {"deterministic": "tab:blue", "mc_dropout": "tab:red", "multi_crop": "tab:green"}
  for col, r in enumerate(chosen):
    top, bottom = axes[0, col], axes[1, col]
    top.plot([0, 1], [0, 1], "k:", lw=1, label="calibrated")
    edges = np.linspace(0, 1, cal.NUM_BINS + 1)
    width = 1 / cal.NUM_BINS / 3
    for j, (name, label) in enumerate(PATHS):
      if name not in r["test"]:
        continue
      m = r["test"][name]
      bins = m["reliability"]
      count = np.asarray(bins["count"])
      filled = count > 0
      ece = pm(m["ece"])
      top.plot(np.asarray(bins["confidence"])[filled], np.asarray(bins["accuracy"])[filled],
               "o-", ms=3, color=colors[name], label=f"{label} (ECE {ece} %)")
      bottom.bar(edges[:-1] + width * (j + 0.5), count, width, color=colors[name])
    top.set_title(r["config"]["name"])
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy in bin")
    top.grid(alpha=0.3)
    top.legend(loc="lower right", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_xlabel(f"confidence ({cal.NUM_BINS} equal-width bins)")
    bottom.set_ylabel("examples")
  seeds = len(chosen[0]["train_acc"]["seeds"])
  fig.suptitle(f"reliability on the test set, {seeds} seeds pooled")
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


def peak_rss_mb() -> float:
  """This process's peak resident memory so far, in MB (Linux reports KiB, macOS bytes)."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--quick", action="store_true",
                 help="smoke run: 2 seeds, 100 steps, 3 configurations (under a minute)")
  p.add_argument("--seeds", type=int, default=8, help="seeds per configuration (vmapped)")
  # 400 steps: the study's 3-minute budget on 2 CPU cores (docs/study/index.md has the floor).
  p.add_argument("--steps", type=int, default=400, help="training steps per configuration")
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
  p.add_argument("--out", default=".",
                 help="directory for results.json, results.png and reliability.png")
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
  wall_start = time.perf_counter()
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
  print(f"{len(x_train)} training / {len(x_test)} test images of shape {x_train.shape[1:]}, "
        f"{num_classes} classes; {args.seeds} seeds x {args.steps} steps per configuration")
  try:
    from tqdm import tqdm
  except ImportError:  # the examples extra brings tqdm; run without a bar otherwise
    tqdm = None
  programs = build((x_train, y_train, x_test, y_test), lr=args.lr, batch_size=args.batch_size,
                   num_classes=num_classes)
  total = args.steps * len(args.config_list)
  progress = tqdm(total=total, unit="step", dynamic_ncols=True) if tqdm else _NoBar()
  results = []
  try:
    for cfg in args.config_list:
      progress.set_description(cfg.name)
      results.append(train_config(cfg, programs, args, progress))
  except KeyboardInterrupt:
    progress.close()
    print("\ninterrupted: no results written", file=sys.stderr)
    raise SystemExit(130) from None
  progress.close()
  print("\n" + results_table(results))
  os.makedirs(args.out, exist_ok=True)
  try:
    save_figure(results, os.path.join(args.out, "results.png"))
    save_reliability_figure(results, os.path.join(args.out, "reliability.png"))
  except ImportError:
    print("(matplotlib not installed: no figures; pip install -e '.[examples]')")
  argv = sys.argv[1:] if argv is None else argv
  summary = {**_results.metadata(["examples/regularization_study.py", *argv],
                                 wall_seconds=time.perf_counter() - wall_start),
             "args": {k: v for k, v in vars(args).items() if k != "config_list"},
             "xla_flags": os.environ.get("XLA_FLAGS", ""), "peak_rss_mb": peak_rss_mb(),
             "rows": results}
  write_json_atomically(summary, os.path.join(args.out, "results.json"))
  print(f"\n{summary['wall_seconds']:.0f} s wall clock, peak resident memory "
        f"{summary['peak_rss_mb']:.0f} MB; wrote results.json, results.png and reliability.png "
        f"to {args.out}")
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
