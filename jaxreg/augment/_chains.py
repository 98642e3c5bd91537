"""Chains: a tuple of parameter sets applied in turn, each drawn for the output of the one before.

`apply`, `apply_to_mask`, `apply_to_boxes`, `apply_to_keypoints` and `invert_prediction` take
a chain; each accepts its own classes of sets, and all check a chain here, with one wording: a
non-empty tuple or list, of sets of the accepted classes, each drawn for the size the sets
before it output. Design: docs/design/targets.md (chains).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

# What `apply` and the target functions chain: sets that take one image, not the mixes.
PER_IMAGE = "per-image parameter sets of jaxreg.augment"
MIX_NOTE = "; a mix applies to the whole batch, on its own, after the chain"


def as_chain(params: tuple | list, op: str, accepted: Collection[type], what: str,
             note: str = "") -> tuple:
  """``params``, a chain, as a tuple, checked: not empty, and each set of an ``accepted`` class
  (``what`` describes them, ``note`` ends the error: what to do instead)."""
  if not params:
    raise ValueError(f"{op}: `params` is an empty chain, got {params!r}; give one set, or a "
                     f"tuple of sets applied in turn.")
  for i, step in enumerate(params):
    if type(step) not in accepted:
      names = ", ".join(sorted(cls.__name__ for cls in accepted))
      raise TypeError(f"{op}: `params` as a chain holds {what} ({names}), got a "
                      f"{type(step).__name__} at index {i}{note}.")
  return tuple(params)


def check_link(step: Any, index: int, size: tuple[int, int], op: str) -> None:
  """Set ``index`` of a chain was drawn for ``size``, the ``(height, width)`` that the sets
  before it output (the input's, for the first set); a set without ``image_size`` takes any
  size."""
  drawn = getattr(step, "image_size", None)
  if drawn is not None and tuple(drawn) != tuple(size):
    given = "the input is" if index == 0 else "the sets before it output"
    raise ValueError(f"{op}: `params`[{index}] ({type(step).__name__}) was drawn for a "
                     f"{drawn[0]}x{drawn[1]} image (`image_size`={tuple(drawn)}), but "
                     f"{given} {size[0]}x{size[1]}; draw each set on the output "
                     f"of the one before, and give the sets in the order they apply.")
