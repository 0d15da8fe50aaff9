"""Process settings of the trainer: JAX's persistent compilation cache (`use_compilation_cache`)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses

REPO = Path(__file__).resolve().parents[1]

PROGRAM = textwrap.dedent("""\
    import sys
    import jax, jax.numpy as jnp
    from tnd.training.runtime import use_compilation_cache
    print(use_compilation_cache(sys.argv[1] if sys.argv[1] != "none" else None))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.jit(lambda x: jnp.tanh(x) @ x)(jnp.ones((8, 8))).block_until_ready()
""")


def _run(argument: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    proc = subprocess.run([sys.executable, "-c", PROGRAM, argument], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**environ, "JAX_PLATFORMS": "cpu", **env})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_compiled_programs_land_in_the_cache_folder(tmp_path):
    cache = tmp_path / "cache"
    assert _run(str(cache)) == str(cache)
    assert any(cache.iterdir())  # the jitted program, kept for the next process


def test_the_environment_s_cache_is_kept_and_none_leaves_jax_alone(tmp_path):
    mine = tmp_path / "mine"
    assert _run(str(tmp_path / "ours"), JAX_COMPILATION_CACHE_DIR=str(mine)) == str(mine)
    assert any(mine.iterdir()) and not (tmp_path / "ours").exists()
    assert _run("none") == "None"
