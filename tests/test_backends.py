"""The keras target on every Keras backend: backend-agnostic tests run again under JAX and PyTorch,
each backend in its own process (Keras picks its backend once, at import).

Default run: a representative subset (REPRESENTATIVE) on each backend, about a minute and a half
on JAX, which compiles every new shape. `pytest -m slow` adds the exhaustive rerun: every
keras-target test of FILES on each backend (about four minutes on JAX, the reason it is not in the
default run). The TensorFlow backend runs all of them in the main process."""
import importlib.util
import os
import re
import subprocess
import sys

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
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[qrnn-long]",
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[lstm-many_units_masked_backwards]",
    "tests/test_fast_layer.py::test_layer_equals_rnn_of_cell[slstm-many_units]",
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
    # every cell from papers once, the three shapes (short, long and wide, 20 units) in turn
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[diagonal_linear-short-narrow]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[gru_reset_before-long-wide]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[indrnn-many-units]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[layer_norm_lstm-short-narrow]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[many_functions-long-wide]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[mgu_latex-many-units]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[peephole_lstm-short-narrow]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[projection_lstm-long-wide]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[running_sum_learned_start-many-units]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[sru-short-narrow]",
    "tests/test_more_cells.py::test_layer_equals_rnn_of_cell[two_biases_per_gate-long-wide]",
    "tests/test_more_cells.py::test_mingru_equals_paper_reference",
    "tests/test_more_cells.py::test_qrnn_fo_pooling_equals_paper_reference",
]


def _rerun(backend, *selection):
    if importlib.util.find_spec(NEEDS[backend]) is None:
        pytest.skip(f"{NEEDS[backend]} is not installed (pip install -e '.[test]' installs it)")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # -m "": the selection decides, not the default run's marker filter
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "", "-k", KERAS_TARGET_ONLY,
         *selection],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=2700)
    tail = "\n".join(result.stdout.splitlines()[-40:])
    assert result.returncode == 0, f"KERAS_BACKEND={backend}:\n{tail}\n{result.stderr[-2000:]}"
    assert " passed" in tail
    return tail


@pytest.mark.parametrize("backend", sorted(NEEDS))
def test_representative_subset_on_backend(backend):
    tail = _rerun(backend, *REPRESENTATIVE)
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
