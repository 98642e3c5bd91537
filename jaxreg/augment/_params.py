"""Explicit parameters: what a random op draws, as a pytree, and the deterministic op applying it.

Every random op with explicit parameters is ``apply(draw(op)(key, image, ...), image)``: the
draw holds all of its randomness, the application none. The deterministic geometric ops are
``apply(draw(op)(image, ...), image)``: their draw, with no key, computes the matrix they warp
through (`AffineParams`), which then moves masks, boxes and keypoints too. A parameter set is
a frozen dataclass registered as a pytree: its arrays (offsets, flags, magnitudes) are leaves,
so a set can be vmapped, jitted, logged, saved and replayed; its configuration (output size,
axis, modes) is static metadata. Design: docs/design/parameters.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax

from jaxreg.augment._policy_space import OPS

# op -> its draw, and parameter class -> its application; filled by the op modules.
DRAWS: dict[Callable, Callable] = {}
APPLIES: dict[type, Callable] = {}


def pytree_dataclass(cls: type) -> type:
  """A frozen dataclass whose fields marked ``static`` are pytree metadata, the rest leaves."""
  cls = dataclasses.dataclass(frozen=True)(cls)
  fields = dataclasses.fields(cls)
  meta = [f.name for f in fields if f.metadata.get("static")]
  data = [f.name for f in fields if not f.metadata.get("static")]
  return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)


def static(**kwargs: Any) -> Any:
  """A dataclass field held as static pytree metadata (hashable configuration, not an array)."""
  return dataclasses.field(metadata={"static": True}, **kwargs)


@pytree_dataclass
class CropParams:
  """`random_crop`'s window: its top-left corner in the padded image.

  Attributes:
    top: int32 scalar, the window's first row in the image padded by ``padding``.
    left: int32 scalar, its first column.
    size: ``(height, width)`` of the window (static).
    padding: ``(pad_h, pad_w)`` added on each side before cropping (static).
    pad_mode: ``"constant"``, ``"reflect"`` or ``"edge"`` (static).
    image_size: ``(height, width)`` of the image the set was drawn for (static); None for a
      set built by hand. When set, `apply` and the target functions check their input's size
      against it; the window itself needs no image size.
  """

  top: jax.Array
  left: jax.Array
  size: tuple[int, int] = static()
  padding: tuple[int, int] = static(default=(0, 0))
  pad_mode: str = static(default="constant")
  image_size: tuple[int, int] | None = static(default=None)


@pytree_dataclass
class ResizedCropParams:
  """A box of the image resampled to ``size``: `random_resized_crop`, `random_scale_crop`.

  Output pixel ``i`` of a row samples the input at ``top + (i + 0.5) * height / size[0] - 0.5``
  (pixel centres), and likewise along a row with ``left`` and ``width``.

  Attributes:
    top: float32 scalar, the box's top edge in input pixels.
    left: float32 scalar, its left edge.
    height: float32 scalar, the box's height in input pixels.
    width: float32 scalar, its width.
    size: ``(height, width)`` of the output (static).
    antialias: low-pass filter when the box is shrunk (static).
    crop_first: only pixels inside the box contribute (`random_resized_crop`: crop, then
      resize); otherwise pixels just outside it blend in at its border, as when the whole
      image is resized and then cropped (`random_scale_crop`) (static).
    image_size: ``(height, width)`` of the image the set was drawn for (static); None for a
      set built by hand. When set, `apply` and the target functions check their input's size
      against it; the box itself needs no image size.
  """

  top: jax.Array
  left: jax.Array
  height: jax.Array
  width: jax.Array
  size: tuple[int, int] = static()
  antialias: bool = static(default=True)
  crop_first: bool = static(default=True)
  image_size: tuple[int, int] | None = static(default=None)


@pytree_dataclass
class FlipParams:
  """A flip or not: `random_flip_left_right` (``axis=1``), `random_flip_up_down` (``axis=0``).

  Attributes:
    flip: bool scalar, whether the image is mirrored.
    probability: float32 scalar, the chance it was drawn with; a value outside [0, 1] or NaN
      (possible only when traced) makes a float image all NaN, as the op does.
    axis: 1 mirrors left-right, 0 up-down (static).
    image_size: ``(height, width)`` of the image the set was drawn for (static); None for a
      set built by hand. When set, `apply` and the target functions check their input's size
      against it; boxes and keypoints need it (a flip maps x to ``width - x``).
  """

  flip: jax.Array
  probability: jax.Array
  axis: int = static(default=1)
  image_size: tuple[int, int] | None = static(default=None)



@pytree_dataclass
class PolicyParams:
  """What `rand_augment`, `trivial_augment_wide` or `auto_augment` drew: its ops, in turn.

  Slot ``i`` applies op ``OPS[ops[i]]`` at signed magnitude ``magnitudes[i]``, each to the
  previous slot's output. The magnitudes are in the op's own unit (docs/policies.md has the
  tables): a shear factor (ShearX/Y), pixels (TranslateX/Y, whole), degrees counter-clockwise
  (Rotate), ``v`` for Pillow's enhancement factor ``1 + v`` (Brightness, Color, Contrast,
  Sharpness), bits kept (Posterize), a threshold on the [0, 1] scale (Solarize), and 0 for ops
  without one. ``np.asarray(PolicyParams.OPS)[params.ops]`` names the ops, batched too.

  Attributes:
    ops: int32 array ``(slots,)``, indices into `PolicyParams.OPS`: RandAugment draws
      ``num_ops`` slots, TrivialAugmentWide one, AutoAugment two (Identity where a step did not
      fire).
    magnitudes: float32 array ``(slots,)``, each slot's signed magnitude. A non-finite one (a
      traced NaN ``magnitude`` of `rand_augment`) makes a float image all NaN when applied.
    fill: float32 scalar or ``(C,)`` array, the value of pixels moved in from outside the
      image, on the [0, 1] scale for a uint8 image too.
    interpolation: ``"nearest"`` or ``"bilinear"``, for the geometric ops (static).
    image_size: ``(height, width)`` of the image the set was drawn for: the translations'
      pixels and the rotation's centre are this image's (static); None for a set built by
      hand, which applies to any size.
  """

  OPS: ClassVar[tuple[str, ...]] = OPS

  ops: jax.Array
  magnitudes: jax.Array
  fill: jax.Array
  interpolation: str = static()
  image_size: tuple[int, int] | None = static(default=None)


@pytree_dataclass
class AugMixParams:
  """What `aug_mix` drew: ``width`` chains of ops and the weights mixing them with the image.

  The result is ``image_weight * image + sum_i chain_weights[i] * chain_i``, where chain ``i``
  applies ``ops[i, j]`` at ``magnitudes[i, j]`` in turn, from the image, as a `PolicyParams`
  slot does (Identity for the steps past a chain's drawn depth).

  Attributes:
    ops: int32 array ``(width, depth)``, indices into `PolicyParams.OPS`.
    magnitudes: float32 array ``(width, depth)``, signed, in each op's unit (`PolicyParams`).
    image_weight: float32 scalar, ``1 - m`` with ``m ~ Beta(alpha, alpha)``.
    chain_weights: float32 array ``(width,)``, ``m`` times a Dirichlet(alpha) draw.
    fill: float32 scalar or ``(C,)`` array, as in `PolicyParams`.
    interpolation: ``"nearest"`` or ``"bilinear"`` (static).
    image_size: ``(height, width)`` of the image the set was drawn for (static); None for a
      set built by hand.
  """

  ops: jax.Array
  magnitudes: jax.Array
  image_weight: jax.Array
  chain_weights: jax.Array
  fill: jax.Array
  interpolation: str = static()
  image_size: tuple[int, int] | None = static(default=None)


@pytree_dataclass
class AffineParams:
  """What `affine`, `rotate`, `shear_x`, `shear_y`, `translate_x` or `translate_y` applies.

  These ops draw nothing: ``draw(op)(image, ...)`` takes the op's own arguments (no key) and
  returns the one matrix the op resamples through, so that the same warp moves a second image,
  a mask, boxes and keypoints. The matrix is the inverse map, output point to input point:
  output pixel ``(i, j)`` shows the input at ``matrix @ (j + 0.5, i + 0.5, 1)``, in continuous
  pixel coordinates (the image spans ``[0, W] x [0, H]``; `warp_affine`'s convention). Points
  move by its inverse, the forward map.

  Attributes:
    matrix: float32 array ``(2, 3)``, the inverse matrix. A traced magnitude that is not
      finite or out of range when drawn makes it all NaN, and a non-finite matrix makes a
      float image all NaN when applied, as the op does.
    fill: float32 scalar or ``(C,)`` array, the value of pixels from outside the image.
    interpolation: ``"nearest"`` or ``"bilinear"`` (static).
    image_size: ``(height, width)`` of the image the set was drawn for (static): the rotation
      centre is this image's; None for a set built by hand, which applies to any size (boxes
      and keypoints need it: it is the output canvas).
  """

  matrix: jax.Array
  fill: jax.Array
  interpolation: str = static()
  image_size: tuple[int, int] | None = static(default=None)


def register(op: Callable, draw_fn: Callable, params_cls: type, apply_fn: Callable) -> None:
  """Declares ``op == apply_fn(draw_fn(key, image, ...), image)`` for `draw` and `apply`."""
  DRAWS[op] = draw_fn
  APPLIES[params_cls] = apply_fn


def draw(op: Callable) -> Callable[..., Any]:
  """The drawing half of an op: ``draw(op)(key, image, ...)`` returns its parameters.

  ``draw(op)`` takes exactly the arguments of ``op`` and returns the parameter set that ``op``
  would draw with the same key, checking the arguments as ``op`` does; `apply` then gives
  ``op``'s output bit for bit. Batched with `batched` (or `jax.vmap`), each example draws its
  own set, a pytree with a leading batch axis. Use it to log what each example drew, to replay
  an augmentation, or to apply the same geometry to a second image, a mask, boxes or keypoints.

  The deterministic geometric ops take no key, so neither does their draw:
  ``draw(rotate)(image, angle, ...)`` returns an `AffineParams`, the matrix ``rotate``
  resamples through; under `jax.vmap` each example has its own magnitude and matrix.

  Args:
    op: an op of ``jaxreg.augment`` with explicit parameters: the random `random_crop`,
      `random_resized_crop`, `random_scale_crop`, `random_flip_left_right`,
      `random_flip_up_down`, `rand_augment`, `trivial_augment_wide`, `auto_augment`,
      `aug_mix`, and the deterministic `affine`, `rotate`, `shear_x`, `shear_y`,
      `translate_x`, `translate_y`.

  Returns:
    ``draw_fn(key, image, *args, **kwargs) -> params``, with ``op``'s signature (for the
    deterministic ops, ``draw_fn(image, *args, **kwargs)``).

  Raises:
    TypeError: ``op`` is not one of those ops.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> image = jnp.zeros((32, 32, 3))
    >>> params = A.draw(A.random_crop)(jax.random.key(0), image, 28, padding=2)
    >>> params.size, params.top.shape
    ((28, 28), ())
    >>> out = A.apply(params, image)
    >>> bool((out == A.random_crop(jax.random.key(0), image, 28, padding=2)).all())
    True
    >>> turn = A.draw(A.rotate)(image, 30.0)
    >>> turn.matrix.shape, bool((A.apply(turn, image) == A.rotate(image, 30.0)).all())
    ((2, 3), True)
  """
  try:
    return DRAWS[op]
  except (KeyError, TypeError):
    names = ", ".join(sorted(fn.__name__ for fn in DRAWS))
    raise TypeError(f"draw: `op` must be an op of jaxreg.augment with explicit parameters "
                    f"({names}), got {op!r}.") from None


def apply(params: Any, image: jax.typing.ArrayLike) -> jax.Array:
  """Applies a parameter set from `draw` to an image: deterministic, no key.

  ``apply(draw(op)(key, image, ...), image)`` is ``op(key, image, ...)`` bit for bit (for a
  deterministic op, ``apply(draw(op)(image, ...), image)`` is ``op(image, ...)``). The image
  may be another one of the same height and width (a second view, a label map given as a
  float or uint8 image): the same crop, flip, box or warp applies to it. Under `jax.vmap` a
  batch of parameter sets applies to a batch of images, example by example.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `PolicyParams`, `AugMixParams`, `AffineParams`), or one built by hand with the same
      fields.
    image: an HWC float or uint8 image, as the op that drew ``params`` takes.

  Returns:
    The transformed image, as the op returns it.

  Raises:
    TypeError: ``params`` is not a parameter set of ``jaxreg.augment``; the checks of the op
      that applies it (image dtype).
    ValueError: the checks of the op that applies it (an image of another size than the
      parameters were drawn for, where that matters); an `AffineParams` matrix not of shape
      (2, 3).

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> image = jnp.arange(6.0).reshape(1, 2, 3)
    >>> A.apply(A.FlipParams(flip=jnp.array(True), probability=jnp.array(1.0), axis=1), image)
    Array([[[3., 4., 5.],
            [0., 1., 2.]]], dtype=float32)
  """
  apply_fn = APPLIES.get(type(params))
  if apply_fn is None:
    names = ", ".join(sorted(cls.__name__ for cls in APPLIES))
    raise TypeError(f"apply: `params` must be a parameter set of jaxreg.augment ({names}), "
                    f"got {type(params).__name__}.")
  return apply_fn(params, image)
