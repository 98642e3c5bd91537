"""Data augmentation: jit-able, key-driven image transforms, and test-time multi-crop.

Conventions (checked; other ranks and dtypes raise):

* An image is a float array in HWC layout with values in [0, 1]; a batch is NHWC. The crops
  (`random_resized_crop`, `random_scale_crop`, `random_crop`), the flips, `random_erasing`,
  `batched`, the four policies, the ops defined on levels (`invert`, `solarize`,
  `posterize`, `equalize`, `autocontrast`) and Pillow's enhancers (`enhance_brightness`,
  `enhance_color`, `enhance_contrast`, `enhance_sharpness`) also take uint8 images and return
  uint8; their magnitudes, fills and values stay on the [0, 1] scale.
* Per-image random transforms take the PRNG ``key`` first: ``fn(key, image, ...)``.
  `batched` applies any of them to a batch with an independent key per example (``vmap`` over
  ``jax.random.split(key, N)``), so every example gets its own crop, flip and colours.
* Output shapes are static under `jit`: crops and resizes have a fixed output ``size``, and the
  random part (offsets, scales) only moves a sampling box.
* Colour ops take ``clip``: True clamps the result to [0, 1].
* Explicit parameters: ``draw(op)(key, *inputs, ...)`` returns what a random op draws (a
  pytree: `CropParams`, `ResizedCropParams`, `FlipParams` for the crops and flips;
  `ColorParams`, `GrayscaleParams`, `ColorJitterParams` for the colour ops; `ErasingParams`;
  `MixupParams`, `CutmixParams` for the mixes; `PolicyParams`, `AugMixParams` for the
  policies) and ``apply(params, *inputs)`` applies it to what the op takes after its key (an
  image; a batch and its labels for the mixes), so that ``op(key, *inputs, ...) ==
  apply(draw(op)(key, *inputs, ...), *inputs)``: log it (which ops a policy drew), replay it,
  or apply the same crop, flip or box to a second image. The deterministic geometric ops
  (`affine`, `rotate`, the shears and translations) have a draw without a key,
  ``draw(op)(image, ...)``, which returns their matrix (`AffineParams`). `apply_to_mask`,
  `apply_to_boxes` and `apply_to_keypoints` apply a geometric set or a policy's to the image's
  label map, boxes and keypoints.

At test time the randomness is marginalized: `center_crop`, `five_crop`, `ten_crop` (ResNet's 10
views) and `multi_crop_predict`, which averages a model's outputs over crops and scales;
`dense_predict` averages prediction maps over flips, scales and sliding windows, each mapped back
to the input's pixels by `invert_prediction`.
"""

# Geometry and resampling: crops and flips, affine warps
from jaxreg.augment._crop import random_crop as random_crop
from jaxreg.augment._crop import random_flip_left_right as random_flip_left_right
from jaxreg.augment._crop import random_flip_up_down as random_flip_up_down
from jaxreg.augment._crop import random_resized_crop as random_resized_crop
from jaxreg.augment._crop import random_scale_crop as random_scale_crop
from jaxreg.augment._geometric import affine as affine
from jaxreg.augment._geometric import rotate as rotate
from jaxreg.augment._geometric import shear_x as shear_x
from jaxreg.augment._geometric import shear_y as shear_y
from jaxreg.augment._geometric import translate_x as translate_x
from jaxreg.augment._geometric import translate_y as translate_y

# isort: split
# Explicit parameters: draw what a random op draws, apply it to the image and its targets
from jaxreg.augment._params import AffineParams as AffineParams
from jaxreg.augment._params import AugMixParams as AugMixParams
from jaxreg.augment._params import ColorJitterParams as ColorJitterParams
from jaxreg.augment._params import ColorParams as ColorParams
from jaxreg.augment._params import CropParams as CropParams
from jaxreg.augment._params import CutmixParams as CutmixParams
from jaxreg.augment._params import ErasingParams as ErasingParams
from jaxreg.augment._params import FlipParams as FlipParams
from jaxreg.augment._params import GrayscaleParams as GrayscaleParams
from jaxreg.augment._params import MixupParams as MixupParams
from jaxreg.augment._params import PolicyParams as PolicyParams
from jaxreg.augment._params import ResizedCropParams as ResizedCropParams
from jaxreg.augment._params import apply as apply
from jaxreg.augment._params import draw as draw
from jaxreg.augment._targets import apply_to_boxes as apply_to_boxes
from jaxreg.augment._targets import apply_to_keypoints as apply_to_keypoints
from jaxreg.augment._targets import apply_to_mask as apply_to_mask

# isort: split
# Each geometric parameter class's maps for the targets, and the other classes' rules
# (registered on import)
from jaxreg.augment import (
    _target_maps,  # noqa: F401
    _target_rules,  # noqa: F401
)

# isort: split
# Level ops (uint8 too)
from jaxreg.augment._levels import autocontrast as autocontrast
from jaxreg.augment._levels import equalize as equalize
from jaxreg.augment._levels import invert as invert
from jaxreg.augment._levels import posterize as posterize
from jaxreg.augment._levels import solarize as solarize
from jaxreg.augment._levels import solarize_add as solarize_add

# isort: split
# Pillow-style enhancers and greyscale
from jaxreg.augment._enhance import enhance_brightness as enhance_brightness
from jaxreg.augment._enhance import enhance_color as enhance_color
from jaxreg.augment._enhance import enhance_contrast as enhance_contrast
from jaxreg.augment._enhance import enhance_sharpness as enhance_sharpness
from jaxreg.augment._enhance import grayscale as grayscale
from jaxreg.augment._enhance import random_grayscale as random_grayscale

# isort: split
# Filters
from jaxreg.augment._filters import gaussian_blur as gaussian_blur

# isort: split
# tf.image-style colour, the colour jitter, HSV
from jaxreg.augment._color import adjust_hue as adjust_hue
from jaxreg.augment._color import adjust_saturation as adjust_saturation
from jaxreg.augment._color import random_brightness as random_brightness
from jaxreg.augment._color import random_contrast as random_contrast
from jaxreg.augment._color import random_hue as random_hue
from jaxreg.augment._color import random_saturation as random_saturation
from jaxreg.augment._color_space import hsv_to_rgb as hsv_to_rgb
from jaxreg.augment._color_space import rgb_to_hsv as rgb_to_hsv
from jaxreg.augment._jitter import color_jitter as color_jitter

# isort: split
# Policies
from jaxreg.augment._aug_mix import aug_mix as aug_mix
from jaxreg.augment._aug_mix import aug_mix_consistency_loss as aug_mix_consistency_loss
from jaxreg.augment._policies import auto_augment as auto_augment
from jaxreg.augment._policies import rand_augment as rand_augment
from jaxreg.augment._policies import trivial_augment_wide as trivial_augment_wide

# isort: split
# Mixing and erasing
from jaxreg.augment._erasing import random_erasing as random_erasing
from jaxreg.augment._mix import cutmix as cutmix
from jaxreg.augment._mix import mixup as mixup

# isort: split
# Test-time views
from jaxreg.augment._test_time import center_crop as center_crop
from jaxreg.augment._test_time import five_crop as five_crop
from jaxreg.augment._test_time import multi_crop_predict as multi_crop_predict
from jaxreg.augment._test_time import ten_crop as ten_crop

# isort: split
# Test-time marginalization of dense predictions
from jaxreg.augment._dense_test_time import dense_predict as dense_predict
from jaxreg.augment._dense_test_time import invert_prediction as invert_prediction

# isort: split
# Batching and composition
from jaxreg.augment._compose import batched as batched
from jaxreg.augment._compose import compose as compose

__all__ = [
    "AffineParams",
    "AugMixParams",
    "ColorJitterParams",
    "ColorParams",
    "CropParams",
    "CutmixParams",
    "ErasingParams",
    "FlipParams",
    "GrayscaleParams",
    "MixupParams",
    "PolicyParams",
    "ResizedCropParams",
    "adjust_hue",
    "adjust_saturation",
    "affine",
    "apply",
    "apply_to_boxes",
    "apply_to_keypoints",
    "apply_to_mask",
    "aug_mix",
    "aug_mix_consistency_loss",
    "auto_augment",
    "autocontrast",
    "batched",
    "center_crop",
    "color_jitter",
    "compose",
    "cutmix",
    "dense_predict",
    "draw",
    "enhance_brightness",
    "enhance_color",
    "enhance_contrast",
    "enhance_sharpness",
    "equalize",
    "five_crop",
    "gaussian_blur",
    "grayscale",
    "hsv_to_rgb",
    "invert",
    "invert_prediction",
    "mixup",
    "multi_crop_predict",
    "posterize",
    "rand_augment",
    "random_brightness",
    "random_contrast",
    "random_crop",
    "random_erasing",
    "random_flip_left_right",
    "random_flip_up_down",
    "random_grayscale",
    "random_hue",
    "random_resized_crop",
    "random_saturation",
    "random_scale_crop",
    "rgb_to_hsv",
    "rotate",
    "shear_x",
    "shear_y",
    "solarize",
    "solarize_add",
    "ten_crop",
    "translate_x",
    "translate_y",
    "trivial_augment_wide",
]
