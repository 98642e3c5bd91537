"""Policies: tables pinned against torchvision's, sampling frequencies, dispatch, speed shape.

The statistical tests draw with fixed keys and accept at a significance of 1e-6: a correct
sampler fails one of them with probability about 1e-6 per test (chi-square goodness of fit for
op and bin frequencies, binomial bounds for signs and application probabilities,
Kolmogorov-Smirnov for continuous magnitudes and mixing weights).
"""

import contextlib
import fractions
import functools
import itertools
import math
import pathlib
import re
import typing

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
from conftest import compile_as_shipped, reuse_keys
from scipy import stats
from x64 import enable_x64

import jaxreg as jr
from jaxreg import _backend
from jaxreg.augment import _aug_mix
from jaxreg.augment import _policies as pol
from jaxreg.augment import _policy_space as ps

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
SPACES = {"rand_augment": ps.RAND_AUGMENT, "trivial_augment_wide": ps.TRIVIAL_AUGMENT_WIDE,
          "auto_augment": ps.AUTO_AUGMENT, "aug_mix": ps.AUG_MIX_ALL}
# torchvision applies `int(magnitude)` to translations: truncation toward zero
TRUNCATED = {"TranslateX", "TranslateY"}


@pytest.mark.parametrize("policy", sorted(SPACES))
@pytest.mark.parametrize(("bins", "height", "width"), [(31, 224, 224), (10, 32, 48),
                                                       (11, 331, 200)])
def test_space_matches_torchvision(policy, bins, height, width):
  expected = TORCHVISION[policy]
  space = SPACES[policy]
  assert [r.op for r in space] == list(expected), "same ops in torchvision's order"
  tab = ps.table(space, height, width, bins)
  for index, r in enumerate(space):
    fn, signed = expected[r.op]
    assert bool(tab.signed[index]) is signed, r.op
    levels = jnp.arange(bins, dtype=jnp.float32)
    ops, values = ps.op_magnitude(tab, index, levels, jnp.zeros(bins, bool))
    assert (np.asarray(ops) == ps.OPS.index(r.op)).all()
    if fn is None:
      np.testing.assert_array_equal(values, 0.0)
      continue
    want = fn(bins, height, width)
    if r.op in TRUNCATED:
      # Where the exact magnitude is a whole number (200 / 3 * 9 / 10 = 60), float32 lands on
      # either side of it, and truncation gives that number or one less; torchvision's own
      # float32 linspace gives 59.999998 -> 59 there. Elsewhere truncation must agree exactly.
      whole = np.abs(want - np.round(want)) < 1e-4
      np.testing.assert_array_equal(np.asarray(values)[~whole], np.trunc(want)[~whole])
      assert np.isin(np.asarray(values)[whole] - np.round(want)[whole], (-1.0, 0.0)).all()
    else:
      np.testing.assert_allclose(values, want, rtol=1e-6, atol=1e-6)
    _, negated = ps.op_magnitude(tab, index, levels, jnp.ones(bins, bool))
    np.testing.assert_array_equal(negated, -np.asarray(values) if signed else values)


# Entries of torchvision's tables where the last bit decides an outcome: a solarize threshold at
# a grey level, a translation at a whole pixel. Computed once with torchvision.transforms.v2
# (x86, AVX-512 build) as ``float(torch.linspace(1.0, 0.0, 31)[bin])`` and
# ``float(torch.linspace(0.0, 32.0, 31)[bin])``; test_tables_are_torchvisions_where_installed
# compares whole tables where torchvision is installed.
TORCHVISION_ENTRIES = [
    # (space, op, bins, bin, torchvision's value)
    ("rand_augment", "Solarize", 31, 16, 0.46666669845581055),  # just above 119 / 255
    ("rand_augment", "Solarize", 31, 18, 0.40000003576278687),  # just above 102 / 255
    ("rand_augment", "Solarize", 31, 24, 0.20000001788139343),  # just above 51 / 255
    ("trivial_augment_wide", "Solarize", 31, 16, 0.46666669845581055),
    ("trivial_augment_wide", "TranslateX", 31, 15, 15.999999046325684),  # int() gives 15
    ("trivial_augment_wide", "TranslateY", 31, 15, 15.999999046325684),
    ("trivial_augment_wide", "TranslateX", 31, 16, 17.066665649414062),
]


@pytest.mark.parametrize(("policy", "op", "bins", "level", "want"), TORCHVISION_ENTRIES)
def test_table_entries_are_torchvisions_where_the_last_bit_matters(policy, op, bins, level,
                                                                   want):
  space = SPACES[policy]
  tab = ps.table(space, 224, 224, bins)
  index = [r.op for r in space].index(op)
  assert float(tab.values[index, level]) == want
  _, value = ps.op_magnitude(tab, index, jnp.float32(level), False)
  np.testing.assert_array_equal(value, np.trunc(want) if op in TRUNCATED else np.float32(want))


def test_solarize_at_a_level_and_translate_at_a_whole_pixel_apply_torchvisions_entries():
  # What the entries above do to an image, through the policies' ops, on a ramp of every level,
  # float (q / 255 as NumPy and torchvision divide) and uint8: Solarize at bin 16 of 31 inverts
  # the levels from 120 up, not 119 (torchvision's threshold is just above 119 / 255), and
  # TrivialAugmentWide's TranslateX at bin 15 moves by 15 pixels.
  levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=-1)
  as_float = levels.astype(np.float32) / np.float32(255)
  tab = ps.table(ps.TRIVIAL_AUGMENT_WIDE, 16, 16, 31)
  solarize = ps.op_magnitude(tab, [r.op for r in ps.TRIVIAL_AUGMENT_WIDE].index("Solarize"),
                              jnp.float32(16), False)
  for image in (jnp.asarray(levels), jnp.asarray(as_float)):
    out = pol.apply(image, solarize[0][None, None], solarize[1][None, None], FILL, "nearest")[0]
    q = np.round(np.asarray(out, np.float64) * (255 if image.dtype != jnp.uint8 else 1))
    want = np.where(levels >= 120, 255 - levels, levels)
    np.testing.assert_array_equal(q, want, err_msg=str(image.dtype))
  translate = ps.op_magnitude(
      tab, [r.op for r in ps.TRIVIAL_AUGMENT_WIDE].index("TranslateX"), jnp.float32(15), False)
  assert float(translate[1]) == 15.0
  image = jnp.asarray(as_float)
  out = pol.apply(image, translate[0][None, None], translate[1][None, None], FILL, "nearest")[0]
  np.testing.assert_array_equal(out[:, 15:], image[:, :1])
  np.testing.assert_array_equal(out[:, :15], 0.0)


def test_tables_are_torchvisions_where_installed():
  """Every entry of every policy's table against torchvision.transforms.v2's, exactly; and what
  the draws make of them (truncated translations, rounded bits) for a few bin counts."""
  torch = pytest.importorskip("torch")
  aa = pytest.importorskip("torchvision.transforms.v2._auto_augment")
  if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
    pytest.skip("torch's linspace differs in the last bit without AVX2 (no fused multiply-add)")
  classes = {"rand_augment": aa.RandAugment, "trivial_augment_wide": aa.TrivialAugmentWide,
             "auto_augment": aa.AutoAugment, "aug_mix": aa.AugMix}
  for policy, space in SPACES.items():
    tv_space = classes[policy]._AUGMENTATION_SPACE
    for bins in (*range(2, 40), 64, 100, 255, 1024):
      for height, width in ((224, 224), (32, 48), (331, 200), (37, 61)):
        tab = ps.table(space, height, width, bins)
        wants = [tv_space[r.op][0](bins, height, width) for r in space]
        for index, (r, want) in enumerate(zip(space, wants, strict=True)):
          assert bool(tab.signed[index]) is tv_space[r.op][1]
          got = tab.values[index]
          if want is None:
            np.testing.assert_array_equal(got, 0.0)
          else:
            np.testing.assert_array_equal(np.round(got) if r.op == "Posterize" else got,
                                          want.numpy(), err_msg=f"{policy} {r.op} {bins}")
        if bins not in (10, 31) or height != 224:
          continue
        index, level = np.divmod(np.arange(len(space) * bins), bins)
        _, values = ps.op_magnitude(tab, index, level.astype(np.float32), False)
        for i, want in enumerate(wants):
          want = np.zeros(bins) if want is None else want.numpy()
          if space[i].op in TRUNCATED:
            want = np.trunc(want)  # torchvision's int(magnitude)
          np.testing.assert_array_equal(values[i * bins:(i + 1) * bins], want)


def test_auto_augment_sub_policies_are_torchvisions():
  # Spot checks against torchvision's lists (first and last sub-policy of each policy) and
  # their shape: 25 sub-policies of two steps with probabilities in [0, 1].
  checks = {"imagenet": ((("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
                         (("Equalize", 0.8, None), ("Equalize", 0.6, None))),
            "cifar10": ((("Invert", 0.1, None), ("Contrast", 0.2, 6)),
                        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None))),
            "svhn": ((("ShearX", 0.9, 4), ("Invert", 0.2, None)),
                     (("ShearX", 0.7, 2), ("Invert", 0.1, None)))}
  assert sorted(ps.AUTO_AUGMENT_POLICIES) == sorted(checks)
  # `policy`'s annotation and check name exactly the tables' policies, in their order.
  assert tuple(ps.AUTO_AUGMENT_POLICIES) == typing.get_args(ps.AutoAugmentPolicy)
  names = {r.op for r in ps.AUTO_AUGMENT}
  for policy, (first, last) in checks.items():
    subs = ps.AUTO_AUGMENT_POLICIES[policy]
    assert len(subs) == 25
    assert (subs[0], subs[-1]) == (first, last)
    for sub in subs:
      assert len(sub) == 2
      for op, p, level in sub:
        assert op in names
        assert 0 <= p <= 1
        assert (level is None) == (TORCHVISION["auto_augment"][op][0] is None)
        assert level is None or 0 <= level < ps.AUTO_AUGMENT_BINS


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
        assert all_ops_only == (r not in ps.AUG_MIX), r.op


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
  linear = [i for i in last if first[i] == 0 and last[i] != 0 and i not in ps.TRANSLATE]
  mask = np.isin(ops, linear)
  scale = np.array([last.get(i, 1.0) for i in ops[mask]])
  return np.abs(values[mask]) / scale * (num_bins - 1), ops[mask], values[mask]


def test_rand_augment_ops_signs_and_fixed_magnitude():
  tab = ps.table(ps.RAND_AUGMENT, 224, 224, 31)
  ops, values = jax.vmap(lambda k: ps.draw_rand_augment(k, tab, 2, 9, 31, 0.0))(_keys(0))
  assert ops.shape == values.shape == (N, 2)
  for slot in range(2):
    _chi_square_ok(np.bincount(ops[:, slot], minlength=len(tab.ids)),
                   np.full(len(tab.ids), 1 / len(tab.ids)))
  # Without noise every magnitude is the table's value at bin 9, with a fair sign.
  levels, _, linear_values = _linear_levels(tab, ops, values, 31)
  np.testing.assert_allclose(levels, 9.0, rtol=1e-5)
  _binomial_ok(int((linear_values < 0).sum()), linear_values.size, 0.5)
  posterize = np.asarray(values)[np.asarray(ops) == ps.OPS.index("Posterize")]
  np.testing.assert_array_equal(posterize, np.round(8 - 9 * 4 / 30))  # 7 bits
  translate = np.abs(np.asarray(values)[np.asarray(ops) == ps.OPS.index("TranslateX")])
  np.testing.assert_array_equal(translate, np.trunc(150 / 331 * 224 * 9 / 30))
  # The two slots draw independently: the pair frequencies factorize.
  pairs = np.bincount(ops[:, 0] * 14 + ops[:, 1], minlength=14 * 14)
  _chi_square_ok(pairs, np.full(14 * 14, 1 / 196))


@pytest.mark.parametrize(("level", "std"), [(9, 0.5), (2, 3.0), (29, 4.0)])
def test_rand_augment_magnitude_std_is_a_clipped_normal(level, std):
  tab = ps.table(ps.RAND_AUGMENT, 224, 224, 31)
  ops, values = jax.vmap(lambda k: ps.draw_rand_augment(k, tab, 1, level, 31, std))(_keys(1))
  levels, _, _ = _linear_levels(tab, ops, values, 31)
  normal = stats.norm(level, std)
  # Clipped to [0, 30]: atoms at both ends (binomial), a truncated normal between (KS).
  low, high = normal.cdf(0), normal.sf(30)
  _binomial_ok(int((levels <= 1e-6).sum()), levels.size, low)
  _binomial_ok(int((levels >= 30 - 1e-6).sum()), levels.size, high)
  inside = levels[(levels > 1e-6) & (levels < 30 - 1e-6)]
  _ks_ok(inside, lambda x: (normal.cdf(x) - low) / (1 - low - high))


def test_rand_augment_magnitude_std_inf_is_uniform_up_to_magnitude():
  tab = ps.table(ps.RAND_AUGMENT, 224, 224, 31)
  ops, values = jax.vmap(lambda k: ps.draw_rand_augment(k, tab, 1, 9, 31, math.inf))(_keys(2))
  levels, _, _ = _linear_levels(tab, ops, values, 31)
  _ks_ok(levels, stats.uniform(0, 9).cdf)


def test_trivial_augment_wide_ops_bins_and_signs_are_uniform():
  tab = ps.table(ps.TRIVIAL_AUGMENT_WIDE, 224, 224, 31)
  ops, values = jax.vmap(lambda k: ps.draw_trivial_augment_wide(k, tab, 31))(_keys(3))
  assert ops.shape == values.shape == (N, 1)
  _chi_square_ok(np.bincount(ops[:, 0], minlength=14), np.full(14, 1 / 14))
  levels, _, linear_values = _linear_levels(tab, ops, values, 31)
  bins = np.rint(levels).astype(int)
  np.testing.assert_allclose(levels, bins, atol=1e-3)  # whole bins only
  _chi_square_ok(np.bincount(bins, minlength=31), np.full(31, 1 / 31))
  _binomial_ok(int((linear_values < 0).sum()), int((linear_values != 0).sum()), 0.5)


@pytest.mark.parametrize("policy", sorted(ps.AUTO_AUGMENT_POLICIES))
def test_auto_augment_step_frequencies(policy):
  tab = ps.table(ps.AUTO_AUGMENT, 32, 32, ps.AUTO_AUGMENT_BINS)
  ops, values = jax.vmap(lambda k: ps.draw_auto_augment(k, tab, policy))(_keys(4))
  ops, values = np.asarray(ops), np.asarray(values)
  subs = ps.AUTO_AUGMENT_POLICIES[policy]
  for step in range(2):
    # P(op o at this step) = sum over sub-policies naming o of p / 25; Identity gets the rest
    expected = np.zeros(len(ps.OPS))
    allowed = {i: {0.0} for i in range(len(ps.OPS))}
    for sub in subs:
      op, p, level = sub[step]
      o = ps.OPS.index(op)
      expected[o] += p / len(subs)
      expected[ps.IDENTITY] += (1 - p) / len(subs)
      fn, signed = TORCHVISION["auto_augment"][op]
      if fn is not None:
        v = fn(10, 32, 32)[level]
        v = np.trunc(v) if op in TRUNCATED else v
        allowed[o] |= {float(np.float32(v)), float(np.float32(-v if signed else v))}
    _chi_square_ok(np.bincount(ops[:, step], minlength=len(ps.OPS)), expected)
    for o in np.unique(ops[:, step]):
      got = set(values[ops[:, step] == o, step].tolist())
      assert all(min(abs(g - a) for a in allowed[o]) < 1e-5 for g in got), (ps.OPS[o], got)


@pytest.mark.parametrize(("depth", "severity", "alpha"), [(-1, 3, 1.0), (2, 10, 0.5)])
def test_aug_mix_draws(depth, severity, alpha):
  tab = ps.table(ps.AUG_MIX_ALL, 32, 32, ps.AUG_MIX_BINS)
  width = 3
  ops, values, w_image, w_chains = jax.vmap(
      lambda k: ps.draw_aug_mix(k, tab, width, depth, severity, alpha))(_keys(5))
  slots = 3 if depth < 0 else depth
  assert ops.shape == values.shape == (N, width, slots)
  ops = np.asarray(ops)
  # AugMix has no Identity: the active steps of a chain are its non-Identity ones, first.
  active = ops != ps.IDENTITY
  assert (np.diff(active.astype(int), axis=-1) <= 0).all(), "Identity only after the last op"
  lengths = active.sum(-1).ravel()
  if depth < 0:
    _chi_square_ok(np.bincount(lengths, minlength=4), [0, 1 / 3, 1 / 3, 1 / 3])
  else:
    assert (lengths == depth).all()
  k = len(tab.ids)
  _chi_square_ok(np.bincount(ops[active], minlength=len(ps.OPS))[tab.ids], np.full(k, 1 / k))
  levels, _, _ = _linear_levels(tab, ops[active], np.asarray(values)[active], ps.AUG_MIX_BINS)
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


def test_draws_keep_their_dtypes_under_x64():
  # Under jax_enable_x64 jnp's default integers and floats are 64-bit: the draws still give
  # int32 ops and float32 magnitudes and mix no widths (the suite's strict promotion would
  # raise). Traced only.
  image = jnp.zeros((8, 8, 3), jnp.float32)
  with enable_x64(True):
    for fn in (A.rand_augment, A.trivial_augment_wide, A.auto_augment, A.aug_mix):
      params = jax.eval_shape(A.draw(fn), jax.random.key(0), image)
      assert params.ops.dtype == jnp.int32, fn.__name__
      assert params.magnitudes.dtype == jnp.float32, fn.__name__


def test_aug_mix_weights_at_a_small_alpha():
  # At alpha 0.01 the gammas underflow float32 and most weights sit within float32 rounding of
  # a vertex (the draw works in log space): still finite, in [0, 1] and summing to one, and
  # Beta(alpha, alpha) is symmetric: the image outweighs the chains half of the time.
  tab = ps.table(ps.AUG_MIX_ALL, 32, 32, ps.AUG_MIX_BINS)
  draws = jax.vmap(lambda k: ps.draw_aug_mix(k, tab, 3, 1, 3, 0.01))(_keys(6, n=4000))
  w_image, w_chains = draws[2], draws[3]
  assert w_image.dtype == w_chains.dtype == jnp.float32
  weights = np.concatenate([np.asarray(w_image)[:, None], np.asarray(w_chains)], axis=1)
  assert np.isfinite(weights).all()
  assert ((weights >= 0) & (weights <= 1)).all()
  np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
  _binomial_ok(int((weights[:, 0] > 0.5).sum()), len(weights), 0.5)


# --------------------------------------------------------------------------------------------
# Applying the drawn ops
# --------------------------------------------------------------------------------------------

A = jr.augment
IMAGE = jax.random.uniform(jax.random.key(10), (12, 14, 3))
FILL = jnp.zeros((), jnp.float32)
KEY = jax.random.key(0)
# Each op of the vocabulary as the public op it must be, at magnitude v (torchvision's
# _apply_op). Magnitudes below avoid sample points exactly on pixel boundaries.
PUBLIC = {
    "Identity": lambda x, v: x,
    "ShearX": lambda x, v: A.shear_x(x, v, interpolation="bilinear"),
    "ShearY": lambda x, v: A.shear_y(x, v, interpolation="bilinear"),
    "TranslateX": lambda x, v: A.translate_x(x, v, interpolation="bilinear"),
    "TranslateY": lambda x, v: A.translate_y(x, v, interpolation="bilinear"),
    "Rotate": lambda x, v: A.rotate(x, v, interpolation="bilinear"),
    "Brightness": lambda x, v: A.enhance_brightness(x, 1 + v),
    "Color": lambda x, v: A.enhance_color(x, 1 + v),
    "Contrast": lambda x, v: A.enhance_contrast(x, 1 + v),
    "Sharpness": lambda x, v: A.enhance_sharpness(x, 1 + v),
    "Posterize": lambda x, v: A.posterize(x, int(v)),
    "Solarize": lambda x, v: A.solarize(x, v),
    "AutoContrast": lambda x, v: A.autocontrast(x),
    "Equalize": lambda x, v: A.equalize(x),
    "Invert": lambda x, v: A.invert(x),
}
MAGNITUDES = {"Posterize": (3.0, 6.0), "Solarize": (0.37, 0.81), "TranslateX": (3.0, -5.0),
              "TranslateY": (-2.0, 4.0), "Rotate": (23.3, -71.7)}


# Compiled once for every op: the op and its magnitude are arguments.
SWITCHED = jax.jit(functools.partial(pol.switched, interpolation="bilinear"))
SELECTED = jax.jit(functools.partial(pol.selected, interpolation="bilinear"))
APPLIED = jax.jit(jax.vmap(lambda x, v, o: pol.apply(x, o, v, FILL, "bilinear")))


def test_public_table_covers_the_vocabulary():
  assert tuple(PUBLIC) == ps.OPS


@pytest.mark.parametrize("name", ps.OPS)
def test_each_op_is_the_public_op_on_both_paths(name):
  # The switch (one image, or a CPU loop) and the select form (accelerators) compute the op
  # torchvision's _apply_op names, through the public op; also under vmap, on any backend.
  op = ps.OPS.index(name)
  for v in MAGNITUDES.get(name, (0.2137, -0.4181)):
    want = PUBLIC[name](IMAGE, v)
    ops, values = jnp.array([[op]]), jnp.array([[v]], jnp.float32)
    np.testing.assert_allclose(SWITCHED(IMAGE, values, FILL, ops)[0], want, atol=1e-6)
    np.testing.assert_allclose(SELECTED(IMAGE, values, FILL, ops)[0], want, atol=1e-6)
    batch = APPLIED(jnp.stack([IMAGE, IMAGE]), jnp.stack([values, values]),
                    jnp.stack([ops, ops]))
    np.testing.assert_allclose(batch, jnp.stack([want, want])[:, None], atol=1e-6)


def _by_public_ops(image, ops, values):
  for o, v in zip(np.asarray(ops).tolist(), np.asarray(values).tolist(), strict=True):
    image = PUBLIC[ps.OPS[o]](image, v)
  return image


@pytest.mark.parametrize("seed", range(3))
def test_rand_augment_applies_its_draws_in_order(seed):
  key = jax.random.key(seed)
  tab = ps.table(ps.RAND_AUGMENT, *IMAGE.shape[:2], 31)
  with reuse_keys():
    ops, values = ps.draw_rand_augment(key, tab, 3, 13, 31, 1.5)
    got = jax.jit(functools.partial(A.rand_augment, num_ops=3, magnitude=13,
                                    magnitude_std=1.5, interpolation="bilinear"))(key, IMAGE)
  np.testing.assert_allclose(got, _by_public_ops(IMAGE, ops, values), atol=1e-5)


def test_aug_mix_is_the_documented_mixture():
  # The public parameters (draw) give the op bit for bit (apply), and mean what AugMixParams
  # documents: the image and its chains of public ops, mixed by the drawn weights.
  key = jax.random.key(4)
  with reuse_keys():
    params = A.draw(A.aug_mix)(key, IMAGE, width=2)
    got = A.aug_mix(key, IMAGE, width=2)
  np.testing.assert_array_equal(A.apply(params, IMAGE), got)
  chains = [np.asarray(_by_public_ops(IMAGE, o, v), np.float64)
            for o, v in zip(params.ops, params.magnitudes, strict=True)]
  want = float(params.image_weight) * np.asarray(IMAGE, np.float64) + sum(
      float(w) * c for w, c in zip(params.chain_weights, chains, strict=True))
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert float(got.min()) >= 0
  assert float(got.max()) <= 1


POLICIES = {
    # tests/test_params.py's options, so the suite compiles the batched program once; the
    # defaults are the tests' above
    "rand_augment": functools.partial(A.rand_augment, num_ops=3, magnitude_std=2.0),
    "trivial_augment_wide": A.trivial_augment_wide,
    "auto_augment": A.auto_augment,  # its SVHN table: the step-frequency tests above
    # two chains of one op, warped nearest: the default width, random depth and bilinear warp
    # are the tests' above
    "aug_mix": functools.partial(A.aug_mix, width=2, depth=1, interpolation="nearest"),
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_batched_policy_draws_per_example_in_both_forms(name):
  # Three images, as the uint8 test below and tests/test_params.py batch them: the same
  # batched program, compiled once for the suite (its compilation cache). Batched == one
  # image at a time (eager) is test_composition.py's row of each policy.
  policy = POLICIES[name]
  images = jnp.broadcast_to(IMAGE, (3, *IMAGE.shape))
  key = jax.random.key(7)
  with reuse_keys():
    jitted = jax.jit(A.batched(policy))(key, images)
    keys = jax.random.split(key, 3)
    # the accelerators' form, forced here: the same function
    vectorized = jax.jit(jax.vmap(lambda k, x: _vectorized(policy, k, x)))(keys, images)
  np.testing.assert_allclose(vectorized, jitted, atol=1e-5)
  # Same image, different keys: the examples differ (their own ops, magnitudes, signs).
  assert len({np.asarray(x).tobytes() for x in jitted}) >= 2, name
  assert jitted.shape == images.shape
  assert jitted.dtype == images.dtype
  assert float(jitted.min()) >= 0
  assert float(jitted.max()) <= 1


# AutoAugment's steps take a uint8 image through the same chain as RandAugment's (that it
# takes one: a row of tests/test_bad_inputs.py).
@pytest.mark.parametrize("name", sorted(set(POLICIES) - {"auto_augment"}))
def test_uint8_policy_is_the_float_policy_rounded_once(name):
  # Tolerance: none. A uint8 image runs the float policy on q / 255 and rounds to the nearest
  # level at the end: eager, jitted and batched (each example its own draws), and in the
  # accelerators' form.
  policy = POLICIES[name]
  levels = jnp.round(jnp.stack([IMAGE, 1 - IMAGE, IMAGE ** 2]) * 255).astype(jnp.uint8)
  # q / 255 correctly rounded, as NumPy (and torchvision) divide: XLA's division is one
  # rounding off on some levels, enough to cross a solarize threshold at a level.
  as_float = jnp.asarray(np.asarray(levels, np.float32) / np.float32(255))
  key = jax.random.key(11)
  with reuse_keys():
    want = jax.jit(A.batched(policy))(key, as_float)
    got = jax.jit(A.batched(policy))(key, levels)
    keys = jax.random.split(key, 3)
    eager = jnp.stack([policy(k, x) for k, x in zip(keys, levels, strict=True)])
    vectorized = jax.jit(jax.vmap(lambda k, x: _vectorized(policy, k, x)))(keys, levels)
  expected = np.round(np.clip(np.asarray(want, np.float64) * 255, 0, 255))
  for out in (got, eager, vectorized):
    assert out.dtype == jnp.uint8
    # float32 rounding of the scaled result can only matter at an exact half level
    ties = np.abs(np.asarray(want, np.float64) * 255 % 1 - 0.5) < 1e-3
    np.testing.assert_array_equal(np.asarray(out)[~ties], expected[~ties])
  assert len({np.asarray(x).tobytes() for x in got}) == 3


# One slot per example, each op at two magnitudes in its own unit (PolicyParams' attributes).
_EVERY_OP_AT = {"ShearX": (0.3, -0.5), "ShearY": (0.3, -0.5), "TranslateX": (5.0, -7.0),
                "TranslateY": (5.0, -7.0), "Rotate": (30.0, -100.0), "Brightness": (0.5, -0.7),
                "Color": (0.5, -0.7), "Contrast": (0.5, -0.7), "Sharpness": (0.9, -0.7),
                "Posterize": (3.0, 6.0), "Solarize": (0.4, 0.466)}


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_every_op_on_uint8_is_the_float_op_rounded_once(interpolation):
  # Tolerance: none. One slot (TrivialAugmentWide's form), whose switch on a CPU runs each op
  # on the levels in its own pass (the nearest warps and some level ops on the uint8 image):
  # each op, at a non-zero fill, on levels in [20, 230] (where autocontrast's uint8 kernel,
  # which truncates, differs from the float stretch rounded), batched and eager.
  ops, values = zip(*[(i, v) for i, name in enumerate(pol.OPS)
                      for v in _EVERY_OP_AT.get(name, (0.0,))], strict=True)
  n = len(ops)
  params = A.PolicyParams(ops=jnp.asarray(ops, jnp.int32)[:, None],
                          magnitudes=jnp.asarray(values, jnp.float32)[:, None],
                          fill=jnp.broadcast_to(jnp.asarray([0.2, 0.6, 1.0]), (n, 3)),
                          interpolation=interpolation)
  levels = jax.random.randint(jax.random.key(3), (n, 12, 14, 3), 20, 231).astype(jnp.uint8)
  as_float = jnp.asarray(np.asarray(levels, np.float32) / np.float32(255))
  batched_apply = jax.jit(jax.vmap(A.apply))
  want = np.asarray(batched_apply(params, as_float), np.float64) * 255
  expected = np.round(np.clip(want, 0, 255))
  ties = np.abs(want % 1 - 0.5) < 1e-3
  got = batched_apply(params, levels)
  eager = jnp.stack([A.apply(jax.tree.map(lambda a, i=i: a[i], params), levels[i])
                     for i in range(n)])
  for out in (got, eager):
    assert out.dtype == jnp.uint8
    np.testing.assert_array_equal(np.asarray(out)[~ties], expected[~ties])
  # the case the float stretch exists for: autocontrast moved levels
  autocontrast = ops.index(pol.OPS.index("AutoContrast"))
  assert not np.array_equal(np.asarray(got[autocontrast]), np.asarray(levels[autocontrast]))


def test_eager_batched_equals_jitted():
  images = jnp.stack([IMAGE, 1 - IMAGE, IMAGE ** 2])
  with reuse_keys():
    eager = A.batched(A.trivial_augment_wide)(KEY, images)
    jitted = jax.jit(A.batched(A.trivial_augment_wide))(KEY, images)
  np.testing.assert_allclose(eager, jitted, atol=1e-6)


@contextlib.contextmanager
def _accelerator_form():
  """The policies' accelerator form on any backend, traced afresh: `apply` runs unjitted, as
  its jit would hand back a trace of the CPU loop made earlier at the same shapes. Yields the
  calls of `selected` made inside, to assert that the form ran. (The photometric ops' own
  jitted forms may keep their traced CPU loops: the same function.)"""
  calls = []

  def selected(*args, **kwargs):
    calls.append(kwargs)
    return original_selected(*args, **kwargs)

  original_selected = pol.selected
  patches = [(_backend, "loop_on_cpu", lambda looped, vectorized, differentiable: vectorized),
             (pol, "apply", pol.apply.__wrapped__), (_aug_mix, "apply", pol.apply.__wrapped__),
             (pol, "selected", selected)]
  originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
  try:
    for module, name, value in patches:
      setattr(module, name, value)
    yield calls
  finally:
    for module, name, value in originals:
      setattr(module, name, value)


def _vectorized(policy, key, image):
  """``policy`` with the library's accelerator form on any backend."""
  with _accelerator_form() as calls:
    out = policy(key, image)
  assert calls, "the accelerator form did not run"
  return out


def test_policies_keep_half_precision_and_range():
  # Every op (rand_augment draws from all but Invert) and AugMix's mixing, in bfloat16.
  image = IMAGE.astype(jnp.bfloat16)
  for policy in (functools.partial(A.rand_augment, num_ops=3, magnitude=20),
                 functools.partial(A.aug_mix, width=2, depth=1)):
    with reuse_keys():
      out = jax.jit(A.batched(policy))(jax.random.key(3), jnp.stack([image] * 6))
    assert out.dtype == jnp.bfloat16
    assert float(out.min()) >= 0
    assert float(out.max()) <= 1


@pytest.mark.xla_schedule("docs/policies.md")
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the loop is the CPU schedule")
def test_batched_policy_is_a_loop_of_branches_on_the_cpu():
  # On a CPU each example runs only its drawn op: a while loop around a conditional, and no
  # image-sized select among op results.
  hlo = compile_as_shipped(jax.jit(A.batched(A.trivial_augment_wide)).lower(
      jax.random.key(0), jnp.zeros((4, 16, 16, 3)))).as_text()
  assert " conditional(" in hlo
  assert " while(" in hlo
  selects = [line for line in hlo.splitlines() if "f32[4,16,16,3]" in line and " select(" in line]
  assert not selects, selects


_LOOPING_OPS = (A.trivial_augment_wide, A.rand_augment, A.aug_mix, A.random_flip_left_right)


# A policy takes a uint8 image to floats and back to levels inside its per-example function:
# its loop is the float image's, with a uint8 result (the uint8 test above).
@pytest.mark.parametrize(("op", "dtype"), [
    *((op, "float32") for op in _LOOPING_OPS), (A.random_flip_left_right, "uint8"),
    (functools.partial(A.color_jitter, brightness=0.3, hue=0.1), "float32")])  # float only
def test_batched_ops_that_loop_on_the_cpu_take_an_empty_batch(op, dtype):
  # The CPU loop over the examples (`_backend.loop_on_cpu`) has no example to read its result's
  # shape from: it returns an empty batch of the per-example result's shape.
  images = jnp.zeros((0, 8, 8, 3), dtype)
  out = jax.jit(A.batched(op))(jax.random.key(0), images)
  assert out.shape == images.shape
  assert out.dtype == images.dtype


@pytest.mark.xla_schedule("docs/design/augmentation_backends.md")
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the loop is the CPU schedule")
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_batched_policy_writes_over_its_input_batch_on_the_cpu(dtype):
  # After a crop, whose batch nothing else reads, the policy's loop writes each example over
  # its image in that batch: the program makes no other batch-sized buffer (no zero-filled
  # output for the loop, as a scan's stacked output is, and no copy of the crop).
  def crop_then_policy(key, image):
    k_crop, k_policy = jax.random.split(key)
    return A.trivial_augment_wide(k_policy, A.random_crop(k_crop, image, 12))

  lowered = jax.jit(A.batched(crop_then_policy)).lower(jax.random.key(0),
                                                       jnp.zeros((4, 16, 16, 3), dtype))
  hlo = compile_as_shipped(lowered).as_text()
  entry = hlo[hlo.index("ENTRY"):]
  tag = {"uint8": "u8", "float32": "f32"}[dtype]
  batch = re.compile(rf"= {tag}\[4,(1,)?12,12,3\]\{{[\d,]+\}} (\S+)\(")
  batches = [(line, m.group(2)) for line in entry.splitlines() if (m := batch.search(line))]
  made = [op for _, op in batches]
  filled = [line for line, _ in batches if "broadcast" in line or " copy(" in line]
  assert not filled, filled
  assert made.count("fusion") == 1, made  # the crop
  assert "while" in entry


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: A.rand_augment(KEY, IMAGE, num_ops=-1), ValueError, "num_ops.*>= 0.*-1"),
    (lambda: A.rand_augment(KEY, IMAGE, num_ops=1.5), TypeError, "num_ops"),
    (lambda: A.rand_augment(KEY, IMAGE, magnitude=31), ValueError, r"magnitude.*\[0, 30\]"),
    (lambda: A.rand_augment(KEY, IMAGE, magnitude=-1), ValueError, "magnitude"),
    (lambda: A.rand_augment(KEY, IMAGE, magnitude=5, num_magnitude_bins=5), ValueError,
     r"magnitude.*\[0, 4\]"),
    (lambda: A.rand_augment(KEY, IMAGE, num_magnitude_bins=1), ValueError,
     r"num_magnitude_bins.*in \[2, 1024\]"),
    (lambda: A.rand_augment(KEY, IMAGE, magnitude_std=-0.5), ValueError, "magnitude_std"),
    (lambda: A.rand_augment(KEY, IMAGE, magnitude_std=math.nan), ValueError, "magnitude_std"),
    (lambda: A.rand_augment(KEY, IMAGE, interpolation="cubic"), ValueError,
     "interpolation.*nearest.*bilinear"),
    (lambda: A.rand_augment(KEY, IMAGE, fill=(0.0, 1.0)), ValueError, "fill"),
    (lambda: A.trivial_augment_wide(KEY, IMAGE, num_magnitude_bins=0), ValueError,
     "num_magnitude_bins"),
    (lambda: A.trivial_augment_wide(KEY, IMAGE[..., :1]), ValueError, "RGB"),
    (lambda: A.trivial_augment_wide(KEY, IMAGE[None]), ValueError, "HWC"),
    (lambda: A.trivial_augment_wide(KEY, (IMAGE * 255).astype(jnp.int32)), TypeError,
     "floating-point or uint8"),
    (lambda: A.auto_augment(KEY, IMAGE, policy="reduced_imagenet"), ValueError,
     "policy.*imagenet.*cifar10.*svhn"),
    (lambda: A.auto_augment(KEY, IMAGE, policy=None), ValueError, "policy"),
    (lambda: A.aug_mix(KEY, IMAGE, severity=0), ValueError, r"severity.*\[1, 10\]"),
    (lambda: A.aug_mix(KEY, IMAGE, severity=11), ValueError, "severity"),
    (lambda: A.aug_mix(KEY, IMAGE, width=0), ValueError, "width.*>= 1"),
    (lambda: A.aug_mix(KEY, IMAGE, depth=0), ValueError, "depth.*-1"),
    (lambda: A.aug_mix(KEY, IMAGE, depth=-2), ValueError, "depth.*-1"),
    (lambda: A.aug_mix(KEY, IMAGE, alpha=0.0), ValueError, "alpha"),
    (lambda: A.aug_mix(KEY, IMAGE, all_ops=1), TypeError, "all_ops"),
    (lambda: A.aug_mix(None, IMAGE), ValueError, "key"),
])
def test_bad_input(call, error, match):
  with pytest.raises(error, match=match):
    call()


def test_errors_name_the_function():
  for name, call in (("rand_augment", lambda: A.rand_augment(KEY, IMAGE, num_ops=-1)),
                     ("trivial_augment_wide",
                      lambda: A.trivial_augment_wide(KEY, IMAGE, num_magnitude_bins=1)),
                     ("auto_augment", lambda: A.auto_augment(KEY, IMAGE, policy="x")),
                     ("aug_mix", lambda: A.aug_mix(KEY, IMAGE, width=0))):
    with pytest.raises(ValueError, match=f"^{name}: "):
      call()


def test_zero_ops_is_the_identity():
  # (A traced magnitude past the bins is clipped: a row of tests/test_bad_inputs.py.)
  np.testing.assert_array_equal(A.rand_augment(KEY, IMAGE, num_ops=0), IMAGE)


def test_rand_augment_traced_nan_or_infinite_magnitude_gives_nan():
  # As the public ops: a traced NaN or infinite magnitude makes the whole float image NaN, for
  # every key, whichever ops it draws (the policies' own warp would fill the image instead);
  # a finite one out of range is clipped to the bins.
  keys = jax.random.split(jax.random.key(4), 24)
  run = jax.jit(jax.vmap(lambda k, m: A.rand_augment(k, IMAGE, magnitude=m), in_axes=(0, None)))
  with reuse_keys():
    for bad in (math.nan, math.inf, -math.inf):
      out = run(keys, bad)
      assert bool(jnp.isnan(out).all()), (bad, int(jnp.isnan(out).all(axis=(1, 2, 3)).sum()))
    low, high = run(keys, -3.0), run(keys, 40.0)
    assert np.isfinite(np.asarray(low)).all()
    assert np.isfinite(np.asarray(high)).all()
    np.testing.assert_array_equal(low, run(keys, 0.0))  # clipped to the first bin
    np.testing.assert_array_equal(high, run(keys, 30.0))  # and to the last (31 bins)


@pytest.mark.parametrize("chains", [1, 2])
def test_non_finite_magnitude_gives_nan_for_every_op_on_both_paths(chains):
  # Any slot's NaN or infinite magnitude makes the whole float result NaN whichever op each
  # slot holds (Identity and the photometric ops too, where no warp's coordinates carry it), in
  # the CPU loop and in the accelerators' form (which guards inside its slots): one chain of
  # two slots (the policies) and two chains of one (AugMix). Each op holds the bad magnitude,
  # and a finite one beside a bad one, in either place; finite examples stay finite and the
  # two forms agree on them.
  n = len(ps.OPS)
  bads = itertools.cycle((math.nan, math.inf, -math.inf))
  ops, values = [], []
  for o, name in enumerate(ps.OPS):
    pair = [(o + 1) % n, o]
    good = MAGNITUDES.get(name, (0.2137,))[0]
    ops += [pair, pair]
    values += [[next(bads), good], [0.31, next(bads)]]
  ops += [[1, 7], [10, 5], [13, 0]]  # finite: ShearX Color, Posterize Rotate, Equalize Identity
  values += [[0.2, 0.3], [5.0, -23.3], [0.0, 0.0]]
  ops = jnp.array(ops, jnp.int32).reshape(-1, chains, 2 // chains)
  values = jnp.array(values, jnp.float32).reshape(ops.shape)

  def run(o, v):
    return pol.apply(IMAGE, o, v, FILL, "bilinear")

  loop = jax.jit(jax.vmap(run))(ops, values)
  with _accelerator_form() as calls:
    vectorized = jax.jit(jax.vmap(run))(ops, values)
  assert [c["nan_guard"] for c in calls] == [True]
  bad = ~np.isfinite(np.asarray(values)).all(axis=(1, 2))
  for out in (np.asarray(loop), np.asarray(vectorized)):
    assert np.isnan(out[bad]).all(), np.flatnonzero(~np.isnan(out[bad]).all(axis=(1, 2, 3, 4)))
    assert np.isfinite(out[~bad]).all()
  np.testing.assert_allclose(vectorized[~bad], loop[~bad], atol=1e-5)


@pytest.mark.parametrize("name", ["rand_augment", "trivial_augment_wide", "auto_augment",
                                  "aug_mix"])
def test_policy_fill_type_is_checked_before_its_scale(name):
  # On a uint8 image a fill must be on the [0, 1] scale; a fill that is not a number at all
  # (or NaN) is told so first, with the function, the argument and the value.
  policy = POLICIES[name]
  levels = jnp.zeros((8, 8, 3), jnp.uint8)
  for fill, error, shows in (("red", TypeError, "'red'"), (None, TypeError, "None"),
                             (math.nan, ValueError, "nan")):
    with pytest.raises(error) as info:
      policy(KEY, levels, fill=fill)
    message = str(info.value)
    assert message.startswith(f"{name}: `fill` must be"), message
    assert shows in message, message
    assert "255" not in message, message
    assert "could not convert" not in message, message
  with pytest.raises(ValueError, match=rf"^{name}: `fill` is on the \[0, 1\] scale.*128"):
    policy(KEY, levels, fill=128)


def test_num_magnitude_bins_has_an_upper_bound():
  # Bins index a table of entries, one per bin: past MAX_BINS a clear error, not JAX's
  # OverflowError from the bin draw.
  for call in (lambda b: A.trivial_augment_wide(KEY, IMAGE, num_magnitude_bins=b),
               lambda b: A.rand_augment(KEY, IMAGE, magnitude=0, num_magnitude_bins=b)):
    for bins in (2 ** 31, ps.MAX_BINS + 1):
      with pytest.raises(ValueError, match=rf"`num_magnitude_bins` must be an int in "
                                           rf"\[2, {ps.MAX_BINS}\].*got {bins}\."):
        call(bins)
    with reuse_keys():
      assert call(ps.MAX_BINS).shape == IMAGE.shape


# --------------------------------------------------------------------------------------------
# The AugMix consistency loss
# --------------------------------------------------------------------------------------------


def _softmax64(x):
  x = np.asarray(x, np.float64)
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_consistency_loss_is_the_jensen_shannon_divergence():
  logits = jax.random.normal(jax.random.key(2), (3, 5, 10)) * 3
  got = A.aug_mix_consistency_loss(*logits)
  p = _softmax64(logits)
  entropy = lambda q: -(q * np.log(q)).sum(-1)  # noqa: E731
  # JS(p1, p2, p3) = H(mean p) - mean H(p): the entropy form, not the KL form computed
  np.testing.assert_allclose(got, entropy(p.mean(0)) - entropy(p).mean(0), rtol=1e-5,
                             atol=1e-6)
  # The paper's code (clamped mixture, batchmean KL) gives the same batch mean
  mixture = np.log(np.clip(p.mean(0), 1e-7, 1))
  paper = sum((q * (np.log(q) - mixture)).sum(-1).mean() for q in p) / 3
  np.testing.assert_allclose(float(got.mean()), paper, rtol=1e-5)
  assert got.shape == (5,)
  assert float(got.max()) <= math.log(3)
  with reuse_keys():
    jax.test_util.check_grads(lambda a, b, c: A.aug_mix_consistency_loss(a, b, c).sum(),
                              tuple(logits), order=1, modes=("rev",), atol=1e-2, rtol=1e-2)


def test_consistency_loss_masked_logits_add_nothing():
  # A -inf (masked) logit is a class of probability 0: it adds 0 log 0 = 0 to its view's KL.
  # Reference: float64 NumPy over the classes each view gives mass to. Identical inputs give 0.
  rng = np.random.default_rng(5)
  logits = rng.normal(size=(3, 6, 7)) * 2
  logits[:, :, 0] = -np.inf  # masked in every view
  logits[1, :3, 1] = -np.inf  # masked in one view only
  logits[rng.random((3, 6, 7)) < 0.15] = -np.inf
  logits[:, :, 2] = rng.normal(size=(3, 6))  # every view keeps some mass
  logits = jnp.asarray(logits, jnp.float32)
  got = A.aug_mix_consistency_loss(*logits)
  masked = np.isinf(np.asarray(logits))
  p = _softmax64(np.where(masked, -1e300, np.asarray(logits, np.float64)))
  p[masked] = 0.0
  mixture = p.mean(0)
  with np.errstate(divide="ignore", invalid="ignore"):
    kl = np.where(p > 0, p * (np.log(p) - np.log(mixture)), 0.0).sum(-1)
  np.testing.assert_allclose(got, kl.mean(0), rtol=1e-5, atol=1e-6)
  same = A.aug_mix_consistency_loss(logits[0], logits[0], logits[0])
  np.testing.assert_allclose(same, 0.0, atol=1e-6)
  grads = jax.grad(lambda a, b, c: A.aug_mix_consistency_loss(a, b, c).sum(),
                   argnums=(0, 1, 2))(*logits)
  assert all(bool(jnp.isfinite(g).all()) for g in grads)
  # The gradient matches finite differences along the unmasked logits.
  finite = jnp.where(jnp.isinf(logits), 0.0, 1.0)
  direction = jnp.asarray(rng.normal(size=logits.shape), jnp.float32) * finite
  eps = 1e-2
  loss = lambda x: A.aug_mix_consistency_loss(*x).sum()  # noqa: E731
  numerical = (loss(logits + eps * direction) - loss(logits - eps * direction)) / (2 * eps)
  analytic = sum(jnp.sum(g * d) for g, d in zip(grads, direction, strict=True))
  np.testing.assert_allclose(analytic, numerical, rtol=2e-2, atol=1e-4)


def test_consistency_loss_bad_input():
  x = jnp.zeros((4, 10))
  with pytest.raises(ValueError, match=r"logits_aug2.*shape"):
    A.aug_mix_consistency_loss(x, x, jnp.zeros((4, 9)))
  with pytest.raises(ValueError, match="class axis"):
    A.aug_mix_consistency_loss(jnp.zeros(()), jnp.zeros(()), jnp.zeros(()))
  with pytest.raises(TypeError, match="logits_aug1"):
    A.aug_mix_consistency_loss(x, jnp.zeros((4, 10), jnp.int32), x)


# --------------------------------------------------------------------------------------------
# The timm-style recipe (examples/timm_recipe.py)
# --------------------------------------------------------------------------------------------


@pytest.mark.standard_promotion  # example code, written for JAX's default promotion
def test_timm_recipe_mixes_smoothed_targets():
  # The batch part alone, each branch forced: every target mixes two smoothed one-hots, so every
  # class keeps the smoothing floor, at most two rise above it, and the example's own class
  # keeps its share. Mixup blends the whole image; cutmix pastes a box of pixels unchanged.
  from examples import timm_recipe

  classes, smoothing = 10, 0.1
  images = jax.random.uniform(jax.random.key(1), (8, 12, 12, 3))
  labels = jnp.arange(8) % classes
  floor = smoothing / classes  # optax.smooth_labels: (1 - a) y + a / classes
  mix = jax.jit(functools.partial(timm_recipe.mix_batch, num_classes=classes,
                                  smoothing=smoothing), static_argnames="switch_prob")
  outs = {}
  for switch_prob, name in ((0.0, "mixup"), (1.0, "cutmix")):
    _, targets = outs[name] = mix(jax.random.key(2), images, labels, switch_prob=switch_prob)
    targets = np.asarray(targets, np.float64)
    np.testing.assert_allclose(targets.sum(1), 1.0, rtol=1e-6)
    assert targets.min() >= floor - 1e-7
    assert ((targets > floor + 1e-6).sum(1) <= 2).all()
    assert (targets[np.arange(8), np.asarray(labels)] > floor).sum() >= 4
  kept = np.isclose(np.asarray(outs["cutmix"][0]), np.asarray(images)).all(-1)
  assert 0 < kept.mean() < 1  # some pixels pasted, some kept
  # Mixup blends whole images: an example is changed everywhere, or nowhere where the random
  # pairing gave it itself.
  same = np.isclose(np.asarray(outs["mixup"][0]), np.asarray(images)).all(-1).mean((1, 2))
  assert set(same.tolist()) <= {0.0, 1.0}, same
  assert (same == 0).any(), same


@pytest.mark.standard_promotion  # example code, written for JAX's default promotion
def test_timm_recipe_example():
  # The whole recipe at the shapes of the example's --smoke run (and the benchmarks' smoke run,
  # which CI runs after the suite).
  from examples import timm_recipe

  n, side, size, classes = 4, 64, 48, 1000
  images = jax.random.uniform(jax.random.key(1), (n, side, side, 3))
  labels = jax.random.randint(jax.random.key(3), (n,), 0, classes)
  augment = timm_recipe.make_augment(size=size)
  levels = jnp.round(images * 255).astype(jnp.uint8)
  with reuse_keys():
    out_f, targets_f = augment(jax.random.key(2), levels.astype(jnp.float32) / 255, labels)
    # Decoded uint8 images: the per-image part on levels, float32 out, the same mixing draws.
    out_u8, targets_u8 = augment(jax.random.key(2), levels, labels)
  assert out_f.shape == out_u8.shape == (n, size, size, 3)
  assert targets_f.shape == (n, classes)
  assert out_u8.dtype == jnp.float32
  assert float(out_f.min()) >= 0
  assert float(out_f.max()) <= 1
  np.testing.assert_allclose(np.asarray(targets_f, np.float64).sum(1), 1.0, rtol=1e-6)
  np.testing.assert_allclose(targets_u8, targets_f, atol=1e-7)
  # Rounded to levels after each per-image op: within a few levels of the float pipeline on
  # most pixels (posterize and equalize can move a pixel across a step).
  assert np.mean(np.abs(np.asarray(out_u8) - np.asarray(out_f)) <= 3 / 255) > 0.9
  assert timm_recipe.main(["--smoke"]) > 0


def test_gpu_aot_counts_the_gathers_of_image_sized_kernels():
  from benchmarks import gpu_aot

  hlo = """
%fused_two (p: f32[64,64], i: s32[64,64,1]) -> f32[64,64] {
  %p = f32[64,64]{1,0} parameter(0)
  %i = s32[64,64,1]{2,1,0} parameter(1)
  %a = f32[64,64]{1,0} gather(%p, %i), offset_dims={}
  %b = f32[64,64]{1,0} gather(%p, %i), offset_dims={}
  ROOT %c = f32[64,64]{1,0} add(%a, %b)
}

%fused_small (p: f32[64,64], i: s32[8,1]) -> f32[8] {
  %p = f32[64,64]{1,0} parameter(0)
  %i = s32[8,1]{1,0} parameter(1)
  ROOT %a = f32[8]{0} gather(%p, %i), offset_dims={}
}

ENTRY %main (p0: f32[64,64], p1: s32[64,64,1], p2: s32[8,1]) -> f32[64,64] {
  %p0 = f32[64,64]{1,0} parameter(0)
  %p1 = s32[64,64,1]{2,1,0} parameter(1)
  %p2 = s32[8,1]{1,0} parameter(2)
  %s = f32[8]{0} fusion(%p0, %p2), kind=kLoop, calls=%fused_small
  ROOT %f = f32[64,64]{1,0} fusion(%p0, %p1), kind=kLoop, calls=%fused_two
}
"""
  assert gpu_aot.fused_gathers(hlo, 64 * 64) == 2
  assert gpu_aot.fused_gathers(hlo, 8) == 3
  with pytest.raises(ValueError, match="ENTRY"):
    gpu_aot.fused_gathers("HloModule m", 1)
