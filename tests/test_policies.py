"""Policies: tables pinned against torchvision's, sampling frequencies, dispatch, speed shape.

The statistical tests draw with fixed keys and accept at a significance of 1e-6: a correct
sampler fails one of them with probability about 1e-6 per test (chi-square goodness of fit for
op and bin frequencies, binomial bounds for signs and application probabilities,
Kolmogorov-Smirnov for continuous magnitudes and mixing weights).
"""

import fractions
import math
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxreg.augment import _policies as pol

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALPHA = 1e-6  # significance of every statistical test below
N = 20_000  # draws per statistical test


# --------------------------------------------------------------------------------------------
# torchvision's augmentation spaces, transcribed from torchvision.transforms.v2._auto_augment
# (0.15 and later; v1's transforms.autoaugment has the same entries, Solarize on 255 -> 0).
# Each entry: op -> (magnitudes for (bins, height, width), signed).
# --------------------------------------------------------------------------------------------


def _linspace(last, first=0.0):
  return lambda b, h, w: np.linspace(first, last, b)


def _posterize(start, span):
  return lambda b, h, w: np.round(start - np.arange(b) / ((b - 1) / span))


def _enhancers(last):
  return {name: (_linspace(last), True) for name in ("Brightness", "Color", "Contrast",
                                                      "Sharpness")}


NONE = (None, False)
TORCHVISION = {
    "rand_augment": {
        "Identity": NONE,
        "ShearX": (_linspace(0.3), True), "ShearY": (_linspace(0.3), True),
        "TranslateX": (lambda b, h, w: np.linspace(0, 150 / 331 * w, b), True),
        "TranslateY": (lambda b, h, w: np.linspace(0, 150 / 331 * h, b), True),
        "Rotate": (_linspace(30.0), True),
        **_enhancers(0.9),
        "Posterize": (_posterize(8, 4), False),
        "Solarize": (_linspace(0.0, 1.0), False),
        "AutoContrast": NONE, "Equalize": NONE,
    },
    "trivial_augment_wide": {
        "Identity": NONE,
        "ShearX": (_linspace(0.99), True), "ShearY": (_linspace(0.99), True),
        "TranslateX": (_linspace(32.0), True), "TranslateY": (_linspace(32.0), True),
        "Rotate": (_linspace(135.0), True),
        **_enhancers(0.99),
        "Posterize": (_posterize(8, 6), False),
        "Solarize": (_linspace(0.0, 1.0), False),
        "AutoContrast": NONE, "Equalize": NONE,
    },
    "aug_mix": {
        "ShearX": (_linspace(0.3), True), "ShearY": (_linspace(0.3), True),
        "TranslateX": (lambda b, h, w: np.linspace(0, w / 3, b), True),
        "TranslateY": (lambda b, h, w: np.linspace(0, h / 3, b), True),
        "Rotate": (_linspace(30.0), True),
        "Posterize": (_posterize(4, 4), False),
        "Solarize": (_linspace(0.0, 1.0), False),
        "AutoContrast": NONE, "Equalize": NONE,
        **_enhancers(0.9),
    },
}
TORCHVISION["auto_augment"] = {**{k: v for k, v in TORCHVISION["rand_augment"].items()
                                  if k != "Identity"}, "Invert": NONE}
SPACES = {"rand_augment": pol.RAND_AUGMENT, "trivial_augment_wide": pol.TRIVIAL_AUGMENT_WIDE,
          "auto_augment": pol.AUTO_AUGMENT, "aug_mix": pol.AUG_MIX_ALL}
# torchvision applies `int(magnitude)` to translations: truncation toward zero
TRUNCATED = {"TranslateX", "TranslateY"}


@pytest.mark.parametrize("policy", sorted(SPACES))
@pytest.mark.parametrize(("bins", "height", "width"), [(31, 224, 224), (10, 32, 48),
                                                       (11, 331, 200)])
def test_space_matches_torchvision(policy, bins, height, width):
  expected = TORCHVISION[policy]
  space = SPACES[policy]
  assert [r.op for r in space] == list(expected), "same ops in torchvision's order"
  tab = pol.table(space, height, width)
  for index, r in enumerate(space):
    fn, signed = expected[r.op]
    assert bool(tab.signed[index]) is signed, r.op
    levels = jnp.arange(bins, dtype=jnp.float32)
    ops, values = pol.magnitude(tab, index, levels / (bins - 1), jnp.zeros(bins, bool))
    assert (np.asarray(ops) == pol.OPS.index(r.op)).all()
    if fn is None:
      np.testing.assert_array_equal(values, 0.0)
      continue
    want = fn(bins, height, width)
    if r.op in TRUNCATED:
      np.testing.assert_array_equal(values, np.trunc(want))
    else:
      np.testing.assert_allclose(values, want, rtol=1e-6, atol=1e-6)
    _, negated = pol.magnitude(tab, index, levels / (bins - 1), jnp.ones(bins, bool))
    np.testing.assert_array_equal(negated, -np.asarray(values) if signed else values)


def test_auto_augment_sub_policies_are_torchvisions():
  # Spot checks against torchvision's lists (first and last sub-policy of each policy) and
  # their shape: 25 sub-policies of two steps with probabilities in [0, 1].
  checks = {"imagenet": ((("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
                         (("Equalize", 0.8, None), ("Equalize", 0.6, None))),
            "cifar10": ((("Invert", 0.1, None), ("Contrast", 0.2, 6)),
                        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None))),
            "svhn": ((("ShearX", 0.9, 4), ("Invert", 0.2, None)),
                     (("ShearX", 0.7, 2), ("Invert", 0.1, None)))}
  assert sorted(pol.AUTO_AUGMENT_POLICIES) == sorted(checks)
  names = {r.op for r in pol.AUTO_AUGMENT}
  for policy, (first, last) in checks.items():
    subs = pol.AUTO_AUGMENT_POLICIES[policy]
    assert len(subs) == 25
    assert (subs[0], subs[-1]) == (first, last)
    for sub in subs:
      assert len(sub) == 2
      for op, p, level in sub:
        assert op in names
        assert 0 <= p <= 1
        assert (level is None) == (TORCHVISION["auto_augment"][op][0] is None)
        assert level is None or 0 <= level < pol.AUTO_AUGMENT_BINS


# --------------------------------------------------------------------------------------------
# The documented table
# --------------------------------------------------------------------------------------------

DOC_COLUMNS = ("rand_augment", "trivial_augment_wide", "auto_augment", "aug_mix")


def _number(text):
  return float(fractions.Fraction(text.strip()))


def _doc_table():
  """{policy: {op: (first, last, per, signed, all_ops_only) or None}} from docs/policies.md."""
  text = (ROOT / "docs" / "policies.md").read_text()
  rows = [line for line in text.splitlines()
          if line.startswith("| `") and ("→" in line or "yes" in line)]
  table = {policy: {} for policy in DOC_COLUMNS}
  for line in rows:
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    op, *policies, sign = cells
    op = op.strip("`")
    for policy, cell in zip(DOC_COLUMNS, policies, strict=True):
      if cell == "—":
        continue
      all_ops_only = "(all_ops)" in cell
      cell = cell.replace("(all_ops)", "").strip()
      if cell == "yes":
        table[policy][op] = (0.0, 0.0, "", False, all_ops_only)
        continue
      first, last = cell.split("→")
      per = ""
      match = re.fullmatch(r"(.*?)\s*([WH])", last.strip())
      if match:
        last, per = match.groups()
      table[policy][op] = (_number(first), _number(last), per, sign == "±", all_ops_only)
  return table


def test_documented_table_is_the_implemented_one():
  table = _doc_table()
  for policy, space in SPACES.items():
    documented = table[policy]
    assert sorted(documented) == sorted(r.op for r in space), policy
    for r in space:
      first, last, per, signed, all_ops_only = documented[r.op]
      assert (first, per, signed) == (r.first, r.per, r.signed), (policy, r.op)
      assert math.isclose(last, r.last, rel_tol=1e-12), (policy, r.op)
      if policy == "aug_mix":
        assert all_ops_only == (r not in pol.AUG_MIX), r.op


# --------------------------------------------------------------------------------------------
# Sampling statistics
# --------------------------------------------------------------------------------------------


def _keys(seed, n=N):
  return jax.random.split(jax.random.key(seed), n)


def _chi_square_ok(counts, probabilities):
  counts = np.asarray(counts, np.float64)
  expected = counts.sum() * np.asarray(probabilities, np.float64)
  keep = expected > 0
  assert counts[~keep].sum() == 0, "a count where the probability is zero"
  statistic = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
  bound = stats.chi2.isf(ALPHA, keep.sum() - 1)
  assert statistic < bound, (statistic, bound, counts, expected)


def _binomial_ok(successes, trials, p):
  lo, hi = stats.binom.ppf(ALPHA / 2, trials, p), stats.binom.isf(ALPHA / 2, trials, p)
  assert lo <= successes <= hi, (successes, trials, p, lo, hi)


def _ks_ok(samples, cdf):
  statistic = stats.kstest(np.asarray(samples, np.float64), cdf).statistic
  # Kolmogorov's asymptotic bound: P(sqrt(n) D > c) <= 2 exp(-2 c^2)
  bound = math.sqrt(-0.5 * math.log(ALPHA / 2) / len(samples))
  assert statistic < bound, (statistic, bound)


def _linear_levels(tab, ops, values, num_bins):
  """The bin (a real number) each slot of a linear op from 0 was drawn at, where the magnitude
  tells it: shears, rotations and the enhancers (not rounded, truncated or without range)."""
  ops, values = np.asarray(ops).ravel(), np.asarray(values).ravel()
  last = dict(zip(tab.ids.tolist(), tab.last.tolist(), strict=True))
  first = dict(zip(tab.ids.tolist(), tab.first.tolist(), strict=True))
  linear = [i for i in last if first[i] == 0 and last[i] != 0 and i not in pol._TRANSLATE]
  mask = np.isin(ops, linear)
  scale = np.array([last.get(i, 1.0) for i in ops[mask]])
  return np.abs(values[mask]) / scale * (num_bins - 1), ops[mask], values[mask]


def test_rand_augment_ops_signs_and_fixed_magnitude():
  tab = pol.table(pol.RAND_AUGMENT, 224, 224)
  ops, values = jax.vmap(lambda k: pol.draw_rand_augment(k, tab, 2, 9, 31, 0.0))(_keys(0))
  assert ops.shape == values.shape == (N, 2)
  for slot in range(2):
    _chi_square_ok(np.bincount(ops[:, slot], minlength=len(tab.ids)),
                   np.full(len(tab.ids), 1 / len(tab.ids)))
  # Without noise every magnitude is the table's value at bin 9, with a fair sign.
  levels, _, linear_values = _linear_levels(tab, ops, values, 31)
  np.testing.assert_allclose(levels, 9.0, rtol=1e-5)
  _binomial_ok(int((linear_values < 0).sum()), linear_values.size, 0.5)
  posterize = np.asarray(values)[np.asarray(ops) == pol.OPS.index("Posterize")]
  np.testing.assert_array_equal(posterize, np.round(8 - 9 * 4 / 30))  # 7 bits
  translate = np.abs(np.asarray(values)[np.asarray(ops) == pol.OPS.index("TranslateX")])
  np.testing.assert_array_equal(translate, np.trunc(150 / 331 * 224 * 9 / 30))
  # The two slots draw independently: the pair frequencies factorize.
  pairs = np.bincount(ops[:, 0] * 14 + ops[:, 1], minlength=14 * 14)
  _chi_square_ok(pairs, np.full(14 * 14, 1 / 196))


@pytest.mark.parametrize(("level", "std"), [(9, 0.5), (2, 3.0), (29, 4.0)])
def test_rand_augment_magnitude_std_is_a_clipped_normal(level, std):
  tab = pol.table(pol.RAND_AUGMENT, 224, 224)
  ops, values = jax.vmap(lambda k: pol.draw_rand_augment(k, tab, 1, level, 31, std))(_keys(1))
  levels, _, _ = _linear_levels(tab, ops, values, 31)
  normal = stats.norm(level, std)
  # Clipped to [0, 30]: atoms at both ends (binomial), a truncated normal between (KS).
  low, high = normal.cdf(0), normal.sf(30)
  _binomial_ok(int((levels <= 1e-6).sum()), levels.size, low)
  _binomial_ok(int((levels >= 30 - 1e-6).sum()), levels.size, high)
  inside = levels[(levels > 1e-6) & (levels < 30 - 1e-6)]
  _ks_ok(inside, lambda x: (normal.cdf(x) - low) / (1 - low - high))


def test_rand_augment_magnitude_std_inf_is_uniform_up_to_magnitude():
  tab = pol.table(pol.RAND_AUGMENT, 224, 224)
  ops, values = jax.vmap(lambda k: pol.draw_rand_augment(k, tab, 1, 9, 31, math.inf))(_keys(2))
  levels, _, _ = _linear_levels(tab, ops, values, 31)
  _ks_ok(levels, stats.uniform(0, 9).cdf)


def test_trivial_augment_wide_ops_bins_and_signs_are_uniform():
  tab = pol.table(pol.TRIVIAL_AUGMENT_WIDE, 224, 224)
  ops, values = jax.vmap(lambda k: pol.draw_trivial_augment_wide(k, tab, 31))(_keys(3))
  assert ops.shape == values.shape == (N, 1)
  _chi_square_ok(np.bincount(ops[:, 0], minlength=14), np.full(14, 1 / 14))
  levels, _, linear_values = _linear_levels(tab, ops, values, 31)
  bins = np.rint(levels).astype(int)
  np.testing.assert_allclose(levels, bins, atol=1e-3)  # whole bins only
  _chi_square_ok(np.bincount(bins, minlength=31), np.full(31, 1 / 31))
  _binomial_ok(int((linear_values < 0).sum()), int((linear_values != 0).sum()), 0.5)


@pytest.mark.parametrize("policy", sorted(pol.AUTO_AUGMENT_POLICIES))
def test_auto_augment_step_frequencies(policy):
  tab = pol.table(pol.AUTO_AUGMENT, 32, 32)
  ops, values = jax.vmap(lambda k: pol.draw_auto_augment(k, tab, policy))(_keys(4))
  ops, values = np.asarray(ops), np.asarray(values)
  subs = pol.AUTO_AUGMENT_POLICIES[policy]
  for step in range(2):
    # P(op o at this step) = sum over sub-policies naming o of p / 25; Identity gets the rest
    expected = np.zeros(len(pol.OPS))
    allowed = {i: {0.0} for i in range(len(pol.OPS))}
    for sub in subs:
      op, p, level = sub[step]
      o = pol.OPS.index(op)
      expected[o] += p / len(subs)
      expected[pol.IDENTITY] += (1 - p) / len(subs)
      fn, signed = TORCHVISION["auto_augment"][op]
      if fn is not None:
        v = fn(10, 32, 32)[level]
        v = np.trunc(v) if op in TRUNCATED else v
        allowed[o] |= {float(np.float32(v)), float(np.float32(-v if signed else v))}
    _chi_square_ok(np.bincount(ops[:, step], minlength=len(pol.OPS)), expected)
    for o in np.unique(ops[:, step]):
      got = set(values[ops[:, step] == o, step].tolist())
      assert all(min(abs(g - a) for a in allowed[o]) < 1e-5 for g in got), (pol.OPS[o], got)


@pytest.mark.parametrize(("depth", "severity", "alpha"), [(-1, 3, 1.0), (2, 10, 0.5)])
def test_aug_mix_draws(depth, severity, alpha):
  tab = pol.table(pol.AUG_MIX_ALL, 32, 32)
  width = 3
  ops, values, w_image, w_chains = jax.vmap(
      lambda k: pol.draw_aug_mix(k, tab, width, depth, severity, alpha))(_keys(5))
  slots = 3 if depth < 0 else depth
  assert ops.shape == values.shape == (N, width, slots)
  ops = np.asarray(ops)
  # AugMix has no Identity: the active steps of a chain are its non-Identity ones, first.
  active = ops != pol.IDENTITY
  assert (np.diff(active.astype(int), axis=-1) <= 0).all(), "Identity only after the last op"
  lengths = active.sum(-1).ravel()
  if depth < 0:
    _chi_square_ok(np.bincount(lengths, minlength=4), [0, 1 / 3, 1 / 3, 1 / 3])
  else:
    assert (lengths == depth).all()
  k = len(tab.ids)
  _chi_square_ok(np.bincount(ops[active], minlength=len(pol.OPS))[tab.ids], np.full(k, 1 / k))
  levels, _, _ = _linear_levels(tab, ops[active], np.asarray(values)[active], pol.AUG_MIX_BINS)
  bins = np.rint(levels).astype(int)
  np.testing.assert_allclose(levels, bins, atol=1e-3)
  _chi_square_ok(np.bincount(bins, minlength=severity), np.full(severity, 1 / severity))
  # Weights: 1 - m for the image with m ~ Beta(alpha, alpha); the chains share m by a
  # Dirichlet(alpha, ..., alpha), whose first marginal is Beta(alpha, (width - 1) alpha).
  w_image, w_chains = np.asarray(w_image, np.float64), np.asarray(w_chains, np.float64)
  np.testing.assert_allclose(w_image + w_chains.sum(-1), 1.0, atol=1e-5)
  _ks_ok(w_image, stats.beta(alpha, alpha).cdf)
  share = w_chains[:, 0] / np.maximum(1 - w_image, 1e-30)
  _ks_ok(share[1 - w_image > 1e-6], stats.beta(alpha, (width - 1) * alpha).cdf)
