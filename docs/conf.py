"""Sphinx configuration of jaxreg's documentation (see docs/README.md to build it)."""

import os
import pathlib
import sys

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # jaxreg itself, from this checkout
sys.path.insert(0, str(DOCS / "_ext"))

# The gallery's examples (below) are tiny, so their time is XLA compiling them: LLVM's
# expensive passes off (the results are the same, the code runs slower) halves it, as in the
# test suite (tests/markdown_blocks.py). Set before JAX starts its backend; an XLA_FLAGS that
# sets an optimization level itself is left as it is.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if "optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

import jaxreg  # noqa: E402

project = "jaxreg"
author = "jaxreg contributors"
copyright = "jaxreg contributors"
release = version = jaxreg.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",  # a [source] link from every API entry to its highlighted module
    "public_api",  # docs/_ext/public_api.py: the reference pages, generated from __all__
    "results",  # docs/_ext/results.py: measured figures, rendered from the results files
    "sphinx_gallery.gen_gallery",  # the examples gallery: docs/examples/*.py, run at build time
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "api/_autosummary/*.md", "examples"]
templates_path = ["_templates"]

# Docstrings: Google style, `name` links to the object where it resolves.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # NamedTuple fields as a field list, not as duplicate objects
default_role = "py:obj"
autosummary_generate = True
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
add_module_names = True

# A reference to a jaxreg name that does not exist is an error; names of other libraries
# (jax, optax, typing) link where the inventories below know them and are not checked.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!jaxreg\b).*")]

# Links to the Python, NumPy, JAX, optax and flax references. The build reads no network: the
# inventories are files in docs/_inventories/, written from the installed packages by
# docs/make_inventories.py (re-run it after upgrading one of them).
INVENTORIES = DOCS / "_inventories"
intersphinx_mapping = {
    name: (url, str(INVENTORIES / f"{name}.inv"))
    for name, url in [("python", "https://docs.python.org/3"),
                      ("numpy", "https://numpy.org/doc/stable"),
                      ("jax", "https://docs.jax.dev/en/latest"),
                      ("optax", "https://optax.readthedocs.io/en/latest"),
                      ("flax", "https://flax.readthedocs.io/en/latest")]
}

myst_heading_anchors = 3

# The examples gallery: every docs/examples/plot_*.py runs at each build, in this process, and
# its page (docs/auto_examples/, not tracked) shows its code, what it printed and its figures.
# An example that raises fails the build; one that has not changed runs again anyway, so its
# page always shows what the current jaxreg does.
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "ExampleTitleSortKey",
    "abort_on_example_error": True,
    "run_stale_examples": True,
    "download_all_examples": False,
    "write_computation_times": False,
    "show_signature": False,
}

html_theme = "furo"
html_title = f"jaxreg {release}"
