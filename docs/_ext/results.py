"""Figures from results files, rendered when the site builds.

The commands that measure (`python -m benchmarks.run`, `python -m benchmarks.gpu_aot`,
`examples/regularization_study.py`) write JSON results files (`benchmarks/_results.py` has the
schema): metadata (command, date, machine, device, versions) and ``rows``, each under a stable
``key``. A page never types a measured figure; it names one, and the build renders it:

- the role ``{result}`FILE/KEY.FIELD[:SPEC][|FILTER]``` renders one value, e.g.
  ``{result}`policies/trivial_augment_wide.ratio:.2f```;
- the directive ``results-table`` renders a table, one line per results row, one column per
  line of its body (``header = template``), and states under it the command, date, machine and
  versions of every file it read;
- the directive ``results-source`` states that line for a file whose values the prose quotes.

FILE is a results file's id: the name of a file in ``benchmarks/results/`` without ``.json``
(``policies``, ``dropout-steady``), or an id of ``results_files`` in conf.py
(``regularization_study`` for ``docs/study/results.json``). After the ``/``, the longest
dotted prefix that is a row's key picks the row and the rest is a dotted path into it
(``regularization_study/baseline.test.deterministic.acc.mean``); a path that starts with no
row key reads the file's top level (``regularization_study/wall_seconds``).

Besides a row's own fields, these derived ones exist: ``ms`` and ``anchor_ms`` (seconds x 1000),
``per_second`` and ``anchor_per_second`` (``items`` / seconds: images per second), ``speedup``
(1 / ratio: a throughput ratio).

SPEC is a Python format spec (``.2f``, ``,``, ``.1%``); a leading ``%`` reads the value in
percent points without the sign (``%.1f`` renders 0.944 as ``94.4``). Without one, integers get
thousands separators and floats two decimals. A value that is a ``{"mean": ..., "std": ...}``
pair (the study's statistics) renders as ``mean ± std``, both with SPEC. FILTER ``bold<1`` (or
``bold>1``) sets the value in bold when it is below (above) 1: the pages' mark for "jaxreg is
faster".

In a table template a placeholder is ``{FIELD[#SUFFIX][@FILE][?][:SPEC][|FILTER]}``: the field
of the current row; with ``#SUFFIX``, of the row whose key is the current one followed by
SUFFIX; with ``@FILE``, of the row with that key in another file (``@-steady`` appends to the
row's own file id: ``dropout`` -> ``dropout-steady``). ``?`` leaves the cell empty where that
row or field does not exist. A table's ``:rows:`` lists keys (``*`` patterns match them) or, with
``:stems:`` instead, the stems its ``#SUFFIX`` placeholders complete: one table row per stem,
its cells from several results rows (``:stems: equalize`` and ``{ratio#_torchvision}``).

A reference to a file, row or field that does not exist is a build warning, so the strict
build (``sphinx -W``) fails: a page cannot quote what no results file holds.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import pathlib
import re
from typing import ClassVar

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "benchmarks" / "results"
# Results files outside benchmarks/results/, by id (conf.py's `results_files` adds more).
EXTRA_FILES = {"regularization_study": "docs/study/results.json",
               "segmentation_study": "docs/segmentation/results.json"}

_REF = re.compile(r"^(?P<file>[\w.-]+)/(?P<path>[^:|@]+?)(?::(?P<spec>[^|]*))?"
                  r"(?:\|(?P<filter>bold[<>]-?[\d.]+))?$")
_PLACEHOLDER = re.compile(r"\{(?P<field>[^{}@:|#?]+)(?:#(?P<suffix>[\w.-]+))?"
                          r"(?:@(?P<file>[\w.-]+))?(?P<optional>\?)?"
                          r"(?::(?P<spec>[^{}|]*))?(?:\|(?P<filter>bold[<>]-?[\d.]+))?\}")


class ResultsError(LookupError):
  """A reference names a file, row or field that no results file holds."""


def file_index(extra: dict[str, str] | None = None) -> dict[str, pathlib.Path]:
  """Every results file by id."""
  index = {p.stem: p for p in sorted(RESULTS_DIR.glob("*.json"))}
  for name, rel in {**EXTRA_FILES, **(extra or {})}.items():
    index[name] = ROOT / rel
  return index


_CACHE: dict[pathlib.Path, tuple[float, dict]] = {}


def load(path: pathlib.Path) -> dict:
  mtime = path.stat().st_mtime
  cached = _CACHE.get(path)
  if cached is None or cached[0] != mtime:
    cached = (mtime, json.loads(path.read_text()))
    _CACHE[path] = cached
  return cached[1]


def _derived(row: dict, field: str):
  def need(*names):
    if any(row.get(n) in (None, 0) for n in names):
      raise ResultsError(f"row {row.get('key')!r} has no {' and '.join(names)} for {field!r}")
    return [row[n] for n in names]

  if field == "ms":
    return need("seconds")[0] * 1e3
  if field == "anchor_ms":
    return need("anchor_seconds")[0] * 1e3
  if field == "per_second":
    items, seconds = need("items", "seconds")
    return items / seconds
  if field == "anchor_per_second":
    items, seconds = need("items", "anchor_seconds")
    return items / seconds
  if field == "speedup":
    return 1 / need("ratio")[0]
  raise KeyError(field)


def _walk(obj, parts: list[str], where: str):
  for i, part in enumerate(parts):
    if isinstance(obj, dict) and part in obj:
      obj = obj[part]
    elif isinstance(obj, dict) and i == len(parts) - 1 and "key" in obj:
      try:
        return _derived(obj, part)
      except KeyError:
        raise ResultsError(f"{where} has no field {'.'.join(parts[:i + 1])!r}") from None
    else:
      raise ResultsError(f"{where} has no field {'.'.join(parts[:i + 1])!r}")
  return obj


def find_row(data: dict, key: str, file_id: str) -> dict:
  for row in data.get("rows", []):
    if row.get("key") == key:
      return row
  raise ResultsError(f"results file {file_id!r} has no row {key!r}")


def resolve(file_id: str, path: str, index: dict[str, pathlib.Path]):
  """The value at ``path`` in results file ``file_id`` (see the module docstring)."""
  if file_id not in index or not index[file_id].exists():
    raise ResultsError(f"no results file {file_id!r} (known: {', '.join(sorted(index))})")
  data = load(index[file_id])
  parts = path.split(".")
  keys = {row.get("key") for row in data.get("rows", [])}
  for cut in range(len(parts), 0, -1):
    key = ".".join(parts[:cut])
    if key in keys:
      row = find_row(data, key, file_id)
      if cut == len(parts):
        raise ResultsError(f"{file_id}/{key} is a row: name one of its fields")
      return _walk(row, parts[cut:], f"row {file_id}/{key}")
  if parts[0] not in data:
    raise ResultsError(f"results file {file_id!r} has no row or field {parts[0]!r}")
  return _walk(data, parts, f"results file {file_id!r}")


def format_value(value, spec: str | None) -> str:
  if isinstance(value, dict) and {"mean", "std"} <= set(value):  # the study's statistics
    return f"{format_value(value['mean'], spec)} ± {format_value(value['std'], spec)}"
  if isinstance(value, str):
    return value
  if value is None:
    return ""
  if isinstance(value, bool) or not isinstance(value, int | float):
    raise ResultsError(f"cannot format {value!r}: name a number or a string")
  if spec and spec.startswith("%"):
    value, spec = value * 100, spec[1:]
  if not spec:
    spec = "," if isinstance(value, int) else ".2f"
  return format(value, spec)


def _bold(value, rule: str | None) -> bool:
  if not rule or not isinstance(value, int | float):
    return False
  limit = float(rule[5:])
  return value < limit if rule[4] == "<" else value > limit


def render_ref(ref: str, index) -> tuple[str, bool, str]:
  """(text, bold, file id) of a role's reference ``FILE/PATH[:SPEC][|FILTER]``."""
  match = _REF.match(ref.strip())
  if not match:
    raise ResultsError(f"{ref!r} is not FILE/KEY.FIELD[:SPEC][|bold<N]")
  value = resolve(match["file"], match["path"], index)
  return format_value(value, match["spec"]), _bold(value, match["filter"]), match["file"]


def expand_rows(spec: str, default_file: str | None, index,
                stems: bool = False) -> list[tuple[str, str]]:
  """(file id, key) of each entry of a ``:rows:`` option; ``*`` patterns match keys.

  With ``stems``, the entries are stems that the templates complete (not checked here).
  """
  if stems:
    if not default_file or default_file not in index:
      raise ResultsError(f":stems: needs the table's results file, got {default_file!r}")
    return [(default_file, e.strip()) for e in spec.split(",") if e.strip()]
  if not spec.strip():
    if not default_file:
      raise ResultsError("results-table needs a file argument or qualified :rows:")
    spec = "*"
  rows = []
  for entry in (e.strip() for e in spec.split(",")):
    if not entry:
      continue
    file_id, _, key = entry.rpartition("/") if "/" in entry else (default_file, "", entry)
    if not file_id:
      raise ResultsError(f"row {entry!r} names no file and the table has none")
    if file_id not in index:
      raise ResultsError(f"no results file {file_id!r}")
    data = load(index[file_id])
    if any(c in key for c in "*?["):
      matched = [r["key"] for r in data.get("rows", []) if fnmatch.fnmatchcase(r["key"], key)]
      if not matched:
        raise ResultsError(f"no row of {file_id!r} matches {key!r}")
      rows += [(file_id, k) for k in matched]
    else:
      find_row(data, key, file_id)
      rows.append((file_id, key))
  return rows


def render_template(template: str, file_id: str, key: str, index, used: set[str]) -> str:
  """One table cell: the template with each placeholder replaced by its formatted value."""

  def substitute(match):
    other = match["file"]
    fid = file_id + other if other and other.startswith("-") else other or file_id
    if fid not in index:
      raise ResultsError(f"no results file {fid!r}")
    row_key = key + (match["suffix"] or "")
    try:
      row = find_row(load(index[fid]), row_key, fid)
    except ResultsError:
      if match["optional"]:
        return ""
      raise
    used.add(fid)
    try:
      value = _walk(row, match["field"].strip().split("."), f"row {fid}/{row_key}")
    except ResultsError:
      if match["optional"]:
        return ""
      raise
    text = format_value(value, match["spec"]).replace("|", "\\|")
    return f"**{text}**" if _bold(value, match["filter"]) else text

  return _PLACEHOLDER.sub(substitute, template)


def parse_columns(lines: list[str]) -> list[tuple[str, str]]:
  columns = []
  for line in lines:
    if not line.strip():
      continue
    header, sep, template = line.partition(" = ")
    if not sep:
      raise ResultsError(f"a results-table column is 'header = template', got {line!r}")
    columns.append((header.strip(), template.strip()))
  if not columns:
    raise ResultsError("a results-table needs at least one column")
  return columns


def table_markdown(file_id: str | None, rows_spec: str, column_lines: list[str],
                   index, stems: bool = False) -> tuple[list[str], list[str]]:
  """(markdown lines of the table, ids of the files it read, in order)."""
  columns = parse_columns(column_lines)
  used: set[str] = set()
  lines = ["| " + " | ".join(h for h, _ in columns) + " |", "|" + "---|" * len(columns)]
  rows = expand_rows(rows_spec, file_id, index, stems)
  for fid, key in rows:
    used.add(fid)
    cells = [render_template(t, fid, key, index, used) for _, t in columns]
    lines.append("| " + " | ".join(cells) + " |")
  order = list(dict.fromkeys([fid for fid, _ in rows] + sorted(used)))
  return lines, order


def source_line(file_id: str, index) -> str:
  """``command``: date, machine, device; versions: what produced a results file."""
  data = load(index[file_id])
  date = datetime.datetime.fromisoformat(data["date"]).date().isoformat()
  m, d = data["machine"], data["device"]
  machine = f"{m['cpu']}, {m['cores']} cores"
  if m.get("memory_gib"):
    machine += f", {m['memory_gib']:g} GiB"
  if m.get("load_average"):
    machine += f" (load average {m['load_average'][1]:.1f} over the last 5 minutes)"
  where = d["platform"] if d["platform"] == "cpu" else f"{d['platform']} ({d['kind']})"
  if data.get("compiled_for"):
    where = f"compiled for {data['compiled_for']}"
  allocator = data.get("allocator", "default")
  extra = f", allocator {allocator}" if allocator != "default" else ""
  versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
  return f"`{data['command']}`, {date}, {machine}, {where}{extra}; {versions}."


# ---------------------------------------------------------------------------------------------
# Sphinx
# ---------------------------------------------------------------------------------------------


def _source_paragraphs(sources: list[str]) -> list[str]:
  lines = []
  for i, source in enumerate(sources):
    lines += [("From " if i == 0 else "and ") + source, ""]
  return lines


def _index_of(env) -> dict[str, pathlib.Path]:
  return file_index(getattr(env.config, "results_files", None))


def _note(env, index, file_ids) -> None:
  for fid in file_ids:
    if fid in index:
      env.note_dependency(str(index[fid]))


def result_role(name, rawtext, text, lineno, inliner, options=None, content=None):
  from docutils import nodes
  from sphinx.util import logging

  env = inliner.document.settings.env
  index = _index_of(env)
  try:
    value, bold, fid = render_ref(text, index)
  except ResultsError as err:
    logging.getLogger(__name__).warning(f"{{result}}`{text}`: {err}",
                                        location=(env.docname, lineno))
    return [nodes.problematic(rawtext, rawtext)], []
  _note(env, index, [fid])
  node = nodes.strong(value, value) if bold else nodes.inline(value, value)
  node["classes"].append("result")
  return [node], []


def setup(app):
  from docutils import nodes
  from docutils.parsers.rst import directives
  from docutils.statemachine import StringList
  from sphinx.util import logging
  from sphinx.util.docutils import SphinxDirective

  logger = logging.getLogger(__name__)

  class _ResultsDirective(SphinxDirective):
    def _parse(self, lines: list[str]) -> list:
      container = nodes.container()
      self.state.nested_parse(StringList(lines, source=self.env.docname), self.content_offset,
                              container)
      return container.children

    def _fail(self, err) -> list:
      logger.warning(f"{self.name}: {err}", location=(self.env.docname, self.lineno))
      return []

  class ResultsTable(_ResultsDirective):
    """A table rendered from results rows (see the module docstring)."""

    optional_arguments = 1
    has_content = True
    option_spec: ClassVar[dict] = {"rows": directives.unchanged,
                                   "stems": directives.unchanged}

    def run(self):
      index = _index_of(self.env)
      try:
        if "rows" in self.options and "stems" in self.options:
          raise ResultsError("give :rows: or :stems:, not both")
        stems = "stems" in self.options
        lines, files = table_markdown(self.arguments[0] if self.arguments else None,
                                      self.options.get("stems" if stems else "rows", ""),
                                      list(self.content), index, stems)
        sources = [source_line(fid, index) for fid in files]
      except ResultsError as err:
        return self._fail(err)
      _note(self.env, index, files)
      out = self._parse([*lines, "", *_source_paragraphs(sources)])
      for node in out[1:]:
        node["classes"].append("results-source")
      return out

  class ResultsSource(_ResultsDirective):
    """The command, date, machine and versions of the named results files."""

    required_arguments = 1
    optional_arguments = 8

    def run(self):
      index = _index_of(self.env)
      try:
        sources = []
        for fid in self.arguments:
          if fid not in index or not index[fid].exists():
            raise ResultsError(f"no results file {fid!r}")
          sources.append(source_line(fid, index))
      except ResultsError as err:
        return self._fail(err)
      _note(self.env, index, self.arguments)
      out = self._parse(_source_paragraphs(sources))
      for node in out:
        node["classes"].append("results-source")
      return out

  app.add_config_value("results_files", {}, "env")
  app.add_role("result", result_role)
  app.add_directive("results-table", ResultsTable)
  app.add_directive("results-source", ResultsSource)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
