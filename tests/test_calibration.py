"""examples/calibration.py: accuracy, NLL, ECE and reliability bins against hand-computed values
and a float64 NumPy loop written from the definitions."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from examples import calibration as cal


def _reference_bins(probs, labels, num_bins):
  """Float64, one example at a time: bin m holds confidences in ((m - 1) / M, m / M]."""
  probs = np.asarray(probs, np.float64)
  count, conf, hits = np.zeros(num_bins), np.zeros(num_bins), np.zeros(num_bins)
  edges = np.linspace(0, 1, num_bins + 1)
  for p, y in zip(probs, labels, strict=True):
    c = p.max()
    m = next(i for i in range(num_bins) if edges[i] < c <= edges[i + 1])
    count[m] += 1
    conf[m] += c
    hits[m] += p.argmax() == y
  safe = np.maximum(count, 1)
  return count, conf / safe, hits / safe


def _reference_ece(probs, labels, num_bins=15):
  count, conf, acc = _reference_bins(probs, labels, num_bins)
  return float(np.sum(count / len(labels) * np.abs(acc - conf)))


def _random_set(seed, n=500, classes=10):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(n, classes)) * rng.uniform(0.5, 4.0, size=(n, 1))
  probs = np.exp(logits - logits.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  return probs.astype(np.float32), rng.integers(0, classes, n).astype(np.int32)


def test_perfectly_calibrated_set_has_ece_zero():
  # 4 examples at confidence 0.75 with 3 right, 5 at 0.4 (3 classes) with 2 right.
  probs = np.array([[0.75, 0.25, 0.0]] * 4 + [[0.4, 0.35, 0.25]] * 5, np.float32)
  labels = np.array([0, 0, 0, 1, 0, 0, 1, 2, 2], np.int32)
  assert float(cal.expected_calibration_error(probs, labels)) == pytest.approx(0.0, abs=1e-7)
  bins = cal.reliability_bins(probs, labels)
  assert bins.count.sum() == 9
  np.testing.assert_allclose(bins.accuracy, bins.confidence, atol=1e-7)


@pytest.mark.parametrize(("confidence", "right"), [(0.9, 7), (0.6, 10), (0.3, 0), (1.0, 3)])
def test_constant_confidence_gives_the_gap_to_accuracy(confidence, right):
  rest = (1 - confidence) / 3
  probs = np.tile(np.array([confidence, rest, rest, rest], np.float32), (10, 1))
  if confidence < 0.5:  # still the largest of four? make it so
    probs = np.tile(np.array([confidence, 0.25, 0.25, 0.2], np.float32), (10, 1))
  labels = np.array([0] * right + [1] * (10 - right), np.int32)
  expected = abs(float(np.float32(confidence)) - right / 10)
  assert float(cal.expected_calibration_error(probs, labels)) == pytest.approx(expected, abs=1e-6)


def test_hand_computed_two_bins():
  # M = 2: bin (0, .5] gets the two 0.5s (one right), bin (.5, 1] gets 0.9 (wrong) and 0.7
  # (right). ECE = 2/4 |0.5 - 0.5| + 2/4 |0.5 - 0.8| = 0.15.
  probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.3, 0.7]], np.float32)
  labels = np.array([0, 1, 1, 1], np.int32)
  bins = cal.reliability_bins(probs, labels, num_bins=2)
  assert bins.count.tolist() == [2, 2]
  np.testing.assert_allclose(bins.confidence, [0.5, 0.8], rtol=1e-6)
  np.testing.assert_allclose(bins.accuracy, [0.5, 0.5])
  assert float(cal.expected_calibration_error(probs, labels, num_bins=2)) == pytest.approx(0.15)


def test_bin_edges_are_closed_on_the_right():
  probs = np.array([[0.5, 0.5], [0.75, 0.25], [1.0, 0.0]], np.float32)  # exact binary values
  bins = cal.reliability_bins(probs, np.zeros(3, np.int32), num_bins=4)
  assert bins.count.tolist() == [0, 1, 1, 1]  # 0.5 in (.25, .5], 0.75 in (.5, .75], 1 in (.75, 1]
  assert bins.confidence.tolist() == [0.0, 0.5, 0.75, 1.0]  # empty bins hold 0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_bins", [1, 10, 15])
def test_against_float64_reference(seed, num_bins):
  probs, labels = _random_set(seed)
  count, conf, acc = _reference_bins(probs, labels, num_bins)
  bins = cal.reliability_bins(probs, labels, num_bins=num_bins)
  np.testing.assert_array_equal(bins.count, count)
  np.testing.assert_allclose(bins.confidence, conf, atol=1e-6)
  np.testing.assert_allclose(bins.accuracy, acc, atol=1e-6)
  assert float(cal.expected_calibration_error(probs, labels, num_bins=num_bins)) == (
      pytest.approx(_reference_ece(probs, labels, num_bins), abs=1e-6))
  p64 = probs.astype(np.float64)
  assert float(cal.nll(probs, labels)) == pytest.approx(
      -np.mean(np.log(p64[np.arange(len(labels)), labels])), rel=1e-5)
  assert float(cal.accuracy(probs, labels)) == pytest.approx(np.mean(p64.argmax(1) == labels))


def test_accuracy_and_nll_against_scikit_learn():
  metrics = pytest.importorskip("sklearn.metrics")
  probs, labels = _random_set(3)
  p64 = probs.astype(np.float64)
  p64 /= p64.sum(1, keepdims=True)
  assert float(cal.accuracy(probs, labels)) == pytest.approx(
      metrics.accuracy_score(labels, p64.argmax(1)))
  assert float(cal.nll(probs, labels)) == pytest.approx(
      metrics.log_loss(labels, p64, labels=np.arange(10)), rel=1e-5)


def test_nll_of_an_underflowed_probability_is_capped_not_infinite():
  probs = jnp.array([[1.0, 0.0], [0.5, 0.5]])
  value = float(cal.nll(probs, jnp.array([1, 0])))
  tiny = float(jnp.finfo(jnp.float32).tiny)
  assert value == pytest.approx((-np.log(tiny) - np.log(0.5)) / 2, rel=1e-6)


def test_jit_and_vmap_over_seeds_equal_one_call_per_seed():
  sets = [_random_set(s, n=200) for s in range(3)]
  probs = jnp.stack([p for p, _ in sets])
  labels = sets[0][1]
  for fn in (cal.accuracy, cal.nll, cal.expected_calibration_error):
    eager = [float(fn(p, labels)) for p in probs]
    np.testing.assert_allclose(jax.jit(jax.vmap(fn, in_axes=(0, None)))(probs, labels), eager,
                               rtol=1e-6)
  bins = jax.jit(jax.vmap(cal.reliability_bins, in_axes=(0, None)))(probs, labels)
  assert bins.count.shape == (3, cal.NUM_BINS)
  np.testing.assert_array_equal(bins.count[1], cal.reliability_bins(probs[1], labels).count)


def test_traced_labels_out_of_range_give_nan_not_a_wrong_number():
  probs = jnp.full((3, 4), 0.25)
  for fn in (cal.accuracy, cal.nll, cal.expected_calibration_error):
    assert np.isnan(float(jax.jit(fn)(probs, jnp.array([0, 1, 4]))))
  bins = jax.jit(cal.reliability_bins)(probs, jnp.array([0, -1, 2]))
  assert np.all(np.isnan(bins.accuracy))


@pytest.mark.parametrize("fn", [cal.accuracy, cal.nll, cal.expected_calibration_error,
                                cal.reliability_bins])
def test_bad_inputs(fn):
  name = fn.__name__
  good = jnp.full((3, 2), 0.5)
  labels = jnp.array([0, 1, 0])
  with pytest.raises(TypeError, match=rf"{name}: `probs`.*dtype int32"):
    fn(jnp.ones((3, 2), jnp.int32), labels)
  with pytest.raises(TypeError, match=rf"{name}: `probs`"):
    fn(None, labels)
  with pytest.raises(ValueError, match=rf"{name}: `probs` must have shape \(N, C\).*\(3,\)"):
    fn(jnp.ones(3), labels)
  with pytest.raises(ValueError, match=rf"{name}: `probs`.*\(3, 1\)"):
    fn(jnp.ones((3, 1)), labels)
  with pytest.raises(TypeError, match=rf"{name}: `labels`.*float32"):
    fn(good, jnp.zeros(3))
  with pytest.raises(ValueError, match=rf"{name}: `labels` must have shape \(3,\).*\(2,\)"):
    fn(good, jnp.array([0, 1]))
  with pytest.raises(ValueError, match=rf"{name}: `labels` must lie in \[0, 1\].*\[0, 2\]"):
    fn(good, jnp.array([0, 2, 1]))


@pytest.mark.parametrize("fn", [cal.expected_calibration_error, cal.reliability_bins])
def test_bad_num_bins(fn):
  probs, labels = jnp.full((2, 2), 0.5), jnp.array([0, 1])
  with pytest.raises(ValueError, match=rf"{fn.__name__}: `num_bins` must be >= 1, got 0"):
    fn(probs, labels, num_bins=0)
  for bad in (1.5, True, None):
    with pytest.raises(TypeError, match=rf"{fn.__name__}: `num_bins` must be an int"):
      fn(probs, labels, num_bins=bad)


def test_docstring_examples_run():
  result = doctest.testmod(cal, optionflags=doctest.ELLIPSIS)
  assert result.attempted >= 4
  assert result.failed == 0
