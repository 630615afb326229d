"""`eqcell verify`: does a cell compute its spec's equations?

An independent float64 numpy interpreter of the parsed equations (a walk over the sympy trees
in `CellIR.parsed`; it shares no code with the printers, the templates or the generated module)
is the reference. Against it, on the current Keras backend (or tf_keras):

- the cell's one step, teacher-forced (each step starts from the equations' states, so an
  error is found at the step where it happens, not where it has grown);
- `RNN(cell)` and the generated full-sequence layer on every path the layer can take (input
  projection per step or hoisted before the loop, the step loop or the parallel scan, the
  rematerialized JAX step from 16 units on), with masks with gaps, go_backwards, non-zero and
  default initial states, return_sequences or the last output only;
- gradients: the layer's against `RNN(cell)`'s, element by element, and each one's against
  central finite differences of the equations along random directions (weights, inputs and
  initial states together).

Random weights differ per parameter (a swapped gate or state cannot hide), each case has its
own seed. A generated module gets its weights through its own `set_symbol_weights` (checked
against the IR's fused layout first); a module given with `--module` gets them by the names
and shapes of the generated cell's fused weights (`fused_weights`, the one adapter from the
paper's parameters to Keras weights). Importing this module imports numpy only."""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import sympy

from . import nodes
from .ir import CellIR

__all__ = ["Interpreter", "VerifyError", "fused_weights", "random_params", "verify", "verify_backends",
           "activation_function", "spec_function"]

# forward: max |got - want| / max(1, max |want|). Not 1e-12 in float64: TensorFlow's float64 erfc
# (its exact gelu) is accurate to about 5e-9; a wrong weight, sign or slice errs by 1e-2 and more.
TOL = {"float64": 1e-7, "float32": 1e-4}
GRAD_TOL = {"float64": 1e-7, "float32": 1e-3}     # layer vs RNN(cell), element by element, same scale
FD_TOL = {"float64": 1e-6, "float32": 2e-3}       # directional derivative vs finite differences
FD_EPS = 1e-6
LN_EPSILON = 1e-3                                  # as keras.layers.LayerNormalization (spec-format.md)


class VerifyError(Exception):
    """The module or class to verify cannot be used (not importable, no such class): exit 2."""


# --------------------------------------------------------------------------------------------
# numpy definitions of every function a cell can call, per target


def _sigmoid(v):
    """Overflow-free and accurate relative to the result (0.5 * (1 + tanh(v / 2)) is exactly 0 from
    v = -40, where sigmoid(v)^(1/16), GLA's decay, is 0.08)."""
    v = np.asarray(v, dtype=np.float64)
    small = np.exp(-np.abs(v))  # <= 1
    return np.where(v >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


def _softplus(v):
    return np.logaddexp(0.0, v)


_erf = np.vectorize(math.erf, otypes=[float])
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _elu(v, alpha=1.0):
    return np.where(v > 0, v, alpha * np.expm1(np.minimum(v, 0.0)))


def _hard_sigmoid_keras3(v):
    return np.clip(v + 3.0, 0.0, 6.0) / 6.0        # keras 3: relu6(x + 3) / 6


def _hard_sigmoid_keras2(v):
    return np.clip(0.2 * v + 0.5, 0.0, 1.0)        # tf_keras (Keras 2): clip(0.2 x + 0.5, 0, 1)


_COMMON_ACTIVATIONS: dict[str, Callable] = {
    "linear": lambda v: v, "sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0),
    "relu6": lambda v: np.clip(v, 0.0, 6.0), "elu": _elu,
    "selu": lambda v: _SELU_SCALE * _elu(v, _SELU_ALPHA), "softplus": _softplus,
    "softsign": lambda v: v / (1.0 + np.abs(v)), "silu": lambda v: v * _sigmoid(v),
    "swish": lambda v: v * _sigmoid(v), "gelu": lambda v: 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0))),
    "exponential": np.exp, "mish": lambda v: v * np.tanh(_softplus(v)),
}
# Keras activations by name, as `keras.activations.get(name)` computes them with their defaults
ACTIVATIONS: dict[str, dict[str, Callable]] = {
    "keras": {**_COMMON_ACTIVATIONS,
              "hard_sigmoid": _hard_sigmoid_keras3,
              "hard_silu": lambda v: v * _hard_sigmoid_keras3(v),
              "hard_swish": lambda v: v * _hard_sigmoid_keras3(v),
              "leaky_relu": lambda v: np.where(v >= 0, v, 0.2 * v),
              "celu": lambda v: np.maximum(v, 0.0) + np.minimum(0.0, np.expm1(v)),
              "log_sigmoid": lambda v: -_softplus(-v),
              "hard_tanh": lambda v: np.clip(v, -1.0, 1.0),
              "tanh_shrink": lambda v: v - np.tanh(v),
              "squareplus": lambda v: (v + np.sqrt(v * v + 4.0)) / 2.0,
              "sparse_plus": lambda v: np.where(v <= -1, 0.0, np.where(v >= 1, v, (v + 1) ** 2 / 4)),
              "sparse_sigmoid": lambda v: np.clip((v + 1.0) / 2.0, 0.0, 1.0),
              "soft_shrink": lambda v: np.where(v > 0.5, v - 0.5, np.where(v < -0.5, v + 0.5, 0.0)),
              "hard_shrink": lambda v: np.where(np.abs(v) > 0.5, v, 0.0)},
    "tf-keras": {**_COMMON_ACTIVATIONS,
                 "hard_sigmoid": _hard_sigmoid_keras2,
                 "leaky_relu": lambda v: np.where(v >= 0, v, 0.2 * v)},
    # the torch target's `_ACTIVATIONS` (templates/torch.py.j2): Keras's names, torch's functions
    "torch": {**_COMMON_ACTIVATIONS,
              "hard_sigmoid": _hard_sigmoid_keras3,
              "hard_silu": lambda v: v * _hard_sigmoid_keras3(v),
              "hard_swish": lambda v: v * _hard_sigmoid_keras3(v),
              "log_sigmoid": lambda v: -_softplus(-v),
              "hard_tanh": lambda v: np.clip(v, -1.0, 1.0)},
}

# the spec language's element-wise functions, as each target's generated code calls them
_SPEC_FUNCTIONS = {
    "sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "softplus": _softplus,
    "softsign": lambda v: v / (1.0 + np.abs(v)), "exp": np.exp, "log": np.log, "abs": np.abs,
    "sqrt": np.sqrt, "silu": lambda v: v * _sigmoid(v), "gelu": _COMMON_ACTIVATIONS["gelu"],
    "elu": _elu, "identity": lambda v: v, "logsigmoid": lambda v: -_softplus(-v),
    "max": np.maximum, "min": np.minimum,
}
SPEC_FUNCTIONS: dict[str, dict[str, Callable]] = {
    "keras": {**_SPEC_FUNCTIONS, "hard_sigmoid": _hard_sigmoid_keras3},
    "tf-keras": {**_SPEC_FUNCTIONS, "hard_sigmoid": _hard_sigmoid_keras2},
    "torch": {**_SPEC_FUNCTIONS, "hard_sigmoid": _hard_sigmoid_keras3},   # F.hardsigmoid
}


def activation_function(name: str, target: str) -> Callable:
    """The numpy function of the Keras activation `name` (its defaults), for `target`."""
    try:
        return ACTIVATIONS[target][name]
    except KeyError:
        raise VerifyError(f"verify has no numpy definition of the activation {name!r} for the {target} "
                          f"target; it knows {', '.join(sorted(ACTIVATIONS[target]))}") from None


def spec_function(name: str, target: str) -> Callable:
    """The numpy function of the spec language's element-wise function `name`, for `target`."""
    return SPEC_FUNCTIONS[target][name]


def _layer_norm(v, gain, bias):
    mean = v.mean(axis=-1, keepdims=True)
    variance = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    return (v - mean) / np.sqrt(variance + LN_EPSILON) * gain + bias


# --------------------------------------------------------------------------------------------
# the interpreter


@dataclass
class Trace:
    outputs: np.ndarray                 # (batch, T, output size), in the order the steps ran
    states: dict[str, np.ndarray]       # final state values, by variable
    steps: list[dict[str, np.ndarray]]  # the state values after each step ran, by variable
    finite: bool                        # no NaN or inf anywhere, masked steps included


def _dependency_order(parsed) -> list[tuple[str, sympy.Expr]]:
    """The equations in an order where each reads only values already computed at step t."""
    defined = {name for name, _ in parsed}
    deps = {name: {s.name for s in expr.free_symbols if s.name in defined and s.name != name}
            for name, expr in parsed}
    order, done = [], set()
    while len(order) < len(parsed):
        ready = [(n, e) for n, e in parsed if n not in done and deps[n] <= done]
        if not ready:
            raise VerifyError("the equations form a cycle at step t (the analysis should have refused it)")
        name, expr = ready[0]
        order.append((name, expr))
        done.add(name)
    return order


class Interpreter:
    """The equations of a CellIR evaluated in float64 numpy, straight from the sympy trees.

    `activations` maps each exposed activation argument (`recurrent_activation`) to the Keras
    activation name it holds (default: the spec's default); the functions it replaces call it."""

    def __init__(self, ir: CellIR, target: str = "keras", activations: dict[str, str] | None = None):
        self.ir = ir
        self.target = target
        self.order = _dependency_order(ir.parsed)
        self.variables = {name for name, _ in ir.parsed}
        chosen = {a.arg: a.default for a in ir.activations}
        chosen.update(activations or {})
        self.functions = dict(SPEC_FUNCTIONS[target])
        self.constants = {k.name: k.default for k in ir.constants}  # the generated cell's defaults
        for a in ir.activations:
            self.functions[a.function] = activation_function(chosen[a.arg], target)
        self.sizes: dict[str, int] | None = None  # the named sizes of the run (matrix states' shapes)

    # one step ----------------------------------------------------------------------------
    def step(self, params: dict[str, np.ndarray], x_t: np.ndarray,
             prev: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every variable's value at step t, from the input x_t and the states' values at t-1
        (matrix states flattened, as the cell passes them). With heads, each head is evaluated on
        its own, from its own parameters (their leading axis) and its share of the states, and the
        heads' values are laid side by side: what the spec format says heads are."""
        if not self.ir.heads:
            return self._one_head(params, x_t, prev)
        heads = self.sizes["h"]
        per_head = []
        for h in range(heads):
            params_h = {name: value[h] for name, value in params.items()}
            prev_h = {name: value if name == self.ir.input else value.reshape(value.shape[0], heads, -1)[:, h]
                      for name, value in prev.items()}  # x_{t-1} is the whole previous input for every head
            per_head.append(self._one_head(params_h, x_t, prev_h))
        return {name: np.stack([values[name] for values in per_head], axis=1).reshape(x_t.shape[0], -1)
                for name in per_head[0]}

    def _one_head(self, params: dict[str, np.ndarray], x_t: np.ndarray,
                  prev: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values: dict[str, _Value] = {}
        matrices = {s.name: s for s in self.ir.states if s.matrix}
        vector = "r" if self.ir.row_vectors else "v"  # how the equations read a vector (`vectors: row`)
        lead = 1 if self.ir.heads else 0  # a parameter's shape names its head axis first
        param_kinds = {p.name: ("pm" if len(p.shape) - lead == 2 and p.role != "matrix" else "p") for p in self.ir.params}

        def read(name: str) -> "_Value":
            was = nodes.prev_of(name)
            if was is not None:
                value = prev[was]
                if was in matrices:
                    rows, cols = (_size(d, self.sizes_of(value, matrices[was])) for d in matrices[was].matrix)
                    return _Value(value.reshape(value.shape[0], rows, cols), "m")
                return _Value(value, vector)
            if name == self.ir.input:
                return _Value(x_t, vector)
            if name in values:  # a variable is read as the spec's vectors are, whatever made it
                value = values[name]
                return _Value(value.a, vector) if value.kind in ("v", "r") else value
            if name in params:
                return _Value(params[name], param_kinds.get(name, "p"))
            if name in self.constants:
                return _Value(float(self.constants[name]), "n")
            raise VerifyError(f"the equations read {name!r}, which is neither a variable, the input "
                              f"nor a parameter of the IR")

        def ev(e) -> _Value:
            if e.is_Number:
                return _Value(float(e), "n")
            if isinstance(e, sympy.Symbol):
                return read(e.name)
            if isinstance(e, nodes.RowMatVec):  # x_t W, W (in, out) as the paper writes it
                matrix, vector = e.args
                return _Value(ev(vector).a @ ev(matrix).a, "r")
            if isinstance(e, nodes.MatVec):
                matrix, vector = e.args
                return _Value(ev(vector).a @ ev(matrix).a.T, "v")     # paper orientation: (out, in) @ (in,)
            if isinstance(e, nodes.Times):
                return _times(ev(e.args[0]), ev(e.args[1]), isinstance(e, nodes.BracketTimes))
            if isinstance(e, nodes.Transposed):
                return ev(e.args[0]).transposed()
            if isinstance(e, nodes.Eye):
                return _Value(None, "I")
            if isinstance(e, nodes.Diag):
                return _Value(ev(e.args[0]).a, "D")
            if isinstance(e, nodes.Norm):
                v = ev(e.args[0])
                return _Value(np.sqrt(np.sum(np.square(v.a), axis=-1, keepdims=True)), "v")
            args = [ev(a) for a in e.args]
            if e.is_Add:
                return _elementwise(lambda *a: sum(a[1:], a[0]), args)
            if e.is_Mul:
                def product(*a):
                    out = a[0]
                    for b in a[1:]:
                        out = out * b
                    return out
                return _elementwise(product, args)
            if e.is_Pow:
                def power(base, exponent):
                    if isinstance(exponent, float) and exponent == -1.0:
                        return 1.0 / base
                    return np.power(base, exponent)
                return _elementwise(power, args)
            name = nodes.function_name(e)
            if name == "layer_norm":
                return _Value(_layer_norm(*(a.a for a in args)), args[0].kind)
            if name is not None:
                return _elementwise(self.functions[name], args)
            raise VerifyError(f"verify cannot interpret the node {type(e).__name__}: {e}")

        for name, expr in self.order:
            value = ev(expr)
            if value.kind in ("I", "D"):
                raise VerifyError(f"{name} is `I` or diag(...) alone")
            values[name] = value
        batch = x_t.shape[0]
        out = {}
        for name, v in values.items():
            a = np.asarray(v.a, dtype=np.float64)
            if v.kind in ("n", "p", "pm"):  # a number or parameters only: the same for every example
                a = np.broadcast_to(a.reshape((1,) if a.ndim == 0 else a.shape), (batch,) + ((1,) if a.ndim == 0 else a.shape))
            out[name] = a
        return out

    def sizes_of(self, value, state) -> dict[str, int]:
        """The sizes a flattened matrix state's (rows, columns) are named by, from the sizes of
        this run (set by `_Run`), else inferred when rows and columns are the same size."""
        if self.sizes is not None:
            return self.sizes
        side = int(round(math.sqrt(value.shape[-1])))
        return {name: side for name in state.matrix}

    def next_states(self, values: dict[str, np.ndarray], x_t: np.ndarray) -> dict[str, np.ndarray]:
        out = {}
        for s in self.ir.states:
            value = values[s.name] if s.name in values else x_t
            out[s.name] = value.reshape(value.shape[0], -1) if s.matrix else value
        return out

    # a sequence ------------------------------------------------------------------------------
    def run(self, params, x, initial: dict[str, np.ndarray], mask=None, go_backwards=False,
            masked_output: str = "previous", zero_output_for_mask: bool = False) -> Trace:
        """Keras's RNN semantics: at a masked step the states carry over and the output repeats
        the previous step's output (zeros before the first), or is zeros with
        `zero_output_for_mask`; `masked_output="first_state"` repeats the first state instead,
        as Keras's JAX loop does (keras/src/backend/jax/rnn.py). With go_backwards the steps run
        from the last to the first, and the outputs are in the order the steps ran."""
        batch, steps, _ = x.shape
        order = range(steps - 1, -1, -1) if go_backwards else range(steps)
        states = {k: np.asarray(v, dtype=np.float64) for k, v in initial.items()}
        first = self.ir.states[0].name
        previous_output = None
        outputs, trace = [], []
        finite = True
        for t in order:
            x_t = x[:, t]
            with np.errstate(all="ignore"):  # log or sqrt of a negative: NaN, as the frameworks give
                values = self.step(params, x_t, states)
            finite = finite and all(np.isfinite(v).all() for v in values.values())
            new = self.next_states(values, x_t)
            output = np.broadcast_to(values[self.ir.output], (batch, values[self.ir.output].shape[-1]))
            if previous_output is None:
                previous_output = np.zeros_like(output)
            if mask is not None:
                keep = mask[:, t][:, None]
                new = {k: np.where(keep, v, states[k]) for k, v in new.items()}
                if zero_output_for_mask:
                    filler = np.zeros_like(output)
                elif masked_output == "first_state":
                    filler = states[first]
                else:
                    filler = previous_output
                output = np.where(keep, output, filler)
            states = new
            previous_output = output
            outputs.append(output)
            trace.append(dict(states))
        return Trace(np.stack(outputs, axis=1), states, trace, finite)


# --------------------------------------------------------------------------------------------
# sizes, weights, data


def _size(name: str, sizes: dict[str, int]) -> int:
    out = 1
    for part in name.split("*"):  # a matrix state, flattened: rows * columns
        base, _, per_head = part.partition("/")  # `units/h`: one head's share
        value = int(base) if base.isdigit() else sizes[base]
        out *= value // sizes[per_head] if per_head else value
    return out


class _Value:
    """A value of the equations with what it is, so that products mean what the paper means:
    "n" a number, "v" a batched vector (a scalar has one feature), "r" a batched row vector,
    "m" a batched matrix (batch, rows, columns), "p" a parameter vector (or scalar), "pm" a
    parameter matrix used element-wise, "I" the identity, "D" diag(vector) (its vector)."""

    __slots__ = ("a", "kind")

    def __init__(self, a, kind: str):
        self.a, self.kind = a, kind

    @property
    def matrix(self) -> bool:
        return self.kind in ("m", "pm")

    @property
    def scalar(self) -> bool:
        return self.kind == "n" or (self.kind in ("v", "r", "p") and np.shape(self.a)[-1:] == (1,))

    def transposed(self) -> "_Value":
        if self.matrix:
            return _Value(np.swapaxes(self.a, -1, -2), self.kind)
        if self.scalar or self.kind in ("I", "D"):
            return self
        return _Value(self.a, "v" if self.kind == "r" else "r")


def _as_matrix_operand(v: _Value):
    """A number or scalar as it broadcasts against a matrix (a trailing axis more)."""
    if v.kind == "n":
        return v.a
    if v.scalar:
        return np.asarray(v.a)[..., None]
    raise VerifyError("a vector combined element-wise with a matrix")


def _elementwise(function, args: list[_Value]) -> _Value:
    if any(a.kind == "D" for a in args):
        raise VerifyError("diag(...) combined element-wise")
    matrices = [a for a in args if a.matrix]
    if not matrices:
        if any(a.kind == "I" for a in args):
            raise VerifyError("I combined with something that is not a matrix")
        if all(a.kind == "n" for a in args):
            return _Value(function(*(a.a for a in args)), "n")
        kinds = [a.kind for a in args if a.kind not in ("n", "p") and not a.scalar]
        kind = kinds[0] if kinds else next((a.kind for a in args if a.kind not in ("n", "p")), "p")
        return _Value(function(*(a.a for a in args)), kind)
    cols = np.shape(matrices[0].a)[-1]
    operands = []
    for a in args:
        if a.matrix:
            operands.append(a.a)
        elif a.kind == "I":
            operands.append(np.eye(cols))
        else:
            operands.append(_as_matrix_operand(a))
    kind = "m" if any(a.kind == "m" for a in args) else "pm"
    return _Value(function(*operands), kind)


def _times(left: _Value, right: _Value, bracket: bool) -> _Value:
    """`a b` by what a and b are: a scaling, a matrix-vector, vector-matrix or matrix-matrix
    product, a dot or an outer product; `I` and diag(a) as the matrices they are."""
    if left.kind == "I":
        return right
    if right.kind == "I":
        return left
    if left.kind == "D":
        if right.matrix:
            return _Value(np.asarray(left.a)[..., :, None] * right.a, right.kind)
        return _Value(left.a * right.a, right.kind)
    if right.kind == "D":
        if left.matrix:
            return _Value(left.a * np.asarray(right.a)[..., None, :], left.kind)
        return _Value(left.a * right.a, left.kind)
    for one, other in ((left, right), (right, left)):
        if one.scalar:
            if other.matrix:
                return _Value(_as_matrix_operand(one) * other.a, other.kind)
            return _Value(one.a * other.a, other.kind if other.kind != "n" else one.kind)
    if left.matrix and right.matrix:
        return _Value(np.matmul(left.a, right.a), "m")
    if left.matrix:
        if right.kind == "r":
            raise VerifyError("a matrix times a row vector")
        return _Value(np.einsum("...ij,...j->...i", left.a, right.a), "v")
    if right.matrix:
        if left.kind != "r":
            raise VerifyError("a column vector times a matrix")
        return _Value(np.einsum("...i,...ij->...j", left.a, right.a), "r")
    if left.kind == "r" and right.kind != "r":
        return _Value(np.sum(left.a * right.a, axis=-1, keepdims=True), "v")
    if left.kind != "r" and right.kind == "r":
        return _Value(np.einsum("...i,...j->...ij", left.a, right.a), "m")
    if bracket and left.kind != "r":
        return _Value(left.a * right.a, "v")
    raise VerifyError("a product of two vectors of one orientation")


def param_shapes(ir: CellIR, sizes: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Each parameter's shape in the paper's orientation (matrices (out, in)), and each learned
    initial state's weight."""
    shapes = {p.name: tuple(_size(s, sizes) for s in p.shape) for p in ir.params}
    for w in ir.weights:
        if w.kind == "initial_state":
            shapes[w.name] = tuple(d.size(sizes) for d in w.shape)
    return shapes


def random_params(ir: CellIR, sizes: dict[str, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Independent random values for every parameter: no two gates alike, none zero."""
    roles = {p.name: p.role for p in ir.params}
    params = {}
    for name, shape in param_shapes(ir, sizes).items():
        if roles.get(name) == "matrix":
            value = rng.standard_normal(shape) * (0.9 / math.sqrt(max(1, shape[-1])))
        elif roles.get(name) == "gain":
            value = 1.0 + 0.3 * rng.standard_normal(shape)
        else:
            value = 0.5 * rng.standard_normal(shape)
        params[name] = value
    return params


def fused_weights(ir: CellIR, params: dict[str, np.ndarray], sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """The Keras weights, by name, holding `params` (paper orientation) where the IR places them:
    a matrix (out, in) goes transposed, as (in, out), into columns [start, stop) of its weight
    (row `row` of a stacked bias). The adapter between the paper's parameters and Keras."""
    fused = {w.name: np.zeros(tuple(d.size(sizes) for d in w.shape)) for w in ir.weights}
    for p in ir.params:
        value = params[p.name].T if p.role == "matrix" and not ir.heads and not p.row_vector else params[p.name]
        place = fused[p.weight] if p.row is None else fused[p.weight][p.row]
        if p.view is not None:  # with heads: the weight head by head (a view: writes go through)
            place = place.reshape(tuple(d.size(sizes) for d in p.view))
        if p.axes is not None:  # (heads, rows, columns) back to the weight's orientation
            value = value.transpose(np.argsort(p.axes))
        place[..., p.start.size(sizes):p.stop.size(sizes)] = value
    for w in ir.weights:
        if w.kind == "initial_state":
            fused[w.name] = np.array(params[w.name], dtype=np.float64)
    return fused


def initial_values(ir: CellIR, params, sizes, batch: int) -> dict[str, np.ndarray]:
    """The states' values before the first step when none are passed (the spec's `initial_state`)."""
    learned = {w.members[0]: w.name for w in ir.weights if w.kind == "initial_state"}
    out = {}
    for s in ir.states:
        shape = (batch, _size(s.size, sizes))
        if s.initial == "zeros":
            out[s.name] = np.zeros(shape)
        elif s.initial == "ones":
            out[s.name] = np.ones(shape)
        elif s.initial == "learned":
            out[s.name] = np.broadcast_to(params[learned[s.name]], shape).copy()
        else:
            out[s.name] = np.full(shape, float(s.initial))
    return out


def gapped_mask(batch: int, steps: int) -> np.ndarray:
    """Trailing padding, leading padding, a hole in the middle, and one row unmasked."""
    mask = np.ones((batch, steps), dtype=bool)
    mask[0, -3:] = False
    mask[1 % batch, :2] = False
    mask[2 % batch, steps // 2] = False
    return mask


def _scaled_error(got, want) -> tuple[float, float]:
    """(max abs error, that error / max(1, max |want|)); NaN where both are NaN counts as equal."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return math.inf, math.inf
    both_nan = np.isnan(got) & np.isnan(want)
    diff = np.where(both_nan, 0.0, np.abs(got - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    err = float(diff.max()) if diff.size else 0.0
    finite = want[np.isfinite(want)]
    scale = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    return err, err / scale


# --------------------------------------------------------------------------------------------
# what is checked


@dataclass
class Case:
    key: str
    label: str
    timesteps: int
    input_dim: int
    units: int
    masked: bool = False
    go_backwards: bool = False
    initial: bool = False             # pass random initial states (else the cell's own)
    return_sequences: bool = True
    zero_output_for_mask: bool = False
    dtype: str = "float64"
    seed: int = 0


@dataclass
class Check:
    name: str
    detail: str
    err: float
    ok: bool
    failure: str = ""                 # which output/state, where, how much


@dataclass
class Report:
    header: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _fmt(err: float) -> str:
    return "0" if err == 0 else "-" if math.isnan(err) else f"{err:.1e}"


class _Framework:
    """The few framework calls verify needs: tensors, a forward pass with gradients."""

    def __init__(self, target: str):
        self.target = target
        if target == "tf-keras":
            import tensorflow as tf
            import tf_keras

            self.lib, self.backend, self.tf = tf_keras, "tensorflow", tf
            self.name = "tf_keras (TensorFlow)"
        else:
            import keras

            self.lib, self.backend = keras, keras.backend.backend()
            self.name = f"keras {keras.__version__}, backend {self.backend}"
        self.float64 = self._float64_works()

    def _float64_works(self) -> bool:
        """Whether this backend computes a float64 matmul and sigmoid in float64. Keras 3 on JAX
        and torch does not: `keras.src.backend.common.dtypes.result_type` maps float64 to
        float32 there (`BIT64_TO_BIT32_DTYPE`), so `ops.matmul` of float64 tensors runs in
        float32; verify then runs every case in float32, with float32 tolerances."""
        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((4, 7)), rng.standard_normal((7, 9))
        want = _sigmoid(a @ b)
        import warnings

        try:
            if self.target == "tf-keras":
                tf = self.tf
                got = tf.sigmoid(tf.matmul(tf.constant(a), tf.constant(b))).numpy()
            else:
                from keras import ops

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # JAX: "float64 ... will be truncated to float32"
                    got = ops.convert_to_numpy(ops.sigmoid(ops.matmul(ops.convert_to_tensor(a, dtype="float64"),
                                                                      ops.convert_to_tensor(b, dtype="float64"))))
        except Exception:
            return False
        return got.dtype == np.float64 and float(np.abs(got - want).max()) < 1e-13

    def tensor(self, value, dtype):
        if self.target == "tf-keras" or self.backend == "tensorflow":
            import tensorflow as tf

            return tf.constant(value, dtype=dtype)
        from keras import ops

        return ops.convert_to_tensor(np.asarray(value).astype(dtype), dtype=dtype)

    def mask(self, value):
        if value is None:
            return None
        if self.target == "tf-keras" or self.backend == "tensorflow":
            import tensorflow as tf

            return tf.constant(value)
        from keras import ops

        return ops.convert_to_tensor(value)

    def numpy(self, value):
        if hasattr(value, "detach"):
            return value.detach().cpu().numpy()
        return np.asarray(value)

    def forward_and_grads(self, layer, x, initial, mask, weights_of_loss, dtype):
        """Runs `layer(x, initial_state=..., mask=...)`; returns (outputs as numpy, gradients of
        sum(output_i * weights_of_loss[i]) with respect to {variable short name: grad}, x, [initial])."""
        xs = self.tensor(x, dtype)
        init = None if initial is None else [self.tensor(v, dtype) for v in initial]
        m = self.mask(mask)
        loss_weights = [self.tensor(w, dtype) for w in weights_of_loss]
        variables = list(layer.trainable_weights)
        names = [_short_name(v) for v in variables]

        if self.backend == "tensorflow":
            import tensorflow as tf

            total = tf.reduce_sum
        else:
            total = lambda value: value.sum()  # noqa: E731  jax.Array, torch.Tensor

        def loss_of(outputs):
            return sum(total(o * w) for o, w in zip(outputs, loss_weights))

        if self.backend == "tensorflow":
            with tf.GradientTape() as tape:
                tape.watch(xs)
                if init is not None:
                    tape.watch(init)
                outputs = layer(xs, initial_state=init, mask=m, training=False)
                loss = loss_of(outputs)
            grads = tape.gradient(loss, variables + [xs] + (init or []))
        elif self.backend == "jax":
            import jax

            trainable = [v.value for v in layer.trainable_variables]
            frozen = [v.value for v in layer.non_trainable_variables]
            variables = list(layer.trainable_variables)
            names = [_short_name(v) for v in variables]

            def f(values, xs, init):
                outputs, _ = layer.stateless_call(values, frozen, xs, initial_state=init, mask=m, training=False)
                return loss_of(outputs), outputs

            # one compiled forward and backward pass: several times faster than op by op on CPU
            step = jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True))
            (_, outputs), (gw, gx, gi) = step(trainable, xs, init)
            grads = list(gw) + [gx] + (list(gi) if init is not None else [])
        elif self.backend == "torch":
            import torch

            xs = xs.detach().requires_grad_(True)
            if init is not None:
                init = [v.detach().requires_grad_(True) for v in init]
            outputs = layer(xs, initial_state=init, mask=m, training=False)
            loss = loss_of(outputs)
            leaves = [v.value for v in variables] + [xs] + (init or [])
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        else:
            raise VerifyError(f"verify does not know how to take gradients on the {self.backend} backend")
        outputs = [self.numpy(o) for o in outputs]
        grads = [None if g is None else self.numpy(g) for g in grads]
        weight_grads = {}
        for name, g, v in zip(names, grads, variables):
            weight_grads[name] = np.zeros(tuple(v.shape)) if g is None else g
        gx = grads[len(names)]
        gi = grads[len(names) + 1:]
        return outputs, weight_grads, (np.zeros(x.shape) if gx is None else gx), \
            [np.zeros(np.shape(v)) if g is None else g for g, v in zip(gi, initial or [])]


def _short_name(variable) -> str:
    return variable.name.split("/")[-1].split(":")[0]


# --------------------------------------------------------------------------------------------
# loading what is verified


@dataclass
class Subject:
    """What is verified: a cell class, perhaps its full-sequence layer class, and how weights go in."""

    cell: type
    layer: type | None
    source: str                      # "generated" or the module's path
    by_symbol: bool                  # weights through set_symbol_weights (generated) or by fused names
    module: object


def import_module_arg(module_arg: str):
    """The module of `--module PATH[:CLASS]`, imported under a name of its own: (module, path, CLASS or "")."""
    path_text, colon, class_name = module_arg.rpartition(":")
    if not (colon and path_text and class_name.isidentifier()):  # no CLASS (or a Windows drive)
        path_text, class_name = module_arg, ""
    path = Path(path_text)
    if not path.is_file():
        raise VerifyError(f"--module {module_arg}: no such file {path}")
    name = f"eqcell_verify_{path.stem}_{abs(hash(str(path.resolve()))):x}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[name]
        raise VerifyError(f"--module {module_arg}: importing {path} failed: {type(err).__name__}: {err}") from None
    return module, path, class_name


def load_subject(spec, ir: CellIR, target: str, module_arg: str | None) -> Subject:
    """The generated module of `spec`, or the cell class named by `--module PATH[:CLASS]` (CLASS
    defaults to the spec's class name, else the module's only cell-like class); a class named
    like the spec's layer that subclasses the target's `RNN` comes with it."""
    if module_arg is None:
        from .api import load, load_layer

        cell = load(spec, target)
        layer = load_layer(spec, target)
        return Subject(cell, layer, "generated", True, sys.modules[cell.__module__])
    module, path, class_name = import_module_arg(module_arg)
    classes = {k: v for k, v in vars(module).items() if isinstance(v, type) and v.__module__ == module.__name__}
    if class_name:
        cell = getattr(module, class_name, None)
        if not isinstance(cell, type):
            raise VerifyError(f"--module {module_arg}: {path} has no class {class_name!r}"
                              + (f" (it defines {', '.join(classes)})" if classes else ""))
    elif isinstance(getattr(module, ir.name, None), type):
        cell = getattr(module, ir.name)
    else:
        candidates = [k for k, v in classes.items() if hasattr(v, "call") and "state_size" in dir(v)]
        if len(candidates) != 1:
            raise VerifyError(f"--module {module_arg}: {path} defines no class {ir.name}; name the cell class, "
                              f"e.g. {path}:{candidates[0] if candidates else 'MyCell'}"
                              + (f" (candidates: {', '.join(candidates)})" if candidates else ""))
        cell = getattr(module, candidates[0])
    if target == "tf-keras":
        import tf_keras as lib
    else:
        import keras as lib
    layer = getattr(module, ir.layer, None)
    if not (isinstance(layer, type) and issubclass(layer, lib.layers.RNN)):
        layer = None
    return Subject(cell, layer, str(path), False, module)


# --------------------------------------------------------------------------------------------
# the run


class _Run:
    def __init__(self, spec, ir: CellIR, subject: Subject, target: str, seed: int, echo):
        self.ir, self.subject, self.target, self.seed, self.echo = ir, subject, target, seed, echo
        self.fw = _Framework(target)
        self.interp = Interpreter(ir, target)
        self.heads = 2 if ir.heads else 1  # with heads: two, so that a mixed-up head shows
        self.named_sizes = {name: self.heads * (2 + i) if ir.heads else 3 + i for i, name in enumerate(ir.sizes)}
        if ir.heads:
            self.named_sizes[ir.heads] = self.heads
        self.scan = target == "keras" and ir.scan is not None and subject.layer is not None \
            and "parallel_scan" in _init_args(subject.layer)
        self.report: Report | None = None

    # helpers ------------------------------------------------------------------------------
    def sizes(self, case: Case) -> dict[str, int]:
        return {"units": case.units, "input_dim": case.input_dim, **self.named_sizes,
                **({"h": self.heads} if self.ir.heads else {})}

    def dtype(self, case: Case) -> str:
        return case.dtype if self.fw.float64 else "float32"

    def new_cell(self, case: Case):
        return self.subject.cell(case.units, **self.named_sizes, dtype=self.dtype(case))

    def set_weights(self, cell, params, sizes, what: str) -> Check | None:
        """Puts `params` into a built cell; with set_symbol_weights for a generated cell (then
        checks the result is the IR's fused layout), else by the fused weights' names."""
        fused = fused_weights(self.ir, params, sizes)
        variables = {_short_name(v): v for v in cell.weights}
        if self.subject.by_symbol:
            cell.set_symbol_weights({p.name: params[p.name] for p in self.ir.params})
            for w in self.ir.weights:
                if w.kind == "initial_state":
                    variables[w.name].assign(fused[w.name].astype(self.fw.numpy(variables[w.name]).dtype))
            worst, where = 0.0, ""
            for name, value in fused.items():
                if name not in variables:
                    return Check("weights", what, math.inf, False, f"the cell has no weight {name!r}")
                err, _ = _scaled_error(self.fw.numpy(variables[name]), value)
                if err > worst:
                    worst, where = err, name
            if worst > 1e-6:
                return Check("weights", what, worst, False,
                             f"set_symbol_weights puts the parameters of {where!r} elsewhere than the IR's fused "
                             f"layout ({_layout_text(self.ir, where)})")
            return None
        missing = sorted(set(fused) - set(variables))
        extra = sorted(set(variables) - set(fused))
        if missing or extra:
            return Check("weights", what, math.inf, False,
                         f"the cell's weights {sorted(variables)} are not the spec's fused weights "
                         f"{sorted(fused)} (missing {missing}, unexpected {extra}); expected "
                         + "; ".join(_layout_text(self.ir, w.name) + f" {tuple(fused[w.name].shape)}"
                                     for w in self.ir.weights))
        for name, value in fused.items():
            shape = tuple(variables[name].shape)
            if shape != value.shape:
                return Check("weights", what, math.inf, False,
                             f"weight {name!r} has shape {shape}, the spec's fused layout needs {value.shape} "
                             f"({_layout_text(self.ir, name)})")
            variables[name].assign(value.astype(self.fw.numpy(variables[name]).dtype))
        return None

    def add(self, check: Check):
        self.report.checks.append(check)
        status = "ok  " if check.ok else "FAIL"
        line = f"  {status} {check.name:<22} {check.detail}: max abs err {_fmt(check.err)}"
        if not check.ok:
            line += f"\n         {check.failure}"
        self.echo(line)

    # the cases ----------------------------------------------------------------------------
    def cases(self) -> list[Case]:
        ir = self.ir
        small = 6 if ir.heads else 5
        square = ir.square_input
        narrow = lambda units: units if square else 3  # noqa: E731
        wide_sizes = {"units": small, "input_dim": 1, "h": self.heads, **self.named_sizes}
        wide = small if square else 1 + sum(w.shape[-1].size(wide_sizes) for w in ir.weights if w.shape)
        cases = [
            Case("A", "short, default initial state", 6, narrow(small), small),
            Case("B", "long, go_backwards, initial states", 34, narrow(small), small, go_backwards=True, initial=True),
            Case("C", "mask with gaps, initial states", 9, narrow(small), small, masked=True, initial=True),
            Case("D", "wide input, mask, go_backwards, last output only", 9, wide, small, masked=True,
                 go_backwards=True, initial=True, return_sequences=False),
            Case("E", "16 units, mask, zero_output_for_mask", 8, narrow(16), 16, masked=True, initial=True,
                 zero_output_for_mask=True),
        ]
        if self.fw.float64:  # else every case runs in float32 already
            cases.append(Case("F", "float32, mask, go_backwards", 7, narrow(small), small, masked=True,
                              go_backwards=True, dtype="float32"))
        return [replace(c, seed=self.seed + i + 1) for i, c in enumerate(cases)]

    def run(self, start: float) -> Report:
        ir, subject = self.ir, self.subject
        what = "generated module" if subject.source == "generated" else f"{subject.cell.__name__} from {subject.source}"
        dtype_note = "float64" if self.fw.float64 else \
            "float32 (Keras computes float64 matmuls in float32 on this backend)"
        cases = self.cases()
        self.report = Report(f"verify {ir.name} ({what}) against its equations: target {self.target}, "
                             f"{self.fw.name}, {dtype_note}; seeds {self.seed}-{self.seed + len(cases)}")
        self.echo(self.report.header)
        if self.fw.backend == "jax" and ir.states[0].size == ir.output_size:
            self.echo("  note: Keras's JAX loop fills a masked step's output with the first state, not the "
                      "previous output (keras/src/backend/jax/rnn.py), and the generated layer's scan does the "
                      "same; every path is compared with that")
        self.check_step()
        for case in cases:
            self.check_case(case)
        self.report.seconds = time.perf_counter() - start
        return self.report

    def check_step(self):
        """The cell's one step, teacher-forced, and its initial state."""
        ir = self.ir
        units = 6 if ir.heads else 5
        case = Case("step", "", 6, units if ir.square_input else 3, units, seed=self.seed)
        sizes = self.sizes(case)
        self.interp.sizes = sizes
        rng = np.random.default_rng(case.seed)
        params = random_params(ir, sizes, rng)
        batch = 4
        x = rng.standard_normal((batch, case.timesteps, case.input_dim))
        start = {s.name: 0.5 * rng.standard_normal((batch, _size(s.size, sizes))) for s in ir.states}
        detail = f"cell(x_t, states), {case.timesteps} steps from the equations' states, batch {batch}"
        dtype = self.dtype(case)
        try:
            cell = self.new_cell(case)
            states_in = [self.fw.tensor(start[s.name], dtype) for s in ir.states]
            self._call_cell(cell, self.fw.tensor(x[:, 0], dtype), states_in)   # builds it
            bad = self.set_weights(cell, params, sizes, "parameters into the cell's weights")
            if bad:
                self.add(bad)
                return
            layout = ", ".join(_layout_text(self.ir, w.name) for w in self.ir.weights)
            how = ("set_symbol_weights gives the IR's fused layout" if self.subject.by_symbol
                   else "filled by fused name")
            self.add(Check("weights", f"{how}: {layout}", 0.0, True))
            self.check_symbol_weights(cell, params, sizes, dtype)
            self.check_initial_state(cell, params, sizes, batch, dtype)
            worst, failure = 0.0, ""
            prev = start
            for t in range(case.timesteps):
                with np.errstate(all="ignore"):
                    values = self.interp.step(params, x[:, t], prev)
                want_states = self.interp.next_states(values, x[:, t])
                output, new = self._call_cell(cell, self.fw.tensor(x[:, t], dtype),
                                              [self.fw.tensor(prev[s.name], dtype) for s in ir.states])
                pairs = [(f"output {ir.output}", output, np.broadcast_to(values[ir.output], np.shape(output)))]
                if len(new) != len(ir.states):
                    raise _Mismatch(f"the cell returned {len(new)} states, the spec has {len(ir.states)} "
                                    f"({', '.join(s.name for s in ir.states)})")
                pairs += [(f"state {s.name}", got, want_states[s.name]) for s, got in zip(ir.states, new)]
                for label, got, want in pairs:
                    err, scaled = _scaled_error(got, want)
                    worst = max(worst, err)
                    if scaled > TOL[dtype] and not failure:
                        failure = (f"{label} differs from the equations first at step t={t} "
                                   f"({_where(got, want)}): max abs err {_fmt(err)}")
                prev = want_states
            self.add(Check("cell step", detail, worst, not failure, failure))
        except _Mismatch as err:
            self.add(Check("cell step", detail, math.inf, False, str(err)))
        except Exception as err:  # the cell failed to run: that is a finding, not a crash
            self.add(Check("cell step", detail, math.inf, False, f"raised {type(err).__name__}: {err}"))

    def check_symbol_weights(self, cell, params, sizes, dtype):
        """A cell's own `symbol_weights()` and `set_symbol_weights()`, where it has them, follow
        the IR's fused layout (a hand-edited `_symbol_layout` is caught here)."""
        has_get, has_set = hasattr(cell, "symbol_weights"), hasattr(cell, "set_symbol_weights")
        if not (has_get or has_set):
            return
        ir = self.ir
        worst, failure = 0.0, ""
        try:
            if has_get:
                got = cell.symbol_weights()
                for p in ir.params:
                    if p.name not in got:
                        failure = f"symbol_weights() has no {p.name!r}"
                        break
                    err, scaled = _scaled_error(got[p.name], params[p.name])
                    worst = max(worst, err)
                    if scaled > TOL[dtype]:
                        failure = (f"symbol_weights()[{p.name!r}] is not what the IR's layout holds there "
                                   f"({_layout_text(ir, p.weight)})")
                        break
            if has_set and not failure and not self.subject.by_symbol:  # a generated cell: checked already
                other = random_params(ir, sizes, np.random.default_rng(self.seed + 20_000))
                cell.set_symbol_weights({p.name: other[p.name] for p in ir.params})
                variables = {_short_name(v): v for v in cell.weights}
                for name, value in fused_weights(ir, other, sizes).items():
                    if name in variables and not name.startswith("initial_"):
                        err, scaled = _scaled_error(self.fw.numpy(variables[name]), value)
                        worst = max(worst, err)
                        if scaled > TOL[dtype] and not failure:
                            failure = (f"set_symbol_weights() fills {name!r} otherwise than the IR's layout "
                                       f"({_layout_text(ir, name)})")
                bad = self.set_weights(cell, params, sizes, "")
                if bad:
                    failure = failure or bad.failure
        except Exception as err:
            worst, failure = math.inf, f"raised {type(err).__name__}: {err}"
        what = " and ".join(n for n, has in (("symbol_weights()", has_get), ("set_symbol_weights()", has_set)) if has)
        self.add(Check("symbol weights", f"{what} vs the IR's layout", worst, not failure, failure))

    def check_initial_state(self, cell, params, sizes, batch, dtype):
        if not hasattr(cell, "get_initial_state"):
            return
        want = initial_values(self.ir, params, sizes, batch)
        import warnings

        try:
            if self.target == "tf-keras":
                got = cell.get_initial_state(inputs=None, batch_size=batch, dtype=dtype)
            else:
                got = cell.get_initial_state(batch_size=batch)
            got = got if isinstance(got, (list, tuple)) else [got]
            worst, failure = 0.0, ""
            for s, value in zip(self.ir.states, got):
                err, scaled = _scaled_error(self.fw.numpy(value), want[s.name])
                worst = max(worst, err)
                if scaled > TOL[dtype] and not failure:
                    failure = f"state {s.name} starts at the wrong value (spec: {s.initial})"
            if len(got) != len(self.ir.states):
                failure = f"get_initial_state returned {len(got)} states, the spec has {len(self.ir.states)}"
            kinds = ", ".join(f"{s.name} {s.initial}" for s in self.ir.states)
            self.add(Check("initial state", f"get_initial_state vs the spec ({kinds})", worst, not failure, failure))
        except Exception as err:
            self.add(Check("initial state", "get_initial_state", math.inf, False,
                           f"raised {type(err).__name__}: {err}"))

    def _call_cell(self, cell, x_t, states):
        output, new = cell(x_t, states)
        new = list(new) if isinstance(new, (list, tuple)) else [new]
        return self.fw.numpy(output), [self.fw.numpy(v) for v in new]

    # one case: RNN(cell), the layer on each path, gradients --------------------------------
    def check_case(self, case: Case):
        ir = self.ir
        sizes = self.sizes(case)
        self.interp.sizes = sizes
        dtype = self.dtype(case)
        rng = np.random.default_rng(case.seed)
        params = random_params(ir, sizes, rng)
        batch = 4
        x = rng.standard_normal((batch, case.timesteps, case.input_dim))
        mask = gapped_mask(batch, case.timesteps) if case.masked else None
        initial = None
        if case.initial:
            initial = {s.name: 0.5 * rng.standard_normal((batch, _size(s.size, sizes))) for s in ir.states}
        start = initial or initial_values(ir, params, sizes, batch)
        # the loss: a random projection of every output and state; masked steps' outputs weigh 0
        # (the JAX loop and the scan fill them differently; the forward checks compare them)
        processing_mask = None if mask is None else (mask[:, ::-1] if case.go_backwards else mask)
        out_size = _size(ir.output_size, sizes)
        if case.return_sequences:
            w_out = rng.standard_normal((batch, case.timesteps, out_size))
            if processing_mask is not None:
                w_out = w_out * processing_mask[..., None]
        else:
            w_out = rng.standard_normal((batch, out_size))
            if processing_mask is not None:
                w_out = w_out * processing_mask[:, -1:]
        w_states = [rng.standard_normal((batch, _size(s.size, sizes))) for s in ir.states]
        loss_weights = [w_out] + w_states

        def expected(semantics):
            trace = self.interp.run(params, x, start, mask, case.go_backwards, semantics, case.zero_output_for_mask)
            out = trace.outputs if case.return_sequences else trace.outputs[:, -1]
            return [out] + [trace.states[s.name] for s in ir.states]

        shape = (f"T={case.timesteps}, batch {batch}, input {case.input_dim}, units {case.units}"
                 + (f", {dtype}" if dtype != "float64" else "") + f", seed {case.seed}")
        self.echo(f"  case {case.key}: {case.label} ({shape})")
        contenders = [("RNN(cell)", None)]
        if self.subject.layer is not None:
            contenders += [("layer", False), ("layer", True)] if self.scan else [("layer", None)]
        results = {}
        for kind, scan in contenders:
            name = kind if scan is None else f"{kind}, parallel_scan={scan}"
            if (kind == "RNN(cell)" and mask is not None and self.fw.backend == "jax" and self.target == "keras"
                    and ir.states[0].size != ir.output_size):
                self.echo(f"    note: {name} skipped: Keras's JAX loop outputs the first state at a masked step, "
                          "and this cell's first state is not shaped like its output (the layer masks itself)")
                continue
            try:
                model, paths = self.build(kind, case, scan)
                bad = self.set_weights(model.cell, params, sizes, f"case {case.key} {name}")
                if bad:
                    self.add(bad)
                    continue
                with _recording(self.subject.module, model, paths):
                    outputs, grads, gx, gi = self.fw.forward_and_grads(
                        model, x, None if initial is None else [initial[s.name] for s in ir.states],
                        mask, loss_weights, dtype)
            except Exception as err:
                self.add(Check(f"{case.key} {name}", "forward and gradients", math.inf, False,
                               f"raised {type(err).__name__}: {err}"))
                continue
            semantics = "first_state" if (self.fw.backend == "jax" and self.target == "keras"
                                          and ir.states[0].size == ir.output_size) else "previous"
            path_text = _path_text(paths, kind)
            self.compare_forward(case, f"{case.key} {kind}", f"outputs and final states{path_text} vs the equations",
                                 outputs, expected(semantics), dtype)
            results[name] = (grads, gx, gi, path_text)
        if not self.interp.run(params, x, start, mask, case.go_backwards).finite:
            self.echo("    note: the equations give NaN or inf at some step for these random values (a log or "
                      "sqrt of a negative number?); where both sides give NaN they count as equal")
        self.compare_gradients(case, results, params, sizes, x, start, initial, mask, loss_weights, dtype)

    def build(self, kind: str, case: Case, scan):
        lib = self.fw.lib
        dtype = self.dtype(case)
        kwargs = dict(return_sequences=case.return_sequences, return_state=True, go_backwards=case.go_backwards,
                      zero_output_for_mask=case.zero_output_for_mask, dtype=dtype)
        if kind == "RNN(cell)":
            model = lib.layers.RNN(self.new_cell(case), **kwargs)
        else:
            extra = {} if scan is None else {"parallel_scan": scan}
            model = self.subject.layer(case.units, **self.named_sizes, **kwargs, **extra)
        model.build((4, case.timesteps, case.input_dim))
        paths: dict[str, bool] = {}
        return model, paths

    def compare_forward(self, case, name, detail, got, want, dtype):
        ir = self.ir
        labels = ["output " + ir.output + ("s" if case.return_sequences else " (last)")] + \
                 [f"final state {s.name}" for s in ir.states]
        if len(got) != len(want):
            self.add(Check(name, detail, math.inf, False,
                           f"returned {len(got) - 1} states, the spec has {len(want) - 1}"))
            return
        worst, failure = 0.0, ""
        for label, g, w in zip(labels, got, want):
            err, scaled = _scaled_error(g, w)
            worst = max(worst, err)
            if scaled > TOL[dtype] and not failure:
                where = _where(g, w)
                if case.return_sequences and label.startswith("output") and np.shape(g) == np.shape(w):
                    step = _first_step(g, w, TOL[dtype])
                    t = case.timesteps - 1 - step if case.go_backwards else step
                    where = f"first at time step t={t}" + (f", step {step + 1} of the backwards run"
                                                           if case.go_backwards else "") + f"; {where}"
                failure = f"{label} differs from the equations ({where}): max abs err {_fmt(err)}"
        self.add(Check(name, detail, worst, not failure, failure))

    def compare_gradients(self, case, results, params, sizes, x, start, initial, mask, loss_weights, dtype):
        if not results:
            return
        ir = self.ir
        # (1) the layer's gradients vs RNN(cell)'s, element by element
        reference = results.get("RNN(cell)")
        for name, (grads, gx, gi, path_text) in results.items():
            if name == "RNN(cell)" or reference is None:
                continue
            worst, failure = 0.0, ""
            pairs = [(f"d/d {k}", grads.get(k), v) for k, v in reference[0].items()]
            pairs += [("d/d inputs", gx, reference[1])] + [(f"d/d initial {s.name}", g, r)
                                                           for s, g, r in zip(ir.states, gi, reference[2])]
            for label, g, r in pairs:
                if g is None:
                    failure = failure or f"the layer has no weight {label[4:]!r}"
                    continue
                err, scaled = _scaled_error(g, r)
                worst = max(worst, err)
                if scaled > GRAD_TOL[dtype] and not failure:
                    failure = f"{label} differs from RNN(cell)'s ({_where(g, r)}): max abs err {_fmt(err)}"
            self.add(Check(f"{case.key} gradients", f"{name}{path_text} vs RNN(cell), every weight, inputs, "
                                                    f"initial states", worst, not failure, failure))
        # (2) each one's directional derivative vs central finite differences of the equations
        rng = np.random.default_rng(case.seed + 10_000)
        direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        dx = rng.standard_normal(x.shape)
        dstart = None if initial is None else {k: rng.standard_normal(v.shape) for k, v in start.items()}
        semantics = "previous"  # masked outputs weigh 0 in the loss: either semantics gives the same loss

        def loss(eps):
            p = {k: v + eps * direction[k] for k, v in params.items()}
            s = start if dstart is None else {k: v + eps * dstart[k] for k, v in start.items()}
            if initial is None:
                s = initial_values(ir, p, sizes, x.shape[0])
            trace = self.interp.run(p, x + eps * dx, s, mask, case.go_backwards, semantics, case.zero_output_for_mask)
            out = trace.outputs if case.return_sequences else trace.outputs[:, -1]
            values = [out] + [trace.states[st.name] for st in ir.states]
            return sum(float(np.sum(v * w)) for v, w in zip(values, loss_weights)), trace.finite

        (up, finite_up), (down, finite_down) = loss(FD_EPS), loss(-FD_EPS)
        (up2, _), (down2, _) = loss(FD_EPS / 2), loss(-FD_EPS / 2)
        # central differences at eps and eps/2, Richardson-extrapolated: error O(eps^4), so that
        # the steep curvature of exponential gates does not pass for a wrong gradient
        numeric = (4 * (up2 - down2) / FD_EPS - (up - down) / (2 * FD_EPS)) / 3
        fused_direction = fused_weights(ir, direction, sizes)
        for name, (grads, gx, gi, path_text) in results.items():
            analytic = sum(float(np.sum(grads[k] * fused_direction[k])) for k in grads if k in fused_direction)
            analytic += float(np.sum(gx * dx))
            if dstart is not None:
                analytic += sum(float(np.sum(g * dstart[s.name])) for s, g in zip(ir.states, gi))
            err = abs(analytic - numeric)
            scaled = err / max(1.0, abs(numeric))
            if not (finite_up and finite_down) and not math.isfinite(analytic):
                # a NaN at a masked step (log of a negative) is discarded forward, but its
                # gradient is NaN * 0 = NaN in every framework: nothing to compare
                self.add(Check(f"{case.key} gradients", f"{name}{path_text} vs finite differences: not compared, "
                                                        f"the equations give NaN or inf for these random values",
                               math.nan, True))
                continue
            ok = scaled <= FD_TOL[dtype]
            failure = "" if ok else (f"d loss along a random direction: {name} gives {analytic:.9g}, finite "
                                     f"differences of the equations {numeric:.9g}")
            self.add(Check(f"{case.key} gradients", f"{name}{path_text} vs finite differences of the equations",
                           err, ok, failure))


class _Mismatch(Exception):
    pass


def _init_args(cls) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        return set()


def _layout_text(ir: CellIR, weight: str) -> str:
    """`kernel = [W_f | W_c]`; a stacked bias row by row: `bias = [b_iz | b_ir] / [b_hz | b_hr]`."""
    row_of = {p.name: p.row for p in ir.params if p.weight == weight}
    members = next((w.members for w in ir.weights if w.name == weight), ())
    rows: dict[int | None, list[str]] = {}
    for name in members:  # in column order
        if name in row_of:
            rows.setdefault(row_of[name], []).append(name)
    if not rows:
        return weight
    return f"{weight} = " + " / ".join(f"[{' | '.join(names)}]" for _, names in sorted(
        rows.items(), key=lambda item: -1 if item[0] is None else item[0]))


def _where(got, want) -> str:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return f"shape {got.shape}, the equations give {want.shape}"
    diff = np.where(np.isnan(got) & np.isnan(want), 0.0, np.abs(got - want))
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return f"largest at batch row {index[0]}"


def _first_step(got, want, tol) -> int:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.nanmax(np.abs(want))) if np.isfinite(want).any() else 1.0)
    diff = np.where(np.isnan(got) & np.isnan(want), 0.0, np.abs(got - want))
    bad = np.where(np.isnan(diff) | (diff > tol * scale))
    return int(bad[1].min()) if bad[1].size else 0


def _path_text(paths: dict, kind: str) -> str:
    if kind != "layer" or not paths:
        return ""
    parts = []
    if paths.get("scan"):
        parts.append("parallel scan")
    else:
        parts.append("step loop")
        if "hoisted" in paths:
            parts.append("projection hoisted" if paths["hoisted"] else "projection per step")
        if paths.get("remat"):
            parts.append("rematerialized step")
    return " [" + ", ".join(parts) + "]"


class _recording:
    """Records which path the generated layer takes (scan or loop, projection hoisted, the
    rematerialized JAX step) by wrapping the methods it calls; undone on exit."""

    def __init__(self, module, model, paths: dict):
        self.module, self.model, self.paths = module, model, paths
        self.saved_remat = None

    def __enter__(self):
        model, paths = self.model, self.paths
        cell = getattr(model, "cell", None)
        if cell is not None and hasattr(cell, "project_inputs"):
            original = cell.project_inputs

            def project_inputs(inputs, *args, **kwargs):
                if len(inputs.shape) == 3:
                    paths["hoisted"] = True
                else:
                    paths.setdefault("hoisted", False)
                return original(inputs, *args, **kwargs)
            object.__setattr__(cell, "project_inputs", project_inputs)
        if hasattr(model, "_scan"):
            scan = model._scan

            def _scan(*args, **kwargs):
                paths["scan"] = True
                return scan(*args, **kwargs)
            object.__setattr__(model, "_scan", _scan)
        remat = getattr(self.module, "_rematerialized", None)
        if remat is not None:
            self.saved_remat = remat

            def _rematerialized(step, units):
                wrapped = remat(step, units)
                paths["remat"] = wrapped is not step
                return wrapped
            self.module._rematerialized = _rematerialized
        return self

    def __exit__(self, *exc):
        if self.saved_remat is not None:
            self.module._rematerialized = self.saved_remat
        for obj, attr in ((getattr(self.model, "cell", None), "project_inputs"), (self.model, "_scan")):
            if obj is not None and attr in vars(obj):
                object.__delattr__(obj, attr)
        return False


# --------------------------------------------------------------------------------------------
# entry points


def verify(spec, *, module: str | None = None, target: str = "keras", seed: int = 0,
           echo: Callable[[str], None] = print) -> Report:
    """Verifies the generated module of `spec` (or the cell class in `module`, `PATH[:CLASS]`)
    against the spec's equations on the current backend; prints one line per check to `echo`."""
    from .api import analyze

    start = time.perf_counter()
    ir = analyze(spec)
    if target == "torch":
        from .verify_torch import TorchRun, load_torch_subject

        return TorchRun(ir, load_torch_subject(spec, ir, module), seed, echo).run(start)
    subject = load_subject(spec, ir, target, module)
    return _Run(spec, ir, subject, target, seed, echo).run(start)


def verify_backends(argv: list[str], backends: list[str], stdin: bytes | None,
                    echo: Callable[[str], None] = print) -> int:
    """Runs `eqcell verify ARGV` once per backend, each in its own process with KERAS_BACKEND set
    ; the worst exit code wins."""
    start = time.perf_counter()
    codes = {}
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        process = subprocess.Popen([sys.executable, "-m", "eqcell", "verify", *argv], env=env,
                                   stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if stdin is not None:
            process.stdin.write(stdin)
            process.stdin.close()
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if _is_framework_noise(line):
                continue
            echo(line)
        codes[backend] = process.wait()
    seconds = time.perf_counter() - start
    summary = ", ".join(f"{b} {'ok' if c == 0 else f'FAILED (exit {c})'}" for b, c in codes.items())
    echo(f"backends: {summary}; {seconds:.1f} s")
    bad = [c for c in codes.values() if c != 0]
    return 0 if not bad else (2 if all(c == 2 for c in bad) else 1)


def _is_framework_noise(line: str) -> bool:
    """TensorFlow's and absl's start-up chatter on stderr (cuda stubs, oneDNN, CPU features)."""
    return line.startswith(("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ",
                            "To enable the following instructions"))
