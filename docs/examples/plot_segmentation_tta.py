"""
Segmentation: masks through augmentation, flips and scales at test time
========================================================================

In a dense task the labels are an image too: the crop, flip or rotation that moves an image
must move its label map the same way, and a prediction made on a transformed view must be moved
back before the views are averaged. `jaxreg.augment.draw` returns what a random op draws;
`jaxreg.augment.apply` applies it to the image and `jaxreg.augment.apply_to_mask` to its label
map, giving the pixels that come from outside the image an ignore index.
`jaxreg.augment.dense_predict` runs a model on flipped and resized views of the images and
averages its maps on the input's pixels, with their variance over the views. Here a tiny
fully-convolutional network learns discs and squares from two augmented scenes and is then
marginalized over flips and scales on a third. The
:doc:`segmentation guide <../guides/segmentation>` has the whole recipe and a study over seeds.
"""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from matplotlib.colors import ListedColormap

import jaxreg as jr

A = jr.augment
SIZE, IGNORE = 32, 255
CLASSES = ("background", "disc", "square")
COLOURS = ListedColormap(["#202020", "#e41a1c", "#377eb8"])


def scene(seed):
  """A 32x32 scene of two discs and two squares (random size, place and turn) and its labels;
  discs are lighter than squares, so that a few training steps suffice."""
  rng = np.random.default_rng(seed)
  ys, xs = np.mgrid[:SIZE, :SIZE] + 0.5  # pixel centres
  image = 0.2 + rng.normal(0, 0.05, (SIZE, SIZE, 3))
  labels = np.zeros((SIZE, SIZE), np.uint8)
  corners = [(8, 8), (24, 8), (8, 24), (24, 24)]
  for cls, (cx, cy) in zip(rng.permutation([1, 1, 2, 2]), corners, strict=True):
    dx, dy = xs - cx - rng.uniform(-2, 2), ys - cy - rng.uniform(-2, 2)
    r, turn = rng.uniform(4, 6), rng.uniform(0, np.pi / 2)
    u, v = np.cos(turn) * dx + np.sin(turn) * dy, np.cos(turn) * dy - np.sin(turn) * dx
    inside = (dx**2 + dy**2 <= r**2) if cls == 1 else (abs(u) <= 0.85 * r) & (abs(v) <= 0.85 * r)
    image[inside], labels[inside] = rng.uniform(0.45, 0.6) + 0.35 * (cls == 1), cls
  return np.clip(image, 0, 1).astype(np.float32), labels


train = [scene(0), scene(1)]
x_train = jnp.asarray(np.stack([im for im, _ in train]))[jnp.arange(8) % 2]  # a batch of 8
y_train = jnp.asarray(np.stack([lab for _, lab in train]))[jnp.arange(8) % 2]
x_test, y_test = (jnp.asarray(a)[None] for a in scene(2))

# %%
# One geometry per example, for the image and its labels
# -------------------------------------------------------
# ``draw`` returns a parameter set per op: a flip, and an affine warp that zooms in, shifts
# and turns by random amounts; ``batched`` draws one set per example. The image is resampled
# bilinearly; the label map takes the label under each output pixel's centre, so labels are
# never blended, and the corners the warp uncovers get ``IGNORE``, which the loss leaves out.


def draw_geometry(key, image):
  k_flip, k_zoom, k_shift, k_angle = jax.random.split(key, 4)
  zoom = jax.random.uniform(k_zoom, (), minval=1.0, maxval=1.5)
  shift = jax.random.uniform(k_shift, (2,), minval=-1.0, maxval=1.0) * (zoom - 1) / 2 * SIZE
  angle = jax.random.uniform(k_angle, (), minval=-30.0, maxval=30.0)
  return (A.draw(A.random_flip_left_right)(k_flip, image),
          A.draw(A.affine)(image, angle=angle, translate=shift, scale=zoom,
                           interpolation="bilinear"))


def apply_geometry(params, image, labels):
  for p in params:
    image, labels = A.apply(p, image), A.apply_to_mask(p, labels, fill=IGNORE)
  return image, labels


@jax.jit
def augment(key, images, labels):
  params = A.batched(draw_geometry)(key, images)
  return jax.vmap(apply_geometry)(params, images, labels)


views, view_labels = augment(jax.random.key(0), x_train, y_train)
fig, axes = plt.subplots(2, 6, figsize=(9, 3.2))
pairs = [(x_train[0], y_train[0]), (x_train[1], y_train[1]),
         *zip(views[:4], view_labels[:4], strict=True)]
for j, (image, labels) in enumerate(pairs):
  axes[0, j].imshow(image)
  shown = np.ma.masked_equal(np.asarray(labels), IGNORE)  # ignored pixels: white
  axes[1, j].imshow(shown, cmap=COLOURS, vmin=0, vmax=2, interpolation="nearest")
  axes[0, j].set_title(f"scene {j}" if j < 2 else f"view of scene {j % 2}", fontsize=8)
for ax in axes.flat:
  ax.set_axis_off()
fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.05, hspace=0.15)
plt.show()

# %%
# A tiny fully-convolutional network, trained on augmented views
# --------------------------------------------------------------
# Two 3x3 convolutions (the second dilated, so that a pixel sees more of its shape) and a
# per-pixel classifier; the cross-entropy is averaged over the pixels whose label is a class.
# Every step trains on a new augmented view of each example.


def conv(x, w, dilation=1):
  return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", rhs_dilation=(dilation, dilation),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def net(params, x):
  h = jax.nn.relu(conv(x, params["w1"]) + params["b1"])
  h = jax.nn.relu(conv(h, params["w2"], dilation=2) + params["b2"])
  return h @ params["w3"] + params["b3"]  # (N, H, W, classes) logits


def loss_fn(params, images, labels):
  valid = labels != IGNORE
  ce = optax.softmax_cross_entropy_with_integer_labels(net(params, images),
                                                       jnp.where(valid, labels, 0))
  return jnp.sum(ce * valid) / jnp.maximum(valid.sum(), 1)


rng = np.random.default_rng(1)
params = {"w1": rng.normal(0, 0.5, (3, 3, 3, 8)), "b1": np.zeros(8),
          "w2": rng.normal(0, 0.15, (3, 3, 8, 8)), "b2": np.zeros(8),
          "w3": rng.normal(0, 0.1, (8, len(CLASSES))), "b3": np.zeros(len(CLASSES))}
params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
tx = optax.adam(3e-2)
opt_state = tx.init(params)


@jax.jit
def train_step(params, opt_state, images, labels):
  loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
  updates, opt_state = tx.update(grads, opt_state)
  return optax.apply_updates(params, updates), opt_state, loss


for step in range(50):
  views, view_labels = augment(jax.random.fold_in(jax.random.key(2), step), x_train, y_train)
  params, opt_state, loss = train_step(params, opt_state, views, view_labels)
print(f"training loss after 50 steps: {float(loss):.3f}")

# %%
# Flips and scales at test time
# -----------------------------
# ``dense_predict`` resizes the test scene by each factor, adds the mirror of every view, runs
# the network once per scale and maps every probability map back to the scene's pixels, where
# it averages them. ``jax.jit`` around the whole call takes the weights as an argument.


@jax.jit
def predict(params, images):
  probs = lambda batch: jax.nn.softmax(net(params, batch))  # noqa: E731
  marginal, variance = A.dense_predict(probs, images, scale_factors=(1.0, 1.25),
                                       flip=True, return_variance=True)
  return probs(images), marginal, variance.sum(-1)


plain, marginal, spread = predict(params, x_test)


def miou(probs):
  pred, truth = np.asarray(probs.argmax(-1)), np.asarray(y_test)
  return np.mean([((pred == c) & (truth == c)).sum() / ((pred == c) | (truth == c)).sum()
                  for c in range(len(CLASSES))])


print(f"mean IoU on the test scene: one view {miou(plain):.3f}, "
      f"4 views (flips x scales) {miou(marginal):.3f}")

fig, axes = plt.subplots(1, 5, figsize=(10, 2.4))
panels = [("test scene", x_test[0], {}), ("truth", y_test[0], {"cmap": COLOURS}),
          ("one view", plain[0].argmax(-1), {"cmap": COLOURS}),
          ("flips x scales", marginal[0].argmax(-1), {"cmap": COLOURS}),
          ("variance over views", spread[0], {"cmap": "magma"})]
for ax, (title, image, kw) in zip(axes, panels, strict=True):
  if "cmap" in kw and kw["cmap"] is COLOURS:
    kw = {**kw, "vmin": 0, "vmax": 2}
  ax.imshow(image, interpolation="nearest", **kw)
  ax.set_title(title, fontsize=8)
  ax.set_axis_off()
fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.05, hspace=0.15)
plt.show()

# %%
# The views disagree along the outlines, where a pixel's label depends on a fraction of a pixel
# of position and on how the view was resampled; there the marginal's label is the class with
# the largest mean probability over the four views.
