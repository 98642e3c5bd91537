"""Runs the ```python blocks of markdown files (the README, the documentation pages).

One mechanism for both, `run_programs`: the README's complete blocks and every docs page run as
programs in a fresh Python, on 8 simulated CPU devices (as on a multi-device machine), from the
repository root; one after another in one Python, each in a namespace of its own with JAX's
configuration restored after it, so a program pays neither Python's and JAX's start-up nor the
compilation of what an earlier one compiled. The examples are tiny, so their time is XLA
compiling them: `FAST_COMPILE` turns LLVM's optimizations down and selects XLA:CPU's
fast-compile preset (the results are the same, the code runs slower), which halves that.
"""

import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys

from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]
# XLA:CPU's fast-compile preset, where jaxlib has it (an older one aborts on a flag it does not
# know; 0.10.2 is the oldest checked).
_HAS_PRESET = Version(importlib.metadata.version("jaxlib")) >= Version("0.10.2")
FAST_COMPILE_PRESET = "--xla_cpu_opt_preset=FAST_COMPILE " if _HAS_PRESET else ""
FAST_COMPILE = (f"{FAST_COMPILE_PRESET}--xla_backend_optimization_level=0 "
                "--xla_llvm_disable_expensive_passes=true")
# The one wall-clock limit of the suite's subprocesses (docs pages, examples, two-process
# training): a hang fails the test instead of CI's whole run. Each takes well under a minute on
# a quiet 2-core machine; the limit holds on one loaded core with a margin of more than 20x.
SUBPROCESS_TIMEOUT_S = 1800
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: pathlib.Path) -> list[str]:
  """The contents of every ```python fenced block of a markdown file, in order."""
  return _BLOCK.findall(path.read_text())


def _environment(devices: int) -> dict[str, str]:
  return {**os.environ, "JAX_PLATFORMS": "cpu",
          "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices} {FAST_COMPILE}"}


# Reads {label: source} as JSON from stdin; runs each source as `__main__` in a namespace of its
# own, its output kept apart; restores every JAX configuration value a program changed (a page
# may turn on key-reuse checks); writes {label: traceback or None} as JSON to the file argv[1].
_RUNNER = """
import contextlib, io, json, sys, traceback
import jax
programs, outcome = json.load(sys.stdin), {}
for label, source in programs.items():
  config = dict(jax.config.values)
  output = io.StringIO()
  try:
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
      exec(compile(source, label, "exec"), {"__name__": "__main__"})
    outcome[label] = None
  except BaseException:
    outcome[label] = output.getvalue()[-2000:] + traceback.format_exc()[-3000:]
  for name, value in config.items():
    if jax.config.values.get(name) != value:
      jax.config.update(name, value)
  with contextlib.suppress(ImportError):
    import matplotlib.pyplot
    matplotlib.pyplot.close("all")
with open(sys.argv[1], "w") as f:
  json.dump(outcome, f)
"""


def run_programs(programs: dict[str, str], *, devices: int = 8) -> dict[str, str]:
  """Runs each of ``programs`` ({label: source}) in turn in one fresh Python, each as
  ``__main__`` in a namespace of its own. Returns {label: its output and traceback} for those
  that failed; fails if the Python itself does."""
  import tempfile

  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "outcome.json")
    result = subprocess.run([sys.executable, "-c", _RUNNER, path], input=json.dumps(programs),
                            capture_output=True, text=True, env=_environment(devices), cwd=ROOT,
                            timeout=SUBPROCESS_TIMEOUT_S, check=False)
    assert result.returncode == 0, f"the programs' Python failed:\n{result.stderr[-3000:]}"
    with open(path) as f:
      outcome = json.load(f)
  assert sorted(outcome) == sorted(programs), (sorted(outcome), sorted(programs))
  return {label: error for label, error in outcome.items() if error is not None}
