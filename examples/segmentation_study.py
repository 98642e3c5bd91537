"""Segmentation study: augmentation that moves the masks, and dense test-time marginalization.

Trains a small fully-convolutional network to label every pixel of synthetic scenes (light
discs, squares and triangles of random sizes, places and turns on darker textured backgrounds,
drawn by `make_scenes` from a seed: no download) from a deliberately small training set, twice:
without and with geometric augmentation (a left-right flip and one affine warp that zooms,
shifts and turns, drawn once per example with `draw` and applied to the image with `apply` and
to its label map with `apply_to_mask`; the pixels the warp uncovers get an ignore index that the
loss skips). Each trained model is then evaluated three ways on held-out scenes: its plain
prediction, the mean of the prediction and its mirror's (`dense_predict` with ``flip``), and
flips times several scales (`dense_predict` with ``scale_factors``). Every configuration trains
K seeds in ONE jitted, vmapped training step (a seed's key drives initialization, minibatches
and augmentation); the metric is the mean intersection-over-union over the classes (background
included) on all test pixels, mean ± std over the seeds.

    python examples/segmentation_study.py            # the full run
    python examples/segmentation_study.py --quick    # a smoke run of the same code

Writes results.json (every number; the metadata block of `benchmarks/_results.py`; written only
when the run completes) and results.png (scenes, truth, predictions of seed 0, the spread over
views, and the mIoU of every configuration) into --out. docs/guides/segmentation.md renders its
table from the copy in docs/segmentation/.

The convolutions and pooling are those of examples/regularization_study.py, whose convolution
stays one plain convolution per seed on a CPU under `vmap` (docs/guides/vmap_seeds_cpu.md); the
two configurations differ only in a traced on/off switch (`lax.cond`), so one compiled training
step serves both.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxreg as jr

try:
  from examples import regularization_study as study
except ImportError:  # run as a script: examples/ is on sys.path, the repository root is not
  import regularization_study as study

  sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import _results  # the metadata block every results file starts with

A = jr.augment
CLASSES = ("background", "disc", "square", "triangle")
IGNORE = 255  # label of the pixels a rotation uncovers: no class, left out of the loss
CONFIGS = (("baseline", False), ("augment", True))  # (row key, geometric augmentation)
PATHS = (("plain", "plain"), ("flip", "flip"), ("flip_scale", "flip + scales"))


# ---------------------------------------------------------------------------------------------
# Data: scenes of shapes and their label maps, drawn with numpy from a seed
# ---------------------------------------------------------------------------------------------


def _smooth_noise(rng, size: int, cells: int = 4) -> np.ndarray:
  """(size, size, 3) low-frequency texture in [-1, 1]: a coarse random grid, bilinearly
  enlarged."""
  coarse = rng.uniform(-1, 1, (cells + 1, cells + 1, 3))
  t = (np.arange(size) + 0.5) / size * cells
  i = np.minimum(t.astype(int), cells - 1)
  f = (t - i)[:, None]
  rows = coarse[i] * (1 - f[..., None]) + coarse[i + 1] * f[..., None]  # (size, cells + 1, 3)
  return rows[:, i] * (1 - f.T[..., None]) + rows[:, i + 1] * f.T[..., None]


def _inside(cls: int, dx, dy, radius: float, theta: float) -> np.ndarray:
  """Pixels of a shape of class ``cls`` centred at offsets ``(dx, dy)``, turned by ``theta``."""
  if cls == 1:  # disc
    return dx**2 + dy**2 <= radius**2
  u = np.cos(theta) * dx + np.sin(theta) * dy
  v = -np.sin(theta) * dx + np.cos(theta) * dy
  if cls == 2:  # square, half side 0.85 radius (about a disc's area)
    return (np.abs(u) <= 0.85 * radius) & (np.abs(v) <= 0.85 * radius)
  # Equilateral triangle of circumradius 1.3 radius: three half-planes at its inradius.
  return np.all([np.cos(theta + k * 2 * np.pi / 3) * dx + np.sin(theta + k * 2 * np.pi / 3) * dy
                 <= 0.65 * radius for k in range(3)], axis=0)


def make_scenes(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """``n`` scenes: float32 images (n, size, size, 3) in [0, 1] and uint8 label maps (n, size,
  size) of `CLASSES`. One or two light shapes that do not touch (random class, size, place,
  turn and grey level) on a darker textured background of a random colour: the class is in the
  outline only."""
  rng = np.random.default_rng(seed)
  centres = np.arange(size) + 0.5
  xs, ys = np.meshgrid(centres, centres)
  images = np.empty((n, size, size, 3), np.float32)
  labels = np.zeros((n, size, size), np.uint8)
  for s in range(n):
    image = rng.uniform(0.1, 0.5, 3) + 0.15 * _smooth_noise(rng, size)
    placed = []  # (cx, cy, reach) of the shapes so far
    for _ in range(rng.integers(1, 3)):
      cls, radius = int(rng.integers(1, 4)), rng.uniform(0.2, 0.3) * size
      reach = 1.3 * radius + 1  # the triangle's circumradius, and a pixel of background
      for _ in range(20):  # a place clear of the others, or no shape
        cx, cy = rng.uniform(radius, size - radius, 2)
        if all(np.hypot(cx - x, cy - y) > reach + r for x, y, r in placed):
          break
      else:
        continue
      placed.append((cx, cy, reach))
      inside = _inside(cls, xs - cx, ys - cy, radius, rng.uniform(0, 2 * np.pi))
      image[inside] = rng.uniform(0.65, 0.9) + 0.1 * _smooth_noise(rng, size)[inside]
      labels[s][inside] = cls
    images[s] = np.clip(image + rng.normal(0, 0.04, image.shape), 0, 1)
  return images, labels


# ---------------------------------------------------------------------------------------------
# Augmentation: one drawn geometry per example, applied to the image and to its labels
# ---------------------------------------------------------------------------------------------


def draw_geometry(key, image, *, max_zoom: float = 1.4, max_angle: float = 30.0):
  """The parameter sets of one example: a left-right flip, then one affine warp that zooms in by
  a factor in [1, ``max_zoom``] (log-uniform), shifts the view to a random place inside the
  image and turns it by up to ``max_angle`` degrees either way (a scale crop and a rotation, in
  one resampling)."""
  k_flip, k_zoom, k_shift, k_angle = jax.random.split(key, 4)
  flip = A.draw(A.random_flip_left_right)(k_flip, image)
  zoom = jnp.exp(jax.random.uniform(k_zoom, (), maxval=math.log(max_zoom)))
  # The view covers 1 / zoom of each side, and a shift of t output pixels moves it by t / zoom
  # input pixels: |t| <= (zoom - 1) / 2 sides keeps it inside the image (before the turn).
  room = (zoom - 1) / 2 * jnp.array(image.shape[1::-1], jnp.float32)
  shift = jax.random.uniform(k_shift, (2,), minval=-1.0, maxval=1.0) * room
  angle = jax.random.uniform(k_angle, (), minval=-max_angle, maxval=max_angle)
  warp = A.draw(A.affine)(image, angle=angle, translate=shift, scale=zoom,
                          interpolation="bilinear", fill=0.5)
  return flip, warp


def apply_geometry(params, image, labels):
  """``(image, labels)`` through each set in turn: `apply` resamples the image, `apply_to_mask`
  moves the label map (nearest: labels are never blended), uncovered pixels labelled IGNORE."""
  for p in params:
    image, labels = A.apply(p, image), A.apply_to_mask(p, labels, fill=IGNORE)
  return image, labels


def augment_batch(key, images, labels):
  """`draw_geometry` for every example of a batch (one key each, `batched`), then
  `apply_geometry` example by example (`vmap` over the parameter sets)."""
  params = A.batched(draw_geometry)(key, images)
  return jax.vmap(apply_geometry)(params, images, labels)


# ---------------------------------------------------------------------------------------------
# Model: an encoder of three resolutions, their features resized to the input and concatenated,
# a 1x1 classifier (a hypercolumn network)
# ---------------------------------------------------------------------------------------------


def init_params(key, width: int):
  """He-normal kernels sliced from one normal draw (one Threefry kernel to compile), zero
  biases."""
  w1, w2 = width, 2 * width
  shapes = [(3, 3, 3, w1), (3, 3, w1, w1), (3, 3, w1, w2), (3, 3, w2, w2), (3, 3, w2, w2),
            (3, 3, w2, w2), (w1 + 2 * w2, len(CLASSES))]
  sizes = [math.prod(s) for s in shapes]
  draws = jnp.split(jax.random.normal(key, (sum(sizes),)), np.cumsum(sizes)[:-1])
  kernels = [d.reshape(s) * math.sqrt(2.0 / math.prod(s[:-1])) for d, s in
             zip(draws, shapes, strict=True)]
  return {"convs": kernels[:-1], "biases": [jnp.zeros(s[-1]) for s in shapes[:-1]],
          "head": kernels[-1] * 0.1, "head_b": jnp.zeros(len(CLASSES))}


def apply_model(params, x):
  """Per-pixel logits (N, H, W, classes) of NHWC images whose sides are multiples of 4."""
  def conv_relu(h, i):
    return jax.nn.relu(study.conv(h, params["convs"][i]) + params["biases"][i])

  n, height, width, _ = x.shape
  f1 = conv_relu(conv_relu(x, 0), 1)
  f2 = conv_relu(conv_relu(study.max_pool_2x2(f1), 2), 3)
  f3 = conv_relu(conv_relu(study.max_pool_2x2(f2), 4), 5)
  up = lambda f: jax.image.resize(f, (n, height, width, f.shape[-1]), "linear")  # noqa: E731
  features = jnp.concatenate([f1, up(f2), up(f3)], axis=-1)
  return features @ params["head"] + params["head_b"]


def masked_cross_entropy(logits, labels):
  """Mean cross-entropy over the pixels whose label is a class (not IGNORE)."""
  valid = labels != IGNORE
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.where(valid, labels, 0))
  return jnp.sum(ce * valid) / jnp.maximum(jnp.sum(valid), 1)


# ---------------------------------------------------------------------------------------------
# Training: K seeds in one jitted, vmapped step; evaluation: every seed, three test-time paths
# ---------------------------------------------------------------------------------------------


def build(x_train, y_train, *, width: int, lr: float, batch_size: int, steps: int):
  """``(init, step)``: ``init(seed_keys)`` -> (params, opt_state) with a leading seed axis;
  ``step(params, opt_state, seed_keys, step, augment)`` -> (params, opt_state, loss), one
  compiled program for both values of the traced bool ``augment``."""
  x_train, y_train = jnp.asarray(x_train), jnp.asarray(y_train)
  tx = optax.adam(optax.cosine_decay_schedule(lr, steps))

  def init_one(key):
    params = init_params(key, width)
    return params, tx.init(params)

  def loss_fn(params, x, y):
    return masked_cross_entropy(apply_model(params, x), y)

  def step_one(params, opt_state, key, step, augment):
    k_batch, k_aug = jax.random.split(jax.random.fold_in(key, step))
    idx = jax.random.choice(k_batch, x_train.shape[0], (batch_size,), replace=False)
    x, y = x_train[idx], y_train[idx]
    # Skipped, not computed and discarded: the flag is the same for every seed, so vmap keeps
    # the cond.
    x, y = jax.lax.cond(augment, functools.partial(augment_batch, k_aug), lambda x, y: (x, y),
                        x, y)
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  # No lax.scan over steps: XLA:CPU runs convolutions' backward far slower in a rolled loop
  # (docs/guides/vmap_seeds_cpu.md).
  step = jax.vmap(step_one, in_axes=(0, 0, 0, None, None))
  return jax.jit(jax.vmap(init_one)), jax.jit(step, donate_argnums=(0, 1))


def evaluate_one(params, x_all, x_test, scale_factors: tuple[float, ...]) -> dict:
  """One model's labels on ``x_all`` (plain) and on ``x_test`` (each test-time path), and the
  variance of its probabilities over the flip + scale views summed over classes: (N, H, W)
  arrays. `dense_predict` averages probabilities, the usual marginal."""
  def probs(x):
    return jax.nn.softmax(apply_model(params, x))

  flip = A.dense_predict(probs, x_test, flip=True)
  mean, var = A.dense_predict(probs, x_test, scale_factors=scale_factors, flip=True,
                              return_variance=True)
  return {"plain": probs(x_all).argmax(-1), "flip": flip.argmax(-1),
          "flip_scale": mean.argmax(-1), "spread": var.sum(-1)}


@functools.partial(jax.jit, static_argnames="scale_factors")
def evaluate(params, x_all, x_test, *, scale_factors: tuple[float, ...]) -> dict:
  """`evaluate_one` for every seed (the leading axis of ``params``): (seeds, N, H, W) arrays.

  A loop over the seeds (`lax.map`), not `vmap`: the model at every test-time scale compiles
  once, not once per seed (`study.conv` unrolls a vmapped convolution on the CPU).
  """
  return jax.lax.map(lambda p: evaluate_one(p, x_all, x_test, scale_factors), params)


def iou(pred, truth) -> np.ndarray:
  """Per-seed, per-class IoU (seeds, classes) over all pixels of all images, in float64:
  ``|pred = c and truth = c| / |pred = c or truth = c|`` (a class absent from both: NaN)."""
  pred, truth = np.asarray(pred).reshape(pred.shape[0], -1), np.asarray(truth).reshape(-1)
  out = np.empty((pred.shape[0], len(CLASSES)))
  for c in range(len(CLASSES)):
    inter = ((pred == c) & (truth == c)).sum(1)
    union = ((pred == c) | (truth == c)).sum(1)
    out[:, c] = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
  return out


def path_metrics(pred, truth) -> dict:
  per_class = iou(pred, truth)
  return {"miou": study.summary_stats(np.nanmean(per_class, axis=1)),
          "iou": {name: study.summary_stats(per_class[:, c]) for c, name in enumerate(CLASSES)}}


def run_config(name: str, augment: bool, programs, data, args) -> tuple[dict, dict]:
  """Trains ``args.seeds`` seeds of one configuration: its results row, and its labels of the
  test scenes per path and the spread of its views (arrays with a leading seed axis)."""
  init, step = programs
  x_train, y_train, x_test, y_test = data
  seed_keys = jax.random.split(jax.random.key(args.seed), args.seeds)
  params, opt_state = init(jax.vmap(lambda k: jax.random.fold_in(k, 0))(seed_keys))
  train_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(seed_keys)
  start = time.perf_counter()
  for s in range(args.steps):
    params, opt_state, loss = step(params, opt_state, train_keys, s, jnp.asarray(augment))
  jax.block_until_ready(loss)
  seconds = {"train": time.perf_counter() - start}
  start = time.perf_counter()
  out = evaluate(params, jnp.concatenate([x_train, x_test]), x_test,
                 scale_factors=args.scale_factors)
  out = {k: np.asarray(v) for k, v in out.items()}
  seconds["evaluate"] = time.perf_counter() - start
  n_train = len(x_train)
  test = {"plain": path_metrics(out["plain"][:, n_train:], y_test)}
  test |= {path: path_metrics(out[path], y_test) for path in ("flip", "flip_scale")}
  miou = {path: np.asarray(test[path]["miou"]["seeds"]) for path, _ in PATHS}
  train = study.summary_stats(np.nanmean(iou(out["plain"][:, :n_train], y_train), axis=1))
  row = {"key": name, "augment": augment, "train_miou": train,
         "gap": study.summary_stats(np.asarray(train["seeds"]) - miou["plain"]),
         "test": test,
         "tta_gain": {path: study.summary_stats(miou[path] - miou["plain"])
                      for path in ("flip", "flip_scale")},
         "final_loss": np.asarray(loss).tolist(), "seconds": seconds}
  out["plain"] = out["plain"][:, n_train:]  # the test scenes', as the other paths
  return row, out


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------


def results_table(rows) -> str:
  """mIoU (%, mean ± std over seeds) per configuration and test-time path."""
  lines = ["| config | train mIoU % | " + " | ".join(f"test mIoU % ({label})"
                                                     for _, label in PATHS) + " |",
           "|---|---|" + "---|" * len(PATHS)]
  for r in rows:
    cells = [study.pm(r["train_miou"])] + [study.pm(r["test"][p]["miou"]) for p, _ in PATHS]
    lines.append(f"| {r['key']} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def save_figure(rows, outputs, x_test, y_test, path, scenes: int = 3):
  """Test scenes (input, truth, seed 0's labels per configuration and path, the spread of the
  augmented model's probabilities over the flip + scale views) above the mIoU of every
  configuration and path."""
  plt = _pyplot()
  from matplotlib.colors import ListedColormap

  labels = {"cmap": ListedColormap(["#202020", "#e41a1c", "#377eb8", "#4daf4a"]), "vmin": 0,
            "vmax": len(CLASSES) - 1}
  shown = [(c, p) for c, _ in CONFIGS for p in ("plain", "flip_scale")]
  scenes = min(scenes, len(x_test))
  fig = plt.figure(figsize=(9.0, 1.3 * scenes + 2.6))
  grid = fig.add_gridspec(scenes, 3 + len(shown), left=0.01, right=0.99, top=0.92,
                          bottom=0.42, wspace=0.05, hspace=0.08)
  for i in range(scenes):
    panels = [("input", x_test[i], {}), ("truth", y_test[i], labels)]
    panels += [(f"{c}, {dict(PATHS)[p]}", outputs[c][p][0, i], labels) for c, p in shown]
    panels.append(("spread over views\n(augment)", outputs["augment"]["spread"][0, i],
                   {"cmap": "magma"}))
    for j, (title, image, kw) in enumerate(panels):
      ax = fig.add_subplot(grid[i, j])
      ax.imshow(image, interpolation="nearest", **kw)
      ax.set_axis_off()
      if i == 0:
        ax.set_title(title.replace(", ", "\n"), fontsize=7)
  ax = fig.add_axes((0.08, 0.07, 0.9, 0.27))
  width = 0.8 / len(PATHS)
  for j, (p, label) in enumerate(PATHS):
    means = [r["test"][p]["miou"]["mean"] * 100 for r in rows]
    stds = [r["test"][p]["miou"]["std"] * 100 for r in rows]
    ax.bar(np.arange(len(rows)) + (j - (len(PATHS) - 1) / 2) * width, means, width, yerr=stds,
           capsize=3, label=label)
  ax.set_xticks(np.arange(len(rows)), [r["key"] for r in rows])
  ax.set_ylabel("test mIoU %", fontsize=8)
  ax.legend(fontsize=7, ncols=len(PATHS), loc="upper left")
  ax.set_title(f"mean ± std over {len(rows[0]['train_miou']['seeds'])} seeds (seed 0 above)",
               fontsize=8)
  fig.savefig(path, dpi=72)
  plt.close(fig)


def _pyplot():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("--quick", action="store_true",
                 help="smoke run: 2 seeds, 20 steps, 16x16 scenes, a narrow network")
  p.add_argument("--seeds", type=int, default=4, help="seeds per configuration (vmapped)")
  p.add_argument("--steps", type=int, default=800, help="training steps per configuration")
  p.add_argument("--train-size", type=int, default=32,
                 help="training scenes (few, so that the baseline overfits)")
  p.add_argument("--test-size", type=int, default=128, help="test scenes")
  p.add_argument("--size", type=int, default=32, help="scene height and width (a multiple of 4)")
  p.add_argument("--width", type=int, default=12, help="channels of the first convolutions")
  p.add_argument("--batch-size", type=int, default=8, help="minibatch size")
  p.add_argument("--lr", type=float, default=1e-2,
                 help="Adam's peak learning rate (cosine decay to 0)")
  p.add_argument("--scales", default="0.75,1.0,1.25,1.5",
                 help="test-time resize factors of the flip + scale path")
  p.add_argument("--seed", type=int, default=0, help="root seed (scenes and models)")
  p.add_argument("--out", default=".", help="directory for results.json and results.png")
  args = p.parse_args(argv)
  if args.quick:
    args.seeds, args.steps, args.size, args.width = 2, 20, 16, 4
    args.train_size, args.test_size = 8, 8
  for name in ("seeds", "steps", "train_size", "test_size", "width", "batch_size"):
    if getattr(args, name) < 1:
      p.error(f"--{name.replace('_', '-')} must be >= 1")
  if args.size < 8 or args.size % 4:
    p.error(f"--size must be a multiple of 4 of at least 8, got {args.size}")
  try:
    args.scale_factors = tuple(float(s) for s in args.scales.split(","))
  except ValueError:
    p.error(f"--scales must be comma-separated numbers, got {args.scales!r}")
  args.batch_size = min(args.batch_size, args.train_size)
  return args


def main(argv=None) -> dict:
  wall_start = time.perf_counter()
  args = parse_args(argv)
  x_train, y_train = make_scenes(args.train_size, args.size, args.seed)
  x_test, y_test = make_scenes(args.test_size, args.size, args.seed + 1)
  print(f"{args.train_size} training / {args.test_size} test scenes of {args.size}x{args.size}; "
        f"{args.seeds} seeds x {args.steps} steps per configuration")
  data = tuple(jnp.asarray(a) for a in (x_train, y_train, x_test, y_test))
  programs = build(x_train, y_train, width=args.width, lr=args.lr, batch_size=args.batch_size,
                   steps=args.steps)
  rows, outputs = [], {}
  try:
    for name, augment in CONFIGS:
      print(name, flush=True)
      row, outputs[name] = run_config(name, augment, programs, data, args)
      rows.append(row)
  except KeyboardInterrupt:
    print("\ninterrupted: no results written", file=sys.stderr)
    raise SystemExit(130) from None
  print("\n" + results_table(rows))
  os.makedirs(args.out, exist_ok=True)
  try:
    save_figure(rows, outputs, x_test, y_test, os.path.join(args.out, "results.png"))
  except ImportError:
    print("(matplotlib not installed: no figure; pip install -e '.[examples]')")
  argv = sys.argv[1:] if argv is None else argv
  summary = {**_results.metadata(["examples/segmentation_study.py", *argv],
                                 wall_seconds=time.perf_counter() - wall_start),
             "args": {k: v for k, v in vars(args).items()}, "classes": list(CLASSES),
             "ignore_index": IGNORE, "peak_rss_mb": study.peak_rss_mb(), "rows": rows}
  _results.write(os.path.join(args.out, "results.json"), summary)
  print(f"\n{summary['wall_seconds']:.0f} s wall clock; wrote results.json and results.png to "
        f"{args.out}")
  return summary


if __name__ == "__main__":
  main()
