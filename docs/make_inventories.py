"""Writes the Sphinx inventories intersphinx reads, from the installed packages, without a network.

    python docs/make_inventories.py          # after upgrading numpy, jax, optax or flax

intersphinx links a name such as `jax.vmap` in a docstring to the page that documents it, by
looking the name up in the other project's ``objects.inv``. Those files normally come from the
web at build time; the docs build here must not touch the network, so this script writes small
inventories into ``docs/_inventories/`` (tracked, a few KB each) and ``conf.py`` points
intersphinx at them.

The names come from the installed packages, walked namespace by namespace; each name's address
follows its project's documentation layout, one rule per namespace (below). A name whose page
the rule cannot know is left out, so it renders as plain code rather than a wrong link.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import pathlib
import sys
import warnings
import zlib
from collections.abc import Callable, Iterator

OUT = pathlib.Path(__file__).resolve().parent / "_inventories"

# (name, role, uri): role is the py domain's object type, uri relative to the project's base.
Entry = tuple[str, str, str]


def _role(obj) -> str:
  if inspect.ismodule(obj):
    return "module"
  if inspect.isclass(obj):
    return "exception" if issubclass(obj, BaseException) else "class"
  return "function" if callable(obj) else "data"


def _public(module) -> Iterator[tuple[str, object]]:
  """The public names of ``module`` and their objects, leaving out deprecated aliases."""
  names = getattr(module, "__all__", None) or dir(module)
  for name in sorted(set(names)):
    if name.startswith("_"):
      continue
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      try:
        obj = getattr(module, name)
      except AttributeError:  # a name removed behind a module __getattr__
        continue
    if not any(issubclass(w.category, DeprecationWarning) for w in caught):
      yield name, obj


# ---------------------------------------------------------------------------------------------
# Python: https://docs.python.org/3/, one page per module of the standard library.
# ---------------------------------------------------------------------------------------------

PYTHON_MODULES = ("collections.abc", "contextlib", "dataclasses", "enum", "functools",
                  "itertools", "math", "numbers", "operator", "typing")


def python() -> Iterator[Entry]:
  for name, obj in _public(builtins):
    if inspect.ismodule(obj):
      continue
    if isinstance(obj, type) and issubclass(obj, BaseException):
      yield name, "exception", f"library/exceptions.html#{name}"
    elif obj is None or obj is Ellipsis or obj is NotImplemented or isinstance(obj, bool):
      yield name, "data", f"library/constants.html#{name}"
    elif callable(obj):
      yield name, _role(obj), f"library/functions.html#{name}"
  for module_name in PYTHON_MODULES:
    module = importlib.import_module(module_name)
    page = f"library/{module_name}.html"
    yield module_name, "module", f"{page}#module-{module_name}"
    for name, obj in _public(module):
      if inspect.ismodule(obj):
        continue
      if module_name == "typing":  # special forms and aliases are data in Python's own index
        role = "class" if inspect.isclass(obj) else "data"
      elif getattr(obj, "__module__", None) in (module_name, "_" + module_name):
        role = _role(obj)
      else:  # imported from elsewhere, documented there
        continue
      yield f"{module_name}.{name}", role, f"{page}#{module_name}.{name}"


# ---------------------------------------------------------------------------------------------
# NumPy: https://numpy.org/doc/stable/, a generated page per function, scalars on one page.
# ---------------------------------------------------------------------------------------------


def numpy() -> Iterator[Entry]:
  import numpy as np

  for name, obj in _public(np):
    full = f"numpy.{name}"
    if inspect.isclass(obj) and issubclass(obj, np.generic):
      yield full, "class", f"reference/arrays.scalars.html#{full}"
    elif obj is np.ndarray or obj is np.dtype:
      yield full, "class", f"reference/generated/{full}.html#{full}"
    elif callable(obj) and not inspect.isclass(obj):
      yield full, "function", f"reference/generated/{full}.html#{full}"


# ---------------------------------------------------------------------------------------------
# JAX: https://docs.jax.dev/en/latest/, an autosummary page per function (_autosummary/NAME).
# ---------------------------------------------------------------------------------------------

JAX_AUTOSUMMARY = ("jax", "jax.numpy", "jax.random", "jax.lax", "jax.nn", "jax.image",
                   "jax.tree", "jax.tree_util", "jax.custom_batching", "jax.ad_checkpoint")
JAX_CLASSES = {"jax.Array", "jax.ShapeDtypeStruct", "jax.custom_vjp", "jax.custom_jvp"}
JAX_ONE_PAGE = ("jax.sharding", "jax.typing", "jax.errors")  # classes documented on the page


def jax() -> Iterator[Entry]:
  for module_name in JAX_AUTOSUMMARY + JAX_ONE_PAGE:
    module = importlib.import_module(module_name)
    yield module_name, "module", f"{module_name}.html#module-{module_name}"
    for name, obj in _public(module):
      full = f"{module_name}.{name}"
      if inspect.ismodule(obj):
        continue
      if module_name in JAX_ONE_PAGE:
        yield full, _role(obj), f"{module_name}.html#{full}"
      elif full in JAX_CLASSES or (callable(obj) and not inspect.isclass(obj)):
        yield full, _role(obj), f"_autosummary/{full}.html#{full}"


# ---------------------------------------------------------------------------------------------
# optax: https://optax.readthedocs.io/en/latest/, a generated page per public name.
# ---------------------------------------------------------------------------------------------


def optax() -> Iterator[Entry]:
  import optax as ox

  for name, obj in _public(ox):
    if inspect.ismodule(obj) or not (callable(obj) or inspect.isclass(obj)):
      continue
    full = f"optax.{name}"
    yield full, _role(obj), f"api/generated/{full}.html#{full}"


# ---------------------------------------------------------------------------------------------
# flax: https://flax.readthedocs.io/en/latest/. NNX layers are documented one page per module
# of flax.nnx.nn; linen's layers (Module subclasses) one autosummary page each.
# ---------------------------------------------------------------------------------------------


def flax() -> Iterator[Entry]:
  from flax import linen, nnx

  for name, obj in _public(nnx):
    module = getattr(obj, "__module__", "") or ""
    if module.startswith("flax.nnx.nn.") and (inspect.isclass(obj) or callable(obj)):
      page = module.removeprefix("flax.nnx.nn.").replace(".", "/")
      full = f"flax.nnx.{name}"
      yield full, _role(obj), f"api_reference/flax.nnx/nn/{page}.html#{full}"
  for name, obj in _public(linen):
    if inspect.isclass(obj) and issubclass(obj, linen.Module) and obj is not linen.Module:
      full = f"flax.linen.{name}"
      yield full, "class", f"api_reference/flax.linen/_autosummary/{full}.html#{full}"


PROJECTS: dict[str, tuple[str, Callable[[], Iterator[Entry]]]] = {
    "python": ("Python", python),
    "numpy": ("NumPy", numpy),
    "jax": ("JAX", jax),
    "optax": ("optax", optax),
    "flax": ("flax", flax),
}


def version(key: str) -> str:
  if key == "python":
    return f"{sys.version_info.major}.{sys.version_info.minor}"
  return importlib.import_module(key).__version__


def inventory(project: str, release: str, entries: list[Entry]) -> bytes:
  """An ``objects.inv`` in Sphinx's version 2 format: four header lines, then zlib."""
  header = ("# Sphinx inventory version 2\n"
            f"# Project: {project}\n"
            f"# Version: {release}\n"
            "# The remainder of this file is compressed using zlib.\n").encode()
  seen, lines = set(), []
  for name, role, uri in entries:
    if name not in seen:  # the first address wins, as aliases repeat a name
      seen.add(name)
      lines.append(f"{name} py:{role} 1 {uri} -\n")
  return header + zlib.compress("".join(sorted(lines)).encode(), 9)


def with_defining_names(entries: Iterator[Entry], root: str) -> Iterator[Entry]:
  """Each entry, then the same address under the name of the module that defines the object.

  Type hints resolve to that name (``optax.GradientTransformation`` is
  ``optax._src.base.GradientTransformation`` to autodoc), so both must be in the inventory.
  """
  for name, role, uri in entries:
    yield name, role, uri
    module_name, _, attr = name.rpartition(".")
    try:
      obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
      continue
    defined = f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"
    if defined != name and defined.startswith(root + "."):
      yield defined, role, uri


def main() -> None:
  OUT.mkdir(exist_ok=True)
  for key, (project, entries) in PROJECTS.items():
    items = list(entries()) if key == "python" else list(with_defining_names(entries(), key))
    (OUT / f"{key}.inv").write_bytes(inventory(project, version(key), items))
    print(f"{key}.inv: {len({name for name, _, _ in items})} names")


if __name__ == "__main__":
  main()
