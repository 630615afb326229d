"""Generated SimpleRNN / LSTM train exactly as the frameworks' own layers: gradients, not only outputs.

A model around Keras's built-in `keras.layers.SimpleRNN` / `keras.layers.LSTM` gets random weights
(different per gate and per bias entry); a model around the generated cell (as the generated
full-sequence layer, and inside `keras.layers.RNN`) copies them with set_weights. Both then take the
same few `train_on_batch` steps (same batches, same order, same optimizer: SGD with momentum or
Adam) and must end with the same weights and the same losses. The same again for the tf-keras
target against tf_keras's layers.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

import eqcell

BATCH, STEPS, INPUT_DIM, UNITS, OUT = 8, 6, 3, 4, 2
N_BATCHES = 6
ATOL = 1e-4
SPECS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM"}  # shipped spec -> built-in layer and generated layer


def _batches(seed):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, STEPS, INPUT_DIM)).astype("float32"),
             rng.standard_normal((BATCH, STEPS, OUT)).astype("float32")) for _ in range(N_BATCHES)]


def _random_weights(model, seed):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in model.get_weights()]


def _optimizers(lib):
    return {
        "sgd_momentum": lambda: lib.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        "adam": lambda: lib.optimizers.Adam(learning_rate=0.01),
    }


def _model(lib, recurrent):
    """Input -> recurrent layer (sequences) -> Dense, so the RNN's gradient comes through a product."""
    return lib.Sequential([lib.Input((STEPS, INPUT_DIM)), recurrent, lib.layers.Dense(OUT)])


def _train(model, make_optimizer, batches):
    model.compile(optimizer=make_optimizer(), loss="mse")
    losses = [float(np.asarray(model.train_on_batch(x, y)).ravel()[0]) for x, y in batches]
    return losses, model.get_weights()


def _compare(lib, builtin_layer, generated_layer, make_optimizer, seed):
    lib.utils.set_random_seed(seed)
    reference = _model(lib, builtin_layer)
    generated = _model(lib, generated_layer)
    assert [w.shape for w in generated.get_weights()] == [w.shape for w in reference.get_weights()]
    start = _random_weights(reference, seed)
    reference.set_weights(start)
    generated.set_weights(reference.get_weights())
    batches = _batches(seed)

    lib.utils.set_random_seed(seed)
    ref_losses, ref_weights = _train(reference, make_optimizer, batches)
    lib.utils.set_random_seed(seed)
    gen_losses, gen_weights = _train(generated, make_optimizer, batches)

    np.testing.assert_allclose(gen_losses, ref_losses, rtol=1e-5, atol=1e-5)
    for i, (g, r, s) in enumerate(zip(gen_weights, ref_weights, start)):
        np.testing.assert_allclose(g, r, rtol=0, atol=ATOL, err_msg=f"weight {i} after training")
        assert not np.allclose(r, s, atol=1e-3), f"weight {i} did not move: the test would prove nothing"


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
@pytest.mark.parametrize("wrap", ["generated_layer", "keras_rnn"])
@pytest.mark.parametrize("spec", sorted(SPECS))
def test_keras_target_trains_like_keras(spec, wrap, optimizer):
    keras = pytest.importorskip("keras")
    Cell = eqcell.load(spec, target="keras")
    if wrap == "generated_layer":
        generated = getattr(sys.modules[Cell.__module__], SPECS[spec])(UNITS, return_sequences=True)
    else:
        generated = keras.layers.RNN(Cell(UNITS), return_sequences=True)
    builtin = getattr(keras.layers, SPECS[spec])(UNITS, return_sequences=True)
    _compare(keras, builtin, generated, _optimizers(keras)[optimizer], seed=len(spec) + len(wrap))


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
@pytest.mark.parametrize("wrap", ["generated_layer", "keras_rnn"])
@pytest.mark.parametrize("spec", sorted(SPECS))
def test_tf_keras_target_trains_like_tf_keras(spec, wrap, optimizer):
    tf_keras = pytest.importorskip("tf_keras")
    Cell = eqcell.load(spec, target="tf-keras")
    if wrap == "generated_layer":
        generated = getattr(sys.modules[Cell.__module__], SPECS[spec])(UNITS, return_sequences=True)
    else:
        generated = tf_keras.layers.RNN(Cell(UNITS), return_sequences=True)
    builtin = getattr(tf_keras.layers, SPECS[spec])(UNITS, return_sequences=True)
    _compare(tf_keras, builtin, generated, _optimizers(tf_keras)[optimizer], seed=len(spec) + len(wrap))
