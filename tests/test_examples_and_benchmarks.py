"""Smoke runs: the quick-start example trains, and the benchmarks run at tiny sizes (the latter
only when `-m benchmark_smoke` selects them)."""

import pathlib
import re

import jax
import pytest

pytestmark = pytest.mark.standard_promotion  # user code, written for JAX's default rules


def test_quickstart_learns(capsys):
  from examples import quickstart

  test_accuracy = quickstart.main(["--steps", "300"])
  assert test_accuracy > 0.75  # chance is 0.5
  assert "MC dropout" in capsys.readouterr().out


# One smoke run per family, and a row each family must print; outside the suite unless selected
# (tests/conftest.py), as CI's step after it selects them.
SMOKE_ROWS = {"dropout": "dropout", "batchnorm": "batch_norm", "penalties": "l1_prox",
              "augment": "RRC+flip+jitter", "geometric": "rotate", "photometric": "equalize",
              "policies": "trivial_augment_wide", "targets": "image + mask + boxes",
              "study": "seeds vmapped",
              "parallel": "data-parallel step", "grain": "grain",
              # the design pages' rejected alternatives (benchmarks/alternatives/)
              "alternatives_batch_norm": "backward sums", "alternatives_dropout_mask": "scan",
              "alternatives_geometric": "three shears", "alternatives_photometric": "histogram",
              "alternatives_vmap_seeds_cpu": "patches"}


def test_every_benchmark_family_has_a_smoke_run():
  from benchmarks import run

  assert set(SMOKE_ROWS) == set(run.FAMILIES)


@pytest.mark.benchmark_smoke
@pytest.mark.parametrize("family", sorted(SMOKE_ROWS))
def test_benchmarks_smoke(family, capsys):
  from benchmarks import run

  with jax.debug_key_reuse(False):  # timing loops call the same function with the same key
    rows = run.main(["--smoke", "--only", family])
  assert SMOKE_ROWS[family] in " ".join(r["label"] for r in rows)
  assert all(r["seconds"] > 0 for r in rows if r["seconds"] is not None)
  assert all(r["ratio"] > 0 for r in rows if r["ratio"] is not None)
  out = capsys.readouterr().out
  assert "| op |" in out
  assert "wrote " not in out  # a smoke run leaves the committed results files alone


def test_benchmark_results_file_records_provenance_and_rows(tmp_path):
  """A run writes <family>[-setting].json: command, date, machine, device, versions, and every
  row's raw numbers under a unique key; the committed files have the same shape."""
  import json

  from benchmarks import _results, run

  with jax.debug_key_reuse(False):
    rows = run.main(["--smoke", "--only", "penalties", "--results-dir", str(tmp_path)])
  saved = json.loads((tmp_path / "penalties.json").read_text())
  assert saved["command"] == (f"python -m benchmarks.run --smoke --only penalties "
                              f"--results-dir {tmp_path}")
  assert saved["rows"] == json.loads(json.dumps(rows))
  assert saved["smoke"] is True
  assert saved["allocator"] == "default"
  committed = sorted(pathlib.Path(_results.RESULTS_DIR).glob("*.json"))
  for data in [saved] + [json.loads(p.read_text()) for p in committed]:
    assert {"schema", "command", "date", "wall_seconds", "machine", "device", "versions",
            "rows"} <= set(data)
    assert {"cpu", "cores", "memory_gib"} <= set(data["machine"])
    assert {"platform", "kind"} <= set(data["device"])
    assert {"python", "jax", "jaxlib", "numpy", "optax"} <= set(data["versions"])
    _results.check_keys(data["rows"])
  assert not any(json.loads(p.read_text()).get("smoke") for p in committed)
  assert run.results_name("batchnorm", "steady") == "batchnorm-steady.json"
  assert run.results_name("dropout", "default", "gpu") == "dropout-gpu.json"
  with pytest.raises(ValueError, match="repeated"):
    _results.check_keys([{"key": "a"}, {"key": "a"}])


def test_benchmark_allocator_settings_and_lead_calls(monkeypatch):
  from benchmarks import _harness, run

  # The huge-pages setting keeps the user's other glibc tunables, and is not combined with the
  # steady allocator (the two measure different things).
  env = run._with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "A": "b"})
  assert env == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "A": "b"}
  assert run._with_huge_pages({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
  with pytest.raises(SystemExit):
    run.main(["--smoke", "--steady-malloc", "--huge-pages"])
  # lead_calls: each timed sample follows untimed calls of the same function.
  monkeypatch.setattr(_harness, "_calls_per_sample", lambda: 1)  # 10 on an accelerator
  calls = []
  _harness.median_ratio(lambda: calls.append("a"), lambda: calls.append("b"), rounds=2,
                        lead_calls=1)
  assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 2


def _run_data_parallel(*args):
  import os
  import subprocess
  import sys

  from conftest import ROOT
  from markdown_blocks import FAST_COMPILE, SUBPROCESS_TIMEOUT_S

  env = {**os.environ, "XLA_FLAGS": FAST_COMPILE}  # the example sets its own device count
  return subprocess.run([sys.executable, str(ROOT / "examples" / "data_parallel.py"), "--steps",
                         "3", "--batch-size", "16", "--train-size", "64", *args],
                        capture_output=True, text=True, env=env, timeout=SUBPROCESS_TIMEOUT_S,
                        check=False)


def test_data_parallel_example_equals_single_device_and_can_say_otherwise():
  # One run, with a tolerance nothing can meet: the script says DIFFERENT for both ways of
  # sharding and exits 1 (the check is real), and the differences it prints are float roundings.
  result = _run_data_parallel("--devices", "4", "--tolerance", "-1")
  assert result.returncode == 1, result.stdout + result.stderr
  assert "4 cpu device(s)" in result.stdout
  assert result.stdout.count("-> DIFFERENT") == 2, result.stdout  # shard_map and sharded jit
  first_step = re.findall(r"after the first step ([0-9.e+-]+) ->", result.stdout)
  assert len(first_step) == 2, result.stdout
  assert all(float(d) < 1e-5 for d in first_step), first_step


def test_gpu_aot_traffic_counts_kernel_operands_and_outputs():
  import jax.numpy as jnp

  from benchmarks import gpu_aot

  assert gpu_aot.array_bytes("(f32[8,4]{1,0}, bf16[4], pred[])") == 8 * 4 * 4 + 4 * 2 + 1
  # A copy-like kernel compiled here reads and writes the tensor once each.
  x = jnp.zeros((256, 1024))
  text = jax.jit(lambda a: a * 2).lower(x).compile().as_text()
  assert gpu_aot.kernel_traffic(text) == (1, 2 * x.nbytes)
  # Operands are counted wherever they sit in the list (XLA numbers every fifth one), tuple
  # outputs count every element, and bitcasts move nothing.
  hlo = """
ENTRY %main (p0: f32[1024,64], p1: f32[1024,64]) -> f32[1024,64] {
  %p0 = f32[1024,64]{1,0} parameter(0)
  %p1 = f32[1024,64]{1,0} parameter(1)
  %b = f32[64,1024]{1,0} bitcast(%p1)
  %f = (f32[1024,64]{1,0}, f32[64]{0}) fusion(%p0, %p0, %p0, %p0, %p0, /*index=5*/%b), kind=kLoop
  ROOT %g = f32[1024,64]{1,0} get-tuple-element(%f), index=0
}
"""
  tensor = 1024 * 64 * 4
  assert gpu_aot.kernel_traffic(hlo) == (1, 7 * tensor + 64 * 4)
  with pytest.raises(ValueError, match="ENTRY"):
    gpu_aot.kernel_traffic("HloModule m")


def test_gpu_aot_says_what_to_install_without_the_cuda_plugin():
  import importlib.util

  from benchmarks import gpu_aot

  if importlib.util.find_spec("jax_plugins") is not None:
    pytest.skip("the CUDA plugin is installed here: gpu_aot can compile for the GPU")
  with pytest.raises(RuntimeError, match=r"jax\[cuda12\]"):
    gpu_aot.gpu_device()
