"""The generated S-LSTM (both targets) against a numpy reference written from Wu & King (2016):

    f_t = σ(W_f x_t + R_f h_{t-1} + b_f)
    c_t = f_t ⊙ c_{t-1} + (1 − f_t) ⊙ tanh(W_c x_t + R_c h_{t-1} + b_c)
    h_t = tanh(c_t)

Weights go in through `set_symbol_weights` (paper orientation: W is (units, input_dim)).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

import eqcell

ATOL = RTOL = 1e-5


# ---------------------------------------------------------------- the reference, from the paper


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hard_sigmoid_keras3(z):
    """Keras 3: relu6(x + 3) / 6."""
    return np.minimum(np.maximum(z + 3.0, 0.0), 6.0) / 6.0


def hard_sigmoid_tf_keras(z):
    """tf_keras (Keras 2): clip(0.2 x + 0.5, 0, 1)."""
    return np.clip(0.2 * z + 0.5, 0.0, 1.0)


def slstm_reference(p, x, h0, c0, gate=sigmoid):
    """x: (batch, T, input_dim); returns the h sequence (batch, T, units), h_T, c_T. float64."""
    h, c = h0.astype(np.float64), c0.astype(np.float64)
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t, :].astype(np.float64)
        # column vectors in the paper; here a batch of rows, so W x -> x @ W.T
        f = gate(x_t @ p["W_f"].T + h @ p["R_f"].T + p["b_f"])
        c = f * c + (1.0 - f) * np.tanh(x_t @ p["W_c"].T + h @ p["R_c"].T + p["b_c"])
        h = np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def paper_weights(rng, input_dim, units, scale=0.5):
    return {
        "W_f": (rng.standard_normal((units, input_dim)) * scale).astype("float32"),
        "R_f": (rng.standard_normal((units, units)) * scale).astype("float32"),
        "b_f": (rng.standard_normal(units) * scale).astype("float32"),
        "W_c": (rng.standard_normal((units, input_dim)) * scale).astype("float32"),
        "R_c": (rng.standard_normal((units, units)) * scale).astype("float32"),
        "b_c": (rng.standard_normal(units) * scale).astype("float32"),
    }


# ---------------------------------------------------------------- the two targets


class Keras3:
    name = "keras"
    hard_sigmoid = staticmethod(hard_sigmoid_keras3)

    def __init__(self):
        self.keras = pytest.importorskip("keras")

    def rnn(self, cell, **kwargs):
        return self.keras.layers.RNN(cell, **kwargs)

    def run(self, layer, x, states):
        ops = self.keras.ops
        out = layer(ops.convert_to_tensor(x), initial_state=[ops.convert_to_tensor(s) for s in states])
        if isinstance(out, (list, tuple)):
            return [ops.convert_to_numpy(o) for o in out]
        return ops.convert_to_numpy(out)


class TfKeras:
    name = "tf-keras"
    hard_sigmoid = staticmethod(hard_sigmoid_tf_keras)

    def __init__(self):
        self.tf_keras = pytest.importorskip("tf_keras")
        self.tf = pytest.importorskip("tensorflow")

    def rnn(self, cell, **kwargs):
        return self.tf_keras.layers.RNN(cell, **kwargs)

    def run(self, layer, x, states):
        tf = self.tf
        out = layer(tf.constant(x), initial_state=[tf.constant(s) for s in states])
        if isinstance(out, (list, tuple)):
            return [np.asarray(o) for o in out]
        return np.asarray(out)


@pytest.fixture(params=["keras", "tf-keras"])
def backend(request):
    return Keras3() if request.param == "keras" else TfKeras()


def _cell(backend, units, input_dim, **kwargs):
    cell = eqcell.load("slstm", target=backend.name)(units, **kwargs)
    cell.build((None, input_dim))
    return cell


SHAPES = [(2, 6, 3, 4), (1, 1, 1, 1), (3, 8, 5, 1), (4, 5, 2, 7)]
SHAPE_IDS = ["b{}_t{}_d{}_u{}".format(*s) for s in SHAPES]


# ---------------------------------------------------------------- numeric


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_sigmoid_slstm_equals_paper_reference(backend, shape):
    batch, steps, input_dim, units = shape
    rng = np.random.default_rng(sum(shape))
    p = paper_weights(rng, input_dim, units)
    x = rng.standard_normal((batch, steps, input_dim)).astype("float32")
    h0 = (rng.standard_normal((batch, units)) * 0.8).astype("float32")
    c0 = (rng.standard_normal((batch, units)) * 0.8).astype("float32")

    cell = _cell(backend, units, input_dim, recurrent_activation="sigmoid")
    cell.set_symbol_weights(p)
    layer = backend.rnn(cell, return_sequences=True, return_state=True)
    seq, h_T, c_T = backend.run(layer, x, [h0, c0])

    ref_seq, ref_h, ref_c = slstm_reference(p, x, h0, c0, gate=sigmoid)
    np.testing.assert_allclose(seq, ref_seq, rtol=RTOL, atol=ATOL, err_msg="h sequence")
    np.testing.assert_allclose(h_T, ref_h, rtol=RTOL, atol=ATOL, err_msg="final h")
    np.testing.assert_allclose(c_T, ref_c, rtol=RTOL, atol=ATOL, err_msg="final c")

    # return_sequences=False gives the last step
    last = backend.run(backend.rnn(cell, return_state=True), x, [h0, c0])
    np.testing.assert_allclose(last[0], ref_h, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(last[2], ref_c, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", SHAPES[:2] + [(3, 6, 2, 5)], ids=SHAPE_IDS[:2] + ["b3_t6_d2_u5"])
def test_default_hard_sigmoid_slstm_equals_paper_reference(backend, shape):
    batch, steps, input_dim, units = shape
    rng = np.random.default_rng(100 + sum(shape))
    # larger weights so gate pre-activations reach both the linear part and the saturated ends
    p = paper_weights(rng, input_dim, units, scale=1.5)
    x = rng.standard_normal((batch, steps, input_dim)).astype("float32")
    h0 = (rng.standard_normal((batch, units)) * 0.8).astype("float32")
    c0 = (rng.standard_normal((batch, units)) * 0.8).astype("float32")

    cell = _cell(backend, units, input_dim)  # default recurrent_activation: hard_sigmoid
    cell.set_symbol_weights(p)
    seq, h_T, c_T = backend.run(backend.rnn(cell, return_sequences=True, return_state=True), x, [h0, c0])

    ref_seq, ref_h, ref_c = slstm_reference(p, x, h0, c0, gate=backend.hard_sigmoid)
    np.testing.assert_allclose(seq, ref_seq, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(h_T, ref_h, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(c_T, ref_c, rtol=RTOL, atol=ATOL)

    # the test tells the gates apart: the sigmoid reference differs
    if steps > 1 or units > 1:
        sig_seq, _, _ = slstm_reference(p, x, h0, c0, gate=sigmoid)
        assert not np.allclose(sig_seq, ref_seq, atol=1e-3)


def test_hard_sigmoid_references_match_the_frameworks(backend):
    z = np.linspace(-6, 6, 97).astype("float32")
    if backend.name == "keras":
        got = backend.keras.ops.convert_to_numpy(backend.keras.activations.hard_sigmoid(z))
    else:
        got = np.asarray(backend.tf_keras.activations.hard_sigmoid(backend.tf.constant(z)))
    np.testing.assert_allclose(got, backend.hard_sigmoid(z), rtol=1e-6, atol=1e-6)


def test_initial_state_is_used(backend):
    """A non-zero initial c moves the output; the reference agrees with both."""
    rng = np.random.default_rng(5)
    p = paper_weights(rng, 2, 3)
    x = rng.standard_normal((2, 3, 2)).astype("float32")
    zeros = np.zeros((2, 3), "float32")
    c0 = np.full((2, 3), 0.9, "float32")
    cell = _cell(backend, 3, 2, recurrent_activation="sigmoid")
    cell.set_symbol_weights(p)
    layer = backend.rnn(cell, return_sequences=True)
    from_zero = backend.run(layer, x, [zeros, zeros])
    from_c0 = backend.run(layer, x, [zeros, c0])
    assert from_zero.shape == from_c0.shape == (2, 3, 3)
    np.testing.assert_allclose(from_zero, slstm_reference(p, x, zeros, zeros)[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(from_c0, slstm_reference(p, x, zeros, c0)[0], rtol=RTOL, atol=ATOL)
    assert not np.allclose(from_zero, from_c0, atol=1e-3)


# ---------------------------------------------------------------- symbol weights


def test_symbol_weights_names_and_shapes(backend):
    cell = _cell(backend, 4, 3)
    weights = cell.symbol_weights()
    assert sorted(weights) == ["R_c", "R_f", "W_c", "W_f", "b_c", "b_f"]
    assert weights["W_f"].shape == weights["W_c"].shape == (4, 3)
    assert weights["R_f"].shape == weights["R_c"].shape == (4, 4)
    assert weights["b_f"].shape == weights["b_c"].shape == (4,)


def test_symbol_weights_round_trip(backend):
    rng = np.random.default_rng(9)
    p = paper_weights(rng, 3, 4)
    cell = _cell(backend, 4, 3)
    cell.set_symbol_weights(p)
    got = cell.symbol_weights()
    assert sorted(got) == sorted(p)
    for name in p:
        np.testing.assert_array_equal(got[name], p[name], err_msg=name)

    # symbol_weights() -> set_symbol_weights() on a fresh cell gives the same fused weights
    other = _cell(backend, 4, 3)
    other.set_symbol_weights(cell.symbol_weights())
    for a, b in zip(cell.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_symbol_weights_places_each_parameter_in_its_fused_slot(backend):
    """Paper orientation: kernel = [W_f.T | W_c.T], recurrent_kernel = [R_f.T | R_c.T], bias = [b_f | b_c]."""
    rng = np.random.default_rng(10)
    p = paper_weights(rng, 3, 2)
    cell = _cell(backend, 2, 3)
    cell.set_symbol_weights(p)
    kernel, recurrent, bias = cell.get_weights()
    np.testing.assert_array_equal(kernel, np.concatenate([p["W_f"].T, p["W_c"].T], axis=1))
    np.testing.assert_array_equal(recurrent, np.concatenate([p["R_f"].T, p["R_c"].T], axis=1))
    np.testing.assert_array_equal(bias, np.concatenate([p["b_f"], p["b_c"]]))


def test_set_symbol_weights_missing_key(backend):
    cell = _cell(backend, 4, 3)
    p = paper_weights(np.random.default_rng(0), 3, 4)
    before = [w.copy() for w in cell.get_weights()]
    del p["R_c"]
    with pytest.raises(ValueError, match=r"missing \['R_c'\]") as info:
        cell.set_symbol_weights(p)
    assert "SLSTMCell" in str(info.value)
    for a, b in zip(before, cell.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_symbol_weights_extra_key(backend):
    cell = _cell(backend, 4, 3)
    p = paper_weights(np.random.default_rng(0), 3, 4)
    p["W_i"] = np.zeros((4, 3), "float32")
    with pytest.raises(ValueError, match=r"unexpected \['W_i'\]"):
        cell.set_symbol_weights(p)


def test_set_symbol_weights_wrong_shape(backend):
    cell = _cell(backend, 4, 3)
    p = paper_weights(np.random.default_rng(0), 3, 4)
    before = [w.copy() for w in cell.get_weights()]
    p["W_c"] = p["W_c"].T  # (input_dim, units): the Keras orientation, not the paper's
    with pytest.raises(ValueError, match=r"W_c must have shape \(4, 3\), got \(3, 4\)"):
        cell.set_symbol_weights(p)
    for a, b in zip(before, cell.get_weights()):
        np.testing.assert_array_equal(a, b)

    p = paper_weights(np.random.default_rng(0), 3, 4)
    p["b_f"] = np.zeros(5, "float32")
    with pytest.raises(ValueError, match=r"b_f must have shape \(4,\), got \(5,\)"):
        cell.set_symbol_weights(p)
