"""Dense targets: label maps, boxes and keypoints moved by the geometric parameter sets.

References: NumPy windows and mirrors of the masks, the nearest rule written in float64, the
box and keypoint maps written in float64 from what each parameter set means (for the affine
ops, torchvision's parametrization of the forward map), the property that a box moves as the
mask of its pixels does, a policy as its geometric slots' own sets in turn, and, where it is
installed, torchvision.transforms.v2 with tv_tensors (`Mask`, `BoundingBoxes`, `KeyPoints`)
given the same parameters.
"""

import dataclasses
import functools
import math

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


def ref_boxes(params, boxes, valid, min_size, points=ref_points):
  b = np.asarray(boxes, np.float64)
  xs, ys, (height, width) = points(params, b[:, [0, 2, 0, 2]], b[:, [1, 1, 3, 3]])
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


# The label maps of a resized crop and a scale crop take one branch (nearest pixels of the
# drawn window): the enlarged resized crop runs it, uint8 and int32.
@pytest.mark.parametrize("name", sorted(set(OPS) - {"resized crop", "scale crop"}))
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


# Points move by the set's affine map whatever its pad mode, and a scale crop's set is a resized
# crop's: one crop and one resized crop.
@pytest.mark.parametrize("name", sorted(set(OPS) - {"crop reflect", "resized crop, enlarged",
                                                    "scale crop"}))
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
  np.testing.assert_array_equal(A.apply_to_mask(flip, LABELS), LABELS[:, ::-1])  # its own size


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
# Affine sets: the deterministic geometric ops' matrices
# --------------------------------------------------------------------------------------------


def ref_affine(angle=0.0, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0), center=None):
  """torchvision's forward map ``T C R(angle) S(scale) SHy(sy) SHx(sx) C^-1`` in float64, the
  angle clockwise on screen: (x, y) -> (x', y')."""
  cx, cy = (W / 2, H / 2) if center is None else center
  a, sx, sy = (math.radians(v) for v in (angle, *shear))
  linear = scale * (np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
                    @ np.array([[1.0, 0.0], [-math.tan(sy), 1.0]])
                    @ np.array([[1.0, -math.tan(sx)], [0.0, 1.0]]))

  def forward(x, y):
    dx, dy = x - cx, y - cy
    return (cx + translate[0] + linear[0, 0] * dx + linear[0, 1] * dy,
            cy + translate[1] + linear[1, 0] * dx + linear[1, 1] * dy)

  return forward


# Each op with its arguments and its forward map (rotate turns counter-clockwise: affine's
# -angle; the shears are about the corner (0, 0); translations are whole pixels, truncated).
AFFINE = {
    "rotate": (A.rotate, (23.7,), {}, ref_affine(angle=-23.7)),
    "rotate about a point": (A.rotate, (-61.0,), {"center": (3.0, 2.5)},
                             ref_affine(angle=61.0, center=(3.0, 2.5))),
    "rotate a quarter turn": (A.rotate, (90.0,), {}, ref_affine(angle=-90.0)),
    "affine": (A.affine, (), {"angle": -31.3, "translate": (1.5, -2.25), "scale": 1.2,
                              "shear": (7.0, -5.0)},
               ref_affine(angle=-31.3, translate=(1.5, -2.25), scale=1.2, shear=(7.0, -5.0))),
    "shear_x": (A.shear_x, (0.23,), {}, lambda x, y: (x - 0.23 * y, y)),
    "shear_y": (A.shear_y, (-0.37,), {}, lambda x, y: (x, y + 0.37 * x)),
    "translate_x": (A.translate_x, (3.7,), {}, lambda x, y: (x + 3.0, y)),
    "translate_y": (A.translate_y, (-2.0,), {}, lambda x, y: (x, y - 2.0)),
}


@functools.cache
def affine_set(name):
  op, args, kwargs, _ = AFFINE[name]
  return A.draw(op)(IMAGE, *args, **kwargs)


def ref_warped_mask(forward, mask, fill):
  """The input pixel under each output pixel's centre, through the inverse of the float64
  forward map (``floor(u + 1/1024)``: the nearest rule's margin), or ``fill`` outside."""
  x0, y0 = forward(0.0, 0.0)
  linear = np.array([np.subtract(forward(1.0, 0.0), (x0, y0)),
                     np.subtract(forward(0.0, 1.0), (x0, y0))]).T
  xs, ys = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
  u, v = np.einsum("ij,jhw->ihw", np.linalg.inv(linear), np.stack([xs - x0, ys - y0]))
  cols, rows = np.floor(u + 2.0**-10).astype(int), np.floor(v + 2.0**-10).astype(int)
  inside = (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
  return np.where(inside, mask[np.clip(rows, 0, H - 1), np.clip(cols, 0, W - 1)], fill)


@pytest.mark.parametrize("name", sorted(AFFINE))
def test_affine_sets_against_float64_maps(name):
  # Boxes and keypoints through torchvision's forward map in float64 (no half-pixel shift: the
  # matrix maps continuous coordinates, pixel centres at +0.5, as `warp` samples them); a
  # uint8 label map by the nearest rule at each output pixel centre. Tolerance: float32
  # rounding of the matrix and its inverse.
  params, forward = affine_set(name), AFFINE[name][3]
  assert params.image_size == (H, W)

  def points(_, x, y):
    return (*forward(x, y), (H, W))

  valid = np.array([True, True, True, False, True])
  for min_size in (0.0, 1.0):
    boxes, keep = A.apply_to_boxes(params, BOXES, valid=valid, min_size=min_size)
    want, want_keep = ref_boxes(params, BOXES, valid, min_size, points)
    np.testing.assert_allclose(boxes, want, atol=1e-4)
    np.testing.assert_array_equal(keep, want_keep)
  moved, visible = A.apply_to_keypoints(params, POINTS, visible=valid)
  x, y, _ = points(None, POINTS[:, 0].astype(np.float64), POINTS[:, 1].astype(np.float64))
  np.testing.assert_allclose(moved, np.stack([x, y], -1), atol=1e-4)
  np.testing.assert_array_equal(visible, valid & (x >= 0) & (x <= W) & (y >= 0) & (y <= H))
  np.testing.assert_array_equal(A.apply_to_mask(params, LABELS, fill=255),
                                ref_warped_mask(forward, LABELS, 255))


@pytest.mark.parametrize("name", sorted(AFFINE))
def test_an_affine_box_holds_the_warped_mask_of_its_pixels(name):
  # The warped mask of a whole-pixel box is the output pixels whose centre maps into the box:
  # centres inside the turned box, whose box is the box of its turned corners. So the box of
  # the warped mask lies inside the box of the turned corners grown by half a pixel (a pixel
  # reaches half a pixel past its centre; 1/100 more for the nearest rule's 1/1024-pixel
  # margin). A translation or a quarter turn moves pixels onto pixels: the two are equal. The
  # other inclusion does not hold: a turned corner is a wedge that may hold no pixel centre.
  params = affine_set(name)
  boxes = np.array([[1, 1, 4, 3], [3, 2, 10, 8], [0, 5, 11, 9], [6, 0, 8, 2], [5, 4, 6, 5]],
                   np.float32)
  got, keep = A.apply_to_boxes(params, boxes)
  exact = name.startswith("translate") or name == "rotate a quarter turn"
  for box, out, kept in zip(boxes.astype(int), np.asarray(got), np.asarray(keep), strict=True):
    mask = np.zeros((H, W), np.uint8)
    mask[box[1]:box[3], box[0]:box[2]] = 1
    rows, cols = np.nonzero(np.asarray(A.apply_to_mask(params, mask)) == 1)
    if not rows.size:
      continue
    from_mask = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    assert kept
    if exact:
      np.testing.assert_array_equal(from_mask, out)
    else:
      assert (from_mask[:2] >= out[:2] - 0.51).all(), (from_mask, out)
      assert (from_mask[2:] <= out[2:] + 0.51).all(), (from_mask, out)


def test_float_masks_are_warped_as_the_image():
  # A one-hot mask through a bilinear set: `jax.jit(apply)` bit for bit (fill 0), convex
  # blends of the classes inside the image, 0 where the warp has no sample.
  params = A.draw(A.affine)(IMAGE, angle=20.0, scale=0.9, interpolation="bilinear")
  one_hot = jax.nn.one_hot(LABELS % 3, 3)
  got = A.apply_to_mask(params, one_hot)
  np.testing.assert_array_equal(got, jax.jit(A.apply)(params, one_hot))
  total = np.asarray(got.sum(-1))
  assert np.isclose(total, 1.0, atol=1e-6).any()
  assert (total == 0).any()
  assert np.isclose(total, 1.0, atol=1e-6)[total > 0].all()


# --------------------------------------------------------------------------------------------
# Policies: their geometric slots in turn
# --------------------------------------------------------------------------------------------

# Each geometric slot's forward map at magnitude v (torchvision's `_apply_op`): the shears about
# the corner (0, 0), translations by v whole pixels, rotations counter-clockwise about the centre.
SLOT_MAPS = {
    "ShearX": lambda v: lambda x, y: (x - v * y, y),
    "ShearY": lambda v: lambda x, y: (x, y - v * x),
    "TranslateX": lambda v: lambda x, y: (x + v, y),
    "TranslateY": lambda v: lambda x, y: (x, y + v),
    "Rotate": lambda v: ref_affine(angle=-v),
}
# Boxes with positive sides (a box of zero width inside the canvas, cut by nothing, would keep
# its zero width between slots).
POLICY_BOXES = np.array([[0.0, 0.0, W, H], [2.5, 1.0, 7.0, 6.5], [6.0, 4.0, 10.5, 9.0],
                         [1.0, 7.0, 3.0, 8.0], [7.5, 0.5, 10.0, 3.0]], np.float32)


def ref_slots(params, valid, min_size=1.0):
  """One example's boxes, keypoints and uint8 label map (fill 255) through its geometric slots
  in turn, in float64: each slot boxes the mapped corners, cuts away a box that left the
  canvas and clamps the rest; a keypoint stays visible while inside every slot's canvas."""
  b = POLICY_BOXES.astype(np.float64)
  keep = valid.copy()
  x, y = POINTS[:, 0].astype(np.float64), POINTS[:, 1].astype(np.float64)
  visible, mask = valid.copy(), LABELS
  names = np.asarray(A.PolicyParams.OPS)[np.asarray(params.ops)]
  for name, value in zip(names, np.asarray(params.magnitudes, np.float64), strict=True):
    if name not in SLOT_MAPS:
      continue
    forward = SLOT_MAPS[name](value)
    xs, ys = forward(b[:, [0, 2, 0, 2]], b[:, [1, 1, 3, 3]])
    keep &= (xs.min(1) < W) & (xs.max(1) > 0) & (ys.min(1) < H) & (ys.max(1) > 0)
    b = np.stack([np.clip(xs.min(1), 0, W), np.clip(ys.min(1), 0, H),
                  np.clip(xs.max(1), 0, W), np.clip(ys.max(1), 0, H)], -1)
    x, y = forward(x, y)
    visible &= (x >= 0) & (x <= W) & (y >= 0) & (y <= H)
    mask = ref_warped_mask(forward, mask, 255)
  keep &= ((b[:, 2:] - b[:, :2]) >= min_size).all(1)
  return b, keep, np.stack([x, y], -1), visible, mask


@jax.jit
def policy_targets(params, valid, one_hot=None):
  n = valid.shape[0]
  boxes, points, masks = (jnp.broadcast_to(a, (n, *a.shape)) for a in (
      POLICY_BOXES, POINTS, LABELS))
  return (*jax.vmap(A.apply_to_boxes)(params, boxes, valid=valid),
          *jax.vmap(A.apply_to_keypoints)(params, points, visible=valid),
          jax.vmap(lambda p, m: A.apply_to_mask(p, m, fill=255))(params, masks),
          None if one_hot is None else jax.vmap(A.apply_to_mask, (0, None))(params, one_hot))


def test_policy_targets_are_its_geometric_slots_in_turn():
  # Hand-built sets of two slots: every geometric op, photometric slots before and after one,
  # a box pushed off the canvas and back (cut away: the image there is fill; a chain of
  # torchvision's ops keeps it), NaN magnitudes (the last). Under jit(vmap), against the
  # float64 slot maps in turn: boxes, keypoints, label maps; a one-hot mask warps as the
  # label map does; NaN magnitudes make every box invalid, every keypoint NaN and invisible,
  # the float mask NaN.
  names = [["Rotate", "Brightness"], ["ShearX", "ShearY"], ["Identity", "TranslateY"],
           ["TranslateX", "TranslateX"], ["Solarize", "Rotate"], ["ShearY", "TranslateX"]]
  values = [[17.0, 0.5], [0.21, -0.33], [0.0, -2.0], [9.0, -9.0], [0.4, -41.0], [np.nan] * 2]
  params = A.PolicyParams(ops=jnp.asarray(np.vectorize(A.PolicyParams.OPS.index)(names),
                                          jnp.int32),
                          magnitudes=jnp.asarray(values, jnp.float32), fill=jnp.zeros(6),
                          interpolation="nearest", image_size=(H, W))
  valid = RNG.random((6, len(POLICY_BOXES))) < 0.8
  valid[:, 1] = True
  *got, soft = policy_targets(params, valid, jax.nn.one_hot(LABELS, 200))
  assert not bool(got[1][3, 1])  # cut away
  for i in range(5):
    for g, want in zip(got, ref_slots(jax.tree.map(lambda leaf, i=i: leaf[i], params),
                                      valid[i]), strict=True):
      np.testing.assert_allclose(g[i], want, atol=1e-4)
    np.testing.assert_array_equal(soft[i], jax.nn.one_hot(got[4][i], 200))
  assert not np.asarray(got[1][5]).any()
  assert not np.asarray(got[3][5]).any()
  assert np.isnan(np.asarray(got[2][5])).all()
  assert np.isnan(np.asarray(soft[5])).all()


def test_drawn_policies_move_targets_eager_and_under_jit_and_vmap():
  # `batched(draw(trivial_augment_wide))`: a batch of sets, applied to a batch of boxes,
  # keypoints and masks under jit(vmap), against the float64 slot maps; one example eagerly.
  images = jnp.zeros((6, H, W, 3))
  params = jax.jit(A.batched(A.draw(A.trivial_augment_wide)))(jax.random.key(2), images)
  names = np.asarray(A.PolicyParams.OPS)[np.asarray(params.ops[:, 0])]
  assert np.isin(names, list(SLOT_MAPS)).sum() >= 3  # this key draws geometric ops
  valid = RNG.random((6, len(POLICY_BOXES))) < 0.8
  got = policy_targets(params, valid)[:5]
  for i in range(6):
    for g, want in zip(got, ref_slots(jax.tree.map(lambda leaf, i=i: leaf[i], params),
                                      valid[i]), strict=True):
      np.testing.assert_allclose(g[i], want, atol=1e-4, err_msg=names[i])
  first = jax.tree.map(lambda leaf: leaf[0], params)
  boxes, keep = A.apply_to_boxes(first, POLICY_BOXES, valid=valid[0])
  np.testing.assert_allclose(boxes, got[0][0], atol=1e-6)
  np.testing.assert_array_equal(keep, got[1][0])


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


def _tv_affine(tvf, name):
  """torchvision's call for each case of AFFINE (its AutoAugment's for the shears and
  translations: `_apply_op`), fill 255 for masks."""
  op, args, kwargs, _ = AFFINE[name]
  if op is A.rotate:
    return lambda t: tvf.rotate(t, args[0], center=list(kwargs.get("center", ())) or None,
                                fill=255)
  if op is A.affine:
    return lambda t: tvf.affine(t, angle=kwargs["angle"], translate=list(kwargs["translate"]),
                                scale=kwargs["scale"], shear=list(kwargs["shear"]), fill=255)
  v = args[0]
  shear = {A.shear_x: [math.degrees(math.atan(v)), 0.0],
           A.shear_y: [0.0, math.degrees(math.atan(v))]}.get(op, [0.0, 0.0])
  translate = {A.translate_x: [int(v), 0], A.translate_y: [0, int(v)]}.get(op, [0, 0])
  center = [0, 0] if op in (A.shear_x, A.shear_y) else None
  return lambda t: tvf.affine(t, angle=0.0, translate=translate, scale=1.0, shear=shear,
                              center=center, fill=255)


@pytest.mark.parametrize("name", sorted(AFFINE))
def test_affine_ops_agree_with_torchvision(name):
  # tvf.affine and tvf.rotate with the same parameters: boxes and keypoints (continuous
  # coordinates in both, unlike torchvision's keypoint flips) to 1e-4 pixels, validity as
  # sanitize_bounding_boxes decides it, masks equal (these parameters put no sample point on
  # a pixel boundary: see the next test).
  torch, tv_tensors, tvf = _tv()
  out = [_tv_affine(tvf, name)(t) if t is not None else None
         for t in _tv_targets(tv_tensors, torch, (H, W))]
  _compare(affine_set(name), *out, fill=255)


def test_masks_at_sample_ties_differ_from_torchvision():
  # Half a pixel to the right: every output pixel centre samples a boundary between two
  # input pixels. jaxreg's nearest takes the pixel to the right, so the label map comes back
  # unchanged; torchvision's tensor kernel (grid_sample) rounds half to even, so it doubles
  # every even column and drops the odd ones.
  torch, tv_tensors, tvf = _tv()
  params = A.draw(A.affine)(IMAGE, translate=(0.5, 0.0))
  np.testing.assert_array_equal(A.apply_to_mask(params, LABELS, fill=255), LABELS)
  theirs = tvf.affine(tv_tensors.Mask(torch.from_numpy(LABELS)), angle=0.0,
                      translate=[0.5, 0.0], scale=1.0, shear=[0.0, 0.0], fill=255).numpy()
  np.testing.assert_array_equal(theirs, LABELS[:, np.arange(W) // 2 * 2])


def test_policy_slots_agree_with_torchvision():
  # torchvision.transforms.v2's policies refuse boxes, masks and keypoints (TypeError); its
  # own op for each slot (`_apply_op`: tvf.affine, tvf.rotate), chained on tv_tensors, moves
  # them as PolicyParams does: a drawn TrivialAugmentWide batch and two-slot sets.
  torch, tv_tensors, tvf = _tv()
  from torchvision.transforms import v2

  with pytest.raises(TypeError, match="BoundingBoxes"):
    v2.TrivialAugmentWide()(torch.zeros(3, H, W, dtype=torch.uint8),
                            _tv_targets(tv_tensors, torch, (H, W))[1])
  drawn = jax.jit(A.batched(A.draw(A.trivial_augment_wide)))(jax.random.key(3),
                                                              jnp.zeros((6, H, W, 3)))
  names = [["ShearX", "ShearY"], ["Solarize", "Rotate"], ["Rotate", "TranslateY"]]
  values = [[0.21, -0.33], [0.4, -41.0], [17.0, 3.0]]
  sets = [jax.tree.map(lambda leaf, i=i: leaf[i], drawn) for i in range(6)]
  sets += [A.PolicyParams(ops=jnp.asarray([A.PolicyParams.OPS.index(n) for n in row]),
                          magnitudes=jnp.asarray(v, jnp.float32), fill=jnp.zeros(()),
                          interpolation="nearest", image_size=(H, W))
           for row, v in zip(names, values, strict=True)]
  boxes = BOXES[:4]  # positive sides: torchvision keeps a zero-width box's clamped edge
  for params in sets:
    mask, tv_boxes, points = (tv_tensors.Mask(torch.from_numpy(LABELS)),
                              tv_tensors.BoundingBoxes(torch.from_numpy(boxes), format="XYXY",
                                                       canvas_size=(H, W)),
                              _tv_targets(tv_tensors, torch, (H, W))[2])
    for op, v in zip(np.asarray(A.PolicyParams.OPS)[np.asarray(params.ops)],
                     np.asarray(params.magnitudes).tolist(), strict=True):
      step = {"ShearX": lambda t, v=v: tvf.affine(t, angle=0.0, translate=[0, 0], scale=1.0,
                                                  shear=[math.degrees(math.atan(v)), 0.0],
                                                  center=[0, 0], fill=255),
              "ShearY": lambda t, v=v: tvf.affine(t, angle=0.0, translate=[0, 0], scale=1.0,
                                                  shear=[0.0, math.degrees(math.atan(v))],
                                                  center=[0, 0], fill=255),
              "TranslateX": lambda t, v=v: tvf.affine(t, angle=0.0, translate=[int(v), 0],
                                                      scale=1.0, shear=[0.0, 0.0], fill=255),
              "TranslateY": lambda t, v=v: tvf.affine(t, angle=0.0, translate=[0, int(v)],
                                                      scale=1.0, shear=[0.0, 0.0], fill=255),
              "Rotate": lambda t, v=v: tvf.rotate(t, v, fill=255)}.get(op)
      if step is not None:
        mask, tv_boxes = step(mask), step(tv_boxes)
        points = step(points) if points is not None else None
    np.testing.assert_array_equal(A.apply_to_mask(params, LABELS, fill=255), mask.numpy())
    got, valid = A.apply_to_boxes(params, boxes)
    np.testing.assert_allclose(got, tv_boxes.numpy(), atol=1e-4)
    np.testing.assert_array_equal(valid, tvf.sanitize_bounding_boxes(tv_boxes)[1].numpy())
    if points is not None:
      np.testing.assert_allclose(A.apply_to_keypoints(params, POINTS)[0], points.numpy(),
                                 atol=1e-4)


# --------------------------------------------------------------------------------------------
# Chains: a tuple of sets, applied in turn
# --------------------------------------------------------------------------------------------


def chain_sets(n):
  """``n`` examples' chain through every geometric class, a colour set and erasing, each built
  for the output of the one before: a reflect-padded crop 9x11 -> 7x8, an up-down flip, a
  two-slot policy, a rotation, a resized crop to 13x16 (boxes inside and across the border),
  a left-right flip, erasing. Built by hand, as `batched(draw(...))` returns them."""
  rng = np.random.default_rng(4)
  flags = lambda: jnp.asarray(rng.random(n) < 0.6)  # noqa: E731
  slots = [["Rotate"], ["TranslateY"], ["ShearX"], ["Solarize"]]
  return (
      A.CropParams(top=jnp.asarray(rng.integers(0, 4, n)), left=jnp.asarray(rng.integers(0, 7, n)),
                   size=(7, 8), padding=(1, 3), pad_mode="reflect", image_size=(H, W)),
      A.FlipParams(flip=flags(), probability=jnp.full(n, 0.5), axis=0, image_size=(7, 8)),
      A.PolicyParams(ops=jnp.asarray([[A.PolicyParams.OPS.index(o) for o in row]
                                      for row in slots[:n]]),
                     magnitudes=jnp.asarray([[30.0], [2.0], [-0.3], [0.5]][:n], jnp.float32),
                     fill=jnp.zeros(n), interpolation="nearest", image_size=(7, 8)),
      A.ColorParams(magnitude=jnp.full(n, 0.1), op="brightness"),
      A.AffineParams(matrix=jnp.asarray(rng.normal(0, 0.3, (n, 2, 3)) + np.array(
          [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), jnp.float32), fill=jnp.zeros(n),
                     interpolation="nearest", image_size=(7, 8)),
      A.ResizedCropParams(top=jnp.asarray(rng.uniform(-1, 3, n), jnp.float32),
                          left=jnp.asarray(rng.uniform(0, 3, n), jnp.float32),
                          height=jnp.asarray(rng.uniform(3, 7, n), jnp.float32),
                          width=jnp.asarray(rng.uniform(3, 6, n), jnp.float32),
                          size=(13, 16), image_size=(7, 8)),
      A.FlipParams(flip=flags(), probability=jnp.full(n, 0.5), axis=1, image_size=(13, 16)),
      A.ErasingParams(top=jnp.full(n, 2.0), left=jnp.full(n, 5.0), height=jnp.full(n, 6.0),
                      width=jnp.full(n, 4.0), erase=flags(), probability=jnp.full(n, 0.5),
                      value=jnp.zeros(n), image_size=(13, 16)))


@jax.jit
def chain_targets(sets, masks, boxes, valid, points):
  """The targets through the chain, and through its sets one call at a time, per example."""
  def one(sets, mask, boxes, valid, points):
    # Boxes and keypoints go through each set's own map in turn whatever the chain (compiling
    # those maps is what costs here): the last three sets.
    tail = sets[5:]
    chain = (A.apply_to_mask(sets, mask, fill=255, erased=254),
             A.apply_to_boxes(tail, boxes, valid=valid, hide_erased=True),
             A.apply_to_keypoints(tail, points, visible=valid, hide_erased=True))
    for params in sets:
      mask = A.apply_to_mask(params, mask, fill=255, erased=254)
    visible = valid
    for params in tail:
      boxes, valid = A.apply_to_boxes(params, boxes, valid=valid, hide_erased=True)
      points, visible = A.apply_to_keypoints(params, points, visible=visible, hide_erased=True)
    return chain, (mask, (boxes, valid), (points, visible))
  return jax.vmap(one)(sets, masks, boxes, valid, points)


def test_a_chain_moves_targets_as_its_sets_in_turn():
  # The chain's label map is one gather through its sets' composed index maps; bit for bit
  # the sets applied one call at a time, as are boxes and keypoints (under jit(vmap), four
  # examples).
  n = 4
  sets = chain_sets(n)
  masks = np.stack([LABELS, LABELS[::-1], LABELS[:, ::-1], 255 - LABELS])
  valid = RNG.random((n, len(BOXES))) < 0.8
  boxes, points = (np.broadcast_to(a, (n, *a.shape)) for a in (BOXES, POINTS))
  chain, stepwise = chain_targets(sets, masks, boxes, valid, points)
  for got, want in zip(jax.tree.leaves(chain), jax.tree.leaves(stepwise), strict=True):
    np.testing.assert_array_equal(got, want)
  assert chain[0].shape == (n, 13, 16)
  assert (np.asarray(chain[0]) == 254).any()  # erased
  assert 0 < (np.asarray(chain[0]) == 255).sum() < chain[0].size  # filled by the warps
  # A uint8 image through the chain's crop, resized crop and left-right flip: `apply` in
  # turn, the last two as one resampling, bit for bit.
  image = jnp.asarray(RNG.integers(0, 256, (H, W, 3)), jnp.uint8)
  crop = dataclasses.replace(sets[0], pad_mode="constant")
  some = tuple(jax.tree.map(lambda leaf: leaf[1], params) for params in (crop, *sets[5:7]))

  @jax.jit
  def stepped(sets, image):
    for params in sets:
      image = A.apply(params, image)
    return image

  np.testing.assert_array_equal(jax.jit(A.apply)(some, image), stepped(some, image))


def chain_errors(params) -> dict[str, tuple[type, str]]:
  """The error each function taking a chain raises for ``params``: its type, and its message
  with the function's own name cut from the front."""
  pred = jnp.zeros((5, 7, 2))
  calls = {
      A.apply: lambda: A.apply(params, IMAGE),
      A.apply_to_mask: lambda: A.apply_to_mask(params, LABELS),
      A.apply_to_boxes: lambda: A.apply_to_boxes(params, BOXES),
      A.apply_to_keypoints: lambda: A.apply_to_keypoints(params, POINTS),
      A.invert_prediction: lambda: A.invert_prediction(params, pred),
  }
  errors = {}
  for fn, call in calls.items():
    with pytest.raises((TypeError, ValueError)) as info:
      call()
    message = str(info.value)
    assert message.startswith(f"{fn.__name__}: "), message
    errors[fn.__name__] = (info.type, message[len(fn.__name__) + 2:])
  return errors


def test_every_function_taking_a_chain_checks_it_in_the_same_words():
  # An empty chain, a set drawn for the input where the sets before it output a 5x7 crop, and
  # a mix in a chain: one error and one message (but for the sets each function accepts). The
  # errors come before any compilation: the fused resized crop and flip checks the flip first.
  resized = A.ResizedCropParams(top=jnp.array(1.0), left=jnp.array(2.0), height=jnp.array(5.0),
                                width=jnp.array(7.0), size=(5, 7), image_size=(H, W))
  flip = A.FlipParams(flip=jnp.array(True), probability=jnp.array(0.5), image_size=(H, W))
  mix = A.MixupParams(perm=jnp.array([1, 0]), lam=jnp.array([0.3, 0.6]))
  empty, link, mixed = chain_errors(()), chain_errors((resized, flip)), chain_errors([flip, mix])
  assert set(empty.values()) == {(ValueError, "`params` is an empty chain, got (); give one set, "
                                             "or a tuple of sets applied in turn.")}
  assert len(set(link.values())) == 1
  error, message = link["apply"]
  assert error is ValueError
  assert message.startswith(f"`params`[1] (FlipParams) was drawn for a {H}x{W} image "
                            f"(`image_size`=({H}, {W})), but the sets before it output 5x7;")
  # The sets each function chains, listed in its message: those that take one image (all but
  # the mixes) for `apply` and the targets; the ones with one point map for the inversion.
  named = {}
  for fn, (error, message) in mixed.items():
    assert error is TypeError
    assert "`params` as a chain holds " in message
    assert "got a MixupParams at index 1" in message
    named[fn] = set(message[message.index("(") + 1:message.index(")")].split(", "))
  per_image = {n for n in dir(A) if n.endswith("Params")} - {"MixupParams", "CutmixParams"}
  assert named == {**dict.fromkeys(list(mixed)[:4], per_image), "invert_prediction": {
      "AffineParams", "CropParams", "FlipParams", "ResizedCropParams"}}
  assert len({message for fn, (_, message) in mixed.items() if fn != "invert_prediction"}) == 1
