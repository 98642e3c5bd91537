"""Renders the augmentation gallery: one photograph through every `jaxreg.augment` op.

    python docs/gallery.py                           # docs/_static/gallery.png, 112 px tiles
    python docs/gallery.py --size 48 --out /tmp/gallery.png
    python docs/gallery.py --only rotate mixup --out /tmp/rows.png   # a preview of two rows

The photograph is scikit-learn's sample image ``china.jpg`` (shipped inside scikit-learn, no
download), cropped to a square and resized to ``--size`` pixels; ``flower.jpg`` is the partner
image for mixup and cutmix. Each row of `GALLERY` is one op: its name in `jaxreg.augment` and a
few settings, each a caption and a function ``fn(key, image, other) -> image``. To show a new
op, append a row. The tests check that every name in ``jaxreg.augment.__all__`` has a row,
trace every row at a small size, and render a few of them.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxreg as jr

A = jr.augment
OUT = pathlib.Path(__file__).resolve().parent / "_static" / "gallery.png"


def _side(image, fraction):
  return max(1, int(image.shape[0] * fraction))


def _example(batch_fn, index=0):
  """A function of (key, image, other) that runs ``batch_fn`` on a batch and shows one result.

  The batch is the image followed by seven copies of the partner image, so a random partner is
  almost surely the other photograph.
  """
  def fn(key, image, other):
    images = jnp.stack([image] + [other] * 7)
    return batch_fn(key, images)[index]
  return fn


def _mix(mix, **kwargs):
  labels = jax.nn.one_hot(jnp.array([0] + [1] * 7), 2)
  return _example(lambda key, images: mix(key, images, labels, **kwargs)[0])


def _grey(channel):
  return lambda image: jnp.repeat(image[..., channel:channel + 1], 3, axis=-1)


def _drawn_box(key, image):
  """`random_resized_crop`'s parameters for ``image``: the same key, the same box."""
  return A.draw(A.random_resized_crop)(key, image, image.shape[0], scale=(0.2, 0.4))


def _window_mean(batch):
  """A "model" that sees only its window: the window's mean colour everywhere in it."""
  return jnp.broadcast_to(batch.mean((1, 2), keepdims=True), batch.shape)


def _mapped_back(params, image):
  mapped, weight = A.invert_prediction(params, A.apply(params, image))
  return mapped * weight


def _labels(image):
  """A label map of the photograph: its brightness in four classes, shown as grey levels."""
  return jnp.minimum(image.mean(-1) * 4, 3).astype(jnp.int32)


def _grey_labels(labels):
  return jnp.repeat((labels / 3.0)[..., None], 3, axis=-1)


def _target_box(image):
  side = image.shape[0]
  return jnp.array([[0.2 * side, 0.25 * side, 0.65 * side, 0.75 * side]])


def _target_points(image):
  ticks = (jnp.arange(4) + 0.5) * image.shape[0] / 4
  return jnp.stack(jnp.meshgrid(ticks, ticks), -1).reshape(-1, 2)


def _pixel_centres(image):
  """x and y of the pixel centres, shaped to broadcast against a leading axis of targets."""
  return jnp.arange(image.shape[1]) + 0.5, jnp.arange(image.shape[0])[:, None] + 0.5


@jax.jit
def _outline(image, boxes, valid):
  """``image`` with the border of each valid box in red."""
  x, y = _pixel_centres(image)
  x0, y0, x1, y1 = (boxes[:, i, None, None] for i in range(4))
  width = max(1, image.shape[0] // 40)
  inside = (x > x0) & (x < x1) & (y > y0) & (y < y1)
  inner = (x > x0 + width) & (x < x1 - width) & (y > y0 + width) & (y < y1 - width)
  edge = (jnp.asarray(valid)[:, None, None] & inside & ~inner).any(0)
  return jnp.where(edge[..., None], jnp.array([1.0, 0.0, 0.0]), image)


@jax.jit
def _dots(image, points, visible):
  """``image`` with a yellow dot on each visible point."""
  x, y = _pixel_centres(image)
  radius = max(1.5, image.shape[0] / 30)
  dx, dy = x - points[:, 0, None, None], y - points[:, 1, None, None]
  near = (jnp.asarray(visible)[:, None, None] & (dx**2 + dy**2 <= radius**2)).any(0)
  return jnp.where(near[..., None], jnp.array([1.0, 1.0, 0.0]), image)


def _flip(key, image):
  return A.draw(A.random_flip_left_right)(key, image, probability=1.0)


def _moved(draw_fn, apply_to, targets, mark):
  """fn(key, image, other): the image under ``draw_fn``'s parameters, with its targets moved."""
  def fn(key, image, _):
    params = draw_fn(key, image)
    return mark(A.apply(params, image), *apply_to(params, targets(image)))
  return fn


_DRAWS: dict = {}


def _policy_draws(name, key, image):
  """Eight draws of the policy ``name`` on ``image``, computed once.

  One compilation of the single-image policy, called with each of the 8 keys: the same images
  as one batched (``vmap``) call, whose compilation takes longer.
  """
  cached = _DRAWS.get(name)
  if cached is None or cached[0] is not image:
    policy = jax.jit(getattr(A, name))
    draws = [policy(k, image) for k in jax.random.split(key, 8)]
    cached = _DRAWS[name] = (image, draws)
  return cached[1]


# (op name in jaxreg.augment, [(caption, fn(key, image, other) -> HWC image), ...])
GALLERY = [
    ("random_crop", [
        ("size 3/4", lambda k, im, _: A.random_crop(k, im, _side(im, 0.75))),
        ("padding 1/8, constant", lambda k, im, _: A.random_crop(
            k, im, im.shape[0], padding=_side(im, 0.125))),
        ("padding 1/8, reflect", lambda k, im, _: A.random_crop(
            k, im, im.shape[0], padding=_side(im, 0.125), pad_mode="reflect")),
        ("padding 1/8, edge", lambda k, im, _: A.random_crop(
            k, im, im.shape[0], padding=_side(im, 0.125), pad_mode="edge")),
    ]),
    ("random_flip_left_right", [
        ("probability 1", lambda k, im, _: A.random_flip_left_right(k, im, probability=1.0)),
    ]),
    ("random_flip_up_down", [
        ("probability 1", lambda k, im, _: A.random_flip_up_down(k, im, probability=1.0)),
    ]),
    ("random_resized_crop", [
        (f"default, key {i}", lambda k, im, _, i=i: A.random_resized_crop(
            jax.random.fold_in(k, i), im, im.shape[0])) for i in range(2)
    ] + [
        ("ratio (2, 2)", lambda k, im, _: A.random_resized_crop(
            k, im, im.shape[0], ratio=(2.0, 2.0))),
    ]),
    ("random_scale_crop", [
        (f"shorter side x{s}", lambda k, im, _, s=s: A.random_scale_crop(
            k, im, _side(im, 0.75), scales=(int(im.shape[0] * s),))) for s in (1, 2)
    ]),
    ("apply", [  # one box drawn on the photograph, applied to both images
        ("drawn box, on the image", lambda k, im, _: A.apply(_drawn_box(k, im), im)),
        ("the same box, on the partner", lambda k, im, other: A.apply(_drawn_box(k, im),
                                                                      other)),
    ]),
    ("apply_to_mask", [  # a label map moved with the image, nearest
        ("labels (4 classes)", lambda k, im, _: _grey_labels(_labels(im))),
        ("drawn box, on the image", lambda k, im, _: A.apply(_drawn_box(k, im), im)),
        ("the same box, on the labels", lambda k, im, _: _grey_labels(A.apply_to_mask(
            _drawn_box(k, im), _labels(im)))),
    ]),
    ("apply_to_boxes", [
        ("a box", lambda k, im, _: _outline(im, _target_box(im), jnp.ones(1, bool))),
        ("flipped, with its box", _moved(_flip, A.apply_to_boxes, _target_box, _outline)),
    ]),
    ("apply_to_keypoints", [
        ("keypoints", lambda k, im, _: _dots(im, _target_points(im), jnp.ones(16, bool))),
        ("drawn box, with them", _moved(_drawn_box, A.apply_to_keypoints, _target_points,
                                        _dots)),
    ]),
    ("center_crop", [
        ("size 1/2", lambda k, im, _: A.center_crop(im, _side(im, 0.5))),
        ("size 3/4", lambda k, im, _: A.center_crop(im, _side(im, 0.75))),
    ]),
    ("five_crop", [
        (caption, lambda k, im, _, v=v: A.five_crop(im, _side(im, 0.6))[v])
        for v, caption in ((0, "view 0: top-left"), (3, "view 3: bottom-right"),
                           (4, "view 4: centre"))
    ]),
    ("ten_crop", [
        (caption, lambda k, im, _, v=v: A.ten_crop(im, _side(im, 0.6))[v])
        for v, caption in ((0, "view 0: top-left"), (5, "view 5: mirrored top-left"),
                           (9, "view 9: mirrored centre"))
    ]),
    ("multi_crop_predict", [
        ("mean of the 10 views", lambda k, im, _: A.multi_crop_predict(
            lambda views: views, im[None], size=_side(im, 0.6))[0]),
        ("5 views, 2 scales", lambda k, im, _: A.multi_crop_predict(
            lambda views: views, im[None], size=_side(im, 0.6), crops="five",
            scales=(im.shape[0], int(im.shape[0] * 1.5)))[0]),
    ]),
    ("dense_predict", [  # an identity "model": what the views' way back does to the image
        ("mean over 2 scales x flip", lambda k, im, _: A.dense_predict(
            lambda views: views, im[None], scale_factors=(0.5, 1.5))[0]),
        ("their spread (std x 4)", lambda k, im, _: jnp.clip(4 * jnp.sqrt(A.dense_predict(
            lambda views: views, im[None], scale_factors=(0.5, 1.5),
            return_variance=True)[1][0]), 0, 1)),
        ("windows 1/2 every 1/4, their means", lambda k, im, _: A.dense_predict(
            _window_mean, im[None], flip=False, size=_side(im, 0.5),
            stride=_side(im, 0.25))[0]),
    ]),
    ("invert_prediction", [  # the drawn box's view, mapped back where it came from
        ("drawn box, on the image", lambda k, im, _: A.apply(_drawn_box(k, im), im)),
        ("mapped back, times its weight", lambda k, im, _: _mapped_back(_drawn_box(k, im), im)),
    ]),
    ("rgb_to_hsv", [
        (f"{name} as grey", lambda k, im, _, c=c: _grey(c)(A.rgb_to_hsv(im)))
        for c, name in enumerate(("hue", "saturation", "value"))
    ]),
    ("hsv_to_rgb", [
        ("saturation set to 1", lambda k, im, _: A.hsv_to_rgb(
            A.rgb_to_hsv(im).at[..., 1].set(1.0))),
        ("hue + 1/2 turn", lambda k, im, _: A.hsv_to_rgb(
            A.rgb_to_hsv(im).at[..., 0].add(0.5) % 1.0)),
    ]),
    ("random_brightness", [
        (f"max_delta 0.4, key {i}", lambda k, im, _, i=i: A.random_brightness(
            jax.random.fold_in(k, i), im, 0.4, clip=True)) for i in range(3)
    ]),
    ("random_contrast", [
        (f"(0.2, 1.8), key {i}", lambda k, im, _, i=i: A.random_contrast(
            jax.random.fold_in(k, i), im, (0.2, 1.8), clip=True)) for i in range(3)
    ]),
    ("random_saturation", [
        (f"(0, 3), key {i}", lambda k, im, _, i=i: A.random_saturation(
            jax.random.fold_in(k, i), im, (0.0, 3.0), clip=True)) for i in range(3)
    ]),
    ("random_hue", [
        (f"max_delta 0.5, key {i}", lambda k, im, _, i=i: A.random_hue(
            jax.random.fold_in(k, i), im, 0.5, clip=True)) for i in range(3)
    ]),
    ("adjust_saturation", [
        (f"factor {f}", lambda k, im, _, f=f: A.adjust_saturation(im, f, clip=True))
        for f in (0.0, 0.5, 2.0)
    ]),
    ("adjust_hue", [
        (f"delta {d}", lambda k, im, _, d=d: A.adjust_hue(im, d, clip=True))
        for d in (-0.25, 0.25, 0.5)
    ]),
    ("color_jitter", [
        (f"0.4, 0.4, 0.4, 0.1, key {i}", lambda k, im, _, i=i: A.color_jitter(
            jax.random.fold_in(k, i), im, brightness=0.4, contrast=0.4, saturation=0.4,
            hue=0.1)) for i in range(3)
    ] + [
        ("fixed order", lambda k, im, _: A.color_jitter(
            k, im, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1,
            random_order=False)),
    ]),
    ("random_erasing", [
        ("probability 1", lambda k, im, _: A.random_erasing(k, im, probability=1.0)),
        ("value = ImageNet mean", lambda k, im, _: A.random_erasing(
            jax.random.fold_in(k, 1), im, probability=1.0, value=(0.485, 0.456, 0.406))),
        ("value = noise", lambda k, im, _: A.random_erasing(
            jax.random.fold_in(k, 2), im, probability=1.0,
            value=jax.random.uniform(jax.random.key(7), im.shape))),
    ]),
    ("mixup", [
        (f"alpha {a}", lambda k, im, other, a=a, i=i: _mix(A.mixup, alpha=a)(
            jax.random.fold_in(k, i), im, other)) for i, a in enumerate((0.2, 1.0))
    ]),
    ("cutmix", [
        (f"alpha {a}", lambda k, im, other, a=a, i=i: _mix(A.cutmix, alpha=a)(
            jax.random.fold_in(k, i), im, other)) for i, a in enumerate((1.0, 0.5))
    ]),
    ("compose", [
        ("crop + flip + jitter", lambda k, im, _: A.compose(
            functools.partial(A.random_resized_crop, size=im.shape[0], scale=(0.3, 1.0)),
            functools.partial(A.random_flip_left_right, probability=1.0),
            functools.partial(A.color_jitter, brightness=0.3, saturation=0.5))(k, im)),
    ]),
    ("batched", [  # batched(random_resized_crop) on the image and copies of the partner
        (f"example {i}", _example(
            lambda key, images: A.batched(A.random_resized_crop)(key, images,
                                                                images.shape[1]), i))
        for i in (0, 1)
    ]),
    # Geometric and photometric ops of the augmentation policies, each at three magnitudes.
    ("affine", [
        (f"angle {a}, translate {t}, scale {c}, shear {h}",
         lambda k, im, _, a=a, t=t, c=c, h=h: A.affine(
             im, angle=a, translate=(t * im.shape[1], 0.0), scale=c, shear=(h, 0.0),
             interpolation="bilinear"))
        for a, t, c, h in ((10.0, 0.0, 1.0, 0.0), (0.0, 0.1, 0.8, 10.0), (-20.0, -0.1, 1.2, -20.0))
    ]),
    ("rotate", [
        (f"angle {a}", lambda k, im, _, a=a: A.rotate(im, a, interpolation="bilinear"))
        for a in (10.0, 30.0, -45.0)
    ]),
    ("translate_x", [
        (f"{f} of the width", lambda k, im, _, f=f: A.translate_x(im, int(f * im.shape[1])))
        for f in (0.1, 0.3, -0.3)
    ]),
    ("translate_y", [
        (f"{f} of the height", lambda k, im, _, f=f: A.translate_y(im, int(f * im.shape[0])))
        for f in (0.1, 0.3, -0.3)
    ]),
    ("shear_x", [
        (f"factor {f}", lambda k, im, _, f=f: A.shear_x(im, f, interpolation="bilinear"))
        for f in (0.1, 0.3, -0.3)
    ]),
    ("shear_y", [
        (f"factor {f}", lambda k, im, _, f=f: A.shear_y(im, f, interpolation="bilinear"))
        for f in (0.1, 0.3, -0.3)
    ]),
    ("grayscale", [("3 channels", lambda k, im, _: A.grayscale(im))]),
    ("random_grayscale", [
        ("probability 1", lambda k, im, _: A.random_grayscale(k, im, probability=1.0)),
    ]),
    ("invert", [("", lambda k, im, _: A.invert(im))]),
    ("solarize", [
        (f"threshold {t}", lambda k, im, _, t=t: A.solarize(im, t)) for t in (0.9, 0.6, 0.3)
    ]),
    ("solarize_add", [
        (f"addition {a}", lambda k, im, _, a=a: A.solarize_add(im, a))
        for a in (0.1, 0.25, 0.43)
    ]),
    ("posterize", [(f"{b} bits", lambda k, im, _, b=b: A.posterize(im, b)) for b in (6, 4, 2)]),
    ("equalize", [("", lambda k, im, _: A.equalize(im))]),
    ("autocontrast", [("", lambda k, im, _: A.autocontrast(im))]),
    ("enhance_sharpness", [
        (f"factor {f}", lambda k, im, _, f=f: A.enhance_sharpness(im, f)) for f in (0.0, 2.0, 4.0)
    ]),
    ("gaussian_blur", [
        (f"kernel {n}, sigma {s}", lambda k, im, _, n=n, s=s: A.gaussian_blur(im, n, s))
        for n, s in ((3, 0.5), (5, 1.0), (9, 2.0))
    ]),
    ("enhance_brightness", [
        (f"factor {f}", lambda k, im, _, f=f: A.enhance_brightness(im, f)) for f in (0.5, 1.5, 1.9)
    ]),
    ("enhance_contrast", [
        (f"factor {f}", lambda k, im, _, f=f: A.enhance_contrast(im, f)) for f in (0.5, 1.5, 1.9)
    ]),
    ("enhance_color", [
        (f"factor {f}", lambda k, im, _, f=f: A.enhance_color(im, f)) for f in (0.0, 0.5, 1.9)
    ]),
    # The policies: 8 draws each, from one compilation per policy.
    *((name, [(f"key {i}", lambda k, im, _, name=name, i=i: _policy_draws(name, k, im)[i])
              for i in range(8)])
      for name in ("rand_augment", "trivial_augment_wide", "auto_augment", "aug_mix")),
]


def sample_image(name: str, size: int) -> jax.Array:
  """A scikit-learn sample photograph as a float HWC image in [0, 1], centre square, resized."""
  from sklearn.datasets import load_sample_image

  photo = np.asarray(load_sample_image(name), np.float32) / 255.0
  side = min(photo.shape[:2])
  top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
  square = jnp.asarray(photo[top:top + side, left:left + side])
  return jax.image.resize(square, (size, size, 3), "linear", antialias=True)


def _text(draw, xy, text, font, width):
  """Draws ``text`` at ``xy``, cut to ``width`` pixels."""
  while text and draw.textlength(text, font=font) > width:
    text = text[:-1]
  draw.text(xy, text, fill="black", font=font)


def render(size: int, out: pathlib.Path, seed: int = 0, only: Sequence[str] = ()) -> None:
  """Runs the rows of `GALLERY` (those named in ``only``; all if empty) and writes the grid
  to ``out`` (a PNG).

  The first row shows the two photographs; each further row is one op, named on the left, its
  settings to the right, each tile captioned. A row draws from its own key (its place in
  `GALLERY`), so its tiles are the same whichever rows are rendered with it.
  """
  from PIL import Image, ImageDraw, ImageFont

  unknown = set(only) - {name for name, _ in GALLERY}
  if unknown:
    raise ValueError(f"render: `only` names rows of GALLERY, got unknown {sorted(unknown)}")
  image, other = sample_image("china.jpg", size), sample_image("flower.jpg", size)
  key = jax.random.key(seed)
  rows = [("input", [("china.jpg", image), ("flower.jpg (partner)", other)])]
  for row, (name, settings) in enumerate(GALLERY):
    if only and name not in only:
      continue
    rows.append((name, [(caption, fn(jax.random.fold_in(key, row), image, other))
                        for caption, fn in settings]))

  font = ImageFont.load_default(size=max(9, size // 11))
  line = int(font.size * 1.4)
  pad, label = 4, max(7 * line, 150)
  cell_w, cell_h = size + pad, size + line + pad
  columns = max(len(cells) for _, cells in rows)
  sheet = Image.new("RGB", (label + columns * cell_w + pad, len(rows) * cell_h + pad), "white")
  draw = ImageDraw.Draw(sheet)
  for r, (name, cells) in enumerate(rows):
    top = pad + r * cell_h
    _text(draw, (pad, top + line + size // 2 - line // 2), name, font, label - 2 * pad)
    for c, (caption, result) in enumerate(cells):
      left = label + c * cell_w
      _text(draw, (left, top), caption, font, size)
      pixels = np.asarray(jnp.clip(result, 0.0, 1.0) * 255 + 0.5, np.uint8)
      tile = Image.fromarray(pixels)
      if tile.size != (size, size):  # crops smaller than the input: scaled up to the tile
        tile = tile.resize((size, size), Image.Resampling.BILINEAR)
      sheet.paste(tile, (left, top + line))
  out.parent.mkdir(parents=True, exist_ok=True)
  sheet.save(out, optimize=True)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--size", type=int, default=112, help="side of each tile in pixels")
  parser.add_argument("--out", type=pathlib.Path, default=OUT, help="PNG file to write")
  parser.add_argument("--seed", type=int, default=0, help="root PRNG key")
  parser.add_argument("--only", nargs="+", default=(), metavar="OP",
                      help="render only these rows (a preview of the rows being changed)")
  args = parser.parse_args(argv)
  render(args.size, args.out, args.seed, args.only)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
