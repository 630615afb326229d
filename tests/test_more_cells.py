"""Cells beyond the shipped ones, as papers write them: the generated layer equals RNN(cell)
(outputs, states, gradients) and both targets build; minGRU and QRNN equal numpy references
written from their papers (not from the specs or the generated code)."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import eqcell  # noqa: E402
from helpers import PAPER_CELLS as CELLS  # noqa: E402
from helpers import assert_close, loss_and_grads  # noqa: E402

UNITS = 5


def build(text, timesteps, features, units=UNITS):
    kwargs = {"proj_units": 3} if "proj_units" in text else {}
    cell, layer = eqcell.load(text), eqcell.load_layer(text)
    inputs = keras.Input((timesteps, features))
    reference = keras.Model(inputs, keras.layers.RNN(cell(units, **kwargs), return_sequences=True,
                                                     return_state=True)(inputs))
    fast = keras.Model(inputs, layer(units, return_sequences=True, return_state=True, **kwargs)(inputs))
    rng = np.random.default_rng(len(text))
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.4 for w in reference.get_weights()]
    reference.set_weights(weights)
    fast.set_weights(weights)
    return reference, fast


# 20 units: from 16 units on, JAX's loop recomputes each step in the backward pass
@pytest.mark.parametrize("shape", [(7, 4, UNITS), (40, 40, UNITS), (30, 4, 20)],
                         ids=["short-narrow", "long-wide", "many-units"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_layer_equals_rnn_of_cell(name, shape):
    timesteps, features, units = shape
    if "SRUCell" in CELLS[name]:
        features = units  # the highway term needs input_dim == units
    reference, fast = build(CELLS[name], timesteps, features, units)
    x = np.random.default_rng(1).standard_normal((3, timesteps, features)).astype("float32")
    for got, want in zip(fast(x), reference(x)):
        assert np.all(np.isfinite(ops.convert_to_numpy(want)))
        assert_close(ops.convert_to_numpy(got), ops.convert_to_numpy(want), f"{name} forward")
    for got, want in zip(loss_and_grads(fast, x), loss_and_grads(reference, x)):
        assert_close(got, want, f"{name} gradient")


@pytest.mark.parametrize("name", sorted(CELLS))
def test_tf_keras_target_builds_and_runs(name):
    tf_keras = pytest.importorskip("tf_keras")
    kwargs = {"proj_units": 3} if "proj_units" in CELLS[name] else {}
    cell = eqcell.load(CELLS[name], target="tf-keras")
    features = UNITS if "SRUCell" in CELLS[name] else 4
    x = np.random.default_rng(2).standard_normal((2, 6, features)).astype("float32")
    out = tf_keras.layers.RNN(cell(UNITS, **kwargs), return_sequences=True)(x)
    assert np.all(np.isfinite(np.asarray(out)))


def test_sru_requires_square_input():
    cell = eqcell.load(CELLS["sru"])
    with pytest.raises(ValueError, match="input_dim"):
        keras.layers.RNN(cell(UNITS))(np.zeros((1, 3, UNITS + 1), "float32"))


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_mingru_equals_paper_reference():
    """Feng et al. (2024), minGRU: z_t = sigma(Linear(x_t)), h~_t = Linear(x_t),
    h_t = (1 - z_t) * h_{t-1} + z_t * h~_t (their eq. in section 3.1), float64 numpy."""
    layer_cls = eqcell.load_layer("mingru")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 50, 3)).astype("float32")
    h0 = rng.standard_normal((2, UNITS)).astype("float32")
    params = {"W_z": rng.standard_normal((UNITS, 3)), "b_z": rng.standard_normal(UNITS),
              "W_h": rng.standard_normal((UNITS, 3)), "b_h": rng.standard_normal(UNITS)}
    for scan in (True, False):
        layer = layer_cls(UNITS, return_sequences=True, parallel_scan=scan)
        layer(x, initial_state=[h0])
        layer.cell.set_symbol_weights(params)
        got = ops.convert_to_numpy(layer(x, initial_state=[h0]))
        h, want = h0.astype("float64"), []
        for t in range(x.shape[1]):
            z = sigmoid(x[:, t] @ params["W_z"].T + params["b_z"])
            h_tilde = x[:, t] @ params["W_h"].T + params["b_h"]
            h = (1 - z) * h + z * h_tilde
            want.append(h)
        np.testing.assert_allclose(got, np.stack(want, axis=1), rtol=1e-5, atol=1e-5)


def test_qrnn_fo_pooling_equals_paper_reference():
    """Bradbury et al. (2017), QRNN with filter width 1: Z = tanh(W_z * X), F = sigma(W_f * X),
    O = sigma(W_o * X) (eq. 1 with k = 1, plus biases), fo-pooling c_t = f_t . c_{t-1} +
    (1 - f_t) . z_t, h_t = o_t . c_t (eq. 4)."""
    layer_cls = eqcell.load_layer("qrnn")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 40, 3)).astype("float32")
    c0 = rng.standard_normal((2, UNITS)).astype("float32")
    params = {f"{m}_{g}": rng.standard_normal((UNITS, 3) if m == "W" else UNITS) for g in "zfo" for m in "Wb"}
    for scan in (True, False):
        layer = layer_cls(UNITS, return_sequences=True, return_state=True, parallel_scan=scan)
        layer(x, initial_state=[c0])
        layer.cell.set_symbol_weights(params)
        outputs, c_last = (ops.convert_to_numpy(t) for t in layer(x, initial_state=[c0]))
        c, want = c0.astype("float64"), []
        for t in range(x.shape[1]):
            z = np.tanh(x[:, t] @ params["W_z"].T + params["b_z"])
            f = sigmoid(x[:, t] @ params["W_f"].T + params["b_f"])
            o = sigmoid(x[:, t] @ params["W_o"].T + params["b_o"])
            c = f * c + (1 - f) * z
            want.append(o * c)
        np.testing.assert_allclose(outputs, np.stack(want, axis=1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(c_last, c, rtol=1e-5, atol=1e-5)


def test_two_biases_per_gate_equal_a_reference():
    """Both biases of a gate are added (a summed product with a stacked (2, 2 * units) bias)."""
    cell = eqcell.load(CELLS["two_biases_per_gate"])(3)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    x = np.random.default_rng(5).standard_normal((2, 6, 2)).astype("float32")
    rnn(x)
    rng = np.random.default_rng(6)
    params = {k: rng.standard_normal(v.shape) for k, v in cell.symbol_weights().items()}
    assert [w.shape for w in rnn.get_weights()][-1] == (2, 6)
    cell.set_symbol_weights(params)
    h, want = np.zeros((2, 3)), []
    for t in range(x.shape[1]):
        f = sigmoid(x[:, t] @ params["W_f"].T + params["b_f"] + h @ params["U_f"].T + params["c_f"])
        g = np.tanh(x[:, t] @ params["W_g"].T + params["b_g"] + h @ params["U_g"].T + params["c_g"])
        h = f * h + (1 - f) * g
        want.append(h)
    np.testing.assert_allclose(ops.convert_to_numpy(rnn(x)), np.stack(want, axis=1), rtol=1e-5, atol=1e-5)
