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
TARGETS = ("keras", "tf-keras", "torch")


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


# The specs that write PyTorch's own cells (specs/*_torch.yaml) are, on the Keras targets, the
# classic LSTM, GRU and SimpleRNN with a second bias: in the default run tests/test_torch_target.py
# the golden files, the initializers and verify --target torch cover them; every other test over all
# shipped specs runs them with -m slow.
PYTORCH_SPECS = ("lstm_torch", "gru_torch", "rnn_torch")
ALWAYS_FOR_PYTORCH_SPECS = ("test_torch_target.py", "test_golden.py", "test_initializers.py", "test_verify_torch.py")


def pytest_itemcollected(item):
    if item.path.name in ALWAYS_FOR_PYTORCH_SPECS or "[" not in item.nodeid:
        return
    params = item.nodeid[item.nodeid.index("["):]
    if any(f"[{name}" in params or f"-{name}" in params for name in PYTORCH_SPECS):
        item.add_marker(pytest.mark.slow)


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected
def pytest_collection_modifyitems(config, items):
    """The representative reruns on JAX and torch (tests/test_backends.py) start now, in subprocesses
    beside this one, and their tests move to the end, where they collect the results."""
    reruns = [item for item in items if getattr(item, "originalname", None) == "test_representative_subset_on_backend"]
    if not reruns:
        return
    for item in reruns:
        item.module.start_representative_rerun(item.callspec.params["backend"])
    config.add_cleanup(reruns[0].module.stop_representative_reruns)
    items[:] = [item for item in items if item not in reruns] + reruns
