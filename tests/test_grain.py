"""grain feeding on-device augmentation (examples/grain_pipeline.py): a record's augmentation
depends on its key alone, not on the batch size, the workers, prefetching or a restart."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys

pytest.importorskip("grain")

import jaxreg as jr
from examples import grain_pipeline as gp
from examples import timm_recipe

pytestmark = pytest.mark.standard_promotion  # example code, written for JAX's default rules

COUNT, SIDE, SIZE = 24, 32, 24


@pytest.fixture(scope="module")
def source():
  return gp.JpegScenes.make(COUNT, SIDE, seed=1)


@pytest.fixture(scope="module")
def per_record():
  return gp.make_augment(size=SIZE, mix=False)


def augmented_records(source, augment, **options) -> dict[int, np.ndarray]:
  """{stream index: augmented uint8 image} over two epochs of the pipeline with ``options``."""
  out = {}
  iterator = iter(gp.dataset(source, epochs=2, seed=3, **options))
  try:
    for batch in iterator:
      with reuse_keys():  # the run's base key, every step
        images = np.asarray(augment(jax.random.key(7), gp.device_batch(batch)))
      out.update(zip(batch["index"].tolist(), images, strict=True))
      del batch
  finally:
    del iterator
  return out


def test_a_records_augmentation_ignores_batch_size_workers_and_prefetch(source, per_record):
  inline = augmented_records(source, per_record, batch_size=4, workers=0, prefetch=1)
  workers = augmented_records(source, per_record, batch_size=6, workers=2, prefetch=3)
  assert sorted(inline) == sorted(workers) == list(range(2 * COUNT))
  for index in inline:
    np.testing.assert_array_equal(inline[index], workers[index], err_msg=f"record {index}")
  # Not vacuous: records differ, and a record's two epochs (two indices) differ.
  assert not np.array_equal(inline[0], inline[1])
  assert not np.array_equal(inline[0], inline[COUNT])


def test_c_pipeline_equals_the_recipe_called_directly(source, per_record):
  iterator = iter(gp.dataset(source, batch_size=4, workers=0, seed=3))
  try:
    batches = [next(iterator) for _ in range(2)]
  finally:
    del iterator
  recipe = jax.jit(jr.augment.batched(timm_recipe.per_image(size=SIZE)))
  for batch in batches:
    # The same images, decoded without grain, and the same keys, derived without the example.
    records = batch["record"].tolist()
    images = jnp.stack([gp.decode(0, source[r])["image"] for r in records])
    np.testing.assert_array_equal(images, batch["image"])
    with reuse_keys():
      keys = jr.record_keys(jax.random.split(jax.random.key(7))[0], batch["index"])
      direct = recipe(keys, images)
      piped = per_record(jax.random.key(7), gp.device_batch(batch))
    np.testing.assert_array_equal(np.asarray(piped), np.asarray(direct))


def test_b_restored_iterator_continues_bit_identically():
  # The grain guide's batches (8 JPEGs of 64x64 cropped to 48, mixed), as in the example's
  # smoke run: the two share one compiled program.
  source = gp.JpegScenes.make(COUNT, 64, seed=1)
  augment = gp.make_augment(size=48)

  def run(iterator, steps):
    out = []
    for _ in range(steps):
      batch = next(iterator)
      with reuse_keys():
        images, targets = augment(jax.random.key(7), gp.device_batch(batch))
      out.append((batch["index"].copy(), np.asarray(images), np.asarray(targets)))
      del batch
    return out

  options = {"batch_size": 8, "workers": 2, "epochs": 2, "seed": 3}
  iterator = iter(gp.dataset(source, **options))
  try:
    run(iterator, 2)
    state = json.loads(json.dumps(iterator.get_state()))  # what a checkpoint writes
    uninterrupted = run(iterator, 3)
  finally:
    del iterator
  restored = iter(gp.dataset(source, **options))
  try:
    restored.set_state(state)
    resumed = run(restored, 3)
  finally:
    del restored
  assert [u[0].tolist() for u in uninterrupted] == [list(range(16, 24)), list(range(24, 32)),
                                                    list(range(32, 40))]
  for (i_u, x_u, t_u), (i_r, x_r, t_r) in zip(uninterrupted, resumed, strict=True):
    np.testing.assert_array_equal(i_u, i_r)
    np.testing.assert_array_equal(x_u, x_r)
    np.testing.assert_array_equal(t_u, t_r)


def test_example_runs():
  with reuse_keys():  # the run's base key, every step
    assert gp.main(["--smoke", "--workers", "0", "--batch-size", "8"]) > 0


def test_device_batch_refuses_indices_beyond_32_bits():
  batch = {"image": np.zeros((1, 4, 4, 3), np.uint8), "label": np.zeros(1, np.int32),
           "index": np.array([2**32])}
  with pytest.raises(ValueError, match="32 bits"):
    gp.device_batch(batch)
