"""The torch target: PyTorch's own modules as oracles, and the keras target as a second one.

- specs/lstm_torch, gru_torch, rnn_torch load nn.LSTM's, nn.GRU's and nn.RNN's state_dicts
  unchanged (strict) and give the same outputs, final states and gradients, with batch_first,
  bidirectional, two layers, an initial state, unbatched input and packed sequences; their cells
  equal nn.LSTMCell, nn.GRUCell and nn.RNNCell;
- every shipped cell the target writes equals the keras target's, given the same symbol weights
  (which tests/test_zoo_* check against the authors' code)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import eqcell  # noqa: E402
from conftest import SHIPPED  # noqa: E402
from eqcell.errors import SpecError  # noqa: E402

PYTORCH = {"lstm_torch": (torch.nn.LSTM, torch.nn.LSTMCell), "gru_torch": (torch.nn.GRU, torch.nn.GRUCell),
           "rnn_torch": (torch.nn.RNN, torch.nn.RNNCell)}
INPUT, HIDDEN, STEPS, BATCH = 5, 7, 6, 3
LENGTHS = [6, 2, 4]   # unsorted: packed with enforce_sorted=False
LAYOUTS = [  # (num_layers, bidirectional, batch_first, packed)
    pytest.param(1, False, False, False, id="one-layer"),
    pytest.param(2, True, False, False, id="two-layers-bidirectional"),
    pytest.param(2, False, True, False, id="two-layers-batch-first"),
    pytest.param(1, True, True, True, id="bidirectional-packed"),
    pytest.param(2, True, False, True, id="two-layers-bidirectional-packed"),
]


def _pair(spec, **kwargs):
    layer_class, _ = PYTORCH[spec]
    torch.manual_seed(0)
    reference = layer_class(INPUT, HIDDEN, dtype=torch.float64, **kwargs)
    ours = eqcell.load_layer(spec, target="torch")(INPUT, HIDDEN, dtype=torch.float64, **kwargs)
    ours.load_state_dict(reference.state_dict())   # strict: the same keys and shapes
    return reference, ours


def _run(module, x, hx, leaves):
    """Outputs (packed: their data), final states, and the gradients of a loss reading both with
    respect to the input, the initial states (`leaves`) and every parameter."""
    output, final = module(x, hx)
    finals = final if isinstance(final, tuple) else (final,)
    data = output.data if isinstance(output, torch.nn.utils.rnn.PackedSequence) else output
    loss = (data ** 2).sum() + sum((f * torch.arange(1, f.numel() + 1, dtype=f.dtype).reshape(f.shape)).sum()
                                   for f in finals)
    inputs = [x.data if isinstance(x, torch.nn.utils.rnn.PackedSequence) else x, *leaves]
    grads = torch.autograd.grad(loss, [*inputs, *module.parameters()])
    return [data.detach(), *(f.detach() for f in finals)], grads


@pytest.mark.parametrize(("layers", "bidirectional", "batch_first", "packed"), LAYOUTS)
@pytest.mark.parametrize("spec", sorted(PYTORCH))
def test_layer_equals_pytorch(spec, layers, bidirectional, batch_first, packed):
    reference, ours = _pair(spec, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    assert list(ours.state_dict()) == list(reference.state_dict())
    generator = torch.Generator().manual_seed(1)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
    states = 2 if spec == "lstm_torch" else 1
    hx = tuple(torch.randn(layers * (2 if bidirectional else 1), BATCH, HIDDEN, dtype=torch.float64,
                           generator=generator, requires_grad=True) for _ in range(states))
    feed = x
    if packed:
        feed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=batch_first,
                                                       enforce_sorted=False)
    hx_arg = hx if states == 2 else hx[0]
    (want, want_grads), (got, got_grads) = [_run(m, feed, hx_arg, hx) for m in (reference, ours)]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("spec", sorted(PYTORCH))
def test_unbatched_and_default_state_equal_pytorch(spec):
    reference, ours = _pair(spec, num_layers=2)
    x = torch.randn(STEPS, INPUT, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    want, got = reference(x), ours(x)
    torch.testing.assert_close(got[0], want[0])
    for a, b in zip(got[1] if isinstance(got[1], tuple) else (got[1],),
                    want[1] if isinstance(want[1], tuple) else (want[1],)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("spec", sorted(PYTORCH))
def test_cell_equals_pytorch_cell(spec):
    _, cell_class = PYTORCH[spec]
    torch.manual_seed(0)
    reference = cell_class(INPUT, HIDDEN, dtype=torch.float64)
    ours = eqcell.load(spec, target="torch")(INPUT, HIDDEN, dtype=torch.float64)
    ours.load_state_dict(reference.state_dict())
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(BATCH, INPUT, dtype=torch.float64, generator=generator)
    h = torch.randn(BATCH, HIDDEN, dtype=torch.float64, generator=generator)
    c = torch.randn(BATCH, HIDDEN, dtype=torch.float64, generator=generator)
    if spec == "lstm_torch":
        want = reference(x, (h, c))
        output, got = ours(x, (h, c))
        torch.testing.assert_close(output, want[0])
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
        output, got = ours(x[0], (h[0], c[0]))   # one example, no batch axis
        torch.testing.assert_close(got[1], reference(x[0], (h[0], c[0]))[1])
    else:
        want = reference(x, h)
        output, got = ours(x, h)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(output, want)
        torch.testing.assert_close(ours(x[0], h[0])[1], reference(x[0], h[0]))


def test_bias_false_has_no_bias_parameters():
    reference = torch.nn.LSTM(INPUT, HIDDEN, bias=False)
    ours = eqcell.load_layer("lstm_torch", target="torch")(INPUT, HIDDEN, bias=False)
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT)
    torch.testing.assert_close(ours(x)[0], reference(x)[0])


# ---------------------------------------------------------------- every cell: torch == keras

def _torch_written(spec):
    try:
        eqcell.generate(spec, target="torch")
        return True
    except SpecError:
        return False


TORCH_CELLS = [p.stem for p in SHIPPED if _torch_written(p)]


def test_the_target_writes_every_shipped_cell():
    assert TORCH_CELLS == [p.stem for p in SHIPPED]


@pytest.mark.parametrize("spec", TORCH_CELLS)
def test_equals_the_keras_target(spec):
    """The same symbol weights (random, every parameter its own) in both targets' layers: the
    same outputs over a sequence."""
    keras = pytest.importorskip("keras")
    ir = eqcell.analyze(spec)
    sizes = {size: 4 for size in ir.sizes if size != ir.heads}
    if ir.heads:
        sizes[ir.heads] = 2
    units, width = 8, 8 if ir.square_input else 5
    torch_layer = eqcell.load_layer(spec, target="torch")(width, units, batch_first=True, dtype=torch.float64,
                                                          **sizes)
    rng = np.random.default_rng(4)
    cell = torch_layer.cells[0]
    weights = {name: rng.standard_normal(tuple(value.shape)) * 0.4 for name, value in cell.symbol_weights().items()}
    cell.set_symbol_weights(weights)
    for name, value in cell.symbol_weights().items():   # the round trip
        np.testing.assert_array_equal(value.numpy(), weights[name])
    x = rng.standard_normal((3, 9, width))
    got = torch_layer(torch.from_numpy(x))[0].detach().numpy()

    keras_layer = eqcell.load_layer(spec)(units, return_sequences=True, dtype="float64", **sizes)
    keras_layer.build((None, 9, width))
    keras_layer.cell.set_symbol_weights(weights)
    want = keras.ops.convert_to_numpy(keras_layer(x))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------- what a PyTorch user expects

def test_the_cell_exports_and_the_layer_traces_without_graph_breaks():
    cell = eqcell.load("lstm_torch", target="torch")(INPUT, HIDDEN)
    state = (torch.zeros(BATCH, HIDDEN), torch.zeros(BATCH, HIDDEN))
    exported = torch.export.export(cell, (torch.randn(BATCH, INPUT), state))
    x = torch.randn(BATCH, INPUT)
    for a, b in zip(exported.module()(x, state)[1], cell(x, state)[1]):
        torch.testing.assert_close(a, b)
    from torch import _dynamo
    layer = eqcell.load_layer("gru_torch", target="torch")(INPUT, HIDDEN, num_layers=2, batch_first=True)
    explanation = _dynamo.explain(layer)(torch.randn(BATCH, STEPS, INPUT))
    assert explanation.graph_break_count == 0, explanation.break_reasons


@pytest.mark.slow
def test_the_compiled_layer_equals_the_eager_one():
    layer = eqcell.load_layer("lstm_torch", target="torch")(INPUT, HIDDEN, batch_first=True)
    x = torch.randn(BATCH, STEPS, INPUT)
    torch.testing.assert_close(torch.compile(layer)(x)[0], layer(x)[0])


def test_state_dict_round_trip_and_device_moves_keep_cells_and_layer_together():
    layer_class = eqcell.load_layer("lstm_torch", target="torch")
    layer = layer_class(INPUT, HIDDEN, num_layers=2, bidirectional=True)
    clone = layer_class(INPUT, HIDDEN, num_layers=2, bidirectional=True)
    clone.load_state_dict(layer.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT)
    torch.testing.assert_close(clone(x)[0], layer(x)[0])
    doubled = clone.double()   # in place: the cells see the converted tensors
    assert all(p.dtype == torch.float64 for cell in doubled.cells for p in cell.parameters())
    torch.testing.assert_close(doubled(x.double())[0], layer(x)[0].double(), rtol=1e-5, atol=1e-6)
