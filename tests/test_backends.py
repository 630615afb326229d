"""The keras target on every Keras backend: the backend-agnostic test files run again, each
backend in its own process (Keras picks its backend once, at import)."""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import ROOT

FILES = ["tests/test_numeric_keras.py", "tests/test_slstm_reference.py", "tests/test_fast_layer.py",
         "tests/test_serialization.py", "tests/test_more_cells.py"]
NEEDS = {"jax": "jax", "torch": "torch"}


@pytest.mark.parametrize("backend", sorted(NEEDS))
def test_keras_target_on_backend(backend):
    if importlib.util.find_spec(NEEDS[backend]) is None:
        pytest.skip(f"{NEEDS[backend]} is not installed (pip install -e '.[test]' installs it)")
    files = [f for f in FILES if (ROOT / f).exists()]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "not tf_keras and not tf-keras",
         *files],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    tail = "\n".join(result.stdout.splitlines()[-40:])
    assert result.returncode == 0, f"KERAS_BACKEND={backend}:\n{tail}\n{result.stderr[-2000:]}"
    assert " passed" in tail
