"""Shared fixtures: the shipped specs, and `--update-golden` to refresh golden files on purpose."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).resolve().parent / "golden"
SHIPPED = sorted(SPECS.glob("*.yaml"))
TARGETS = ("keras", "tf-keras")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/ from the current generator (read the diff!)")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


@pytest.fixture(autouse=True)
def _release_compiled_code():
    """Under JAX, free the executables XLA compiled for a test once it is done: XLA's CPU compiler
    crashed (SIGSEGV in backend_compile_and_load) after a few hundred tests in one process, here
    and in CI, as every executable stays mapped while its function is cached."""
    yield
    if os.environ.get("KERAS_BACKEND") == "jax" and "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
