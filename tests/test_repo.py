"""Repository-level promises: lint is clean, CI runs the README's test command, the tracked text
speaks of the project only, the suite's workers run with the allocator tests/conftest.py
preloads."""

import codecs
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from conftest import preloadable_jemalloc
from markdown_blocks import python_blocks, run_programs

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
  """The two quick-start commands: the lines of the README's first ```sh block."""
  text = (ROOT / "README.md").read_text()
  block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
  return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command():
  commands = readme_commands()
  assert len(commands) == 2
  assert "pytest" in commands[1]
  assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.skipif("PYTEST_XDIST_WORKER" not in os.environ,
                    reason="tests/conftest.py preloads jemalloc into xdist's workers")
def test_workers_run_with_jemalloc_where_the_machine_has_it():
  # The preload takes effect only in a process started after tests/conftest.py set it: if xdist
  # ever started its workers first, they would run with glibc's malloc, only slower.
  preload = os.environ.get("LD_PRELOAD")
  if preload is not None and "jemalloc" not in preload:
    pytest.skip(f"the caller's LD_PRELOAD={preload!r} is left as it is")
  if preload is None and preloadable_jemalloc() is None:
    pytest.skip("no jemalloc that the loader can preload on this machine")
  assert "jemalloc" in pathlib.Path("/proc/self/maps").read_text(), preload


@pytest.mark.skipif(shutil.which("ruff") is None and
                    not (pathlib.Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is installed by the test extra; run `pip install -e .[test]`")
def test_ruff_is_clean():
  ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).parent / "ruff")
  result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True,
                          check=False)
  assert result.returncode == 0, result.stdout + result.stderr


def test_complete_readme_examples_run():
  """Every README ```python block that starts with an import is a whole program, and runs.

  The data-parallel one runs on 8 simulated CPU devices, as on a multi-device machine.
  """
  blocks = [b for b in python_blocks(ROOT / "README.md") if b.startswith("import")]
  assert len(blocks) >= 2
  assert any("shard_map" in b for b in blocks)
  failed = run_programs({f"README block {i}:\n{block}": block for i, block in enumerate(blocks)})
  assert not failed, "\n\n".join(f"{label}\nfailed:\n{error}" for label, error in failed.items())


# Words about how the project was developed rather than what it is: numbered work items and
# milestones, machines borrowed for a while, review notes, first-person lab notes. Each pattern
# starts with a word boundary, so the patterns' own source text here does not match them.
PROCESS_WORDS = re.compile("|".join([
    r"\bstops?[ -]?#?\d+",
    r"\bsessions?\b",
    r"\bissues?[ -]?#?\d+",
    r"\bissue's\b",
    r"\blent\b",
    r"\breview found\b",
    r"\bnext GPU (?:run|machine)\b",
    # first person: "I" itself case-sensitive (not a loop index), the verbs of a lab diary
    r"(?-i:\bI) (?:measured|tried|found|think|thought|believe|suspect|guess|ran|saw|noticed"
    r"|decided|checked|bisected|timed|expected)\b",
    r"\bwe (?:tried|measured|found|bisected|timed)\b",
]), re.IGNORECASE)
SKIPPED_SUFFIXES = (".json", ".png", ".inv")  # data, and compressed Sphinx inventories


def tracked_text_files():
  """(path, text) of every file git tracks, except binaries and generated data."""
  try:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
  except (OSError, subprocess.CalledProcessError):
    pytest.skip("not a git checkout: the tracked files are unknown")
  for name in listing.decode().split("\0"):
    path = ROOT / name
    if not name or name.endswith(SKIPPED_SUFFIXES) or not path.is_file():
      continue
    data = path.read_bytes()
    if b"\0" not in data:
      yield name, data.decode("utf-8", errors="replace")


def process_word_hits(files):
  return [f"{name}:{number}: {match.group(0)!r} in {line.strip()[:120]}"
          for name, text in files
          for number, line in enumerate(text.splitlines(), 1)
          for match in [PROCESS_WORDS.search(line)] if match]


def test_process_words_are_caught():
  # The offending samples are stored in ROT13, so that this file itself stays clean.
  lines = [codecs.decode(line, "rot13") for line in [
      'gur svtherf cerqngr fgbc 13', 'zrnfherq va gur arkg TCH eha', 'nf gur erivrj sbhaq',
      'n qrivpr yrag sbe n juvyr', 'frr vffhr #4', 'V zrnfherq 3 zf',
      'jr gevrq n fpna', 'va guvf Frffvba', "gur vffhr'f argjbex",
  ]]
  hits = process_word_hits([("sample.md", "\n".join(lines))])
  assert [hit.split(":")[1] for hit in hits] == [str(i) for i in range(1, len(lines) + 1)]
  clean = ["stop_gradient(x)", "lax.stop_gradient", "issue tracking systems", "a work stoppage",
           "silently", "equivalent", "we compute the mean", "the mean I/O time",
           "for i found in hits"]
  assert process_word_hits([("sample.md", "\n".join(clean))]) == []


def test_tracked_files_speak_of_the_project_only():
  """No tracked text says how the project was developed; the chronology lives in git history."""
  hits = process_word_hits(tracked_text_files())
  print("\n".join(hits))
  assert not hits, f"{len(hits)} lines speak of the development process:\n" + "\n".join(hits)


def test_min_versions_ci_pins_the_declared_minimums():
  """.ci/run's second environment tests exactly the oldest versions pyproject.toml declares."""
  tomllib = pytest.importorskip("tomllib")
  declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
  minimums = dict(re.fullmatch(r"([\w.-]+)>=([\w.]+)", d).groups() for d in declared)
  lines = (ROOT / ".ci" / "min-versions.txt").read_text().splitlines()
  pins = dict(re.fullmatch(r"([\w.-]+)==([\w.]+)", line).groups() for line in lines
              if line and not line.startswith("#"))
  assert set(minimums) == {"jax", "jaxlib", "optax"}
  assert {name: pins.get(name) for name in minimums} == minimums
  run = (ROOT / ".ci" / "run").read_text()
  assert "-c .ci/min-versions.txt" in run
