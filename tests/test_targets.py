"""Dense targets: label maps, boxes and keypoints moved by the crop and flip parameter sets.

References: NumPy windows and mirrors of the masks, the nearest rule written in float64, the
box and keypoint maps written in float64 from what each parameter set means, the property that
a box moves as the mask of its pixels does, and, where it is installed, torchvision.transforms.v2
with tv_tensors (`Mask`, `BoundingBoxes`, `KeyPoints`) given the same parameters.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr

A = jr.augment
H, W = 9, 11
IMAGE = jnp.zeros((H, W, 3))
RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 200, (H, W)).astype(np.uint8)
# Boxes inside, across the border and (the last) degenerate; keypoints on the border included.
BOXES = np.array([[0.0, 0.0, W, H], [2.5, 1.0, 7.0, 6.5], [6.0, 4.0, 10.5, 9.0],
                  [1.0, 7.0, 3.0, 8.0], [4.0, 2.0, 4.0, 5.0]], np.float32)
POINTS = np.array([[0.0, 0.0], [W, H], [5.5, 4.5], [10.2, 0.7], [0.3, 8.9]], np.float32)

# Each op with its arguments, drawn on IMAGE.
OPS = {
    "crop constant": (A.random_crop, {"size": (6, 7), "padding": 2}),
    "crop reflect": (A.random_crop, {"size": (7, 8), "padding": (1, 3), "pad_mode": "reflect"}),
    "resized crop": (A.random_resized_crop, {"size": (5, 7)}),
    "resized crop, enlarged": (A.random_resized_crop, {"size": (13, 16), "scale": (0.2, 0.5)}),
    "scale crop": (A.random_scale_crop, {"size": (6, 6), "scales": (12, 15)}),
    "flip left-right": (A.random_flip_left_right, {"probability": 1.0}),
    "flip up-down": (A.random_flip_up_down, {"probability": 1.0}),
}


@functools.cache
def _jitted_draw(name):
  # One compilation per op, where an eager draw dispatches each of its small ops.
  op, kwargs = OPS[name]
  return jax.jit(lambda key: A.draw(op)(key, IMAGE, **kwargs))


@functools.cache
def draw(name, seed=0):
  return _jitted_draw(name)(jax.random.key(seed))


# --------------------------------------------------------------------------------------------
# float64 references of what each parameter set means
# --------------------------------------------------------------------------------------------


def ref_points(params, x, y):
  """Input (x, y) -> output (x, y) in float64, and the output canvas (height, width)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if isinstance(params, A.CropParams):
    pad_h, pad_w = params.padding
    return x + pad_w - int(params.left), y + pad_h - int(params.top), params.size
  if isinstance(params, A.ResizedCropParams):
    top, left, height, width = (float(v) for v in (params.top, params.left, params.height,
                                                   params.width))
    (out_h, out_w) = params.size
    return (x - left) * out_w / width, (y - top) * out_h / height, params.size
  height, width = params.image_size
  if bool(params.flip):
    x, y = (width - x, y) if params.axis == 1 else (x, height - y)
  return x, y, params.image_size


def ref_boxes(params, boxes, valid, min_size):
  b = np.asarray(boxes, np.float64)
  xs, ys, (height, width) = ref_points(params, b[:, [0, 2, 0, 2]], b[:, [1, 1, 3, 3]])
  out = np.stack([np.clip(xs.min(1), 0, width), np.clip(ys.min(1), 0, height),
                  np.clip(xs.max(1), 0, width), np.clip(ys.max(1), 0, height)], -1)
  w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
  keep = valid & (b[:, 0] <= b[:, 2]) & (b[:, 1] <= b[:, 3]) & (w > 0) & (h > 0)
  return out, keep & (w >= min_size) & (h >= min_size)


def ref_mask(params, mask, fill):
  """Integer masks: a window of the padded mask, a mirror, or the input pixel under each
  output pixel's centre (float64; ties, which these sizes make exact, take the next pixel)."""
  if isinstance(params, A.CropParams):
    (pad_h, pad_w), (h, w) = params.padding, params.size
    widths = ((pad_h, pad_h), (pad_w, pad_w)) + ((0, 0),) * (mask.ndim - 2)
    kwargs = {"constant_values": fill} if params.pad_mode == "constant" else {}
    padded = np.pad(mask, widths, mode=params.pad_mode, **kwargs)
    top, left = int(params.top), int(params.left)
    return padded[top:top + h, left:left + w]
  if isinstance(params, A.FlipParams):
    return np.flip(mask, params.axis) if bool(params.flip) else mask
  (out_h, out_w) = params.size
  top, left, height, width = (float(v) for v in (params.top, params.left, params.height,
                                                 params.width))
  rows = np.floor(top + (np.arange(out_h) + 0.5) * height / out_h + 1e-9).astype(int)
  cols = np.floor(left + (np.arange(out_w) + 0.5) * width / out_w + 1e-9).astype(int)
  return mask[rows][:, cols]


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPS))
def test_integer_masks_against_numpy(name):
  # A uint8 label map with an ignore index of 255 in the padding, and (every other op) a
  # two-channel int32 one.
  params = draw(name)
  cases = [(params, LABELS, 255)]
  if sorted(OPS).index(name) % 2:
    cases.append((params, np.stack([LABELS, 1000 - LABELS.astype(np.int32)], -1), -1))
  if name == "crop reflect":
    cases.append((dataclasses.replace(params, pad_mode="edge"), LABELS, 255))
  for params, mask, fill in cases:
    got = A.apply_to_mask(params, mask, fill=fill)
    assert got.dtype == mask.dtype
    np.testing.assert_array_equal(got, ref_mask(params, mask, fill))


def test_masks_of_a_size_drawn_for_and_bool_masks():
  params = draw("crop constant")
  binary = LABELS > 100
  np.testing.assert_array_equal(A.apply_to_mask(params, binary, fill=True),
                                ref_mask(params, binary, True))
  with pytest.raises(ValueError, match=r"apply_to_mask: `mask` of shape \(8, 11\)"):
    A.apply_to_mask(params, LABELS[:8])
  # A set built by hand has no image size: any mask the window fits
  free = dataclasses.replace(params, image_size=None)
  assert A.apply_to_mask(free, LABELS[:8]).shape == (6, 7)


@pytest.mark.parametrize("name", ["crop constant", "resized crop", "flip up-down"])
def test_float_masks_are_resampled_as_the_image(name):
  # A one-hot mask with a class axis: the image's resampling, bit for bit `jax.jit(apply)` (the
  # same arithmetic compiled; fill 0 is the image's zero padding); a resized crop blends
  # classes at their boundaries, convexly.
  params = draw(name)
  one_hot = jax.nn.one_hot(LABELS % 3, 3)
  got = A.apply_to_mask(params, one_hot)
  np.testing.assert_array_equal(got, jax.jit(A.apply)(params, one_hot))
  if isinstance(params, A.ResizedCropParams):
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Boxes and keypoints
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPS))
def test_boxes_and_keypoints_against_float64_maps(name):
  params = draw(name)
  valid = np.array([True, True, True, False, True])
  for min_size in (0.0, 1.0, 2.5):
    boxes, keep = A.apply_to_boxes(params, BOXES, valid=valid, min_size=min_size)
    want, want_keep = ref_boxes(params, BOXES, valid, min_size)
    np.testing.assert_allclose(boxes, want, atol=1e-4)
    np.testing.assert_array_equal(keep, want_keep)
  points, visible = A.apply_to_keypoints(params, POINTS, visible=valid)
  x, y, (height, width) = ref_points(params, POINTS[:, 0], POINTS[:, 1])
  np.testing.assert_allclose(points, np.stack([x, y], -1), atol=1e-4)
  inside = (x >= 0) & (x <= width) & (y >= 0) & (y <= height)
  np.testing.assert_array_equal(visible, valid & inside)
  assert boxes.dtype == points.dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_box_moves_as_the_mask_of_its_pixels(name):
  # Rasterize each whole-pixel box as a mask, transform the mask (nearest) and box it: the box
  # of the transformed mask is within one pixel of the transformed box, and a box kept valid
  # with min_size=1 (at least one output pixel wide) keeps some pixel. Reflect and edge padding
  # show copies of an object, which its box does not follow: the masks are padded with zeros.
  params = draw(name)
  boxes = np.array([[1, 1, 4, 3], [3, 2, 10, 8], [0, 5, 11, 9], [6, 0, 8, 2], [5, 4, 6, 5]],
                   np.float32)  # as many as BOXES: the same compiled program
  got, keep = A.apply_to_boxes(params, boxes)
  if isinstance(params, A.CropParams):
    params = dataclasses.replace(params, pad_mode="constant")
  for box, out, kept in zip(boxes.astype(int), np.asarray(got), np.asarray(keep), strict=True):
    mask = np.zeros((H, W), np.uint8)
    mask[box[1]:box[3], box[0]:box[2]] = 1
    rows, cols = np.nonzero(np.asarray(A.apply_to_mask(params, mask, fill=255)) == 1)
    if not kept:
      continue
    assert rows.size
    from_mask = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    np.testing.assert_allclose(from_mask, out, atol=1.0)
    if not isinstance(params, A.ResizedCropParams):  # windows and mirrors: exact
      np.testing.assert_array_equal(from_mask, out)


def test_validity_and_visibility_rules():
  window = A.CropParams(top=jnp.array(2), left=jnp.array(3), size=(4, 5))
  boxes = np.array([
      [3.0, 2.0, 8.0, 6.0],  # the whole window
      [0.0, 0.0, 3.0, 2.0],  # outside it, touching its corner
      [2.0, 2.0, 3.5, 6.0],  # half a pixel inside
      [5.0, 4.0, 4.0, 5.0],  # x0 > x1
      [np.nan, 2.0, 5.0, 5.0],
  ], np.float32)
  got, keep = A.apply_to_boxes(window, boxes)
  np.testing.assert_array_equal(keep, [True, False, False, False, False])
  np.testing.assert_array_equal(got[:3], [[0, 0, 5, 4], [0, 0, 0, 0], [0, 0, 0.5, 4]])
  _, keep = A.apply_to_boxes(window, boxes, min_size=0.0)
  np.testing.assert_array_equal(keep, [True, False, True, False, False])
  # Keypoints: the closed canvas; a flip maps its border onto itself
  points = np.array([[3.0, 2.0], [8.0, 6.0], [8.1, 6.0], [2.9, 3.0]], np.float32)
  moved, visible = A.apply_to_keypoints(window, points, visible=np.array([1, 1, 1, 0], bool))
  np.testing.assert_array_equal(visible, [True, True, False, False])
  np.testing.assert_allclose(moved[2], [5.1, 4.0], atol=1e-6)  # mapped, not clamped
  flip = A.FlipParams(flip=jnp.array(True), probability=jnp.array(1.0), image_size=(H, W))
  np.testing.assert_array_equal(A.apply_to_keypoints(flip, np.array([[0.0, 1.0]]))[0], [[W, 1]])


def test_a_flip_needs_the_image_size_for_points():
  flip = A.FlipParams(flip=jnp.array(True), probability=jnp.array(1.0))
  with pytest.raises(ValueError, match=r"apply_to_boxes: `params` .* no `image_size`"):
    A.apply_to_boxes(flip, BOXES)
  sized = dataclasses.replace(flip, image_size=(H, W))
  np.testing.assert_array_equal(A.apply_to_boxes(sized, BOXES[:1])[0], [[0, 0, W, H]])
  assert A.apply_to_mask(flip, LABELS).shape == (H, W)  # a mask knows its own size


def test_draws_record_the_image_size_and_apply_checks_it():
  for name in OPS:
    assert draw(name).image_size == (H, W)
  with pytest.raises(ValueError, match=r"apply\(CropParams\): `image` of shape \(8, 11, 3\)"):
    A.apply(draw("crop constant"), IMAGE[:8])


def test_batched_draws_under_jit_and_vmap():
  # One set per example (from `batched`, or stacked draws), applied under jit(vmap), against the
  # float64 references of each example's set (the other tests call the functions eagerly). A
  # flip of probability 0.5 draws both outcomes across the batch.
  n = 3
  images = jnp.zeros((n, H, W, 3))
  valid = RNG.random((n, len(BOXES))) < 0.8
  boxes, masks, points = (np.broadcast_to(a, (n, *a.shape)) for a in (BOXES, LABELS, POINTS))

  @jax.jit  # one compilation for the three parameter classes
  def batch(sets, boxes, valid, masks, points):
    return [(jax.vmap(A.apply_to_boxes)(params, boxes, valid=valid),
             jax.vmap(lambda p, m: A.apply_to_mask(p, m, fill=255))(params, masks),
             jax.vmap(A.apply_to_keypoints)(params, points, visible=valid)) for params in sets]

  sets = [A.batched(A.draw(A.random_crop))(jax.random.key(0), images, 7, padding=2),
          jax.tree.map(lambda *leaves: jnp.stack(leaves), *(
              draw("resized crop", seed) for seed in range(n))),
          A.batched(A.draw(A.random_flip_left_right))(jax.random.key(1), images)]
  for params, got in zip(sets, batch(sets, boxes, valid, masks, points), strict=True):
    (got_boxes, keep), got_masks, (got_points, visible) = got
    for i in range(n):
      p = jax.tree.map(lambda leaf, i=i: leaf[i], params)
      want, want_keep = ref_boxes(p, BOXES, valid[i], 1.0)
      np.testing.assert_allclose(got_boxes[i], want, atol=1e-4)
      np.testing.assert_array_equal(keep[i], want_keep)
      np.testing.assert_array_equal(got_masks[i], ref_mask(p, LABELS, 255))
      x, y, (height, width) = ref_points(p, POINTS[:, 0], POINTS[:, 1])
      np.testing.assert_allclose(got_points[i], np.stack([x, y], -1), atol=1e-4)
      inside = (x >= 0) & (x <= width) & (y >= 0) & (y <= height)
      np.testing.assert_array_equal(visible[i], valid[i] & inside)
  assert len(set(np.asarray(sets[2].flip).tolist())) == 2


def test_boxes_are_differentiable_in_boxes_and_parameters():
  # Inside the canvas a resized crop scales the corners by size / box side: the reverse-mode
  # Jacobian in the boxes against that, and the forward-mode derivative of a corner in the
  # box's width.
  def params(width):
    return A.ResizedCropParams(top=jnp.float32(2.0), left=jnp.float32(3.0),
                               height=jnp.float32(6.0), width=width, size=(5, 7))

  boxes = jnp.array([[4.0, 3.0, 6.0, 5.0]])
  width = jnp.float32(7.0)

  @jax.jit
  def derivatives(boxes, width):
    jacobian = jax.jacrev(lambda b: A.apply_to_boxes(params(width), b)[0][0])(boxes)
    _, dwidth = jax.jvp(lambda w: A.apply_to_boxes(params(w), boxes)[0][0, 2], (width,),
                        (jnp.float32(1.0),))
    return jacobian, dwidth

  jacobian, dwidth = derivatives(boxes, width)
  np.testing.assert_allclose(jacobian[:, 0], np.diag([7 / 7.0, 5 / 6.0] * 2), rtol=1e-6)
  np.testing.assert_allclose(dwidth, -(6.0 - 3.0) * 7 / 7.0**2, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# torchvision.transforms.v2 with tv_tensors (where torch is installed)
# --------------------------------------------------------------------------------------------


def _tv():
  pytest.importorskip("torchvision")
  import torch
  from torchvision import tv_tensors
  from torchvision.transforms.v2 import functional as tvf

  return torch, tv_tensors, tvf


def _tv_targets(tv_tensors, torch, canvas):
  return (tv_tensors.Mask(torch.from_numpy(LABELS)),
          tv_tensors.BoundingBoxes(torch.from_numpy(BOXES), format="XYXY", canvas_size=canvas),
          tv_tensors.KeyPoints(torch.from_numpy(POINTS), canvas_size=canvas)
          if hasattr(tv_tensors, "KeyPoints") else None)


def _compare(params, mask, boxes, points, *, fill=0, keypoint_shift=(0.0, 0.0)):
  # Boxes: the coordinates, and validity as SanitizeBoundingBoxes' defaults decide it (sides
  # and area at least 1) for min_size=1.
  _, _, tvf = _tv()
  np.testing.assert_array_equal(A.apply_to_mask(params, LABELS, fill=fill), mask.numpy())
  got, valid = A.apply_to_boxes(params, BOXES)
  np.testing.assert_allclose(got, boxes.numpy(), atol=1e-4)
  np.testing.assert_array_equal(valid, tvf.sanitize_bounding_boxes(boxes)[1].numpy())
  if points is not None:
    np.testing.assert_allclose(A.apply_to_keypoints(params, POINTS)[0] + np.array(
        keypoint_shift, np.float32), points.numpy(), atol=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_crops_agree_with_torchvision(seed):
  # random_crop is tvf.pad then tvf.crop: equal masks (the padding filled with 255), boxes and
  # keypoints. torchvision pads boxes and keypoints in "constant" mode only.
  torch, tv_tensors, tvf = _tv()
  params = draw("crop constant", seed)
  (pad_h, pad_w), (h, w) = params.padding, params.size
  padded = [tvf.pad(t, [pad_w, pad_h], fill=255) if t is not None else None
            for t in _tv_targets(tv_tensors, torch, (H, W))]
  out = [tvf.crop(t, int(params.top), int(params.left), h, w) if t is not None else None
         for t in padded]
  _compare(params, *out, fill=255)


@pytest.mark.parametrize("seed", range(4))
def test_resized_crops_agree_with_torchvision(seed):
  # Boxes and keypoints: tvf.resized_crop to 1e-4 pixels. Masks: equal to torchvision's
  # NEAREST_EXACT (the pixel-centre rule), not to its default for tv_tensors.Mask, NEAREST,
  # which samples the input at each output pixel's top-left corner: rows
  # floor(i * height / size), no half-pixel shift.
  torch, tv_tensors, tvf = _tv()
  from torchvision.transforms import InterpolationMode

  params = draw("resized crop" if seed % 2 else "resized crop, enlarged", seed)
  top, left, h, w = (int(v) for v in (params.top, params.left, params.height, params.width))
  mask, boxes, points = _tv_targets(tv_tensors, torch, (H, W))
  size = list(params.size)
  # tvf.resized_crop ignores `interpolation` for a Mask (always NEAREST): NEAREST_EXACT applies
  # to a plain tensor.
  exact = tvf.resized_crop(torch.from_numpy(LABELS)[None], top, left, h, w, size,
                         interpolation=InterpolationMode.NEAREST_EXACT)[0]
  out = [tvf.resized_crop(t, top, left, h, w, size) if t is not None else None
         for t in (boxes, points)]
  _compare(params, exact, *out)
  legacy = tvf.resized_crop(mask, top, left, h, w, size).numpy()
  rows = top + np.floor(np.arange(size[0]) * h / size[0]).astype(int)
  cols = left + np.floor(np.arange(size[1]) * w / size[1]).astype(int)
  np.testing.assert_array_equal(legacy, LABELS[rows][:, cols])


def test_scale_crops_agree_with_torchvision():
  # random_scale_crop is tvf.resize of the whole image, then tvf.crop.
  torch, tv_tensors, tvf = _tv()
  from torchvision.transforms import InterpolationMode

  params = draw("scale crop", 1)
  factor = params.size[0] / float(params.height)  # resized / original
  resized = [round(H * factor), round(W * factor)]
  top, left = round(float(params.top) * factor), round(float(params.left) * factor)
  out = []
  for t in _tv_targets(tv_tensors, torch, (H, W)):
    if t is None:
      out.append(None)
      continue
    kwargs = ({"interpolation": InterpolationMode.NEAREST_EXACT}
              if isinstance(t, tv_tensors.Mask) else {})
    out.append(tvf.crop(tvf.resize(t, resized, **kwargs), top, left, *params.size))
  _compare(params, *out)


def test_flips_agree_with_torchvision():
  # Masks and boxes equal; torchvision flips keypoints as pixel indices (x -> W - 1 - x), one
  # pixel from the continuous map (x -> W - x) it uses for boxes and for every other op.
  torch, tv_tensors, tvf = _tv()
  for name, flip, shift in (("flip left-right", tvf.horizontal_flip, (-1.0, 0.0)),
                            ("flip up-down", tvf.vertical_flip, (0.0, -1.0))):
    out = [flip(t) if t is not None else None for t in _tv_targets(tv_tensors, torch, (H, W))]
    _compare(draw(name), *out, keypoint_shift=shift)
