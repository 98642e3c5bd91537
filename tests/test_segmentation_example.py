"""The segmentation study (examples/segmentation_study.py): a tiny run and its results file, the
seeds of one vmapped step against separate runs, masks that follow their images, and its IoU
against a confusion matrix."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys

pytestmark = pytest.mark.standard_promotion  # example code, written for JAX's default rules

# Tiny: 2 seeds x 20 steps of a 4-channel network on 8 scenes of 16x16 (--quick); one test-time
# scale, so the flip + scale path is the flip path. One run serves every test of the file.
ARGS = ["--quick", "--scales", "1.0"]


@pytest.fixture(scope="module")
def seg():
  from examples import segmentation_study

  return segmentation_study


@pytest.fixture(scope="module")
def quick_run(seg, tmp_path_factory):
  """The run's directory, its summary, and what it drew: save_figure's arguments."""
  out, drawn = tmp_path_factory.mktemp("segmentation"), {}

  def save_figure(*args, **kwargs):
    drawn.update(zip(("rows", "outputs", "x_test", "y_test", "path"), args, strict=True))
    return figure(*args, **kwargs)

  figure = seg.save_figure
  with pytest.MonkeyPatch.context() as patch, reuse_keys():  # same seed keys in both configs
    patch.setattr(seg, "save_figure", save_figure)
    summary = seg.main([*ARGS, "--out", str(out)])
  return out, summary, drawn


def test_quick_run_writes_a_row_per_configuration(seg, quick_run):
  out, summary, _ = quick_run
  saved = json.loads((out / "results.json").read_text())
  assert saved["rows"] == json.loads(json.dumps(summary["rows"]))
  assert [(r["key"], r["augment"]) for r in saved["rows"]] == [("baseline", False),
                                                               ("augment", True)]
  for r in saved["rows"]:
    assert sorted(r["test"]) == ["flip", "flip_scale", "plain"]
    for path, m in r["test"].items():
      per_class = np.array([m["iou"][c]["seeds"] for c in seg.CLASSES], float)  # (classes, seeds)
      miou = np.asarray(m["miou"]["seeds"])
      assert miou.shape == (2,)  # one per seed
      assert np.all((miou >= 0) & (miou <= 1)), (path, miou)
      np.testing.assert_allclose(miou, np.nanmean(per_class, axis=0))
      assert m["miou"]["mean"] == pytest.approx(miou.mean())
      assert m["miou"]["std"] == pytest.approx(miou.std(ddof=1))
    plain = np.asarray(r["test"]["plain"]["miou"]["seeds"])
    for path in ("flip", "flip_scale"):
      np.testing.assert_allclose(r["tta_gain"][path]["seeds"],
                                 np.asarray(r["test"][path]["miou"]["seeds"]) - plain)
    np.testing.assert_allclose(r["gap"]["seeds"], np.asarray(r["train_miou"]["seeds"]) - plain)
  assert saved["command"] == f"python examples/segmentation_study.py {' '.join(ARGS)} --out {out}"
  assert {"date", "machine", "device", "versions", "wall_seconds"} <= set(saved)
  assert saved["args"]["scale_factors"] == [1.0]
  for r in saved["rows"]:  # one scale: the same views, the same labels
    assert r["test"]["flip_scale"] == r["test"]["flip"]
  assert (out / "results.png").stat().st_size > 10_000


def test_figure_shows_the_labels_the_table_scores(seg, quick_run):
  """The labels drawn for each configuration and path are of the test scenes, and their IoU is
  the table's, computed here from a confusion matrix."""
  _, summary, drawn = quick_run
  y_test = np.asarray(drawn["y_test"])
  for row in summary["rows"]:
    labels = drawn["outputs"][row["key"]]
    for path in ("plain", "flip", "flip_scale"):
      assert labels[path].shape == (2, *y_test.shape)  # (seeds, scenes, H, W)
      want = [np.nanmean(confusion_iou(labels[path][s], y_test, len(seg.CLASSES)))
              for s in range(2)]
      np.testing.assert_allclose(row["test"][path]["miou"]["seeds"], want)
    assert labels["spread"].shape == (2, *y_test.shape)
    assert np.all(labels["spread"] >= 0)


def confusion_iou(pred, truth, classes: int) -> np.ndarray:
  """Per-class IoU, TP / (TP + FP + FN), from a float64 confusion matrix; NaN for a class
  neither has."""
  confusion = np.bincount(classes * truth.ravel().astype(int) + pred.ravel(),
                          minlength=classes**2).reshape(classes, classes).astype(np.float64)
  tp = np.diag(confusion)
  with np.errstate(invalid="ignore"):
    return tp / (confusion.sum(0) + confusion.sum(1) - tp)


def test_seeds_in_one_vmapped_step_equal_separate_runs(seg, quick_run):
  """Each seed's step is a function of its own key only: run with another seed beside it, it
  gives what it gives beside a copy of itself. The programs are the quick run's (the same data
  and sizes: JAX's compilation cache has them)."""
  x_train, y_train = seg.make_scenes(8, 16, 0)
  init, step = seg.build(x_train, y_train, width=4, lr=1e-2, batch_size=8, steps=20)
  keys = jax.random.split(jax.random.key(0), 2)
  augment = jnp.asarray(True)  # the minibatch, the augmentation and the update: every part
  with reuse_keys():  # the same seed keys drive both runs, on purpose
    params, opt = init(keys)
    params, opt, loss = step(params, opt, keys, 0, augment)
    for i in range(2):
      alone = jnp.stack([keys[i], keys[i]])
      p1, o1 = init(alone)
      p1, o1, loss1 = step(p1, o1, alone, 0, augment)
      np.testing.assert_allclose(loss1, loss[i], rtol=1e-5)
      for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a[0], b[i], rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(a[1], b[i], rtol=2e-4, atol=2e-5)
  assert not np.allclose(params["head"][0], params["head"][1])  # two seeds, two models


def test_masks_follow_their_images(seg):
  """An image whose channels are its labels, one-hot, augmented as the training step does:
  wherever the augmented image is one class, the augmented mask is that class; where it blends
  classes, the mask's class is one of them; where the rotation uncovered it, the mask is the
  ignore index and the image the fill."""
  labels = jnp.asarray(seg.make_scenes(4, 16, 0)[1])
  images = jax.nn.one_hot(labels, len(seg.CLASSES))  # (4, 16, 16, classes) float32
  out, masks = jax.jit(seg.augment_batch)(jax.random.key(3), images, labels)
  out, masks = np.asarray(out), np.asarray(masks)
  assert masks.dtype == np.uint8
  assert masks.shape == labels.shape
  assert not np.array_equal(masks, labels)  # the geometry moved something
  ignored = masks == seg.IGNORE
  assert 0 < ignored.sum() < ignored.size / 4  # corners uncovered by the rotations
  np.testing.assert_array_equal(out[ignored], 0.5)  # the image's fill
  np.testing.assert_allclose(out[~ignored].sum(-1), 1.0, atol=1e-5)  # blends of one-hots
  label_weight = np.take_along_axis(out, np.where(ignored, 0, masks)[..., None], -1)[..., 0]
  assert np.all(label_weight[~ignored] > 0)  # the mask's class is in the blend
  pure = ~ignored & (out.max(-1) > 1 - 1e-4)
  assert pure.mean() > 0.5  # most pixels are one class: the comparison below has weight
  np.testing.assert_array_equal(out.argmax(-1)[pure], masks[pure])


def test_iou_equals_a_confusion_matrix_in_float64(seg):
  rng = np.random.default_rng(0)
  truth = rng.integers(0, 3, (3, 5, 6))  # class 3 absent from the truth ...
  pred = np.stack([np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 4, truth.shape))
                   for _ in range(2)])  # ... and predicted by seed 0 only
  pred[1][pred[1] == 3] = 0
  got = seg.iou(pred, truth)
  for s in range(2):
    np.testing.assert_allclose(got[s], confusion_iou(pred[s], truth, 4))
  assert got[0, 3] == 0
  assert np.isnan(got[1, 3])
