"""Every measured figure on a page comes from a results file.

The rule, for README.md, every docs/**/*.md page and the files they include, and the prose of
the examples gallery (the docstring and comment blocks of docs/examples/*.py; what an example
prints is computed at build time and is not scanned), outside code (fenced blocks, directives
such as ``results-table``, inline code and roles such as ``{result}`...```) and HTML comments:

A *measured figure* is any of
- a number with a unit of time (``ns``, ``µs``, ``ms``, ``s``, ``min``, ``seconds``,
  ``3-minute``), of throughput (``images/s``, ``img/s``, ``images per second``), of memory
  (``KB`` ... ``GiB``, ``bytes``), a percentage or accuracy points (``%``, ``points``), a count of
  compiled work (``GFLOP``, ``kernels``, ``copies``, ``gathers``, ``page faults``);
- a ratio: a number followed directly by ``x`` or ``×`` (``0.44x``, ``3x``; not a shape such
  as ``8x8``);
- bold text that starts with a number (``**0.44**``, ``**162 s**``), a mean ± spread
  (``94.4 ± 0.6``), a decimal with three or more digits after the point (``0.266``);
- a table cell that holds only numbers with a decimal point or thousands separators
  (``| 1.00 / 1.03 |``, ``| 19,333,568 |``).

Each must come through docs/_ext/results.py (the ``{result}`` role or a ``results-table``,
rendered from the results file at build time), or equal, as printed, one of the values the page
declares in an HTML comment ``<!-- results: FILE/KEY.FIELD:SPEC ... -->`` (for README.md,
which GitHub renders, not Sphinx), or be on the allow-list below: numbers that are
definitions or arithmetic, not measurements.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import results  # noqa: E402  (docs/_ext/results.py)

DOCS_PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
# README.md, every docs page, and the files the pages include (CHANGELOG.md).
PAGES = [ROOT / "README.md", *DOCS_PAGES, *sorted({
    (page.parent / name).resolve() for page in DOCS_PAGES
    for name in re.findall(r"^`{3,}\{include\}\s+(\S+)", page.read_text(), re.M)})]
# The examples gallery's scripts: their prose is a page too (see gallery_prose).
PAGES += sorted((ROOT / "docs" / "examples").glob("*.py"))

# (page, figure as the scanner reports it): why it is not a measurement.
ALLOWED = {
    ("docs/migration.md", "0.7%"): "arithmetic: the bias of 1 / (1 - rate) at rate 0.999",
    ("docs/migration.md", "53%"): "arithmetic: the bias of 1 / (1 - rate) at rate 0.99999",
    ("docs/design/dropout_mask.md", "0.7%"): "arithmetic, as in migration.md",
    ("docs/design/dropout_mask.md", "53%"): "arithmetic, as in migration.md",
    ("docs/design/dropout_mask.md", "0.4%"): "arithmetic: the rounding of a float16 scale",
    ("docs/migration.md", "1.1111186"): "arithmetic: the scale 2**16 / threshold at rate 0.1",
    ("docs/migration.md", "1.1111111"): "arithmetic: 1 / (1 - 0.1)",
    ("docs/migration.md", "0.999"): "a rate, an input",
    ("docs/migration.md", "0.99999"): "a rate, an input",
    ("docs/design/dropout_mask.md", "0.999"): "a rate, an input",
    ("docs/design/dropout_mask.md", "0.99999"): "a rate, an input",
    ("docs/faq.md", "0.125"): "a rate, an input",
    ("docs/migration.md", "0.125"): "a rate, an input",
    ("docs/policies.md", "15.999999"): "arithmetic: torchvision's float32 table entry",
    ("docs/design/photometric.md", "0.2989"): "a constant: torchvision's red weight",
}

NUM = r"(?<![\w.,])\d+(?:,\d{3})*(?:\.\d+)?"
RANGE = rf"{NUM}(?:\s?[-–]\s?{NUM})?"
UNITS = (r"ns|µs|us|ms|s|secs?|seconds?|mins?|minutes?|hours?|images/s|img/s|"
         r"images per second|KB|MB|GB|TB|KiB|MiB|GiB|TiB|bytes|%|percent|points|GFLOPs?|"
         r"FLOPs?|kernels|copies|gathers|(?:minor )?page faults")
PATTERNS = {  # in this order: a figure that one pattern matches is not matched again
    "spread": re.compile(rf"{NUM}\s?±\s?{NUM}"),
    "bold": re.compile(r"\*\*(?:about |~)?\d[^*\n]{0,24}\*\*"),
    "ratio": re.compile(rf"{RANGE}[x×](?![\w])"),
    "unit": re.compile(rf"{RANGE}(?:\s?|-)(?:{UNITS})(?![\w/])"),
    "decimal": re.compile(r"(?<![\w.,])\d+\.\d{3,}(?![\d])"),
}
_NUMBER = re.compile(NUM)
_CELL = re.compile(r"^[\s*()/~–-]*\d[\d.,\s*()/~–-]*$")
_FENCE = re.compile(r"^(```|~~~)")
_DECLARED = re.compile(r"<!--\s*results:(.*?)-->", re.S)


def prose_lines(text: str) -> list[tuple[int, str]]:
  """(line number, text) of a page's prose: no fenced blocks, inline code, comments, links."""
  text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
  if text.startswith("---\n"):  # front matter
    end = text.find("\n---\n", 4)
    text = "\n" * text[:end + 4].count("\n") + text[end + 5:] if end > 0 else text
  lines, fence = [], None
  for number, line in enumerate(text.splitlines(), 1):
    match = _FENCE.match(line.lstrip())
    if fence is None and match:
      fence = line.lstrip()[:3]
      continue
    if fence is not None:
      if line.strip() == fence:  # MyST fences may be longer; a plain close ends the block
        fence = None
      continue
    line = re.sub(r"(\{[\w-]+\})?`[^`]*`", " ", line)  # inline code and roles
    line = re.sub(r"\]\([^)]*\)", "]", line)  # link targets
    lines.append((number, line))
  return lines


def gallery_prose(source: str) -> str:
  """The prose of a gallery example, each line at its own line number, code lines blank.

  sphinx-gallery renders an example's docstring and the comment block after each ``# %%``
  line as reStructuredText; its double-backtick literals become inline code for
  `prose_lines`.
  """
  lines = source.splitlines()
  prose = [""] * len(lines)
  module = ast.parse(source)
  if ast.get_docstring(module) is not None:
    node = module.body[0]
    prose[node.lineno - 1:node.end_lineno] = lines[node.lineno - 1:node.end_lineno]
  in_block = False
  for number, line in enumerate(lines):
    if line.startswith("# %%"):
      in_block = True
    elif in_block and line.startswith("#"):
      prose[number] = line[1:]
    else:
      in_block = False
  return re.sub(r"``([^`]*)``", r"`\1`", "\n".join(prose))


def page_text(page: pathlib.Path) -> str:
  """A page's text as the figure rules read it: the prose of a gallery example, else the file."""
  return gallery_prose(page.read_text()) if page.suffix == ".py" else page.read_text()


def figures(text: str) -> list[tuple[int, str]]:
  """(line, figure) of every measured figure in a page's prose (see the module docstring)."""
  found = []
  for number, line in prose_lines(text):
    spans = []
    for pattern in PATTERNS.values():
      for m in pattern.finditer(line):
        if not any(a < m.end() and m.start() < b for a, b, _ in spans):
          spans.append((m.start(), m.end(), m.group(0).strip()))
    if line.lstrip().startswith("|"):
      start = line.index("|") + 1
      for cell in line[start:].split("|"):
        end = start + len(cell)
        if (_CELL.match(cell) and re.search(r"\d[.,]\d", cell)
            and not any(a < end and start < b for a, b, _ in spans)):
          spans.append((start, end, cell.strip()))
        start = end + 1
    found += [(number, figure) for _, _, figure in sorted(spans)]
  return found


def declared_values(text: str, index) -> set[str]:
  """The printed values a page declares in ``<!-- results: FILE/PATH:SPEC ... -->``."""
  return {results.render_ref(ref, index)[0]
          for block in _DECLARED.findall(text) for ref in block.split()}


def violations(name: str, text: str, index) -> list[str]:
  """Figures of page ``name`` that neither a declared value nor the allow-list covers."""
  declared = declared_values(text, index)
  bad = []
  for number, figure in figures(text):
    if (name, figure) in ALLOWED:
      continue
    if declared and all(n in declared for n in _NUMBER.findall(figure)):
      continue
    bad.append(f"{name}:{number}: {figure}")
  return bad


def test_no_page_types_a_measured_figure_by_hand():
  index = results.file_index()
  bad = [v for page in PAGES
         for v in violations(str(page.relative_to(ROOT)), page_text(page), index)]
  assert not bad, ("these figures are typed by hand: render them from a results file with "
                   "{result}`FILE/KEY.FIELD` or a results-table (docs/_ext/results.py):\n"
                   + "\n".join(bad))


def test_the_allow_list_is_used():
  used = {(str(p.relative_to(ROOT)), f) for p in PAGES for _, f in figures(page_text(p))}
  assert set(ALLOWED) <= used, sorted(set(ALLOWED) - used)


_ROLE = re.compile(r"(?<!`)\{result\}`([^`\n]+)`")
_TABLE = re.compile(r"^(`{3,})\{results-table\}[ \t]*(\S*)\n(.*?)^\1", re.S | re.M)
_SOURCE = re.compile(r"^`{3,}\{results-source\}[ \t]*(.*)$", re.M)


def references(text: str, index) -> list[str]:
  """Resolves every role, results-table and results-source of a page; returns the errors."""
  errors = []
  for ref in _ROLE.findall(text):
    try:
      results.render_ref(ref, index)
    except results.ResultsError as err:
      errors.append(f"{{result}}`{ref}`: {err}")
  for _, file_id, body in _TABLE.findall(text):
    lines = body.splitlines()
    options = dict(line[1:].split(":", 1) for line in lines if line.startswith(":"))
    columns = [line for line in lines if not line.startswith(":")]
    stems = "stems" in options
    try:
      results.table_markdown(file_id or None, options.get("stems" if stems else "rows", ""),
                             columns, index, stems)
    except results.ResultsError as err:
      errors.append(f"results-table {file_id}: {err}")
  for ids in _SOURCE.findall(text):
    errors += [f"results-source: no results file {i!r}" for i in ids.split() if i not in index]
  return errors


def test_every_reference_resolves():
  """What the strict docs build checks, in a second: every named value exists."""
  index = results.file_index()
  errors = [f"{page.relative_to(ROOT)}: {e}" for page in PAGES
            for e in references(page_text(page), index)]
  assert not errors, "\n".join(errors)


# ---------------------------------------------------------------------------------------------
# The rule can fail: pages with figures typed by hand, against a results file of our own.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def index(tmp_path):
  import json

  path = tmp_path / "bench.json"
  path.write_text(json.dumps({
      "command": "python -m benchmarks.run --only bench", "date": "2025-01-31T12:00:00+00:00",
      "machine": {"cpu": "a CPU", "cores": 2, "memory_gib": 8}, "device": {"platform": "cpu",
      "kind": "cpu"}, "versions": {"python": "3.13.0", "jax": "0.12.0"}, "wall_seconds": 61.5,
      "rows": [{"key": "fwd_rate0.1", "label": "dropout forward", "seconds": 0.0125,
                "anchor_seconds": 0.025, "ratio": 0.5, "items": 128, "temp_bytes": 19333568}]}))
  return {"bench": path}


STALE = """# A page

Dropout takes 0.44x flax's time, 12.5 ms for the batch, 454 images/s.

| op | ratio |
|---|---|
| dropout | **0.44** |
| dropout, steady | 0.19 |

Accuracy 94.4 ± 0.6 points; NLL 0.266; memory 19,333,568 bytes; the run took **162 s**.
"""


def test_a_page_with_figures_typed_by_hand_fails(index):
  bad = violations("page.md", STALE, index)
  assert [b.split(": ", 1)[1] for b in bad] == [
      "0.44x", "12.5 ms", "454 images/s", "**0.44**", "0.19", "94.4 ± 0.6", "0.266",
      "19,333,568 bytes", "**162 s**"]


def test_figures_in_code_roles_and_tables_are_not_typed_by_hand(index):
  page = """# A page

Dropout takes {result}`bench/fwd_rate0.1.ratio:.2f`x flax's time (`0.44x` is code).

```{results-table} bench
op = {label}
ms = {ms:.1f}
```

```python
print("12.5 ms")  # 0.44x
```

Shapes and rates are definitions: 8x8, 128x224x224x3, rate 0.1, 8 seeds, 400 steps.
"""
  assert violations("page.md", page, index) == []
  assert references(page, index) == []


def test_the_prose_of_a_gallery_example_is_a_page(index):
  example = '''"""
An example
==========

It takes 12.5 ms (``0.44x`` is a literal).
"""

import jax

print("12.5 ms")  # 0.44x, code and what it prints: not prose
accuracy = 0.266

# %%
# A section
# ---------
# The step runs at 454 images/s.

x = 0.266
'''
  bad = violations("docs/examples/plot_x.py", gallery_prose(example), index)
  assert [b.split(":", 2)[1:] for b in bad] == [["5", " 12.5 ms"], ["16", " 454 images/s"]]


def test_declared_values_must_match_the_results_file(index):
  declared = ("<!-- results: bench/fwd_rate0.1.ratio:.2f bench/fwd_rate0.1.ms:.1f\n"
              "     bench/fwd_rate0.1.per_second:.0f bench/wall_seconds:.0f -->\n")
  fresh = declared + "Dropout takes 0.50x flax's time, 12.5 ms, 10240 images/s; 62 s.\n"
  assert violations("README.md", fresh, index) == []
  stale = declared + "Dropout takes 0.44x flax's time, 12.5 ms, 10240 images/s; 62 s.\n"
  assert [b.split(": ", 1)[1] for b in violations("README.md", stale, index)] == ["0.44x"]


def test_references_to_missing_values_fail(index):
  page = ("{result}`bench/fwd_rate0.1.ratio` {result}`bench/gone.ratio` "
          "{result}`bench/fwd_rate0.1.nothing` {result}`other/x.ratio`\n"
          "```{results-table} bench\n:rows: fwd_rate0.1, gone\nop = {label}\n```\n")
  errors = references(page, index)
  assert len(errors) == 4, errors
  assert "no row or field 'gone'" in errors[0]
  assert "no field 'nothing'" in errors[1]
  assert "no results file 'other'" in errors[2]
  assert "no row 'gone'" in errors[3]


def test_values_render_as_the_pages_print_them(index):
  def render(ref):
    return results.render_ref(ref, index)[:2]

  assert render("bench/fwd_rate0.1.ratio") == ("0.50", False)
  assert render("bench/fwd_rate0.1.ratio:.3f|bold<1") == ("0.500", True)
  assert render("bench/fwd_rate0.1.speedup:.1f|bold>1") == ("2.0", True)
  assert render("bench/fwd_rate0.1.ms:.1f") == ("12.5", False)
  assert render("bench/fwd_rate0.1.per_second:.0f") == ("10240", False)
  assert render("bench/fwd_rate0.1.temp_bytes") == ("19,333,568", False)
  assert render("bench/fwd_rate0.1.ratio:%.0f") == ("50", False)
  assert render("bench/machine.cpu") == ("a CPU", False)
  lines, files = results.table_markdown("bench", "fwd_*", ["op = {label}",
                                                           "ratio = {ratio:.2f|bold<1}"], index)
  assert lines[2] == "| dropout forward | **0.50** |"
  assert files == ["bench"]
  # A row per stem, its cells from the rows the suffixes name; "?" for a row that is absent.
  lines, _ = results.table_markdown("bench", "fwd", ["op = {label#_rate0.1}",
                                                     "ms = {ms#_rate0.1:.1f}",
                                                     "uint8 = {ratio#_uint8?}"], index, True)
  assert lines[2] == "| dropout forward | 12.5 |  |"
  with pytest.raises(results.ResultsError, match="no row 'fwd_uint8'"):
    results.table_markdown("bench", "fwd", ["uint8 = {ratio#_uint8}"], index, True)
  assert results.source_line("bench", index) == (
      "`python -m benchmarks.run --only bench`, 2025-01-31, a CPU, 2 cores, 8 GiB, cpu; "
      "python 3.13.0, jax 0.12.0.")
