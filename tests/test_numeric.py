"""Generated LSTM / GRU / SimpleRNN cells, given the framework's own weights, equal its layers: the
keras target against Keras's `LSTM` / `GRU` / `SimpleRNN`, the tf-keras target against tf_keras's.

The keras-target cases are backend-agnostic: tests/test_backends.py runs them again under JAX and
PyTorch (ids with "tf-keras" are left out there)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

import eqcell

ATOL = RTOL = 1e-5

# shipped spec -> the framework's own layer class name and number of states
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


class Keras3:
    """The keras target against Keras 3's layers, on whichever backend Keras runs."""

    target = "keras"

    def __init__(self):
        self.keras = pytest.importorskip("keras")
        self.layers = self.keras.layers

    def tensor(self, value):
        return self.keras.ops.convert_to_tensor(value)

    def numpy(self, value):
        return self.keras.ops.convert_to_numpy(value)


class TfKeras:
    """The tf-keras target against tf_keras's layers (TensorFlow)."""

    target = "tf-keras"

    def __init__(self):
        self.layers = pytest.importorskip("tf_keras").layers
        self.tf = pytest.importorskip("tensorflow")

    def tensor(self, value):
        return self.tf.constant(value)

    def numpy(self, value):
        return np.asarray(value)


@pytest.fixture(params=["keras", "tf-keras"])
def fw(request):
    return Keras3() if request.param == "keras" else TfKeras()


def _random_weights(layer, rng):
    """Standard normal * 0.5 for every weight (differs per gate and per bias entry)."""
    return [(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in layer.get_weights()]


def _pair(fw, spec, batch, steps, input_dim, units, return_sequences, seed):
    """The framework's layer with random weights, and RNN(generated cell) with the same weights."""
    rng = np.random.default_rng(seed)
    layer_name, n_states = REFERENCES[spec]
    reference = getattr(fw.layers, layer_name)(units, return_sequences=return_sequences, return_state=True)
    reference.build((batch, steps, input_dim))
    reference.set_weights(_random_weights(reference, rng))

    cell_class = eqcell.load(spec, target=fw.target)
    generated = fw.layers.RNN(cell_class(units), return_sequences=return_sequences, return_state=True)
    generated.build((batch, steps, input_dim))
    assert [w.shape for w in generated.get_weights()] == [w.shape for w in reference.get_weights()]
    generated.set_weights(reference.get_weights())

    x = rng.standard_normal((batch, steps, input_dim)).astype("float32")
    states = [(rng.standard_normal((batch, units)) * 0.8).astype("float32") for _ in range(n_states)]
    return reference, generated, x, states


def _run(fw, layer, x, states):
    outputs = layer(fw.tensor(x), initial_state=[fw.tensor(s) for s in states])
    return [fw.numpy(o) for o in outputs]


@pytest.mark.parametrize("spec", sorted(REFERENCES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "b{}_t{}_d{}_u{}".format(*s))
def test_sequences_and_states_equal_the_framework(fw, spec, shape):
    batch, steps, input_dim, units = shape
    reference, generated, x, states = _pair(fw, spec, batch, steps, input_dim, units, True, seed=sum(shape))
    expected = _run(fw, reference, x, states)
    got = _run(fw, generated, x, states)
    n_states = REFERENCES[spec][1]
    assert len(got) == len(expected) == 1 + n_states
    assert got[0].shape == (batch, steps, units)
    for name, e, g in zip(["output"] + [f"state {i}" for i in range(n_states)], expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{spec} {shape}: {name}")
    # the initial state matters (so a cell ignoring it would fail above)
    zero = _run(fw, reference, x, [np.zeros_like(s) for s in states])
    assert not np.allclose(zero[0], expected[0], atol=1e-3)


@pytest.mark.parametrize("spec", sorted(REFERENCES))
@pytest.mark.parametrize("shape", [(3, 6, 2, 5), (2, 4, 3, 1)], ids=lambda s: "b{}_t{}_d{}_u{}".format(*s))
def test_last_output_equals_the_framework(fw, spec, shape):
    batch, steps, input_dim, units = shape
    reference, generated, x, states = _pair(fw, spec, batch, steps, input_dim, units, False, seed=7)
    expected = _run(fw, reference, x, states)
    got = _run(fw, generated, x, states)
    assert got[0].shape == (batch, units)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=spec)
    # output of the last step is the h state
    np.testing.assert_allclose(got[0], got[1], rtol=0, atol=0)


@pytest.mark.parametrize("spec", sorted(REFERENCES))
def test_default_zero_initial_state_equals_the_framework(fw, spec):
    reference, generated, x, _ = _pair(fw, spec, 2, 5, 3, 4, True, seed=11)
    expected = [fw.numpy(o) for o in reference(fw.tensor(x))]
    got = [fw.numpy(o) for o in generated(fw.tensor(x))]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=spec)


def _built_cell(fw, spec, input_dim, units, seed):
    rng = np.random.default_rng(seed)
    layer_name, _ = REFERENCES[spec]
    reference = getattr(fw.layers, layer_name)(units)
    reference.build((None, None, input_dim))
    reference.set_weights(_random_weights(reference, rng))
    cell = eqcell.load(spec, target=fw.target)(units)
    cell.build((None, input_dim))
    cell.set_weights(reference.get_weights())
    return cell, reference.get_weights()


def test_lstm_symbol_weights_pull_the_right_gate(fw):
    input_dim, units = 3, 4
    cell, (kernel, recurrent, bias) = _built_cell(fw, "lstm", input_dim, units, seed=1)
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


def test_gru_symbol_weights_pull_the_right_gate_and_bias_row(fw):
    input_dim, units = 2, 3
    cell, (kernel, recurrent, bias) = _built_cell(fw, "gru", input_dim, units, seed=2)
    assert bias.shape == (2, 3 * units)
    weights = cell.symbol_weights()
    for index, gate in enumerate("zrn"):
        columns = slice(index * units, (index + 1) * units)
        np.testing.assert_array_equal(weights[f"W_i{gate}"], kernel[:, columns].T)
        np.testing.assert_array_equal(weights[f"W_h{gate}"], recurrent[:, columns].T)
        np.testing.assert_array_equal(weights[f"b_i{gate}"], bias[0, columns])
        np.testing.assert_array_equal(weights[f"b_h{gate}"], bias[1, columns])


def test_simple_rnn_symbol_weights(fw):
    cell, (kernel, recurrent, bias) = _built_cell(fw, "simple_rnn", 3, 2, seed=3)
    weights = cell.symbol_weights()
    assert set(weights) == {"W", "U", "b"}
    np.testing.assert_array_equal(weights["W"], kernel.T)
    np.testing.assert_array_equal(weights["U"], recurrent.T)
    np.testing.assert_array_equal(weights["b"], bias)
