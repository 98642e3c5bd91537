"""Dense targets through the sets that move no pixel geometry: mixes, erasing, colour sets.

References: NumPy slices for cutmix's paste and float64 blends for mixup's soft masks, the
image itself (an image whose pixels are the mask's labels is pasted, blended or erased where
the mask is), float64 rectangle tests for erased boxes and keypoints, and, where it is
installed, torchvision.transforms.v2 (its `CutMix` and `MixUp` refuse masks, boxes and
keypoints; its `RandomErasing` passes them through).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr

A = jr.augment
N, H, W = 3, 8, 10
RNG = np.random.default_rng(0)
MASKS = RNG.integers(0, 200, (N, H, W)).astype(np.uint8)  # a batch of label maps
LABELS = np.eye(2, dtype=np.float32)[np.arange(N) % 2]
# Every pixel as a box and its centre as a keypoint, beside a few boxes across the image.
COLS, ROWS = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
PIXEL_BOXES = np.stack([COLS, ROWS, COLS + 1, ROWS + 1], -1).reshape(-1, 4)
CENTRES = PIXEL_BOXES[:, :2] + 0.5


def one_hot(labels, classes):
  return np.eye(classes, dtype=np.float32)[labels % classes]


# Two batches' sets, stacked for `vmap` over batches (a set per batch), as `draw` builds them:
# a box inside, an empty one and a strip across the image; then a corner, the whole image and
# a column. Hand-built, so the cases are known (tests/test_params.py checks the drawn ones).
CUTMIX = A.CutmixParams(
    perm=jnp.array([[2, 0, 1], [1, 2, 0]]), top=jnp.array([[2.0, 4.0, 0.0], [0.0, 0.0, 3.0]]),
    bottom=jnp.array([[6.0, 4.0, 8.0], [3.0, 8.0, 8.0]]),
    left=jnp.array([[3.0, 1.0, 4.0], [7.0, 0.0, 9.0]]),
    right=jnp.array([[9.0, 7.0, 6.0], [10.0, 10.0, 10.0]]), image_size=(H, W))
MIXUP = A.MixupParams(perm=jnp.array([[2, 0, 1], [1, 2, 0]]),
                      lam=jnp.array([[0.3, 0.75, 1.0], [0.0, 0.5, 0.9]]))


def first(sets):
  return jax.tree.map(lambda leaf: leaf[0], sets)


def ref_paste(params, masks):
  """Each example's mask with its partner's rows top:bottom and columns left:right."""
  out = np.array(masks)
  for i, j in enumerate(np.asarray(params.perm)):
    t, b, lo, hi = (int(getattr(params, name)[i]) for name in ("top", "bottom", "left",
                                                                "right"))
    out[i, t:b, lo:hi] = masks[j, t:b, lo:hi]
  return out


def test_cutmix_pastes_each_mask_where_its_image_is_pasted():
  sets = CUTMIX
  params = first(sets)
  got = A.apply_to_mask(params, MASKS)
  assert got.dtype == MASKS.dtype
  np.testing.assert_array_equal(got, ref_paste(params, MASKS))
  # Not a trivial paste: some pixels come from a partner with other labels, some stay.
  changed = np.asarray(got) != MASKS
  assert 0 < changed.sum() < changed.size
  # An image whose pixels are the labels: its paste is the mask's, pixel for pixel.
  as_image = jax.jit(A.apply)(params, MASKS[..., None].astype(np.float32), LABELS)[0][..., 0]
  np.testing.assert_array_equal(got, as_image)
  # A class axis: an int32 two-channel map, and a one-hot float mask, pasted as the labels.
  two = np.stack([MASKS, 1000 - MASKS.astype(np.int32)], -1)
  np.testing.assert_array_equal(A.apply_to_mask(params, two), ref_paste(params, two))
  np.testing.assert_array_equal(A.apply_to_mask(params, one_hot(MASKS, 5)),
                                one_hot(np.asarray(got), 5))
  # A set per batch under jit(vmap): each batch with its own partners and boxes.
  batches = np.stack([MASKS, MASKS[::-1]])
  out = jax.jit(jax.vmap(A.apply_to_mask))(sets, batches)
  for b in range(2):
    np.testing.assert_array_equal(out[b], ref_paste(jax.tree.map(lambda v, b=b: v[b], sets),
                                                    batches[b]))


def test_mixup_blends_soft_masks_as_its_images_and_labels():
  sets = MIXUP
  params = first(sets)
  soft = one_hot(MASKS, 3)  # (N, H, W, 3): also a 3-channel image
  got = A.apply_to_mask(params, soft)
  lam, perm = np.asarray(params.lam, np.float64)[:, None, None, None], np.asarray(params.perm)
  m = np.asarray(soft, np.float64)
  np.testing.assert_allclose(got, lam * m + (1 - lam) * m[perm], rtol=1e-6, atol=1e-7)
  assert float(jnp.abs(got - soft).max()) > 0  # blended, not the input
  np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-6)  # soft labels, per pixel
  # Blended as the image: the compiled application, bit for bit.
  np.testing.assert_array_equal(got, jax.jit(A.apply)(params, soft, LABELS)[0])
  batches = np.stack([soft, soft[::-1]])
  out = jax.jit(jax.vmap(A.apply_to_mask))(sets, batches)
  for b in range(2):
    lam = np.asarray(sets.lam[b], np.float64)[:, None, None, None]
    m = np.asarray(batches[b], np.float64)
    np.testing.assert_allclose(out[b], lam * m + (1 - lam) * m[np.asarray(sets.perm[b])],
                               rtol=1e-6, atol=1e-7)


# Six examples' erasing sets, four erasing (one box at the right edge, one a single column):
# what `batched(draw(random_erasing))` returns for six images, built by hand.
ERASING = A.ErasingParams(
    top=jnp.array([1.0, 0.0, 3.0, 2.0, 5.0, 0.0]),
    left=jnp.array([2.0, 0.0, 7.0, 4.0, 1.0, 9.0]),
    height=jnp.array([3.0, 2.0, 5.0, 4.0, 3.0, 7.0]),
    width=jnp.array([4.0, 2.0, 3.0, 1.0, 5.0, 1.0]),
    erase=jnp.array([True, False, True, True, False, True]), probability=jnp.full(6, 0.5),
    value=jnp.zeros(6), image_size=(H, W))


@jax.jit
def erasing_targets(params, masks, boxes, points):
  """Each target with the defaults and as asked, per example (jit of vmap)."""
  def one(p, mask, box, point):
    return (A.apply_to_mask(p, mask), A.apply_to_mask(p, mask, erased=255),
            A.apply_to_mask(p, jax.nn.one_hot(mask % 3, 3), erased=0.0),
            A.apply_to_boxes(p, box), A.apply_to_boxes(p, box, hide_erased=True),
            A.apply_to_keypoints(p, point), A.apply_to_keypoints(p, point, hide_erased=True),
            A.apply(p, jnp.ones((H, W, 3))))
  return jax.vmap(one)(params, masks, boxes, points)


def test_erasing_leaves_targets_alone_unless_asked():
  sets = ERASING
  assert 0 < int(sets.erase.sum()) < 6
  masks = np.concatenate([MASKS, MASKS])
  # Each pixel's box, the erased rectangle (hidden when erased) and the rectangle grown by a
  # pixel (never hidden); keypoints at the pixel centres and the two rectangles' corners.
  boxes, points = [], []
  for i in range(6):
    top, left, h, w = (float(getattr(sets, name)[i]) for name in ("top", "left", "height",
                                                                   "width"))
    rects = np.array([[left, top, left + w, top + h],
                      [left - 1, top - 1, left + w + 1, top + h + 1]], np.float32)
    boxes.append(np.concatenate([PIXEL_BOXES, rects]))
    points.append(np.concatenate([CENTRES, rects[:, :2], rects[:, 2:]]))
  boxes, points = np.stack(boxes), np.stack(points)
  plain, marked, soft, (b0, v0), (b1, v1), (k0, s0), (k1, s1), image = erasing_targets(
      sets, masks, boxes, points)
  for i in range(6):
    erased = np.asarray(image[i, ..., 0]) == 0  # where the image was erased
    assert erased.any() == bool(sets.erase[i])
    # Defaults: every target as it was.
    np.testing.assert_array_equal(plain[i], masks[i])
    np.testing.assert_array_equal(b0[i], boxes[i])
    np.testing.assert_array_equal(k0[i], points[i])
    assert bool(v0[i].all())
    assert bool(s0[i].all())
    # Asked: the mask marked exactly where the image is erased; a float mask has no class there.
    np.testing.assert_array_equal(marked[i], np.where(erased, 255, masks[i]))
    np.testing.assert_array_equal(np.asarray(soft[i]).sum(-1), ~erased)
    # A pixel's box, and its centre, hidden exactly where that pixel is erased; coordinates kept.
    np.testing.assert_array_equal(v1[i][:H * W], ~erased.reshape(-1))
    np.testing.assert_array_equal(s1[i][:H * W], ~erased.reshape(-1))
    np.testing.assert_array_equal(b1[i], boxes[i])
    np.testing.assert_array_equal(k1[i], points[i])
    # The rectangle is hidden, the grown one is not; of the corners, the rectangle's top-left
    # is on an erased pixel, its bottom-right past the last one (the pixels are half-open).
    e = bool(sets.erase[i])
    np.testing.assert_array_equal(v1[i][-2:], [not e, True])
    np.testing.assert_array_equal(s1[i][-4:], [not e, True, True, True])
  # Eagerly, one example as the batch's.
  i = int(np.argmax(np.asarray(sets.erase)))
  one = jax.tree.map(lambda v: v[i], sets)
  np.testing.assert_array_equal(A.apply_to_mask(one, masks[i], erased=255), marked[i])
  np.testing.assert_array_equal(A.apply_to_keypoints(one, points[i], hide_erased=True)[1], s1[i])


def test_colour_sets_leave_targets_alone():
  # Hand-built sets of each colour class (no image size: any target), eager and a batch of
  # colour-jitter sets under jit(vmap); `erased` and `hide_erased` change nothing.
  mask, soft, boxes, points = MASKS[0], one_hot(MASKS[0], 3), PIXEL_BOXES[:5], CENTRES[:5]
  valid = np.arange(5) % 2 == 0
  jitter = A.ColorJitterParams(order=jnp.array([1, 0]), brightness=jnp.array(0.1),
                               contrast=jnp.array(1.2), saturation=jnp.array(1.0),
                               hue=jnp.array(0.0), used=("brightness", "contrast"))
  sets = [A.ColorParams(magnitude=jnp.array(0.1), op="brightness"),
          A.GrayscaleParams(convert=jnp.array(True), probability=jnp.array(0.5)), jitter]
  for params in sets:
    for target in (mask, soft):
      np.testing.assert_array_equal(A.apply_to_mask(params, target, erased=1), target)
    got, flags = A.apply_to_boxes(params, boxes, valid=valid, hide_erased=True)
    np.testing.assert_array_equal(got, boxes)
    np.testing.assert_array_equal(flags, valid)
    got, flags = A.apply_to_keypoints(params, points, visible=valid)
    np.testing.assert_array_equal(got, points)
    np.testing.assert_array_equal(flags, valid)
  batch = jax.tree.map(lambda v: jnp.stack([v, v]), jitter)
  out = jax.jit(jax.vmap(lambda p, m, b: (A.apply_to_mask(p, m), A.apply_to_boxes(p, b))))(
      batch, MASKS[:2], np.stack([boxes, boxes]))
  np.testing.assert_array_equal(out[0], MASKS[:2])
  np.testing.assert_array_equal(out[1][0], np.stack([boxes, boxes]))
  # A set that erases nothing ignores `erased` (a window, here).
  window = A.CropParams(top=jnp.array(1), left=jnp.array(2), size=(4, 5))
  np.testing.assert_array_equal(A.apply_to_mask(window, mask, erased=7), mask[1:5, 2:7])


def test_torchvision_mixes_refuse_targets_and_its_erasing_passes_them_through():
  # What jaxreg matches: v2's CutMix and MixUp raise for masks, boxes and keypoints (jaxreg
  # pastes and blends masks, and raises for boxes and keypoints); v2's RandomErasing returns
  # them as they were, with a warning (jaxreg's default).
  torch = pytest.importorskip("torch")
  pytest.importorskip("torchvision")
  from torchvision import tv_tensors
  from torchvision.transforms import v2

  images, labels = torch.zeros(N, 3, H, W), torch.tensor([0, 1, 0])
  targets = [tv_tensors.Mask(torch.from_numpy(MASKS)),
             tv_tensors.BoundingBoxes(torch.from_numpy(PIXEL_BOXES[:4]), format="XYXY",
                                      canvas_size=(H, W))]
  if hasattr(tv_tensors, "KeyPoints"):
    targets.append(tv_tensors.KeyPoints(torch.from_numpy(CENTRES[:4]), canvas_size=(H, W)))
  for mix in (v2.CutMix(num_classes=2), v2.MixUp(num_classes=2)):
    for target in targets:
      with pytest.raises(ValueError, match="does not support"):
        mix(images, labels, target)
  erase = v2.RandomErasing(p=1.0)
  for target in targets:
    with pytest.warns(UserWarning, match="passing through"):
      _, out = erase(images[0], target)
    assert torch.equal(out, target)
  with pytest.raises(TypeError, match="CutMix"):
    A.apply_to_boxes(first(CUTMIX), PIXEL_BOXES[:4])
  with pytest.raises(TypeError, match="MixUp"):
    A.apply_to_keypoints(first(MIXUP), CENTRES[:4])
