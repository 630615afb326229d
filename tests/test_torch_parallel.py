"""The torch target's parallel path (scans, chunkwise forms) equals its own step loop.

For every shipped cell that has one: the same layer with parallel_scan True and False, in float64,
random parameters (each entry its own: no tie in a max, whose subgradient is a choice), two layers,
both directions, packed sequences of three lengths, a given initial state, a chunk size that cuts
the sequence into several chunks and a padded last one: the same outputs, final states and
gradients with respect to the input, the initial state and every parameter. The step loop itself
equals the keras target (tests/test_torch_target.py), which equals the authors' code."""
import pytest

torch = pytest.importorskip("torch")

import eqcell  # noqa: E402
from conftest import SHIPPED  # noqa: E402
from eqcell.ir import ChunkedState  # noqa: E402

PARALLEL = [p.stem for p in SHIPPED if eqcell.analyze(p).scan is not None]
STEPS, LENGTHS, UNITS = 37, [37, 20, 5], 8


def _layer(spec, bidirectional=True, **kwargs):
    ir = eqcell.analyze(spec)
    sizes = {size: 4 for size in ir.sizes if size != ir.heads}
    if ir.heads:
        sizes[ir.heads] = 2
    if any(isinstance(item, ChunkedState) for item in ir.scan):
        sizes["chunk_size"] = 8
    # a state as wide as the input (RWKV's x_{t-1}) or an input combined element-wise with the state
    # ties every layer's input to the state's width: one direction then
    narrow = ir.square_input or any(s.size == "input_dim" for s in ir.states)
    width = UNITS if narrow else 5
    torch.manual_seed(0)
    layer = eqcell.load_layer(spec, target="torch")(
        width, UNITS, num_layers=2, bidirectional=bidirectional and not narrow, batch_first=True,
        dtype=torch.float64, **sizes, **kwargs)
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            parameter.copy_(0.4 * torch.randn_like(parameter))
            if name.startswith("A_"):  # Mamba's A < 0 (S4D-real), or its state grows without bound
                parameter.copy_(-torch.exp(parameter))
    return layer, width


def _outputs_and_gradients(layer, x, hx, packed):
    inputs = (torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=True,
                                                      enforce_sorted=False) if packed else x)
    output, final = layer(inputs, hx)
    if packed:
        output = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=True)[0]
    finals = final if isinstance(final, tuple) else (final,)
    loss = (output ** 2).sum() + sum((f * torch.linspace(-1, 1, f.numel(), dtype=f.dtype).reshape(f.shape)).sum()
                                     for f in finals)
    leaves = [x, *(hx if isinstance(hx, tuple) else (hx,))]
    return [output, *finals], torch.autograd.grad(loss, [*leaves, *layer.parameters()])


@pytest.mark.parametrize("packed", [False, True], ids=["full", "packed"])
@pytest.mark.parametrize("spec", PARALLEL)
def test_parallel_path_equals_the_step_loop(spec, packed):
    layer, width = _layer(spec)
    x = torch.randn(len(LENGTHS), STEPS, width, dtype=torch.float64, requires_grad=True)
    first = layer.cells[0].initial_state(1)
    rows = layer.num_layers * (2 if layer.bidirectional else 1)
    hx = tuple(0.5 * torch.randn(rows, len(LENGTHS), s.shape[-1], dtype=torch.float64, requires_grad=True)
               for s in (first if isinstance(first, tuple) else (first,)))
    hx = hx if len(hx) > 1 else hx[0]
    results = {}
    for parallel in (False, True):
        layer.parallel_scan = parallel
        results[parallel] = _outputs_and_gradients(layer, x, hx, packed)
    (loop_values, loop_grads), (values, grads) = results[False], results[True]
    for got, want in zip(values, loop_values):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    names = ["input", *(["hx"] * (len(loop_grads) - len(list(layer.parameters())) - 1)),
             *(name for name, _ in layer.named_parameters())]
    for name, got, want in zip(names, grads, loop_grads):
        assert torch.isfinite(want).all(), name
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}")


def test_a_normalising_cell_has_finite_gradients_past_each_sequences_end():
    """DeltaNet normalises its keys: computed from PackedSequence's zero padding they would be NaN,
    and so would every gradient (0 * NaN). The layer repeats each sequence's last step instead."""
    layer, width = _layer("deltanet", bidirectional=False)
    x = torch.randn(len(LENGTHS), STEPS, width, dtype=torch.float64, requires_grad=True)
    for parallel in (False, True):
        layer.parallel_scan = parallel
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=True,
                                                         enforce_sorted=False)
        output, final = layer(packed)
        grads = torch.autograd.grad(output.data.sum() + final.sum(), [x, *layer.parameters()])
        assert all(torch.isfinite(g).all() for g in grads), parallel


@pytest.mark.parametrize(("spec", "batch", "steps", "scans"), [
    ("mingru", 2, 15, False), ("mingru", 2, 16, True),          # from 16 steps
    ("mingru", 256, 16, True), ("mingru", 257, 16, False),      # while batch * units (8) <= 2048
    ("mamba_ssm", 64, 16, True), ("mamba_ssm", 65, 16, False),  # Mamba's state: units (8) * d_state (4) entries
    ("mlstm", 1000, 16, True), ("deltanet", 1000, 16, True),    # chunkwise, scalar decay or delta rule: any batch
    ("gla", 128, 16, True), ("gla", 129, 16, False)])            # a decay per feature: 2 heads x 2 x 4 entries
def test_auto_follows_the_measured_crossover(spec, batch, steps, scans):
    layer, width = _layer(spec, bidirectional=False)
    assert layer._scans(layer.cells[0], torch.empty(batch, steps, width)) == scans


def test_parallel_scan_takes_true_false_or_auto():
    with pytest.raises(ValueError, match="parallel_scan"):
        eqcell.load_layer("mingru", target="torch")(4, 4, parallel_scan="yes")


def test_the_parallel_path_traces_without_graph_breaks():
    from torch import _dynamo
    layer, width = _layer("mlstm", parallel_scan=True)
    explanation = _dynamo.explain(layer)(torch.randn(2, 20, width, dtype=torch.float64))
    assert explanation.graph_break_count == 0, explanation.break_reasons
