"""The regularization study (the README's main job): a tiny run, its outputs, bad --data files."""

import json

import jax
import numpy as np
import pytest
from conftest import reuse_keys

pytestmark = pytest.mark.standard_promotion  # example code, written for JAX's default rules


@pytest.fixture(scope="module")
def study():
  from examples import regularization_study

  return regularization_study


def test_quick_run_writes_table_json_and_figure(study, tmp_path, capsys):
  summary = study.main(["--quick", "--out", str(tmp_path)])  # what the README calls --quick
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["results"] == json.loads(json.dumps(summary["results"]))
  assert [r["config"]["name"] for r in saved["results"]] == ["baseline", "dropout", "all"]
  for r in saved["results"]:
    for key in ("train_acc", "test_acc", "mc_dropout_test_acc", "multi_crop_test_acc"):
      values = np.asarray(r[key])
      assert values.shape == (2,)  # one per seed
      assert np.all((values >= 0) & (values <= 1))
    assert r["test_acc"][0] > 0.5  # 100 steps are far above chance (0.1)
    assert r["curve"]["step"] == [50, 100]
  assert (tmp_path / "results.png").stat().st_size > 10_000
  assert "| baseline |" in capsys.readouterr().out


def test_seeds_in_one_vmapped_step_equal_separate_runs(study):
  data = study.load_digits_split(100)
  cfg = study.CONFIGS[-1]  # everything on: dropout, batch norm, augmentation, drop-path, L2
  init, step, _, _, _ = study.build(cfg, data, lr=1e-3, batch_size=16, num_classes=10)
  keys = jax.random.split(jax.random.key(0), 3)
  with reuse_keys():  # the same seed keys drive both runs, on purpose
    params, bn, opt = init(keys)
    for s in range(3):
      params, bn, opt, _ = step(params, bn, opt, keys, s)
    for i in range(3):
      p1, b1, o1 = init(keys[i:i + 1])
      for s in range(3):
        p1, b1, o1, _ = step(p1, b1, o1, keys[i:i + 1], s)
      for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(a[0], b[i], rtol=2e-4, atol=2e-5)


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
  assert len(summary["results"][0]["test_acc"]) == 2
