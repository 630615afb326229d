"""The torch target's context: render's shared Context of the IR renamed as PyTorch names its
parameters (eqcell.analysis.torch_names), and what only an nn.Module needs: its parameters in
PyTorch's orientation, `reset_parameters`' torch.nn.init calls, the symbol layout.

A Keras kernel is (in, out) and multiplied `x @ kernel`; a PyTorch weight is (out, in) and
multiplied `F.linear(x, weight)`, so a parameter `W` of the paper (rows out, columns in) is rows
[start, stop) of its fused weight, untransposed."""
from __future__ import annotations

from typing import NamedTuple

from .analysis.torch_names import for_torch
from .ir import CellIR, ChunkedState, Dim, LinearState, Weight
from .render import RNN_UNIFORM, Context, _initializer_names, build_context, size_scope
from .targets import TORCH

# Keras initializer names (the spec's `initializers:`) -> torch.nn.init, same distribution where
# PyTorch has it (Keras's *_normal initializers are truncated at two standard deviations)
INITIALIZERS = {
    "zeros": "nn.init.zeros_({})",
    "ones": "nn.init.ones_({})",
    "glorot_uniform": "nn.init.xavier_uniform_({})",
    "glorot_normal": "_truncated_normal_({}, scale=1.0, mode='fan_avg')",
    "he_uniform": 'nn.init.kaiming_uniform_({}, nonlinearity="relu")',
    "he_normal": "_truncated_normal_({}, scale=2.0, mode='fan_in')",
    "lecun_uniform": 'nn.init.kaiming_uniform_({}, nonlinearity="linear")',
    "lecun_normal": "_truncated_normal_({}, scale=1.0, mode='fan_in')",
    "variance_scaling": "_truncated_normal_({}, scale=1.0, mode='fan_in')",
    "orthogonal": "nn.init.orthogonal_({})",
    "identity": "nn.init.eye_({})",
    "random_normal": "nn.init.normal_({}, std=0.05)",
    "random_uniform": "nn.init.uniform_({}, -0.05, 0.05)",
    "truncated_normal": "nn.init.trunc_normal_({}, std=0.05, a=-0.1, b=0.1)",
    # eqcell's own: PyTorch's recurrent layers' default (nn.LSTM.reset_parameters)
    RNN_UNIFORM: "nn.init.uniform_({0}, -1 / math.sqrt(self.hidden_size), 1 / math.sqrt(self.hidden_size))",
}
TRUNCATED = frozenset({"glorot_normal", "he_normal", "lecun_normal", "variance_scaling"})


class TorchParameter(NamedTuple):
    name: str                     # "weight_ih"
    shape: str                    # "(4 * hidden_size, input_size)"
    optional: bool                # None when bias=False
    init: tuple[str, ...]         # its lines of reset_parameters
    doc: str                      # "W_i | W_f | W_c | W_o, stacked by rows"


class TorchContext(NamedTuple):
    parameters: tuple[TorchParameter, ...]
    symbol_layout: tuple[str, ...]
    uses_truncated_normal: bool
    uses_math: bool               # reset_parameters or the parallel path calls `math`
    states: tuple[str, ...]       # the spec's state names, in the state tuple's order
    state_sizes: tuple[str, ...]  # each as code in the layer, read from its first cell (which has the heads)
    output_size: str              # in the layer
    cell_arguments: tuple[str, ...]   # the cell's constructor arguments the layer passes on
    reference: str                # a parameter always present: its dtype and device are the cell's
    input_sized: tuple[str, ...]  # states as wide as the input (x_{t-1}): every layer's input must match
    uses_numpy: bool              # a function of constants only is computed by numpy (`np.sqrt(self.d)`)
    always_scans: bool            # "auto" takes the parallel path at any batch (a chunkwise scalar decay or delta rule)
    scan_width: str               # otherwise: the widest scanned state's entries per example, as code in the layer


def torch_context(ir: CellIR) -> tuple[Context, TorchContext]:
    renamed = for_torch(ir)
    context = build_context(renamed, TORCH)
    scope = {**size_scope(renamed, "self", TORCH.units), "input_dim": "self.input_size"}
    parameters = tuple(_parameter(w, scope) for w in renamed.weights)
    layer_scope = {**size_scope(renamed, "self", TORCH.units), "input_dim": "self.input_size"}
    return context, TorchContext(
        parameters=parameters,
        symbol_layout=_head_layout(renamed, scope) if renamed.heads else _symbol_layout(renamed, scope),
        uses_truncated_normal=any(_initializer_names(w) & TRUNCATED for w in renamed.weights),
        uses_math=bool(context.scan_lines) or any(_initializer_names(w) & (TRUNCATED | {RNN_UNIFORM})
                                                  for w in renamed.weights),
        states=tuple(s.name for s in renamed.states),
        state_sizes=tuple(Dim.of(s.size).code(_cell_scope(renamed)) for s in renamed.states),
        output_size=layer_scope[renamed.output_size] if renamed.output_size in layer_scope else renamed.output_size,
        cell_arguments=((renamed.heads,) if renamed.heads else ()) + tuple(a.arg for a in renamed.activations)
        + tuple(k.arg for k in renamed.constants),
        reference=next(p.name for p in parameters if not p.optional),
        input_sized=tuple(s.name for s in renamed.states if s.size == "input_dim"),
        uses_numpy=any("np." in line for line in context.project_lines + context.step_lines),
        always_scans=any(isinstance(i, ChunkedState) and (i.decay_axis == "scalar" or i.strength is not None)
                         for i in renamed.scan or ()),
        scan_width=_scan_width(renamed),
    )


def _cell_scope(ir: CellIR) -> dict[str, str]:
    """Each size as code in the layer, read from a cell (`cell.hidden_size`; the heads are the cell's)."""
    return {**size_scope(ir, "cell", TORCH.units), "input_dim": "cell.input_size"}


def _scan_width(ir: CellIR) -> str:
    """The entries per example of the widest state the parallel path scans (Mamba's h: units * d_state)."""
    widths = sorted({Dim.of(i.state.size).code(_cell_scope(ir)) for i in ir.scan or ()
                     if isinstance(i, (LinearState, ChunkedState))})
    return widths[0] if len(widths) == 1 else f"max({', '.join(widths)})" if widths else ""


def _oriented(w: Weight, dims: list[str]) -> list[str]:
    """A Keras weight's dimensions in PyTorch's order: a kernel (in, out) is (out, in); a
    block-diagonal one, (heads, in, out), is (heads, out, in)."""
    if w.kind != "kernel":
        return dims
    return dims[:-2] + dims[-2:][::-1]


def _parameter(w: Weight, scope) -> TorchParameter:
    dims = _oriented(w, [d.code(scope) for d in w.shape])
    shape = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
    target = f"self.{w.name}"
    # the range of a slice's columns (Keras's last axis): rows of a kernel, per head for a block-diagonal one
    where = {"kernel": "[{}]" if len(w.shape) == 2 else "[:, {}]"}.get(w.kind, "[..., {}]")
    init = []
    if not w.slices:
        if w.kind == "kernel" and len(w.shape) == 3:  # each head's block a matrix of its own
            init.append(f"for block in {target}:")
            init.append("    " + _init_call(w.default_initializer, "block"))
        else:
            init.append(_init_call(w.default_initializer, target))
    for s in w.slices:
        part = target + where.format(f"{s.start.code(scope)}:{s.stop.code(scope)}")
        init.append(_init_call(s.initializer or w.default_initializer, part))
    named = {"units": "hidden_size", "input_dim": "input_size"}
    doc_dims = _oriented(w, [d.code(named) for d in w.shape])
    doc = (f"({', '.join(doc_dims)}{',' if len(doc_dims) == 1 else ''}) = " + " | ".join(w.members)
           + (", stacked by rows" if w.kind == "kernel" and len(w.members) > 1 else ""))
    return TorchParameter(w.name, shape, w.optional, tuple(init), doc)


def _init_call(name: str, target: str) -> str:
    if name not in INITIALIZERS:
        raise ValueError(f"no torch.nn.init equivalent for the initializer {name!r}")
    return INITIALIZERS[name].format(target)


def _head_layout(ir: CellIR, scope) -> tuple[str, ...]:
    """With heads: name: (parameter, is a kernel, first column, end column, view, axes) of the keras
    target's layout, read on the parameter seen in Keras's orientation (a kernel transposed)."""
    kernels = {w.name for w in ir.weights if w.kind == "kernel"}
    lines = []
    for p in ir.params:
        view = "None" if p.view is None else "(" + ", ".join(d.code(scope) for d in p.view) + ")"
        lines.append(f'"{p.name}": ("{p.weight}", {p.weight in kernels}, {p.start.code(scope)}, '
                     f'{p.stop.code(scope)}, {view}, {p.axes}),')
    return tuple(lines)


def _symbol_layout(ir: CellIR, scope) -> tuple[str, ...]:
    """name: (parameter, first index, end index, axis, transposed): a paper's matrix W (out, in) is
    rows (axis 0) of PyTorch's (out, in) weight as it is (a row-vector paper's `x_t W`, transposed);
    anything else (a bias, Mamba's A) is a range of its last axis, as in the keras target."""
    kernels = {w.name for w in ir.weights if w.kind == "kernel"}
    lines = []
    for p in ir.params:
        transposed = p.role == "matrix" and p.row_vector
        axis = 0 if p.weight in kernels else -1
        lines.append(f'"{p.name}": ("{p.weight}", {p.start.code(scope)}, {p.stop.code(scope)}, {axis}, {transposed}),')
    return tuple(lines)
