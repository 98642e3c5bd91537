"""Repository-level promises: lint is clean, CI runs the README's test command."""

import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from markdown_blocks import python_blocks, run_python

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
  for i, block in enumerate(blocks):
    run_python(block, label=f"README block {i}:\n{block}")
