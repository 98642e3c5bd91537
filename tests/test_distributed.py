"""Two processes on localhost, `jax.distributed.initialize` with CPU collectives (gloo).

Each process owns 2 simulated CPU devices; the mesh spans all 4. The synchronized batch-norm
statistics (with unequal masks per device) and the parameters of examples/data_parallel.py after
a few steps must equal the single-process, single-device results computed here.
"""

import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT
from markdown_blocks import FAST_COMPILE, SUBPROCESS_TIMEOUT_S

import jaxreg as jr

pytestmark = pytest.mark.standard_promotion  # the example's code, written for default promotion

STEPS, BATCH, TRAIN_SIZE = 4, 16, 64

WORKER = r"""
import os, sys
process_id, port, case, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.environ["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=2 "
                           + os.environ.get("XLA_FLAGS", ""))
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2,
                           process_id=process_id, initialization_timeout={TIMEOUT})
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxreg as jr
from examples import data_parallel as dp
STEPS, BATCH, TRAIN_SIZE = {STEPS}, {BATCH}, {TRAIN_SIZE}

assert jax.process_count() == 2 and jax.device_count() == 4, jax.devices()
mesh = jax.make_mesh((4,), ("data",))
x, mask = np.load(case)["x"], np.load(case)["mask"]
def global_array(a, spec):
  return jax.make_array_from_callback(a.shape, NamedSharding(mesh, spec), lambda i: a[i])

def bn(x, mask):
  def stats(x, g):
    y, state = jr.batch_norm(x, g, None, jr.batch_norm_init(3), train=True, mask=mask,
                             axis_name="data")
    return (y * y).sum(), state
  (_, state), dgamma = jax.value_and_grad(stats, argnums=1, has_aux=True)(x, jax.numpy.ones(3))
  return state.mean, state.var, dgamma
run = jax.jit(jax.shard_map(bn, mesh=mesh, in_specs=(P("data"), P("data")),
                            out_specs=(P(), P(), P())))
mean, var, dgamma = run(global_array(x, P("data")), global_array(mask, P("data")))

study = dp.study
data = study.load_digits_split(TRAIN_SIZE)[:2]
params = {}
for mode in ("shard_map", "jit"):
  params[mode] = dp.train(study.CONFIGS[-1], data, steps=STEPS, lr=2e-3, batch_size=BATCH,
                          mode=mode)[0]
if process_id == 0:
  leaves = {f"{m}_{i}": leaf for m, p in params.items()
            for i, leaf in enumerate(jax.tree.leaves(p))}
  np.savez(out, mean=np.asarray(mean), var=np.asarray(var), dgamma=np.asarray(dgamma), **leaves)
print("WORKER", process_id, "OK")
"""


def bn_case():
  """NHWC batch of 8 (2 per device) with unequal valid counts per device."""
  rng = np.random.default_rng(0)
  x = (rng.normal(size=(8, 3, 3, 3)) * 2 + 5).astype(np.float32)
  mask = np.ones((8, 1, 1, 1), bool)
  mask[[1, 4, 5]] = False  # devices hold 2 examples each: 1, 2, 0 and 2 of them are valid
  return x, mask


def _free_port():
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
  folder = tmp_path_factory.mktemp("dist")
  out, script = folder / "results.npz", folder / "worker.py"
  script.write_text(WORKER.replace("{STEPS}", str(STEPS)).replace("{BATCH}", str(BATCH))
                    .replace("{TRAIN_SIZE}", str(TRAIN_SIZE))
                    .replace("{TIMEOUT}", str(SUBPROCESS_TIMEOUT_S)))
  case = out.with_name("case.npz")
  x, mask = bn_case()
  np.savez(case, x=x, mask=mask)
  port = str(_free_port())
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  env["XLA_FLAGS"] = FAST_COMPILE  # the worker adds its own device count
  procs = [subprocess.Popen([sys.executable, str(script), str(i), port, str(case), str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = []
  for p in procs:
    try:
      logs.append(p.communicate(timeout=SUBPROCESS_TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      pytest.fail("two-process run timed out:\n" + "\n".join(logs))
  for i, (p, log) in enumerate(zip(procs, logs, strict=True)):
    assert p.returncode == 0, log[-4000:]
    assert f"WORKER {i} OK" in log, log[-4000:]
  return dict(np.load(out))


def test_synchronized_batch_norm_statistics_across_processes(two_process_results):
  x, mask = bn_case()

  def stats(x, g):
    y, state = jr.batch_norm(x, g, None, jr.batch_norm_init(3), train=True, mask=mask)
    return (y * y).sum(), state

  grad = jax.value_and_grad(stats, argnums=1, has_aux=True)
  (_, state), dgamma = grad(jnp.asarray(x), jnp.ones(3))
  r = two_process_results
  np.testing.assert_allclose(r["mean"], state.mean, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(r["var"], state.var, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(r["dgamma"], dgamma, rtol=1e-5, atol=1e-5)
  # and the statistics are those of the valid examples only (not a mean of device means)
  valid = x[mask[:, 0, 0, 0]]
  np.testing.assert_allclose(state.mean, 0.1 * valid.mean((0, 1, 2)), rtol=1e-5)


def test_trained_parameters_across_processes_equal_single_process(two_process_results):
  from examples import data_parallel as dp

  data = dp.study.load_digits_split(TRAIN_SIZE)[:2]
  with jax.debug_key_reuse(False):
    reference = dp.train(dp.study.CONFIGS[-1], data, steps=STEPS, lr=2e-3, batch_size=BATCH,
                         mode="single")[0]
  leaves = jax.tree.leaves(reference)
  for mode in ("shard_map", "jit"):
    got = [two_process_results[f"{mode}_{i}"] for i in range(len(leaves))]
    assert dp.max_difference(got, leaves) < 1e-5, mode
