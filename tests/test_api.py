"""Conventions every public function follows, enforced by introspection (as dm_pix does)."""

import ast
import dataclasses
import inspect
import pathlib

import pytest

import jaxreg as jr

PACKAGE = pathlib.Path(jr.__file__).parent
PUBLIC = [name for name in jr.__all__ if name != "__version__"]
FUNCTIONS = [getattr(jr, name) for name in PUBLIC if inspect.isfunction(getattr(jr, name))]
FUNCTIONS += [getattr(jr.augment, name) for name in jr.augment.__all__
              if inspect.isfunction(getattr(jr.augment, name))]
# The parameter sets `jaxreg.augment.draw` returns: frozen dataclasses registered as pytrees.
PARAMETER_SETS = [getattr(jr.augment, name) for name in jr.augment.__all__
                  if inspect.isclass(getattr(jr.augment, name))]
# The states that go in and out of the library's functions: named tuples.
STATE_CLASSES = [getattr(jr, name) for name in PUBLIC if inspect.isclass(getattr(jr, name))]


def test_all_is_complete_and_importable():
  assert jr.__version__
  for name in jr.__all__:
    assert hasattr(jr, name), name
  assert {cls.__name__ for cls in STATE_CLASSES} == {"BatchNormState", "ProxState"}
  for name in jr.augment.__all__:
    value = getattr(jr.augment, name)
    assert inspect.isfunction(value) or value in PARAMETER_SETS, name
  assert {cls.__name__ for cls in PARAMETER_SETS} == {
      "AffineParams", "AugMixParams", "ColorJitterParams", "ColorParams", "CropParams",
      "CutmixParams", "ErasingParams", "FlipParams", "GrayscaleParams", "MixupParams",
      "PolicyParams",
      "ResizedCropParams"}
  assert len(set(jr.__all__)) == len(jr.__all__)


@pytest.mark.parametrize("module", [jr, jr.augment], ids=lambda m: m.__name__)
def test_public_names_are_exactly_all_and_documented(module):
  # The facade is the only public surface: implementation modules are private (`_dropout`, ...),
  # and nothing else leaks out of them under a public name.
  public = {name for name in vars(module) if not name.startswith("_")}
  assert public == set(module.__all__) - {"__version__"}
  for name in public:
    doc = inspect.getdoc(getattr(module, name))
    assert len(doc or "") > 40, f"{module.__name__}.{name} is undocumented"
  files = [p.name for p in pathlib.Path(module.__file__).parent.glob("*.py")]
  assert all(f == "__init__.py" or f.startswith("_") for f in files), files


@pytest.mark.parametrize("cls", PARAMETER_SETS, ids=lambda c: c.__name__)
def test_parameter_sets_are_documented_frozen_dataclasses(cls):
  assert dataclasses.is_dataclass(cls)
  assert cls.__dataclass_params__.frozen
  doc = inspect.getdoc(cls)
  assert "Attributes:" in doc
  for field in dataclasses.fields(cls):
    assert f"{field.name}:" in doc, f"{cls.__name__} does not document `{field.name}`"


@pytest.mark.parametrize("cls", STATE_CLASSES, ids=lambda c: c.__name__)
def test_state_classes_document_each_field_and_have_an_example(cls):
  doc = inspect.getdoc(cls)
  assert "Attributes:" in doc
  assert "Example:" in doc
  for field in cls._fields:
    assert f"{field}:" in doc, f"{cls.__name__} does not document `{field}`"


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_docstring_sections(fn):
  doc = inspect.getdoc(fn)
  for section in ("Args:", "Returns:", "Raises:", "Example:"):
    assert section in doc, f"{fn.__name__} lacks {section}"
  if "rate" in inspect.signature(fn).parameters:
    assert "DROPPING" in doc or "dropping" in doc


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda f: f.__name__)
def test_signature_conventions(fn):
  params = list(inspect.signature(fn).parameters.values())
  names = [p.name for p in params]
  assert not {"rng", "seed", "prng", "key_"} & set(names), "randomness comes from `key`"
  if "key" in names:
    assert names[0] == "key", "the key comes first"
  for p in params:
    if p.default is not inspect.Parameter.empty:
      assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"optional `{p.name}` must be keyword-only"
  if "train" in names:
    train = params[names.index("train")]
    assert train.kind is inspect.Parameter.KEYWORD_ONLY
    assert train.default is inspect.Parameter.empty, "`train` has no default"


def test_every_public_function_has_edge_case_rows():
  # The edge-case matrix covers every public function: a new one needs its rows there (one
  # per class of bad input that applies to its signature).
  from test_bad_inputs import ROWS

  covered = {row.fn for row in ROWS}
  public = [(f"jaxreg.{name}", getattr(jr, name)) for name in PUBLIC
            if inspect.isfunction(getattr(jr, name))]
  public += [(f"jaxreg.augment.{name}", getattr(jr.augment, name)) for name in jr.augment.__all__
             if inspect.isfunction(getattr(jr.augment, name))]
  missing = [name for name, fn in public if fn not in covered]
  assert not missing, "no rows in tests/test_bad_inputs.py for: " + ", ".join(missing)


def library_trees():
  for path in sorted(PACKAGE.rglob("*.py")):
    yield str(path.relative_to(PACKAGE)), ast.parse(path.read_text())


def test_no_bare_asserts_in_library():
  for name, tree in library_trees():
    asserts = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assert)]
    assert not asserts, f"{name} uses assert at lines {asserts}"


def test_library_imports_only_runtime_dependencies():
  allowed = {"jax", "jaxlib", "optax", "numpy", "jaxreg", "__future__"}
  stdlib = {"collections", "contextlib", "dataclasses", "functools", "math", "numbers",
            "typing", "types", "itertools", "re", "warnings", "fnmatch", "operator", "fractions"}
  for name, tree in library_trees():
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        roots = [a.name.split(".")[0] for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        roots = [(node.module or "").split(".")[0]]
      else:
        continue
      for root in roots:
        assert root in allowed | stdlib, f"{name} imports {root}"


MAX_MODULE_LINES = 500
ROOT = PACKAGE.parent
# The Python code that uses jaxreg's modules: the library itself and everything around it.
SCANNED = [PACKAGE, ROOT / "tests", ROOT / "benchmarks", ROOT / "examples", ROOT / "docs"]


def test_every_library_module_is_at_most_500_lines():
  # One concern per module: a module past the limit holds two, and splits along them.
  lengths = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for p in sorted(PACKAGE.rglob("*.py"))}
  long = {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES}
  assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def _is_module(dotted: str) -> bool:
  """Whether ``dotted`` (``jaxreg.augment._warp``) names a module or package of jaxreg."""
  path = ROOT.joinpath(*dotted.split("."))
  return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _module_name(path: pathlib.Path) -> str | None:
  """The dotted name of a library file, None for files outside the package."""
  if PACKAGE not in path.parents:
    return None
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def private_name_uses(path: pathlib.Path, tree: ast.AST) -> list[str]:
  """Underscore names of jaxreg modules that ``tree`` imports or reads from another module.

  A private module itself (``from jaxreg.augment import _warp``) may be imported; what it holds
  under a leading underscore is its own: ``from jaxreg.augment._warp import _gather`` and
  ``_warp._gather`` are uses, as is ``module._name`` for any alias bound to a jaxreg module.
  """
  own = _module_name(path)
  package = own if path.name == "__init__.py" else (own or "").rpartition(".")[0]
  aliases: dict[str, str] = {}  # local name -> jaxreg module
  uses = []

  def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.split(".")[0] == "jaxreg":
          if alias.asname:
            aliases[alias.asname] = alias.name
          else:
            aliases["jaxreg"] = "jaxreg"
    elif isinstance(node, ast.ImportFrom):
      module = node.module or ""
      if node.level:
        base = package.split(".")[:len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([module] if module else []))
      if module.split(".")[0] != "jaxreg":
        continue
      for alias in node.names:
        full = f"{module}.{alias.name}"
        if _is_module(full):
          aliases[alias.asname or alias.name] = full
        elif private(alias.name) and module != own:
          uses.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {module} import "
                      f"{alias.name}")
  for node in ast.walk(tree):
    if not isinstance(node, ast.Attribute):
      continue
    chain = []
    base = node
    while isinstance(base, ast.Attribute):
      chain.append(base.attr)
      base = base.value
    if not isinstance(base, ast.Name) or base.id not in aliases:
      continue
    module = aliases[base.id]
    for attr in reversed(chain):
      if _is_module(f"{module}.{attr}"):
        module = f"{module}.{attr}"
        continue
      if private(attr) and module != own:
        uses.append(f"{path.relative_to(ROOT)}:{node.lineno}: {module}.{attr}")
      break
  return sorted(set(uses))


def test_no_module_uses_another_modules_private_names():
  # A leading underscore means module-private: a name another module (or a test, a benchmark)
  # uses is named without one inside its private module.
  uses = []
  for folder in SCANNED:
    for path in sorted(folder.rglob("*.py")):
      if "_build" not in path.parts:
        uses += private_name_uses(path, ast.parse(path.read_text()))
  assert not uses, "private names used across modules:\n" + "\n".join(uses)


def test_the_private_name_scan_catches_every_form():
  source = "\n".join([
      "import jaxreg as jr", "import jaxreg.augment._warp as w",
      "from jaxreg import _checks", "from jaxreg.augment import _levels as lv",
      "from jaxreg.augment._warp import _gather, warp",
      "from jaxreg._dropout import apply_mask",
      "a = _checks._wrap_raw", "b = lv._countable(1)", "c = w._TIE", "d = jr.augment._crop._x",
      "e = lv.quantize", "f = jr.augment.__name__", "g = _checks.check_int",
  ])
  path = ROOT / "tests" / "sample.py"
  uses = [use.split(": ", 1)[1] for use in private_name_uses(path, ast.parse(source))]
  assert sorted(uses) == sorted([
      "from jaxreg.augment._warp import _gather", "jaxreg._checks._wrap_raw",
      "jaxreg.augment._levels._countable", "jaxreg.augment._warp._TIE",
      "jaxreg.augment._crop._x"])
