"""float64 resampling references shared by the test files: what the library's antialiased
linear resize computes, written as a matrix per axis."""

import numpy as np


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) antialiased linear resampling at pixel centres, edge taps renormalized."""
  step = n_in / n_out
  centres = (np.arange(n_out) + 0.5) * step - 0.5
  taps = np.maximum(0.0, 1 - np.abs(np.arange(n_in)[None] - centres[:, None]) / max(step, 1.0))
  return taps / taps.sum(1, keepdims=True)
