"""The keras target on every Keras backend: backend-agnostic tests run again under JAX and PyTorch,
each backend in its own process (Keras picks its backend once, at import).

Default run: a representative subset (REPRESENTATIVE) on each backend, about a minute and a half
on JAX, which compiles every new shape; both start when collection ends and run beside the main
process. `pytest -m slow` adds the exhaustive rerun: every keras-target test of FILES on each
backend, one process per file (about 16 minutes for test_fast_layer.py on JAX in CI, the reason it
is not in the default run). The TensorFlow backend runs all of them in the main process."""
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT

FILES = ["tests/test_numeric.py", "tests/test_slstm_reference.py", "tests/test_fast_layer.py",
         "tests/test_more_cells.py"]
NEEDS = {"jax": "jax", "torch": "torch"}
KERAS_TARGET_ONLY = "not tf_keras and not tf-keras"

# Every cell family and every path of the generated layer, on each backend: the loop (short, long,
# masked, go_backwards), the input projection hoisted out of it (wide inputs), the parallel scan
# (forced, against the loop and against numpy references from the papers, under jit), the
# rematerialized step (>= 16 units, JAX), dropout masks, and the pieces that branch on the backend
# (parallel_scan="auto", jax.checkpoint, hard_sigmoid's definition), and a `.keras` save and reload.
REPRESENTATIVE = [
    # the generated LSTM / GRU / SimpleRNN equal Keras's own layers on this backend
    "tests/test_numeric.py::test_sequences_and_states_equal_the_framework[keras-b2_t5_d3_u4-gru]",
    "tests/test_numeric.py::test_sequences_and_states_equal_the_framework[keras-b2_t5_d3_u4-lstm]",
    "tests/test_numeric.py::test_sequences_and_states_equal_the_framework[keras-b2_t5_d3_u4-simple_rnn]",
    "tests/test_numeric.py::test_last_output_equals_the_framework[keras-b2_t4_d3_u1-lstm]",
    "tests/test_numeric.py::test_lstm_symbol_weights_pull_the_right_gate[keras]",
    # S-LSTM against the paper's equations; hard_sigmoid is Keras 3's on every backend
    "tests/test_slstm_reference.py::test_sigmoid_slstm_equals_paper_reference[keras-b2_t6_d3_u4]",
    "tests/test_slstm_reference.py::test_default_hard_sigmoid_slstm_equals_paper_reference[keras-b3_t6_d2_u5]",
    "tests/test_slstm_reference.py::test_hard_sigmoid_references_match_the_frameworks[keras]",
    "tests/test_slstm_reference.py::test_initial_state_is_used[keras]",
    "tests/test_slstm_reference.py::test_symbol_weights_round_trip[keras]",
    # the full-sequence layer equals RNN(cell), outputs and gradients: one shipped spec per path
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[simple_rnn-plain]",
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[gru-go_backwards]",
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[slstm-long_masked]",
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[mingru-wide]",
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[gru-wide_masked_backwards]",
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[lstm-many_units_masked_backwards]",
    "tests/test_fast_layer.py::test_same_weights_and_config_as_rnn_of_cell[lstm]",
    "tests/test_fast_layer.py::test_dropout_in_training_uses_one_mask_per_sequence[lstm]",
    "tests/test_fast_layer.py::test_dropout_in_training_uses_one_mask_per_sequence[qrnn]",
    "tests/test_fast_layer.py::test_parallel_scan_equals_sequential_loop[mingru-7]",
    "tests/test_fast_layer.py::test_parallel_scan_equals_sequential_loop[qrnn-300]",
    "tests/test_fast_layer.py::test_scan_layer_trains_in_a_compiled_model[qrnn-5-False]",
    "tests/test_fast_layer.py::test_scan_layer_trains_in_a_compiled_model[qrnn-5-True]",
    "tests/test_fast_layer.py::test_parallel_scan_auto_picks_the_measured_faster_path[mingru]",
    "tests/test_fast_layer.py::test_step_is_rematerialized_on_jax_only",
    "tests/test_fast_layer.py::test_keras_file_round_trip[slstm]",
    # cells from papers, the three shapes (short, long and wide, 20 units) in turn; all of them under -m slow
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[diagonal_linear-short-narrow]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[indrnn-many-units]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[layer_norm_lstm-short-narrow]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[mgu_latex-many-units]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[peephole_lstm-short-narrow]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[projection_lstm-long-wide]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[sru-short-narrow]",
    "tests/test_more_cells.py::test_mingru_equals_paper_reference",
    "tests/test_more_cells.py::test_qrnn_fo_pooling_equals_paper_reference",
]


def _start(backend, *selection):
    """The selection rerun under `backend` in a subprocess, its output in a temporary file; None
    when the backend is not installed."""
    if importlib.util.find_spec(NEEDS[backend]) is None:
        return None
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    output = tempfile.TemporaryFile("w+")
    # -m "": the selection decides, not the default run's marker filter
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "", "-k", KERAS_TARGET_ONLY,
         *selection],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True)
    return process, output


def _finish(backend, started):
    """Waits for a rerun and checks that it passed; returns the tail of its output."""
    if started is None:
        pytest.skip(f"{NEEDS[backend]} is not installed (pip install -e '.[test]' installs it)")
    process, output = started
    try:
        process.wait(timeout=2700)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    output.seek(0)
    text = output.read()
    output.close()
    tail = "\n".join(text.splitlines()[-60:])
    assert process.returncode == 0, f"KERAS_BACKEND={backend}:\n{tail}"
    assert " passed" in tail
    return tail


def _rerun(backend, *selection):
    return _finish(backend, _start(backend, *selection))


# The representative reruns start when collection ends (conftest.py's pytest_collection_modifyitems)
# and run beside the main process, their tests last: on two cores that hides most of their time.
_REPRESENTATIVE_RUNS = {}


def start_representative_rerun(backend):
    if backend not in _REPRESENTATIVE_RUNS:
        _REPRESENTATIVE_RUNS[backend] = _start(backend, *REPRESENTATIVE)


def stop_representative_reruns():
    for started in _REPRESENTATIVE_RUNS.values():
        if started is not None and started[0].poll() is None:
            started[0].kill()


@pytest.mark.parametrize("backend", sorted(NEEDS))
def test_representative_subset_on_backend(backend):
    start_representative_rerun(backend)  # already started, unless this test was run on its own
    tail = _finish(backend, _REPRESENTATIVE_RUNS[backend])
    # every id ran (a renamed test is an error, not a silent loss); torch skips jit_compile=True
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|deselected)", tail)}
    assert counts.get("passed", 0) + counts.get("skipped", 0) == len(REPRESENTATIVE), tail
    assert counts.get("skipped", 0) <= 1 and not counts.get("deselected"), tail


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES)
@pytest.mark.parametrize("backend", sorted(NEEDS))
def test_every_keras_target_test_on_backend(backend, path):
    # one process per file: XLA's CPU compiler crashed (SIGSEGV in backend_compile_and_load, a
    # trivial broadcast) after about 380 of these tests had compiled in one JAX process, here and in CI
    _rerun(backend, path)
