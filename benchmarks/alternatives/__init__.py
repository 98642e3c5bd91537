"""The alternatives the design pages reject, each timed against the form jaxreg ships.

One module per design page (`docs/design/<page>.md`), each a family of `benchmarks.run`
(``python -m benchmarks.run --only alternatives_photometric``) that writes
``benchmarks/results/alternatives_<page>.json``. A row is one rejected alternative: the
alternative and jaxreg's chosen form compute the same values (checked before timing), run
interleaved in one process, and the row's ``ratio`` is the alternative's time over the chosen
form's (above 1: the alternative is slower). The page's line for the alternative quotes that
ratio from the file.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from benchmarks import _harness as H  # noqa: N812


def compare(key: str, label: str, alternative: Callable[[], object],
            chosen: Callable[[], object], chosen_name: str, *, shape: str, dtype: str,
            rounds: int, rtol: float = 1e-5, atol: float = 1e-5, items: int | None = None,
            lead_calls: int = 0, edge_fraction: float = 0.0) -> dict:
  """One row: ``alternative`` timed against ``chosen`` (zero-argument calls of compiled
  functions), after checking that both return the same values within ``rtol``/``atol``.

  ``edge_fraction``: the fraction of elements allowed outside the tolerance, for a warp whose
  sample points, computed in float32 by differently fused programs, may fall on either side of
  the image's edge (the fill on one side, a pixel on the other).
  """
  for got, want in zip(jax.tree.leaves(alternative()), jax.tree.leaves(chosen()), strict=True):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    close = np.isclose(got, want, rtol=rtol, atol=atol)
    if edge_fraction and np.mean(~close) <= edge_fraction:
      continue
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                               err_msg=f"{key}: not the chosen form's values")
  t_alt, t_chosen, ratio = H.median_ratio(alternative, chosen, rounds=rounds,
                                          lead_calls=lead_calls)
  return H.row(label, shape, dtype, t_alt, t_chosen, ratio, f"{ratio:.2f}x the chosen form",
               anchor_name=f"jaxreg: {chosen_name}", key=key, items=items)
