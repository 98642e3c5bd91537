"""Test-suite settings, as equinox does for its own suite.

* `jax_debug_key_reuse` makes JAX raise when a typed key is consumed twice, which catches an op
  that draws two things from one key. Tests that reuse a key on purpose ("same key, same
  output") say so with `reuse_keys()`.
* Strict dtype promotion catches silent float64/weak-type promotions inside the library.
* The suite's arrays are tiny, so its time is XLA compiling: `FAST_COMPILE` turns LLVM's
  optimizations down and selects XLA:CPU's fast-compile preset, which also trims XLA's graph
  passes (results are the same and the code runs slower); that more than halves the suite's
  time. The `xla_schedule` tests pin what those graph passes make, so they compile with the
  default preset (`compile_as_shipped`). An `XLA_FLAGS` that sets an optimization level itself
  is left as it is.
* One run shares its compiled programs: the first process to import this file (pytest itself,
  or xdist's controller) points JAX's persistent compilation cache at a fresh directory, which
  the xdist workers and every subprocess the tests start (docs pages, examples) inherit, so a
  program compiled by one worker is loaded by the others. The directory is removed at the end;
  a `JAX_COMPILATION_CACHE_DIR` set by the caller is used as it is and kept.
* XLA's compiler makes and frees a great many small objects, and glibc's `malloc` is a large
  share of its time. Where the machine has jemalloc (Debian's `libjemalloc2`, which `.ci/run`
  installs), the xdist workers and the tests' subprocesses start with it preloaded. The process
  already running keeps its allocator (a run with `-p no:xdist`), and an `LD_PRELOAD` set by the
  caller, empty included, is left as it is.
"""

import contextlib
import ctypes.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from markdown_blocks import FAST_COMPILE, FAST_COMPILE_PRESET, SUBPROCESS_TIMEOUT_S

if "optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # before JAX starts its backend
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

# Before JAX reads its configuration from the environment. Workers inherit the variables, the
# owner's process id included: only the process that made the directory removes it.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="jaxreg-tests-xla-cache-")
  os.environ["JAXREG_TESTS_CACHE_OWNER"] = str(os.getpid())
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # tiny programs are the suite
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  # No size limit, hence no file lock: with one, JAX scans the directory under the lock at every
  # write and the workers queue behind each other. An entry read while another worker is still
  # writing it fails to decompress, and JAX compiles instead (with a warning).

import jax
import pytest


def preloadable_jemalloc() -> str | None:
  """The name of the machine's jemalloc for `LD_PRELOAD`, on Linux, or None. Outside ldconfig's
  cache `find_library` may name a library the loader cannot open (every process would print an
  error): a trial process must start with it silently."""
  name = ctypes.util.find_library("jemalloc") if sys.platform.startswith("linux") else None
  if name and not subprocess.run([sys.executable, "-c", ""], env={**os.environ, "LD_PRELOAD": name},
                                 capture_output=True, check=False).stderr:
    return name
  return None


# Inherited by the workers, which xdist starts after this file is imported, and by subprocesses.
if "LD_PRELOAD" not in os.environ and (_JEMALLOC := preloadable_jemalloc()):
  os.environ["LD_PRELOAD"] = _JEMALLOC


ROOT = pathlib.Path(__file__).resolve().parents[1]

jax.config.update("jax_debug_key_reuse", True)


@pytest.fixture(autouse=True)
def _strict_promotion(request):
  # Third-party code (optax's schedules and Adam, user examples) is written for JAX's standard
  # promotion; tests that run it say so with @pytest.mark.standard_promotion.
  mode = "standard" if request.node.get_closest_marker("standard_promotion") else "strict"
  with jax.numpy_dtype_promotion(mode):
    yield


# Whole files whose tests run for many seconds (subprocesses, examples, every op under every
# transform): first, so that xdist's workers end on short tests and finish together.
_LONG_FILES = ("test_study.py", "test_docs.py", "test_examples_and_benchmarks.py",
               "test_composition.py", "test_grain.py", "test_distributed.py")


def pytest_collection_modifyitems(config, items):
  # The benchmarks' smoke runs check that benchmarks/ still runs, not what the library
  # computes: they run when `-m` names them (CI runs them as a step of their own, `.ci/run`)
  # or a test id does, not in the suite.
  asked = re.search(r"\bbenchmark_smoke\b", config.option.markexpr or "") or any(
      "test_benchmarks_smoke" in arg for arg in config.args)
  smoke = [] if asked else [item for item in items if item.get_closest_marker("benchmark_smoke")]
  if smoke:
    config.hook.pytest_deselected(items=smoke)
    items[:] = [item for item in items if item not in smoke]
  items.sort(key=lambda item: item.path.name not in _LONG_FILES)  # stable: files stay whole


def pytest_unconfigure(config):
  if os.environ.get("JAXREG_TESTS_CACHE_OWNER") == str(os.getpid()):
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


def pytest_configure(config):
  config.addinivalue_line("markers", "standard_promotion: run under JAX's standard promotion")
  config.addinivalue_line(
      "markers", "benchmark_smoke: a benchmark family at tiny sizes; runs only when -m or a "
      "test id names it (python -m pytest -q -m benchmark_smoke)")
  config.addinivalue_line(
      "markers", "xla_schedule(design_page): pins what XLA compiles (kernels, buffers, loops); "
      "a JAX upgrade may legitimately change it")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
  # A failing test that pins XLA's compiled output says what that means and where to look.
  report = yield
  marker = item.get_closest_marker("xla_schedule")
  if marker is not None and report.failed and call.when == "call":
    page = marker.args[0] if marker.args else "docs/design/"
    report.sections.append((
        "xla_schedule", f"This test pins what XLA {jax.__version__} compiles, not what jaxreg "
        f"computes. A JAX upgrade may legitimately change it: re-measure as {page} says, then "
        "update the workaround in jaxreg/_backend.py (or delete it) and this test."))
  return report


def compile_as_shipped(lowered):
  """Compiles ``lowered`` (a `jax.stages.Lowered`) with XLA:CPU's default pipeline, as a user's
  program is compiled: the suite's fast-compile preset (`FAST_COMPILE`) skips graph passes whose
  result the `xla_schedule` tests pin."""
  shipped = {"xla_cpu_opt_preset": "CPU_OPT_PRESET_DEFAULT"} if FAST_COMPILE_PRESET else {}
  return lowered.compile(compiler_options=shipped)


@contextlib.contextmanager
def reuse_keys():
  """Allows a deliberately reused key inside the block."""
  with jax.debug_key_reuse(False):
    yield


def run_on_simulated_devices(script: str, devices: int = 8) -> str:
  """Runs ``script`` in a fresh Python with ``devices`` simulated CPU devices; returns stdout.

  A subprocess, because XLA reads the device count once per process.
  """
  header = (f"import os\nos.environ['XLA_FLAGS'] = "
            f"'--xla_force_host_platform_device_count={devices} {FAST_COMPILE}'\n")
  with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
    f.write(header + script)
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  try:
    result = subprocess.run([sys.executable, f.name], capture_output=True, text=True, env=env,
                            timeout=SUBPROCESS_TIMEOUT_S, check=False)
  finally:
    os.unlink(f.name)
  assert result.returncode == 0, result.stdout + result.stderr
  return result.stdout
