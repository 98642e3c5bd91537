"""The documentation site: it builds strictly, every public name has a reference page, every
code block of every page runs, every example of the examples gallery runs in the build, and the
augmentation gallery traces every op and renders."""

import importlib
import os
import re
import runpy
import subprocess
import sys

import pytest
from markdown_blocks import FAST_COMPILE, ROOT, SUBPROCESS_TIMEOUT_S, python_blocks, run_programs

DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if p.name != "README.md" and "_build" not in p.parts)
CODE_PAGES = [p for p in PAGES if python_blocks(p)]
GALLERY_CONF = runpy.run_path(str(DOCS / "conf.py"))["sphinx_gallery_conf"]
EXAMPLES = sorted((DOCS / GALLERY_CONF["examples_dirs"]).glob("*.py"))


def public_entries() -> set[str]:
  """Every name the API reference must document, from the packages themselves."""
  jr = importlib.import_module("jaxreg")
  names = {f"jaxreg.{n}" for n in jr.__all__ if n not in ("__version__", "augment")}
  return names | {f"jaxreg.augment.{n}" for n in jr.augment.__all__}


def test_sphinx_build_is_strict_and_documents_every_public_name(tmp_path):
  out = tmp_path / "html"
  # The build compiles only the examples gallery's programs, which no other test runs: writing
  # them to the suite's shared compilation cache (tests/conftest.py) would only cost time.
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  result = subprocess.run(
      [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS),
       str(out)], capture_output=True, text=True, cwd=ROOT, env=env,
      timeout=SUBPROCESS_TIMEOUT_S, check=False)
  assert result.returncode == 0, (
      "the docs build has warnings (install the docs extra: pip install -e '.[test]'):\n"
      + result.stdout[-3000:] + result.stderr[-5000:])
  pages = {p.stem for p in (out / "api" / "_autosummary").glob("*.html")}
  assert public_entries() <= pages, sorted(public_entries() - pages)
  for page in PAGES:
    html = out / page.relative_to(DOCS).with_suffix(".html")
    assert html.exists(), f"{page} is not part of the site (add it to a toctree)"
  # [source] links (viewcode) and links into other projects' references (intersphinx).
  assert (out / "_modules" / "jaxreg" / "_dropout.html").exists()
  batch_norm = (out / "api" / "_autosummary" / "jaxreg.batch_norm.html").read_text()
  assert "_modules/jaxreg/_batch_norm.html" in batch_norm
  assert "https://docs.jax.dev/en/latest/_autosummary/jax.custom_vjp.html" in batch_norm
  # The examples gallery: the build ran every example (its page shows what it printed and its
  # figures) and the gallery's front page links to it.
  gallery = out / GALLERY_CONF["gallery_dirs"]
  front = (gallery / "index.html").read_text()
  for example in EXAMPLES:
    page = gallery / f"{example.stem}.html"
    assert page.exists(), example.name
    assert f"{example.stem}.html" in front, f"the gallery's front page omits {example.name}"
    html = page.read_text()
    assert "sphx-glr-script-out" in html or f"sphx_glr_{example.stem}_001.png" in html, (
        f"{example.name} has no output on its page: it did not run")


def test_every_example_runs_in_the_build_and_an_error_fails_it():
  """Every script of docs/examples/ runs at each build (sphinx-gallery shows a script that does
  not match `filename_pattern` without running it), also when it has not changed, and an
  example that raises stops the build."""
  assert len(EXAMPLES) >= 5
  not_run = [p.name for p in EXAMPLES if not re.search(GALLERY_CONF["filename_pattern"], str(p))]
  assert not not_run, f"name these plot_*.py, or the build shows them without running: {not_run}"
  assert GALLERY_CONF["abort_on_example_error"] is True
  assert GALLERY_CONF["run_stale_examples"] is True


def test_intersphinx_reads_no_network():
  """Every intersphinx inventory is a file in docs/_inventories/ that lists the names the
  reference links to (docs/make_inventories.py writes them from the installed packages)."""
  from sphinx.util.inventory import InventoryFile

  mapping = runpy.run_path(str(DOCS / "conf.py"))["intersphinx_mapping"]
  assert set(mapping) == {"python", "numpy", "jax", "optax", "flax"}
  expected = {"python": "functools.partial", "numpy": "numpy.ndarray", "jax": "jax.vmap",
              "optax": "optax.GradientTransformation", "flax": "flax.nnx.Dropout"}
  for name, (url, inventory) in mapping.items():
    path = DOCS / inventory
    assert url.startswith("https://"), (name, url)
    assert path.is_file(), (name, inventory)
    with path.open("rb") as f:
      items = InventoryFile.load(f, url, lambda base, uri: f"{base}/{uri}")
    names = {n for objects in items.values() for n in objects}
    assert expected[name] in names, (name, expected[name])


def test_the_guides_have_code_to_run():
  assert len(CODE_PAGES) >= 9


def test_every_docs_code_block_runs():
  """Each page's ```python blocks run in order, as one program (later blocks use earlier ones);
  the pages one after another in one Python (`run_programs`)."""
  failed = run_programs({str(page.relative_to(DOCS)): "\n".join(python_blocks(page))
                         for page in CODE_PAGES})
  assert not failed, "\n\n".join(f"{page} failed:\n{error}" for page, error in failed.items())


def test_run_programs_reports_each_failure_and_restores_jax_configuration():
  failed = run_programs({
      "fine": "x = 1",
      "raises": "print('before'); raise ValueError('boom')",
      "exits": "raise SystemExit(3)",
      "configures": "import jax; jax.config.update('jax_debug_key_reuse', True)",
      "sees the default": "import jax; assert not jax.config.jax_debug_key_reuse",
      "own namespace": "assert 'x' not in globals()",
  })
  assert sorted(failed) == ["exits", "raises"]
  assert "before" in failed["raises"]
  assert "ValueError: boom" in failed["raises"]


def _gallery():
  sys.path.insert(0, str(DOCS))
  try:
    return importlib.import_module("gallery")
  finally:
    sys.path.remove(str(DOCS))


def test_gallery_shows_every_augment_op():
  import jaxreg as jr

  shown = {name for name, _ in _gallery().GALLERY}
  # a loss on logits, and what `draw` returns (the `apply` row shows them at work)
  not_image_ops = {"aug_mix_consistency_loss", "draw"} | {
      name for name in jr.augment.__all__ if name.endswith("Params")}
  missing = set(jr.augment.__all__) - shown - not_image_ops
  assert not missing, f"add a row for {sorted(missing)} to GALLERY in docs/gallery.py"


@pytest.mark.standard_promotion  # the gallery is user code, written for JAX's default promotion
def test_every_gallery_row_traces():
  """Each tile of every row, traced at a small size (`jax.eval_shape`: no compiling): the
  gallery still calls every op as its current signature says, and each tile is an image."""
  import jax

  gallery = _gallery()
  image, other = gallery.sample_image("china.jpg", 24), gallery.sample_image("flower.jpg", 24)
  for name, settings in gallery.GALLERY:
    for caption, fn in settings:
      tile = jax.eval_shape(fn, jax.random.key(0), image, other)
      assert tile.ndim == 3, (name, caption, tile.shape)
      assert tile.shape[-1] == 3, (name, caption, tile.shape)


def test_gallery_renders_the_rows_it_is_given(tmp_path):
  """The script end to end on three rows (`test_every_gallery_row_traces` covers the rest):
  one row per named op under the photographs, each tile a square of the given size."""
  out = tmp_path / "gallery.png"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": FAST_COMPILE}
  only = ["rotate", "mixup", "equalize"]
  result = subprocess.run([sys.executable, str(DOCS / "gallery.py"), "--size", "40", "--out",
                           str(out), "--only", *only], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=SUBPROCESS_TIMEOUT_S, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  from PIL import Image

  with Image.open(out) as image:
    width, height = image.size
  font_size = max(9, 40 // 11)  # the captions' line above each tile, as render() lays it out
  cell = 40 + int(font_size * 1.4) + 4
  assert height == (1 + len(only)) * cell + 4
  assert width >= 4 * 40
  assert (ROOT / "docs" / "_static" / "gallery.png").exists()
  with pytest.raises(ValueError, match=r"only.*no_such_op"):
    _gallery().render(40, tmp_path / "x.png", only=["rotate", "no_such_op"])
