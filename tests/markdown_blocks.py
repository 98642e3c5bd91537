"""Runs the ```python blocks of markdown files (the README, the documentation pages).

One mechanism for both: the README's complete blocks and every docs page run as programs in a
fresh Python, on 8 simulated CPU devices (as on a multi-device machine), from the repository
root. The examples are tiny, so their time is XLA compiling them: `FAST_COMPILE` turns LLVM's
optimizations down (the results are the same, the code runs slower), which halves that.
"""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
# The one wall-clock limit of the suite's subprocesses (docs pages, examples, two-process
# training): a hang fails the test instead of CI's whole run. Each takes well under a minute on
# a quiet 2-core machine; the limit holds on one loaded core with a margin of more than 20x.
SUBPROCESS_TIMEOUT_S = 1800
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: pathlib.Path) -> list[str]:
  """The contents of every ```python fenced block of a markdown file, in order."""
  return _BLOCK.findall(path.read_text())


def run_python(source: str, *, label: str, devices: int = 8) -> str:
  """Runs ``source`` as a program in a fresh Python; fails with its stderr if it fails.

  Returns its stdout.
  """
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices} {FAST_COMPILE}"}
  result = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=SUBPROCESS_TIMEOUT_S, check=False)
  assert result.returncode == 0, f"{label} failed:\n{result.stderr[-3000:]}"
  return result.stdout
