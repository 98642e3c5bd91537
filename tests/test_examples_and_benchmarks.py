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
