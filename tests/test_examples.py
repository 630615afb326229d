"""The seed article's examples (examples/*.py) run, small, and their loss falls.

Each example is imported and its `main(argv)` called with small `--n`/`--epochs` (one TensorFlow
import for all); one is also run as a script from another directory, as a user would, and its
machine-readable last line `loss: first=... last=...` parsed.
"""
import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = ("first", "rnn", "lstm", "slstm", "initial_state")
SMALL = ["--n", "1024", "--epochs", "4", "--batch-size", "32"]
LOSS_LINE = re.compile(r"^loss: first=(\S+) last=(\S+)$")


def _load(name):
    """Imports examples/<name>.py under a private module name; `_common` is found on sys.path."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"eqcell_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_learns(name, capsys):
    result = _load(name).main(SMALL)
    out = capsys.readouterr().out
    losses = result["history"]["loss"]
    assert len(losses) == 4
    assert all(math.isfinite(loss) for loss in losses), losses
    # seed 111: the last epoch's loss is 0.7 (SimpleRNN, from U = -1) to 0.01 (LSTM) times the first's
    assert losses[-1] < 0.8 * losses[0], (name, losses)
    prediction = result["prediction"]
    assert prediction.shape == (30,) and np.all(np.isfinite(prediction))
    # what the article prints: weights, the paper's parameters, the prediction, and the losses
    assert "Keras weights:" in out and "cell.symbol_weights()" in out
    assert "model.predict(np.ones((1, 30, 1)) * 0.5).flatten():" in out
    last = out.strip().splitlines()[-1]
    match = LOSS_LINE.match(last)
    assert match, last
    assert float(match.group(1)) == pytest.approx(losses[0], rel=1e-4)
    assert float(match.group(2)) == pytest.approx(losses[-1], rel=1e-4)


def test_rnn_wrapper_is_the_full_sequence_layer(capsys):
    """(a) and (b): the generated SimpleRNN layer and RNN(SimpleRNNCell) train identically."""
    first = _load("first").main(["--n", "256", "--epochs", "2"])
    rnn = _load("rnn").main(["--n", "256", "--epochs", "2"])
    np.testing.assert_allclose(first["history"]["loss"], rnn["history"]["loss"], rtol=1e-5)
    for symbol in ("W", "U", "b"):
        np.testing.assert_allclose(first["weights"][symbol], rnn["weights"][symbol], rtol=1e-5, atol=1e-6)


def test_initial_state_comes_from_the_spec(capsys):
    module = _load("initial_state")
    Cell = module.eqcell.load(module.SPEC)
    states = Cell(3).get_initial_state(batch_size=2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(states[0]), np.ones((2, 3)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(states[1]), np.zeros((2, 3)))


def test_full_flag_is_the_article():
    common = _load("_common")
    args = common.parse_args("", ["--full"])
    assert (args.n, args.epochs, args.lr, args.batch_size, args.seed, args.clipnorm) == \
        (51200, 100, 1e-4, 512, 111, None)
    args = common.parse_args("", ["--full", "--epochs", "3"])
    assert (args.n, args.epochs) == (51200, 3)


@pytest.mark.slow   # a fresh process importing TensorFlow (about 10 s); CI runs it
def test_runs_as_a_script_from_elsewhere(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "slstm.py"), "--n", "512", "--epochs", "3"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = LOSS_LINE.match(proc.stdout.strip().splitlines()[-1])
    assert match, proc.stdout[-2000:]
    first, last = float(match.group(1)), float(match.group(2))
    assert last < first, (first, last)
    assert "W_f (1, 1)" in proc.stdout and "R_c (1, 1)" in proc.stdout
