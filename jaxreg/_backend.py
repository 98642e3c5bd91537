"""Backend-specific workarounds, gathered in one place to audit on a JAX upgrade.

Each function here changes how XLA schedules or fuses a computation, never what it computes.
Each states the constraint it works around, the JAX version it was measured on, and the test
that pins it (marked ``xla_schedule``: a JAX upgrade may legitimately break such a test; then
re-measure as the design page says and update or delete the workaround). Measurements:
docs/design/batch_norm.md, docs/design/augmentation_backends.md, docs/design/dropout_mask.md.

The workarounds, who uses them, and the test that pins each:

* `cpu_barrier`: batch norm's forward and backward (`jaxreg/_batch_norm_core.py`);
  tests/test_batchnorm.py::test_cpu_step_writes_no_full_size_intermediate.
* `flip`: the random flips (`jaxreg/augment/_crop.py`) and the flips of label maps
  (`jaxreg/augment/_target_maps.py`);
  tests/test_augment.py::test_flip_is_a_gather_on_the_cpu and, for uint8 batches,
  tests/test_augment.py::test_uint8_batches_stay_row_major_on_the_cpu.
* `loop_on_cpu`: under `vmap`, `color_jitter` (`jaxreg/augment/_jitter.py`), the augmentation
  policies (`jaxreg/augment/_policies.py`), `gaussian_blur` (`jaxreg/augment/_filters.py`,
  through `pixel_op` in `jaxreg/augment/_dtypes.py`), `equalize`'s histogram
  (`jaxreg/augment/_levels.py`) and the flip of a uint8 batch (`flip` above);
  tests/test_augment.py::test_batched_jitter_is_a_loop_of_branches_on_the_cpu,
  tests/test_policies.py::test_batched_policy_is_a_loop_of_branches_on_the_cpu,
  tests/test_policies.py::test_batched_policy_writes_over_its_input_batch_on_the_cpu and
  tests/test_photometric.py::test_batched_equalize_and_blur_are_loops_over_examples_on_the_cpu.
* `after`: dropout's mask regenerated in the backward (``recompute_mask``,
  `jaxreg/_dropout.py`); tests/test_dropout.py::test_recomputed_mask_waits_for_the_cotangent.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax


def cpu_barrier(values: tuple) -> tuple:
  """``values`` themselves, as values of their own on a CPU (an identity everywhere).

  Constraint (XLA:CPU, JAX 0.10.2): reductions run as XNNPACK fusions, which take in an
  elementwise producer (``x - mean``, a float32 conversion of bfloat16 input) only when nothing
  else reads it, and XLA merges equal expressions, so the variance, the backward's
  ``sum(dy * (x - mean))`` and ``dx`` would share one ``x - mean`` written out in full: one more
  full-size pass and, in a network, a full-size buffer per layer. Behind an optimization
  barrier each pass recomputes it from ready per-feature vectors.

  XLA merges equal barriers too, so every use passes a different tuple. A tuple holds either
  per-feature vectors or full-size arrays, not both: under `shard_map` a barrier's outputs take
  the device-axis type of all its inputs, and a replicated mean would turn varying.
  Accelerators keep the plain graph. Design: docs/design/batch_norm.md.
  """
  return lax.platform_dependent(values, cpu=lax.optimization_barrier, default=lambda v: v)


def gather_by_pixel(table: jax.Array, index: jax.Array) -> jax.Array:
  """``table[index]`` for an (N, C) pixel table and int ``index`` (in range): one gather of C
  values per pixel."""
  return table.at[index].get(mode="promise_in_bounds")


def gather_by_element(table: jax.Array, index: jax.Array) -> jax.Array:
  """`gather_by_pixel`'s values, one scalar gather per channel element."""
  channels = table.shape[-1]
  at = index[..., None] * channels + jnp.arange(channels, dtype=index.dtype)
  return table.reshape(-1).at[at].get(mode="promise_in_bounds")


def gather_pixels(table: jax.Array, index: jax.Array) -> jax.Array:
  """``table[index]``: the (C,) rows of an (N, C) pixel table at int ``index`` (in range).

  Constraint (XLA:CPU, JAX 0.12): a gather of C-value rows costs more per pixel than C scalar
  gathers of its elements, so on a CPU each element is gathered on its own; accelerators keep
  one gather per pixel. Design: docs/design/geometric.md.
  """
  return lax.platform_dependent(table, index, cpu=gather_by_element, default=gather_by_pixel)


def flip(flag: jax.Array, image: jax.Array, axis: int) -> jax.Array:
  """``image`` reversed along ``axis`` where the boolean scalar ``flag`` is set.

  Constraint (JAX 0.10.2): on a CPU a select fused after a producer such as a resampling crop
  makes XLA:CPU compute the producer once per branch, where one gather with reversed indices
  computes it once; on a GPU the gather is the slower form. Design:
  docs/design/augmentation_backends.md.
  """

  def gather(flag, image):
    size = image.shape[axis]
    index = jnp.arange(size)
    return jnp.take(image, jnp.where(flag, size - 1 - index, index), axis=axis,
                    unique_indices=True, indices_are_sorted=False, mode="clip")

  def where_flipped(flag, image):
    return jnp.where(flag, jnp.flip(image, axis), image)

  if image.dtype == jnp.uint8:
    # A uint8 batch on a CPU: image by image, a reversal or not. The vmapped gather writes
    # the batch in a transposed layout that XLA:CPU then copies back; float batches keep the
    # gather, which the loop slows down (JAX 0.10.2). Design: docs/design/augmentation_backends.md.
    def one(image, flag):
      return lax.cond(flag, lambda x: jnp.flip(x, axis), lambda x: x, image)

    def vectorized(image, flag, select=False):  # select-only already: `select` changes nothing
      del select
      return where_flipped(flag, image)

    return loop_on_cpu(one, vectorized, differentiable=1)(image, flag)
  return lax.platform_dependent(flag, image, cpu=gather, default=where_flipped)


def loop_on_cpu(looped: Callable, vectorized: Callable,
                differentiable: int) -> Callable:
  """A function that is ``vectorized`` except on a CPU, where `vmap` runs ``looped`` per example.

  ``looped`` and ``vectorized`` compute the same function of an image (the first argument);
  ``vectorized(*args, select=True)`` must be its select-only form (no ``switch``). The first
  ``differentiable`` arguments take tangents; the rest are integers (an op order, for
  instance).

  Constraint (JAX 0.10.2): under `vmap` a per-example ``lax.switch`` becomes a select that
  computes every branch. On a CPU a loop over examples doing only the chosen branches is
  faster (`color_jitter` in a random order); on accelerators a loop serializes the batch, so the
  vectorized form stays. Where ``looped`` returns an array of the image's dtype and size, the
  loop writes each example's result over its image in the batch itself (`_loop_in_place`).
  Derivatives, forward and reverse, are those of the select form (`_select_derivatives`).
  """
  selected = lambda *args: vectorized(*args, select=True)  # noqa: E731
  loop = _select_derivatives(_loop_in_place(looped), selected, differentiable)
  return lambda *args: lax.platform_dependent(*args, cpu=loop, default=vectorized)


def _loop_in_place(looped: Callable) -> Callable:
  """``looped``, batched as a loop over the examples.

  Where ``looped`` maps an image to an array of the image's dtype and size (a policy's
  ``(1, H, W, C)`` chains), each example's result is written over its image in the batch, which
  the loop carries: the batched result needs no buffer of its own, filled with zeros before the
  loop (what a scan's stacked output is), and an image batch that nothing reads afterwards (a
  crop's output in a pipeline) is updated in place. Other results, and an empty batch, are
  stacked by a scan.
  """

  @jax.custom_batching.custom_vmap
  def per_example(*args):
    return looped(*args)

  @per_example.def_vmap
  def _(axis_size, in_batched, *args):
    args = [jax.tree.map(lambda a, b: a if b else jnp.broadcast_to(a, (axis_size, *jnp.shape(a))),
                         arg, is_batched) for arg, is_batched in zip(args, in_batched, strict=True)]
    images, *rest = args
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), args)  # any batch
    first = jax.eval_shape(looped, *one)
    if not (isinstance(first, jax.ShapeDtypeStruct) and first.dtype == images.dtype
            and first.size == one[0].size and axis_size):
      out = lax.map(lambda example: looped(*example), args)
      return out, jax.tree.map(lambda _: True, out)

    def example(i, images):
      result = looped(images[i], *jax.tree.map(lambda a: a[i], rest))
      return images.at[i].set(result.reshape(images.shape[1:]))

    out = lax.fori_loop(0, axis_size, example, images)
    return out.reshape(axis_size, *first.shape), True

  return per_example


def _select_derivatives(batched_fn: Callable, selected: Callable,
                        differentiable: int) -> Callable:
  """``batched_fn``, whose derivatives, forward and reverse, are those of ``selected`` (the same
  function in select-only form) with respect to its first ``differentiable`` arguments.

  A switch batched inside a jvp rule leaves a stop_gradient that reverse mode cannot
  transpose. The rule's primal output is ``batched_fn``'s own, not ``selected``'s. Constraint
  (JAX 0.12): a `custom_jvp` traced under `vmap` inside `jit` takes its outputs' batch axes
  from the primal function (here the loop: axis 0) and never reconciles them with those of the
  rule, traced later; the select form's stack of chains batches on axis 1, so `jvp` would return
  transposed outputs and `grad` fail on the cotangent's type. Batched, a rule's tangents
  follow its primal's axis, so the loop's primal pins them to axis 0 (under differentiation
  the loop then runs beside the select form's forward pass, whose primal output is unused).
  Pinned by tests/test_composition.py (also on JAX 0.10.2). Design:
  docs/design/augmentation_backends.md.
  """
  wrapped = jax.custom_jvp(batched_fn)

  @wrapped.defjvp
  def _(primals, tangents):
    rest = primals[differentiable:]
    _, tangents_out = jax.jvp(lambda *diff: selected(*diff, *rest), primals[:differentiable],
                              tangents[:differentiable])
    return wrapped(*primals), tangents_out

  return wrapped


def after(values: tuple) -> tuple:
  """``values`` behind an optimization barrier: computed only once all of them are ready.

  Constraint (JAX 0.10.2): dropout's ``recompute_mask`` regenerates the mask in the backward
  pass; tied to the incoming cotangent, XLA neither merges the regeneration with the forward's
  copy nor schedules it early (JAX's remat uses the same device). XLA's CPU pipeline drops
  barriers before scheduling, which is harmless there. Design: docs/design/dropout_mask.md.
  """
  return lax.optimization_barrier(values)
