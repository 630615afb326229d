"""A spec's `initializers:` is what every target's fresh cell holds: each named parameter, fused or
standing alone (a peephole, IndRNN's u, Mamba's D), starts at the value its initializer gives."""
import numpy as np
import pytest

import eqcell
from conftest import SHIPPED

CONSTANT = {"ones": np.ones, "zeros": np.zeros}
CASES = [(p.stem, param.name, param.initializer) for p in SHIPPED for param in eqcell.analyze(p).params
         if param.initializer in CONSTANT]


def _sizes(spec):
    ir = eqcell.analyze(spec)
    sizes = {size: 4 for size in ir.sizes if size != ir.heads}
    if ir.heads:
        sizes[ir.heads] = 2
    return sizes, 8, 8 if ir.square_input else 5


def test_shipped_specs_name_initializers():
    assert {spec for spec, _, _ in CASES} >= {"lstm", "indrnn", "mamba_ssm", "ln_lstm", "peephole_lstm"}


@pytest.mark.parametrize(("spec", "name", "initializer"), CASES, ids=[f"{s}-{n}" for s, n, _ in CASES])
def test_keras_target_draws_the_specs_initializer(spec, name, initializer):
    pytest.importorskip("keras")
    sizes, units, width = _sizes(spec)
    cell = eqcell.load(spec)(units, **sizes)
    cell.build((None, width))
    value = np.asarray(cell.symbol_weights()[name])
    np.testing.assert_array_equal(value, CONSTANT[initializer](value.shape))


@pytest.mark.parametrize(("spec", "name", "initializer"), CASES, ids=[f"{s}-{n}" for s, n, _ in CASES])
def test_torch_target_draws_the_specs_initializer(spec, name, initializer):
    pytest.importorskip("torch")
    sizes, units, width = _sizes(spec)
    cell = eqcell.load(spec, target="torch")(width, units, **sizes)
    value = cell.symbol_weights()[name].numpy()
    np.testing.assert_array_equal(value, CONSTANT[initializer](value.shape))


# --- default_initializer: pytorch_rnn_uniform, PyTorch's own default for the cells it ships -------------

PYTORCH_SPECS = ["lstm_torch", "gru_torch", "rnn_torch"]


def _assert_pytorch_uniform(values, units):
    """Every weight and bias drawn from U(-1/sqrt(units), 1/sqrt(units)), as nn.LSTM.reset_parameters."""
    bound = 1 / np.sqrt(units)
    for name, value in values.items():
        value = np.asarray(value)
        assert np.all(np.abs(value) <= bound), name
        assert np.abs(value).max() > 0.5 * bound and value.std() > 0.3 * bound, name  # spread, not constant


@pytest.mark.parametrize("spec", PYTORCH_SPECS)
def test_pytorchs_specs_draw_pytorchs_default_on_every_target(spec):
    torch = pytest.importorskip("torch")
    units = 16
    cell = eqcell.load(spec, target="torch")(10, units)
    _assert_pytorch_uniform({n: p.detach().numpy() for n, p in cell.named_parameters()}, units)
    reference = {"lstm_torch": torch.nn.LSTMCell, "gru_torch": torch.nn.GRUCell, "rnn_torch": torch.nn.RNNCell}[spec]
    assert ({n: tuple(p.shape) for n, p in cell.named_parameters()}
            == {n: tuple(p.shape) for n, p in reference(10, units).named_parameters()})

    keras = pytest.importorskip("keras")
    keras_cell = eqcell.load(spec)(units)
    keras_cell.build((None, 10))
    _assert_pytorch_uniform({w.name: keras.ops.convert_to_numpy(w) for w in keras_cell.weights}, units)
    clone = type(keras_cell).from_config(keras_cell.get_config())  # the initializer serializes
    clone.build((None, 10))
    _assert_pytorch_uniform({w.name: keras.ops.convert_to_numpy(w) for w in clone.weights}, units)


def test_default_initializer_keeps_a_layer_norms_own_gain_and_a_named_override():
    spec = ("name: C\ndefault_initializer: pytorch_rnn_uniform\ninitializers: {p: ones}\n"
            "equations: |\n  h_t = tanh(LN(W x_t) + U h_{t-1} + b + p * h_{t-1})\n")
    weights = {w.name: w.default_initializer for w in eqcell.analyze(spec.encode()).weights}
    assert weights["ln1_gain"] == "ones" and weights["ln1_bias"] == "zeros"
    assert weights["kernel"] == weights["recurrent_kernel"] == weights["bias"] == "pytorch_rnn_uniform"
    assert weights["p"] == "ones"


def test_an_unknown_default_initializer_is_a_spec_error():
    from eqcell.errors import SpecError
    with pytest.raises(SpecError, match="unknown initializer 'pytorch_rnn_unifrom'") as info:
        eqcell.analyze(b"name: C\ndefault_initializer: pytorch_rnn_unifrom\nequations: |\n  h_t = tanh(W x_t)\n")
    assert "did you mean 'pytorch_rnn_uniform'?" in str(info.value)
    assert ":2:" in str(info.value)
