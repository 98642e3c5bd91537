"""The regularization study (the README's main job): a tiny run, its outputs, bad --data files."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import reuse_keys

pytestmark = pytest.mark.standard_promotion  # example code, written for JAX's default rules


@pytest.fixture(scope="module")
def study():
  from examples import regularization_study

  return regularization_study


def test_quick_run_writes_table_json_and_figures(study, tmp_path, capsys):
  summary = study.main(["--quick", "--out", str(tmp_path)])  # what the README calls --quick
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["rows"] == json.loads(json.dumps(summary["rows"]))
  assert [r["config"]["name"] for r in saved["rows"]] == ["baseline", "dropout", "all"]
  for r in saved["rows"]:
    paths = ["deterministic", "multi_crop"] + (["mc_dropout"] if r["config"]["dropout"] else [])
    assert sorted(r["test"]) == sorted(paths)  # MC dropout only where there is dropout
    for path in paths:
      m = r["test"][path]
      for metric, (lo, hi) in {"acc": (0, 1), "nll": (0, 100), "ece": (0, 1)}.items():
        values = np.asarray(m[metric]["seeds"])
        assert values.shape == (2,)  # one per seed
        assert np.all((values >= lo) & (values <= hi))
        assert m[metric]["mean"] == pytest.approx(values.mean())
        assert m[metric]["std"] == pytest.approx(values.std(ddof=1))
      assert sum(m["reliability"]["count"]) == 2 * 1497  # both seeds' test images, pooled
    det = r["test"]["deterministic"]
    # The table's deterministic accuracy is the curve's last point (one evaluation pass).
    assert det["acc"]["seeds"] == pytest.approx(r["curve"]["test_acc"][-1])
    assert det["acc"]["seeds"][0] > 0.5  # 100 steps are far above chance (0.1)
    assert r["curve"]["step"] == [50, 100]
  assert saved["peak_rss_mb"] > 0
  assert saved["wall_seconds"] > 0
  # The metadata every results file carries (benchmarks/_results.py), and a key per row.
  assert saved["command"] == f"python examples/regularization_study.py --quick --out {tmp_path}"
  assert {"date", "machine", "device", "versions"} <= set(saved)
  assert [r["key"] for r in saved["rows"]] == ["baseline", "dropout", "all"]
  for png in ("results.png", "reliability.png"):
    assert (tmp_path / png).stat().st_size > 10_000
  out = capsys.readouterr().out
  assert "| baseline |" in out
  assert "MC-dropout ECE %" in out


def test_seeds_in_one_vmapped_step_equal_separate_runs(study):
  # The quick run's data, batch, learning rate and seeds: its "all" step is the vmapped program
  # here, which the suite then compiles once.
  quick = study.parse_args(["--quick"])
  data = study.load_digits_split(quick.train_size)
  programs = study.build(data, lr=quick.lr, batch_size=quick.batch_size, num_classes=10)
  knobs = study.CONFIGS[-1].knobs()  # everything on: dropout, BN, augmentation, drop-path, L2
  keys = jax.random.split(jax.random.key(0), quick.seeds)
  assert len(keys) > 1  # several seeds in one step
  with reuse_keys():  # the same seed keys drive both runs, on purpose
    params, bn, opt = programs.init(keys)
    for s in range(3):
      params, bn, opt, _ = programs.step(params, bn, opt, keys, s, knobs, batch_norm=True)
    for i in range(len(keys)):
      p1, b1, o1 = programs.init(keys[i:i + 1])
      for s in range(3):
        p1, b1, o1, _ = programs.step(p1, b1, o1, keys[i:i + 1], s, knobs, batch_norm=True)
      for a, b in zip(jax.tree.leaves((p1, b1)), jax.tree.leaves((params, bn)), strict=True):
        np.testing.assert_allclose(a[0], b[i], rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", ["baseline", "all"])
def test_traced_knobs_compute_what_the_config_does(study, name):
  """One compiled program for every configuration (Knobs, lax.cond) equals the Python switches.

  Each switch is its own `lax.cond`: every one off (baseline), then every one on (all)."""
  cfg = {c.name: c for c in study.CONFIGS}[name]
  params = study.init_params(jax.random.key(1), 1, (8, 8), 10)
  x = jnp.asarray(study.load_digits_split(100)[0][:16])
  bn = study.init_bn_states()
  key = jax.random.key(2)
  with reuse_keys():
    for mode in ({"train": True}, {"train": False}, {"train": False, "mc_dropout": True}):
      want = study.apply_model(cfg, params, bn, key, x, **mode)
      run = functools.partial(study.apply_model, params=params, bn_states=bn, x=x, **mode)
      got = jax.jit(lambda k, c, run=run: run(c, key=k))(key, cfg.knobs())
      for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_conv_vmapped_over_kernels_equals_one_conv_per_kernel(study):
  """The study's conv under vmap (a loop on the CPU) and its gradient, against lax's conv."""
  kx, kw, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (3, 5, 8, 8, 4))  # (seeds, batch, H, W, C)
  w = jax.random.normal(kw, (3, 3, 3, 4, 6))
  g = jax.random.normal(kg, (3, 5, 8, 8, 6))

  def reference(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  for f in (jax.vmap(study.conv), jax.jit(jax.vmap(study.conv))):
    np.testing.assert_allclose(f(x, w), [reference(x[i], w[i]) for i in range(3)], rtol=1e-5,
                               atol=1e-5)
  vjp = lambda conv, x, w, g: jax.vjp(conv, x, w)[1](g)  # noqa: E731
  got = jax.jit(jax.vmap(lambda x, w, g: vjp(study.conv, x, w, g)))(x, w, g)
  for i in range(3):
    for a, b in zip(got, vjp(reference, x[i], w[i], g[i]), strict=True):
      np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-4)
  # A vmapped axis the kernel does not have (Monte-Carlo samples) folds into the batch.
  shared = jax.vmap(study.conv, in_axes=(0, None))(x, w[0])
  np.testing.assert_allclose(shared, jax.vmap(reference, in_axes=(0, None))(x, w[0]), rtol=1e-5,
                             atol=1e-5)
  # Nested: samples inside seeds, as Monte-Carlo dropout runs per seed.
  nested = jax.vmap(lambda xs, w: jax.vmap(study.conv, in_axes=(0, None))(xs, w))(
      x[:, :, None], w)
  np.testing.assert_allclose(nested[:, :, 0], f(x, w), rtol=1e-5, atol=1e-5)


def test_chunked_evaluation_equals_one_call(study):
  x = jnp.arange(23.0).reshape(23, 1)
  fn = lambda i, chunk: jnp.stack([chunk[:, 0] * 2, chunk[:, 0] + 1])  # noqa: E731
  np.testing.assert_array_equal(study.in_chunks(fn, x, 5), fn(0, x))
  np.testing.assert_array_equal(study.in_chunks(fn, x, 64), fn(0, x))
  # A chunk is EVAL_IMAGES over the images per example, and no larger than the data rounded up
  # to a power of two: the default run's chunks (8 seeds; 16 MC samples each) are the budget's.
  budget = study.EVAL_IMAGES
  assert study.eval_chunk(8, 1797) == budget // 8
  assert study.eval_chunk(8 * 16, 1497) == budget // (8 * 16)
  assert study.eval_chunk(2, 1797) == 2048 < budget // 2  # --quick: the digits, not 8,192
  assert [study.eval_chunk(2, n) for n in (0, 1, 2, 3, 60, 64, 65)] == [1, 1, 2, 4, 64, 64, 128]


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x_train": np.zeros((4, 8, 8, 1))}, "missing arrays"),
    ({"x_train": np.zeros((4, 8)), "y_train": np.zeros(4, int), "x_test": np.zeros((4, 8)),
      "y_test": np.zeros(4, int)}, "must be NHWC"),
    ({"x_train": np.full((4, 8, 8, 1), 2.0), "y_train": np.zeros(4, int),
      "x_test": np.zeros((4, 8, 8, 1)), "y_test": np.zeros(4, int)}, r"in \[0, 1\]"),
    ({"x_train": np.zeros((4, 8, 8, 1)), "y_train": -np.ones(4, int),
      "x_test": np.zeros((4, 8, 8, 1)), "y_test": np.zeros(4, int)}, "negative labels"),
    ({"x_train": np.zeros((4, 8, 8, 1)), "y_train": np.zeros(3, int),
      "x_test": np.zeros((4, 8, 8, 1)), "y_test": np.zeros(4, int)}, "integer labels of shape"),
])
def test_bad_data_files_get_a_clear_message(study, tmp_path, capsys, arrays, message):
  path = tmp_path / "data.npz"
  np.savez(path, **arrays)
  with pytest.raises(SystemExit) as exit_info:
    study.main(["--quick", "--data", str(path), "--out", str(tmp_path)])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert "error:" in err
  assert pytest.importorskip("re").search(message, err)
  assert not (tmp_path / "results.json").exists()


def test_not_an_npz(study, tmp_path, capsys):
  path = tmp_path / "data.npz"
  path.write_text("not a zip")
  with pytest.raises(SystemExit):
    study.main(["--quick", "--data", str(path), "--out", str(tmp_path)])
  assert "cannot read" in capsys.readouterr().err


def test_interrupt_leaves_no_results(study, tmp_path, monkeypatch):
  def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(study, "train_config", interrupted)
  with pytest.raises(SystemExit) as exit_info:
    study.main(["--quick", "--out", str(tmp_path)])
  assert exit_info.value.code == 130
  assert not (tmp_path / "results.json").exists()


def test_user_npz_runs(study, tmp_path):
  rng = np.random.default_rng(0)
  arrays = {"x_train": rng.integers(0, 255, (40, 6, 6, 3), dtype=np.uint8),
            "y_train": rng.integers(0, 3, 40), "x_test": rng.integers(0, 255, (20, 6, 6, 3),
                                                                      dtype=np.uint8),
            "y_test": rng.integers(0, 3, 20)}
  np.savez(tmp_path / "mine.npz", **arrays)
  summary = study.main(["--quick", "--configs", "augment", "--steps", "5", "--eval-every", "5",
                        "--data", str(tmp_path / "mine.npz"), "--out", str(tmp_path)])
  assert len(summary["rows"][0]["test"]["deterministic"]["acc"]["seeds"]) == 2
