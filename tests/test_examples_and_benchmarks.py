"""Smoke runs: the quick-start example trains, and the benchmarks run at tiny sizes."""

import jax
import pytest

pytestmark = pytest.mark.standard_promotion  # user code, written for JAX's default rules


def test_quickstart_learns(capsys):
  from examples import quickstart

  test_accuracy = quickstart.main(["--steps", "300"])
  assert test_accuracy > 0.75  # chance is 0.5
  assert "MC dropout" in capsys.readouterr().out


def test_benchmarks_smoke(capsys):
  from benchmarks import run

  with jax.debug_key_reuse(False):  # timing loops call the same function with the same key
    rows = run.main(["--smoke"])
  ops = " ".join(r["op"] for r in rows)
  for family in ("dropout", "batch_norm", "l1_prox", "RRC+flip+jitter", "seeds vmapped",
                 "data-parallel step"):
    assert family in ops
  assert all(r["jaxreg_ms"] > 0 for r in rows if r["jaxreg_ms"] is not None)
  assert all(r["ratio"] > 0 for r in rows if r["ratio"] is not None)
  assert "| op |" in capsys.readouterr().out


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

  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  return subprocess.run([sys.executable, str(ROOT / "examples" / "data_parallel.py"), "--steps",
                         "3", "--batch-size", "16", "--train-size", "64", *args],
                        capture_output=True, text=True, env=env, timeout=300, check=False)


def test_data_parallel_example_equals_single_device_and_can_say_otherwise():
  result = _run_data_parallel("--devices", "4")
  assert result.returncode == 0, result.stdout + result.stderr
  assert "4 cpu device(s)" in result.stdout
  assert result.stdout.count("-> EQUAL") == 2  # shard_map and sharded jit
  # The check is real: with a negative tolerance nothing can pass, and the script says so.
  result = _run_data_parallel("--devices", "2", "--mode", "jit", "--tolerance", "-1")
  assert result.returncode == 1
  assert "DIFFERENT" in result.stdout
