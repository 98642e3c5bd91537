"""Per-device keys under SPMD: shards draw different masks, reproducibly from one root key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys, run_on_simulated_devices

import jaxreg as jr


def test_named_vmap_devices_get_distinct_keys_and_masks():
  def shard(x):
    return jr.dropout(jr.device_key(jax.random.key(0), "d"), x, 0.5, train=True)

  x = jnp.ones((4, 256))
  masks = np.asarray(jax.vmap(shard, axis_name="d")(x)) != 0
  assert len({m.tobytes() for m in masks}) == 4
  # ... and the stream is the documented one: fold_in(key, device index)
  with reuse_keys():
    expected = [jr.dropout(jax.random.fold_in(jax.random.key(0), i), x[i], 0.5, train=True)
                for i in range(4)]
  np.testing.assert_array_equal(masks, np.stack(expected) != 0)


def test_two_mesh_axes_and_legacy_keys():
  # The axes fold in one after the other, in the order given; a legacy key comes back legacy.
  def shard(_):
    return jr.device_key(jax.random.PRNGKey(1), ("a", "b"))

  keys = jax.vmap(jax.vmap(shard, axis_name="b"), axis_name="a")(jnp.zeros((2, 3)))
  assert keys.dtype == jnp.uint32
  assert keys.shape == (2, 3, 2)
  for a in range(2):
    for b in range(3):
      want = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(1), a), b)
      np.testing.assert_array_equal(keys[a, b], want)
  assert len({tuple(np.asarray(d)) for d in keys.reshape(6, -1)}) == 6


def test_unbound_axis_name():
  with pytest.raises(ValueError, match="not bound"):
    jr.device_key(jax.random.key(0), "data")
  with pytest.raises(TypeError, match="PRNG key"):
    jr.device_key(3, "data")


@pytest.mark.parametrize(
    ("axis_name", "error", "message"),
    [
        ((), ValueError, r"at least one mesh axis, got \(\)"),  # used to return the key as is
        ([], ValueError, r"at least one mesh axis, got \[\]"),
        (3, ValueError, "`axis_name` 3 is not bound"),  # was a raw "not iterable"
        (("d", None), TypeError, r"got \('d', None\)"),
        (None, TypeError, "got None"),
        (b"d", TypeError, "got b'd'"),
        ({"d"}, TypeError, r"got \{'d'\}"),  # a set has no order to fold in
    ],
)
def test_bad_axis_names(axis_name, error, message):
  # Inside a named vmap, so only the axis_name itself can be wrong.
  with pytest.raises(error, match=message):
    jax.vmap(lambda _: jr.device_key(jax.random.key(0), axis_name), axis_name="d")(jnp.zeros(2))


def test_non_string_axis_names_work_as_in_jax():
  # vmap/pmap take any hashable axis name; a tuple may mix them.
  keys = jax.vmap(jax.vmap(lambda _: jax.random.key_data(jr.device_key(
      jax.random.key(0), ("d", 7))), axis_name=7), axis_name="d")(jnp.zeros((2, 2)))
  for d in range(2):
    for i in range(2):
      want = jax.random.fold_in(jax.random.fold_in(jax.random.key(0), d), i)
      np.testing.assert_array_equal(keys[d, i], jax.random.key_data(want))
  assert len({tuple(np.asarray(k)) for k in keys.reshape(4, -1)}) == 4


def test_a_list_of_axis_names_works_like_a_tuple():
  keys = jax.vmap(lambda _: jax.random.key_data(jr.device_key(jax.random.key(0), ["d"])),
                  axis_name="d")(jnp.zeros(2))
  assert not np.array_equal(keys[0], keys[1])


SHARD_MAP_SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxreg as jr

mesh = jax.make_mesh((8,), ("data",))
ones = jnp.ones((64, 8, 8, 3))
# every example the same image whose pixels encode their position: a crop shows its offset
position = (jnp.arange(12)[:, None] * 12 + jnp.arange(12)[None, :]) / 144.0
images = jnp.broadcast_to(position[None, :, :, None], (64, 12, 12, 3))
OPS = {  # what each shard draws from its key, as a boolean or float pattern
    "dropout": (ones, lambda k, x: jr.dropout(k, x, 0.5, train=True) != 0),
    "drop_path": (ones, lambda k, x: jr.drop_path(k, x, 0.5, train=True) != 0),
    "drop_block": (ones, lambda k, x: jr.drop_block(k, x, 0.3, block_size=3, train=True) != 0),
    "random_crop": (images, lambda k, x: jr.augment.batched(
        lambda kk, im: jr.augment.random_crop(kk, im, 8))(k, x)),
}

def per_shard(op, per_device):
  x, fn = OPS[op]
  def shard(x, key):
    if per_device:
      key = jr.device_key(key, "data")
    return fn(key, x)
  run = jax.jit(jax.shard_map(shard, mesh=mesh, in_specs=(P("data"), P()), out_specs=P("data")))
  x = jax.device_put(x, NamedSharding(mesh, P("data")))
  return np.asarray(run(x, jax.random.key(0))).reshape(8, -1)

for op in OPS:
  same = per_shard(op, False)
  assert all(np.array_equal(same[0], same[i]) for i in range(8)), (op, "replicated key")
  own = per_shard(op, True)
  assert len({o.tobytes() for o in own}) == 8, (op, "device_key: every shard its own draw")
  assert np.array_equal(own, per_shard(op, True)), (op, "reproducible from the root key")
print("SHARD_MAP OK")
"""


def test_shard_map_shards_differ_only_with_device_key():
  assert "SHARD_MAP OK" in run_on_simulated_devices(SHARD_MAP_SCRIPT)


MASK_SHARDING_SCRIPT = r"""
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxreg as jr

mesh = jax.make_mesh((8,), ("data",))
x = jnp.arange(64 * 3, dtype=jnp.float32).reshape(64, 3) % 7
mask = jnp.arange(64)[:, None] % 3 > 0

def bn(x, mask):
  return jr.batch_norm(x, None, None, jr.batch_norm_init(3), train=True, mask=mask,
                       axis_name="data")[1].mean

def run(x_spec, mask_spec, x=x):
  put = lambda a, spec: jax.device_put(a, NamedSharding(mesh, spec))
  f = jax.jit(jax.shard_map(bn, mesh=mesh, in_specs=(x_spec, mask_spec), out_specs=P()))
  return f(put(x, x_spec), put(mask, mask_spec))

expected = jr.batch_norm(x, None, None, jr.batch_norm_init(3), train=True, mask=mask)[1].mean
np.testing.assert_allclose(run(P("data"), P("data")), expected, rtol=1e-6)
for x_spec, mask_spec, x_in, message in [
    (P("data"), P(), x, "must be sharded like x"),  # the whole mask on every device
    (P(), P("data"), x, "must be sharded like x"),  # split mask, whole x: shapes differ
    (P(), P("data"), x[:8], "x is replicated along it"),  # shapes fit, shardings do not
]:
  try:
    run(x_spec, mask_spec, x_in)
  except ValueError as err:
    assert message in str(err), str(err)
  else:
    raise AssertionError(f"no error for x {x_spec}, mask {mask_spec}")
print("MASK SHARDING OK")
"""


def test_mask_sharded_unlike_the_data_is_a_clear_error():
  assert "MASK SHARDING OK" in run_on_simulated_devices(MASK_SHARDING_SCRIPT)


# --------------------------------------------------------------------------------------------
# record_keys: a key per record, whatever batch it lands in
# --------------------------------------------------------------------------------------------


def _fold_in_reference(seed, indices):
  """The documented stream, one record at a time: ``fold_in(key, index)``."""
  return np.stack([np.asarray(jax.random.key_data(jax.random.fold_in(jax.random.key(seed), i)))
                   for i in np.asarray(indices).ravel()]).reshape(*np.shape(indices), -1)


@pytest.mark.parametrize("mode", ["eager", "jit", "vmap"])
def test_record_keys_are_fold_in_of_each_index(mode):
  indices = np.array([[0, 7, 2**31 + 5], [3, 3, 2**32 - 1]], np.uint32)
  with reuse_keys():
    if mode == "eager":
      keys = jr.record_keys(jax.random.key(4), indices)
    elif mode == "jit":
      keys = jax.jit(jr.record_keys)(jax.random.key(4), indices)
    else:  # vmapped over the rows, each row a batch
      keys = jax.vmap(jr.record_keys, in_axes=(None, 0))(jax.random.key(4), indices)
    expected = _fold_in_reference(4, indices)
  assert keys.shape == indices.shape
  np.testing.assert_array_equal(jax.random.key_data(keys), expected)
  # Equal indices, equal keys; legacy base keys give the same stream.
  data = np.asarray(jax.random.key_data(keys))
  np.testing.assert_array_equal(data[1, 0], data[1, 1])
  legacy = jr.record_keys(jax.random.PRNGKey(4), indices.astype(np.int64))
  np.testing.assert_array_equal(jax.random.key_data(legacy), expected)


def test_batched_with_record_keys_is_per_record():
  """`batched` given one key per example applies ``fn`` with exactly that key to that image;
  a record's result is the same in a batch of 2 and in a batch of 4."""
  images = jax.random.uniform(jax.random.key(0), (4, 6, 5, 3))
  crop = jr.augment.batched(jr.augment.random_resized_crop)
  indices = jnp.array([10, 11, 12, 13])
  with reuse_keys():
    keys = jr.record_keys(jax.random.key(1), indices)
    batch = jax.jit(lambda k, x: crop(k, x, 4))
    whole = batch(keys, images)
    half = batch(jr.record_keys(jax.random.key(1), indices[2:]), images[2:])
    one = jax.jit(lambda k, x: jr.augment.random_resized_crop(k, x, 4))
    one_by_one = [one(keys[i], images[i]) for i in range(4)]
    raw = batch(jax.random.key_data(keys), images)  # legacy raw keys, shape (4, 2)
  np.testing.assert_allclose(whole, np.stack(one_by_one), atol=1e-6)
  np.testing.assert_allclose(whole[2:], half, atol=1e-6)
  np.testing.assert_allclose(raw, whole, atol=1e-6)
  assert len({np.asarray(w).tobytes() for w in whole}) == 4
