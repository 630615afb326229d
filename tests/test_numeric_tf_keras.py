"""Generated LSTM / GRU / SimpleRNN cells (tf-keras target), given tf_keras's own weights, equal tf_keras's layers."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")
tf = pytest.importorskip("tensorflow")

import eqcell  # noqa: E402

ATOL = RTOL = 1e-5
TARGET = "tf-keras"

# shipped spec -> tf_keras's own layer class name and number of states
REFERENCES = {
    "lstm": ("LSTM", 2),
    "gru": ("GRU", 1),
    "simple_rnn": ("SimpleRNN", 1),
}

# (batch, T, input_dim, units): units=1, input_dim != units both ways, T=1, batch=1
SHAPES = [
    (2, 5, 3, 4),
    (1, 1, 1, 1),
    (3, 7, 6, 1),
    (4, 3, 1, 5),
    (2, 6, 4, 4),
]


def _random_weights(layer, rng):
    """Standard normal * 0.5 for every weight (differs per gate and per bias entry)."""
    return [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in layer.get_weights()]


def _pair(spec, batch, steps, input_dim, units, return_sequences, seed):
    """tf_keras's layer with random weights, and RNN(generated cell) with the same weights."""
    rng = np.random.default_rng(seed)
    layer_name, n_states = REFERENCES[spec]
    reference = getattr(tf_keras.layers, layer_name)(units, return_sequences=return_sequences, return_state=True)
    reference.build((batch, steps, input_dim))
    reference.set_weights(_random_weights(reference, rng))

    cell_class = eqcell.load(spec, target=TARGET)
    generated = tf_keras.layers.RNN(cell_class(units), return_sequences=return_sequences, return_state=True)
    generated.build((batch, steps, input_dim))
    assert [w.shape for w in generated.get_weights()] == [w.shape for w in reference.get_weights()]
    generated.set_weights(reference.get_weights())

    x = rng.standard_normal((batch, steps, input_dim)).astype("float32")
    states = [(rng.standard_normal((batch, units)) * 0.8).astype("float32") for _ in range(n_states)]
    return reference, generated, x, states


def _run(layer, x, states):
    outputs = layer(tf.constant(x), initial_state=[tf.constant(s) for s in states])
    return [np.asarray(o) for o in outputs]


@pytest.mark.parametrize("spec", sorted(REFERENCES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}_t{}_d{}_u{}".format(*s))
def test_sequences_and_states_equal_tf_keras(spec, shape):
    batch, steps, input_dim, units = shape
    reference, generated, x, states = _pair(spec, batch, steps, input_dim, units, True, seed=sum(shape))
    expected = _run(reference, x, states)
    got = _run(generated, x, states)
    n_states = REFERENCES[spec][1]
    assert len(got) == len(expected) == 1 + n_states
    assert got[0].shape == (batch, steps, units)
    for name, e, g in zip(["output"] + [f"state {i}" for i in range(n_states)], expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{spec} {shape}: {name}")
    # the initial state matters (so a cell ignoring it would fail above)
    zero = _run(reference, x, [np.zeros_like(s) for s in states])
    assert not np.allclose(zero[0], expected[0], atol=1e-3)


@pytest.mark.parametrize("spec", sorted(REFERENCES))
@pytest.mark.parametrize("shape", [(3, 6, 2, 5), (2, 4, 3, 1)], ids=lambda s: "b{}_t{}_d{}_u{}".format(*s))
def test_last_output_equals_tf_keras(spec, shape):
    batch, steps, input_dim, units = shape
    reference, generated, x, states = _pair(spec, batch, steps, input_dim, units, False, seed=7)
    expected = _run(reference, x, states)
    got = _run(generated, x, states)
    assert got[0].shape == (batch, units)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=spec)
    # output of the last step is the h state
    np.testing.assert_allclose(got[0], got[1], rtol=0, atol=0)


@pytest.mark.parametrize("spec", sorted(REFERENCES))
def test_default_zero_initial_state_equals_tf_keras(spec):
    reference, generated, x, _ = _pair(spec, 2, 5, 3, 4, True, seed=11)
    expected = [np.asarray(o) for o in reference(tf.constant(x))]
    got = [np.asarray(o) for o in generated(tf.constant(x))]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=spec)


def _built_cell(spec, input_dim, units, seed):
    rng = np.random.default_rng(seed)
    layer_name, _ = REFERENCES[spec]
    reference = getattr(tf_keras.layers, layer_name)(units)
    reference.build((None, None, input_dim))
    reference.set_weights(_random_weights(reference, rng))
    cell = eqcell.load(spec, target=TARGET)(units)
    cell.build((None, input_dim))
    cell.set_weights(reference.get_weights())
    return cell, reference.get_weights()


def test_lstm_symbol_weights_pull_the_right_gate():
    input_dim, units = 3, 4
    cell, (kernel, recurrent, bias) = _built_cell("lstm", input_dim, units, seed=1)
    weights = cell.symbol_weights()
    assert set(weights) == {f"{k}_{g}" for k in "WUb" for g in "ifco"}
    for index, gate in enumerate("ifco"):
        columns = slice(index * units, (index + 1) * units)
        assert weights[f"W_{gate}"].shape == (units, input_dim)
        assert weights[f"U_{gate}"].shape == (units, units)
        assert weights[f"b_{gate}"].shape == (units,)
        np.testing.assert_array_equal(weights[f"W_{gate}"], kernel[:, columns].T)
        np.testing.assert_array_equal(weights[f"U_{gate}"], recurrent[:, columns].T)
        np.testing.assert_array_equal(weights[f"b_{gate}"], bias[columns])
    np.testing.assert_array_equal(weights["W_f"], kernel[:, units:2 * units].T)


def test_gru_symbol_weights_pull_the_right_gate_and_bias_row():
    input_dim, units = 2, 3
    cell, (kernel, recurrent, bias) = _built_cell("gru", input_dim, units, seed=2)
    assert bias.shape == (2, 3 * units)
    weights = cell.symbol_weights()
    for index, gate in enumerate("zrn"):
        columns = slice(index * units, (index + 1) * units)
        np.testing.assert_array_equal(weights[f"W_i{gate}"], kernel[:, columns].T)
        np.testing.assert_array_equal(weights[f"W_h{gate}"], recurrent[:, columns].T)
        np.testing.assert_array_equal(weights[f"b_i{gate}"], bias[0, columns])
        np.testing.assert_array_equal(weights[f"b_h{gate}"], bias[1, columns])


def test_simple_rnn_symbol_weights():
    cell, (kernel, recurrent, bias) = _built_cell("simple_rnn", 3, 2, seed=3)
    weights = cell.symbol_weights()
    assert set(weights) == {"W", "U", "b"}
    np.testing.assert_array_equal(weights["W"], kernel.T)
    np.testing.assert_array_equal(weights["U"], recurrent.T)
    np.testing.assert_array_equal(weights["b"], bias)
