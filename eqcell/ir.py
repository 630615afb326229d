"""The CellIR: plain frozen data that the templates read, and nothing else.

`analyze` decides every name, order, shape and slice; `render` only prints it. Names that end up
in code (locals, attributes, arguments, classes) are final Python identifiers, chosen by
`eqcell.analysis.naming`; names in comments and in `symbol_weights` are the spec's."""
from __future__ import annotations

from typing import NamedTuple


import sympy

from .errors import Span


class Dim(NamedTuple):
    """A size as a sum of `coef * size_name` terms: ((2, "units"),) is 2 * units; name "" is a constant."""

    terms: tuple[tuple[int, str], ...]

    def text(self) -> str:
        return self.code({})

    def code(self, scope: dict[str, str]) -> str:
        if not self.terms:
            return "0"
        parts = []
        for coef, name in self.terms:
            name = " * ".join(scope.get(part, part) for part in name.split("*"))
            parts.append(str(coef) if not name else name if coef == 1 else f"{coef} * {name}")
        return " + ".join(parts)

    def plus(self, other: "Dim") -> "Dim":
        counts: dict[str, int] = {}
        for coef, name in self.terms + other.terms:
            counts[name] = counts.get(name, 0) + coef
        return Dim(tuple((c, n) for n, c in counts.items() if c))

    @classmethod
    def of(cls, size: str) -> "Dim":
        """One size as a Dim: "units" -> units, "1" (a scalar) -> the constant 1."""
        return cls(((int(size), ""),)) if size.isdigit() else cls(((1, size),))

    def size(self, sizes: dict[str, int]) -> int:
        """The number of features, given a number for each size name."""
        return sum(coef * _product(sizes, name) for coef, name in self.terms)


def _product(sizes: dict[str, int], name: str) -> int:
    """A size name's number: `units`, a product `h*units/h*key_units/h`, one head's `units/h`."""
    out = 1
    for part in name.split("*") if name else ():
        base, _, per_head = part.partition("/")
        value = sizes[base] if not base.isdigit() else int(base)
        out *= value // sizes[per_head] if per_head else value
    return out


class State(NamedTuple):
    name: str          # "c", as the spec writes it
    local: str         # "c", the local holding c_t in the generated step
    prev: str          # "c_tm1", the local holding c_{t-1}
    size: str          # "units" or a named size; a matrix state flattened: "units*key_units"
    initial: str       # "zeros", "ones", "learned" or a number as text
    matrix: tuple[str, str] | None = None   # a matrix state's (rows, columns) inside the step
    shape: tuple[str, ...] | None = None    # its shape inside the step (batch excluded) when not as passed:
                                            # ("h", "units/h") per head, (rows, columns) for a matrix


class Param(NamedTuple):
    """One parameter as the paper writes it, and where it lives in the Keras weights."""

    name: str                    # "W_f", as the spec writes it
    role: str                    # "matrix", "bias", "vector", "gain"
    shape: tuple[str, ...]       # paper orientation: ("units", "input_dim")
    weight: str                  # the attribute of the Keras weight holding it: "kernel"
    row: int | None              # row of a stacked bias, else None
    start: Dim                   # column slice [start, stop) in the weight's last axis
    stop: Dim
    initializer: str | None      # set in the spec, else None (the weight's default)
    view: tuple[Dim, ...] | None = None   # with heads: the weight reshaped so that [..., start:stop] is the parameter
    axes: tuple[int, ...] | None = None   # with heads: that slice transposed to the paper's (heads, rows, columns)
    row_vector: bool = False     # the paper writes x_t W (`vectors: row`): W is (in, out), as Keras stores it


class InitSlice(NamedTuple):
    """A column range of a weight initialized on its own (a spec override, e.g. b_f: ones)."""

    start: Dim
    stop: Dim
    initializer: str | None      # None: the weight's own initializer argument


class Weight(NamedTuple):
    """A Keras weight made in `build`: fused matrices, a bias, or a lone vector."""

    name: str                    # "kernel": its attribute, and its name in Keras
    arg: str                     # "kernel": the prefix of its constructor arguments (kernel_initializer)
    kind: str                    # "kernel", "bias", "vector", "initial_state"
    shape: tuple[Dim, ...]
    members: tuple[str, ...]     # parameters inside, in column order (initial_state: the state)
    operand: str                 # what it multiplies, for docs: "x_t", "h_{t-1}"
    default_initializer: str
    slices: tuple[InitSlice, ...]  # empty: one initializer for the whole weight
    optional: bool               # dropped when use_bias=False
    rows: int                    # stacked bias rows (0: not stacked)
    view: tuple[Dim, ...] | None = None   # with heads: its head-major view (columns per head last)


class Operand(NamedTuple):
    expr: sympy.Expr             # the operand expression (a symbol, or e.g. r*h_tm1)
    weight: str                  # "kernel"
    dropout: str                 # "input", "recurrent" or ""
    hoistable: bool              # depends on the input only: computed for all steps at once
    bias: str | None             # the bias weight added to this product, or None
    bias_row: int | None         # its row in a stacked bias (GRU's (2, 3 * units)), else None
    whole_input: bool = False    # x_t or x_{t-1}: with heads, every head's matrix reads all of it


class Product(NamedTuple):
    """Fused products computed together, then split: z = x @ kernel + h @ recurrent_kernel + bias."""

    target: str                  # "z"
    operands: tuple[Operand, ...]
    slots: tuple[str, ...]       # names of the split parts: ("z_f", "z_c")
    widths: tuple[Dim, ...]
    hoistable: bool              # depends on the input only
    partial: str | None          # name of the input-only part (x @ kernel + bias) when only part is


class Statement(NamedTuple):
    target: str                  # "c": the local it binds
    variable: str                # "c": the spec's variable
    expr: sympy.Expr             # with fused slices as symbols: f*c_tm1 + (1 - f)*tanh(z_c)
    equation: str                # the equation in canonical plain syntax, for the comment
    hoistable: bool
    span: Span
    size: str                    # "units" or a named size


class ActivationArg(NamedTuple):
    arg: str                     # "recurrent_activation": constructor argument and attribute
    function: str                # "sigmoid": every sigmoid(...) calls self.recurrent_activation
    default: str                 # "hard_sigmoid"


class LinearState(NamedTuple):
    """A vector state whose coefficients are known for every step before it: s_t = a_t * s_{t-1} + b_t
    (`max_plus`: s_t = max(s_{t-1} + a_t, b_t), xLSTM's stabiliser). Every step's value at once, by a scan."""

    state: State
    decay: sympy.Expr            # a_t
    drive: sympy.Expr            # b_t
    max_plus: bool = False
    shifted: bool = False        # later steps read s_{t-1}: the sequence shifted by one step is kept too


class Readout(NamedTuple):
    """A product of a matrix state with a value known for every step: S_t q_t ("columns") or q_t^T S_t ("rows")."""

    local: str                   # the local holding it for every step
    query: sympy.Expr            # q_t
    contracts: str               # "columns" (S q) or "rows" (q^T S)


class ChunkedState(NamedTuple):
    """A matrix state S_t = exp(l_t) * S_{t-1} + u_t w_t^T, l_t one number, one per row or one per column,
    or a delta rule (`strength`), read only through `readouts`: evaluated chunk by chunk (masked
    products inside a chunk, one state per chunk boundary), never one matrix per step."""

    state: State
    log_decay: sympy.Expr        # l_t
    decay_axis: str              # "scalar", "rows" or "columns"
    rows: sympy.Expr             # u_t
    columns: sympy.Expr          # w_t
    readouts: tuple[Readout, ...]
    strength: sympy.Expr | None = None   # b_t of a delta rule: S_t = exp(l_t) S_{t-1} (I - b_t w_t w_t^T) + u_t w_t^T
    left: bool = False           # the delta rule multiplies from the left: (I - b_t u_t u_t^T) S_{t-1} + u_t w_t^T


class Constant(NamedTuple):
    """A fixed number the equations name (`constants:`): a constructor argument, never a weight."""

    name: str                    # "beta", as the spec writes it
    arg: str                     # "beta": the constructor argument and attribute
    default: float | int


class RecurrentDropout(NamedTuple):
    """Recurrent dropout masks the output state's t-1 value where the step multiplies it."""

    prev: str                    # "h_tm1"
    masked: str                  # "h_tm1_dp": what the recurrent products read


class CellIR(NamedTuple):
    name: str                              # the cell class
    layer: str                             # the full-sequence layer class
    description: str
    digest: str
    input: str                             # the spec's input name ("x")
    input_local: str                       # the cell's argument holding it ("inputs")
    output: str                            # the spec's output variable
    output_size: str
    states: tuple[State, ...]
    params: tuple[Param, ...]
    weights: tuple[Weight, ...]
    steps: tuple[Product | Statement, ...]
    activations: tuple[ActivationArg, ...]
    sizes: tuple[str, ...]                 # named sizes: constructor arguments and attributes
    equations: tuple[str, ...]             # canonical plain text, in the order written
    parsed: tuple[tuple[str, sympy.Expr], ...]  # (variable, right side) as parsed, in the order written
    uses_layer_norm: bool
    square_input: bool                     # input_dim must equal units (a highway term)
    scan: tuple[LinearState | ChunkedState | Statement | Product, ...] | None   # the parallel path, in order
    scan_reason: str                       # why the cell gets (or does not get) the parallel path
    projected: tuple[str, ...]             # input-only values the recurrent step reads, in order
    has_bias: bool                         # a `use_bias` argument applies
    recurrent_dropout: RecurrentDropout | None
    constants: tuple[Constant, ...] = ()
    heads: str | None = None                # the constructor argument holding the number of heads
    heads_default: int = 1
    value_shapes: tuple[tuple[str, str], ...] = ()   # (variable, its shape in words), for `eqcell show`
    row_vectors: bool = False               # `vectors: row`: the equations' vectors are rows
    chunk_size: int = 0                     # the chunkwise form's default chunk (0: no matrix state chunked)
