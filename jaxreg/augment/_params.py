"""Explicit parameters: what a random op draws, as a pytree, and the deterministic op applying it.

Every random op with explicit parameters is ``apply(draw(op)(key, *inputs, ...), *inputs)``:
the draw holds all of its checks and randomness, the application none of the randomness. The
deterministic geometric ops are ``apply(draw(op)(image, ...), image)``: their draw, with no
key, computes the matrix they warp through (`AffineParams`), which then moves masks, boxes and
keypoints too. A parameter set is a frozen dataclass registered as a pytree: its arrays
(offsets, flags, magnitudes, permutations) are leaves, so a set can be vmapped, jitted,
logged, saved and replayed; its configuration (output size, axis, modes, which ops) is static
metadata. Design: docs/design/parameters.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax

from jaxreg.augment._chains import MIX_NOTE, PER_IMAGE, as_chain, check_link
from jaxreg.augment._policy_space import OPS

# op -> its draw, parameter class -> its application and the names of the inputs it takes
# after the parameters; filled by the op modules.
DRAWS: dict[Callable, Callable] = {}
APPLIES: dict[type, Callable] = {}
INPUTS: dict[type, tuple[str, ...]] = {}
# (class, next class) -> fused(first, second, image, index): sets ``index`` and ``index + 1`` of
# a chain in one pass, or None
PAIRS: dict[tuple[type, type], Callable] = {}


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
class ColorParams:
  """One tf.image colour step: `random_brightness`, `random_contrast`, `random_saturation`,
  `random_hue`.

  Attributes:
    magnitude: float scalar (float32; the default float dtype under ``jax_enable_x64``), the
      drawn value: with ``op="brightness"`` the offset added to every pixel, ``"contrast"``
      the factor scaling each channel's deviation from its mean over the image, ``"saturation"``
      the factor of the HSV saturation (`adjust_saturation`), ``"hue"`` the shift of the hue in
      turns (`adjust_hue`).
    op: ``"brightness"``, ``"contrast"``, ``"saturation"`` or ``"hue"`` (static).
    clip: clamp the result to [0, 1] (static).
  """

  magnitude: jax.Array
  op: str = static()
  clip: bool = static(default=False)


@pytree_dataclass
class GrayscaleParams:
  """`random_grayscale`'s draw: the image becomes its 3-channel `grayscale`, or stays.

  Attributes:
    convert: bool scalar, whether the image is converted.
    probability: float32 scalar, the chance it was drawn with; a value outside [0, 1] or NaN
      (possible only when traced) makes the image all NaN, as the op does.
  """

  convert: jax.Array
  probability: jax.Array


@pytree_dataclass
class ColorJitterParams:
  """`color_jitter`'s four draws and the order of the ops that run.

  The ops that run are ``used``, the op at position ``p`` being ``used[order[p]]``, each
  followed by a clamp to [0, 1] where ``clip``.

  Attributes:
    order: int32 array of shape ``(len(used),)``, a permutation of ``range(len(used))``: the
      index in ``used`` of the op at each position. With ``random_order`` False it is
      ``arange(len(used))``, the fixed order, which `apply` runs whatever ``order`` holds.
    brightness: float scalar, the offset added to every pixel.
    contrast: float scalar, the factor scaling each channel's deviation from its mean.
    saturation: float scalar, the factor of the HSV saturation (`adjust_saturation`).
    hue: float scalar, the shift of the hue in turns (`adjust_hue`). The four draws are float32
      (the default float dtype under ``jax_enable_x64``); an op not in ``used`` ignores its own.
    used: the ops with a non-zero strength, in the order ``"brightness"``, ``"contrast"``,
      ``"saturation"``, ``"hue"`` (static; empty: the image is returned as it is).
    clip: clamp to [0, 1] after each op (static).
    random_order: whether ``order`` was drawn (static).
  """

  order: jax.Array
  brightness: jax.Array
  contrast: jax.Array
  saturation: jax.Array
  hue: jax.Array
  used: tuple[str, ...] = static()
  clip: bool = static(default=True)
  random_order: bool = static(default=True)


@pytree_dataclass
class ErasingParams:
  """`random_erasing`'s box, whether it is filled, and the fill.

  Where ``erase``, the pixels in rows ``top <= i < top + height`` and columns
  ``left <= j < left + width`` take ``value``.

  Attributes:
    top: float32 scalar, the box's first row (a whole number).
    left: float32 scalar, its first column (a whole number).
    height: float32 scalar, its number of rows (a whole number; 0 is an empty box).
    width: float32 scalar, its number of columns (a whole number).
    erase: bool scalar, whether the box is filled: the Bernoulli draw, and a box found.
    probability: float32 scalar, the chance it was drawn with; a value outside [0, 1] or NaN
      (possible only when traced) makes a float image all NaN, as the op does.
    value: the fill on the [0, 1] scale, an array that broadcasts to the image's shape (``()``,
      ``(C,)``, ``(H, W, C)``...): in the image's dtype for a float image, float32 for a uint8
      one (which takes its nearest level).
    image_size: ``(height, width)`` of the image the set was drawn for (static); None for a
      set built by hand. When set, `apply` and the target functions check their input's size
      against it: the box is in that image's pixels.
  """

  top: jax.Array
  left: jax.Array
  height: jax.Array
  width: jax.Array
  erase: jax.Array
  probability: jax.Array
  value: jax.Array
  image_size: tuple[int, int] | None = static(default=None)


@pytree_dataclass
class MixupParams:
  """`mixup`'s partners and weights: example ``i`` becomes ``lam[i] x[i] + (1 - lam[i])
  x[perm[i]]``, its labels likewise.

  Attributes:
    perm: int32 array of shape ``(N,)``, a permutation of the batch: example ``i``'s partner.
    lam: float array of shape ``(N,)`` (float32; the default float dtype under
      ``jax_enable_x64``), each example's weight, drawn from ``Beta(alpha, alpha)``.
  """

  perm: jax.Array
  lam: jax.Array


@pytree_dataclass
class CutmixParams:
  """`cutmix`'s partners and boxes: example ``i`` takes rows ``top[i] <= r < bottom[i]`` and
  columns ``left[i] <= c < right[i]`` from example ``perm[i]``; its labels become
  ``(1 - a) y[i] + a y[perm[i]]``, ``a`` the box's area over the image's.

  Attributes:
    perm: int32 array of shape ``(N,)``, a permutation of the batch: example ``i``'s partner.
    top: float32 array of shape ``(N,)``, each box's first row, a whole number in [0, H].
    bottom: float32 array of shape ``(N,)``, the row after its last, in [top, H].
    left: float32 array of shape ``(N,)``, its first column, a whole number in [0, W].
    right: float32 array of shape ``(N,)``, the column after its last, in [left, W].
    image_size: ``(height, width)`` of the images the set was drawn for (static); None for a
      set built by hand. When set, `apply` and `apply_to_mask` check their input's size
      against it: the boxes are in those images' pixels.
  """

  perm: jax.Array
  top: jax.Array
  bottom: jax.Array
  left: jax.Array
  right: jax.Array
  image_size: tuple[int, int] | None = static(default=None)


@pytree_dataclass
class AffineParams:
  """What `affine`, `rotate`, `shear_x`, `shear_y`, `translate_x` or `translate_y` applies.

  These ops draw nothing: ``draw(op)(image, ...)`` takes the op's own arguments (no key) and
  returns the one matrix the op resamples through, so that the same warp moves a second image,
  a mask, boxes and keypoints. The matrix is the inverse map, output point to input point:
  output pixel ``(i, j)`` shows the input at ``matrix @ (j + 0.5, i + 0.5, 1)``, in continuous
  pixel coordinates (the image spans ``[0, W] x [0, H]``; the geometric ops' convention). Points
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
  """Declares ``op == apply_fn(draw_fn(key, *inputs, ...), *inputs)`` for `draw` and `apply`;
  the inputs are ``apply_fn``'s positional arguments after the parameters."""
  DRAWS[op] = draw_fn
  APPLIES[params_cls] = apply_fn
  code = apply_fn.__code__
  INPUTS[params_cls] = code.co_varnames[1:code.co_argcount]


def draw(op: Callable) -> Callable[..., Any]:
  """The drawing half of an op: ``draw(op)(key, *inputs, ...)`` returns its parameters.

  ``draw(op)`` takes exactly the arguments of ``op`` and returns the parameter set that ``op``
  would draw with the same key, checking the arguments as ``op`` does; `apply` then gives
  ``op``'s output bit for bit. Batched with `batched` (or `jax.vmap`), each example draws its
  own set, a pytree with a leading batch axis. Use it to log what each example drew, to replay
  an augmentation, or to apply the same geometry to a second image, a mask, boxes or keypoints.

  The deterministic geometric ops take no key, so neither does their draw:
  ``draw(rotate)(image, angle, ...)`` returns an `AffineParams`, the matrix ``rotate``
  resamples through; under `jax.vmap` each example has its own magnitude and matrix.

  Args:
    op: an op of ``jaxreg.augment`` with explicit parameters: `random_crop`
      (`CropParams`); `random_resized_crop`, `random_scale_crop` (`ResizedCropParams`);
      `random_flip_left_right`, `random_flip_up_down` (`FlipParams`); `random_brightness`,
      `random_contrast`, `random_saturation`, `random_hue` (`ColorParams`);
      `random_grayscale` (`GrayscaleParams`); `color_jitter` (`ColorJitterParams`);
      `random_erasing` (`ErasingParams`); `mixup` (`MixupParams`); `cutmix` (`CutmixParams`);
      `rand_augment`, `trivial_augment_wide`, `auto_augment` (`PolicyParams`); `aug_mix`
      (`AugMixParams`); and the deterministic `affine`, `rotate`, `shear_x`, `shear_y`,
      `translate_x`, `translate_y` (`AffineParams`).

  Returns:
    ``draw_fn(key, *inputs, *args, **kwargs) -> params``, with ``op``'s signature (for the
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


def apply(params: Any, *inputs: jax.typing.ArrayLike) -> Any:
  """Applies a parameter set from `draw` to what its op takes after the key: no key, no draw.

  ``apply(draw(op)(key, *inputs, ...), *inputs)`` is ``op(key, *inputs, ...)`` bit for bit:
  ``inputs`` are the arrays ``op`` takes after its key (an image; for `mixup` and `cutmix` a
  batch and its labels), and ``apply`` returns what ``op`` returns (for a deterministic op,
  ``apply(draw(op)(image, ...), image)`` is ``op(image, ...)``). The image may be another one
  of the same height and width (a second view, a label map given as a float or uint8 image):
  the same crop, flip, box, warp or colour change applies to it. Under `jax.vmap` a batch of
  parameter sets applies to a batch of images, example by example.

  A tuple of per-image sets, each drawn for the output of the one before, is a chain, applied
  in turn (and to the targets by `apply_to_mask`...); a resized crop then a left-right flip
  run as one resampling, as in `compose`: bit for bit, without the flip's pass.

  Args:
    params: a parameter set from `draw` (`CropParams`, `ResizedCropParams`, `FlipParams`,
      `ColorParams`, `GrayscaleParams`, `ColorJitterParams`, `ErasingParams`, `MixupParams`,
      `CutmixParams`, `PolicyParams`, `AugMixParams`, `AffineParams`), or one built by hand
      with the same fields; or a non-empty tuple of per-image sets (not the mixes).
    *inputs: the op's arrays after its key: an HWC image (float, or uint8 where the op that
      drew ``params`` takes it); ``images, labels`` (an NHWC float batch and its
      ``(N, classes)`` labels) for `MixupParams` and `CutmixParams`.

  Returns:
    What the op returns: the transformed image; ``(mixed_images, mixed_labels)`` for the mixes.

  Raises:
    TypeError: ``params`` is not a parameter set of ``jaxreg.augment``; a number of inputs
      other than its op takes; a chain holding a mix; the checks of the op that applies it
      (image dtype).
    ValueError: the checks of the op that applies it (an image of another size than the
      parameters were drawn for, where that matters; a batch of another size than the
      permutation's); an `AffineParams` matrix not of shape (2, 3); an empty chain, or a set
      in it drawn for another size than the sets before it output.

  Example:
    >>> import jax, jax.numpy as jnp, jaxreg as jr
    >>> A = jr.augment
    >>> image = jnp.arange(6.0).reshape(1, 2, 3)
    >>> A.apply(A.FlipParams(flip=jnp.array(True), probability=jnp.array(1.0), axis=1), image)
    Array([[[3., 4., 5.],
            [0., 1., 2.]]], dtype=float32)
    >>> images, labels = jnp.ones((4, 8, 8, 3)), jax.nn.one_hot(jnp.arange(4) % 2, 2)
    >>> params = A.draw(A.mixup)(jax.random.key(0), images, labels, alpha=0.4)
    >>> params.perm.shape, params.lam.shape
    ((4,), (4,))
    >>> x, y = A.apply(params, images, labels)  # mixup(key, images, labels, alpha=0.4)
    >>> x.shape, y.shape
    ((4, 8, 8, 3), (4, 2))
    >>> k_crop, k_flip = jax.random.split(jax.random.key(1))
    >>> crop = A.draw(A.random_resized_crop)(k_crop, images[0], 6)
    >>> flip = A.draw(A.random_flip_left_right)(k_flip, jnp.zeros((6, 6, 3)))
    >>> A.apply((crop, flip), images[0]).shape  # the crop, then the flip, in one pass
    (6, 6, 3)
  """
  if isinstance(params, (tuple, list)):
    return _apply_chain(params, inputs)
  cls = type(params)
  apply_fn = APPLIES.get(cls)
  if apply_fn is None:
    names = ", ".join(sorted(known.__name__ for known in APPLIES))
    raise TypeError(f"apply: `params` must be a parameter set of jaxreg.augment ({names}), "
                    f"got {cls.__name__}.")
  names = INPUTS[cls]
  if len(inputs) != len(names):
    raise TypeError(f"apply: `inputs` for a {cls.__name__} are ({', '.join(names)}): "
                    f"{len(names)} after `params`, got {len(inputs)}.")
  return apply_fn(params, *inputs)


def _apply_chain(params: tuple | list, inputs: tuple) -> jax.Array:
  one_image = [cls for cls, names in INPUTS.items() if names == ("image",)]
  chain = as_chain(params, "apply", one_image, PER_IMAGE, MIX_NOTE)
  if len(inputs) != 1:
    raise TypeError(f"apply: `inputs` for a chain of sets are (image): 1 after `params`, got "
                    f"{len(inputs)}.")
  (image,), i = inputs, 0
  while i < len(chain):
    if i:  # the first set's size is its op's check of `image`
      check_link(chain[i], i, image.shape[:2], "apply")
    fuse = PAIRS.get(tuple(type(step) for step in chain[i:i + 2]))
    fused = None if fuse is None else fuse(chain[i], chain[i + 1], image, i)
    image = APPLIES[type(chain[i])](chain[i], image) if fused is None else fused
    i += 1 if fused is None else 2
  return image
