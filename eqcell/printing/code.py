"""Prints one step expression as code for a target, from its dialect's function table."""
from __future__ import annotations

from collections.abc import Mapping

import sympy
from sympy.printing.precedence import PRECEDENCE

from .. import nodes
from ..nodes import FUNCTIONS
from ..targets import Dialect
from .base import EqPrinter, PrinterError


NUMPY_FUNCTIONS = {"sqrt": "np.sqrt({})", "exp": "np.exp({})", "log": "np.log({})", "abs": "np.abs({})",
                   "tanh": "np.tanh({})", "max": "np.maximum({}, {})", "min": "np.minimum({}, {})",
                   "sigmoid": "1 / (1 + np.exp(-({})))", "softplus": "np.logaddexp(0.0, {})",
                   "logsigmoid": "-np.logaddexp(0.0, -({}))", "identity": "{}"}


class CodePrinter(EqPrinter):
    """`tanh(z_c)` -> `self.activation(z_c)` (an exposed activation) or `ops.tanh(z_c)`.

    Symbols are already the module's identifiers (the naming stage chose them); an
    `Attribute` is a weight the cell holds, printed `<owner>.<name>`: `self.` in the cell's
    methods, `cell.` in the layer's."""

    def __init__(self, dialect: Dialect, owner: str, exposed: Mapping[str, str], constants=frozenset(),
                 sizes: Mapping[str, str] | None = None):
        missing = set(FUNCTIONS) - set(dialect.functions)
        if missing:
            raise PrinterError(f"the {dialect.target} dialect has no code for {', '.join(sorted(missing))}")
        functions = {f: f"{owner}.{arg}({{}})" for f, arg in exposed.items()}
        super().__init__({}, {**dialect.functions, **functions})
        self.owner, self.dialect = owner, dialect
        self.constants = frozenset(constants)  # attributes holding the spec's constants (plain numbers)
        self.exposed = frozenset(exposed)
        self.sizes = dict(sizes or {})  # size name -> code in the owner's scope (`units/h` with heads)

    def _print_Symbol(self, expr):
        return expr.name

    def _print_Pow(self, expr):
        """`a**b` with brackets wherever Python's precedence needs them (`(-a)**2`, `a**(-b)`);
        an exponent of -1 is a division."""
        base, exponent = expr.args
        if exponent == -1:
            return f"1/{self.parenthesize(base, PRECEDENCE['Mul'] + 1)}"
        left = self.parenthesize(base, PRECEDENCE["Pow"] + 1)
        right = self._print(exponent)
        if not (exponent.is_Symbol or (exponent.is_Number and exponent >= 0)):
            right = f"({right})"
        return f"{left}**{right}"

    def _print_Add(self, expr):
        """`(1 - a)*b + a*c` (a gate mixing two values, as GRU's and minGRU's updates) as the dialect's
        `lerp(b, c, a)` where it has one: one fused operation, and one autograd node, for four."""
        mix = _interpolation(expr, self.constants) if self.dialect.lerp else None
        if mix is None:
            return super()._print_Add(expr)
        weight, start, end = mix
        return self.dialect.lerp.format(self._print(start), self._print(end), self._print(weight))

    def _print_Attribute(self, expr):
        return f"{self.owner}.{expr.name}"

    def _print_tensor(self, expr):
        """An explicit tensor operation (eqcell.nodes.TENSOR_NODES) from the dialect's table."""
        name = type(expr).__name__
        args = [self.parenthesize(a, PRECEDENCE["Mul"]) if name == "DotProduct" else self._print(a)
                for a in expr.args]
        if isinstance(expr, nodes.Eye):
            args = [self._size(expr.args[0])]
        return self.dialect.tensor[name].format(*args, owner=self.owner)

    _print_MatrixVector = _print_VectorMatrix = _print_MatrixMatrix = _print_Outer = _print_tensor
    _print_DotProduct = _print_SwapAxes = _print_AsColumn = _print_AsRow = _print_Eye = _print_Norm = _print_tensor

    def _size(self, symbol) -> str:
        """A size as code in the owner's scope: `self.units`, `self.key_units // self.num_heads`."""
        size = nodes.size_of(symbol)
        if size is None or size not in self.sizes:
            raise PrinterError(f"no code for the size {symbol}")
        return self.sizes[size]

    def _print_ElementwiseBase(self, expr):
        name = type(expr).__name__
        if (all(s.name in self.constants for s in expr.free_symbols) and name in NUMPY_FUNCTIONS
                and name not in self.exposed):
            # a function of constants only (`sqrt(d)`): a number, computed in float64 by numpy,
            # which every backend takes in the dtype of the tensor it meets
            return NUMPY_FUNCTIONS[name].format(*(self._print(a) for a in expr.args))
        if name not in self._functions:
            raise PrinterError(f"{type(self).__name__} has no function {name!r}")
        return self._functions[name].format(*(self._print(a) for a in expr.args))


def _interpolation(expr, constants) -> tuple | None:
    """(a, b, c) when `expr` is (1 - a)*b + a*c, b and c tensors (not numbers or constants); else None."""
    if len(expr.args) != 2:
        return None
    for first, second in (expr.args, expr.args[::-1]):
        factors, others = sympy.Mul.make_args(first), sympy.Mul.make_args(second)
        for factor in factors:
            if not factor.is_Add:
                continue
            weight = 1 - factor
            if weight.is_Number or weight.is_Mul or weight.is_Add or weight not in others:
                continue
            start = sympy.Mul(*(f for f in factors if f is not factor))
            end = sympy.Mul(*(f for f in others if f is not weight))
            if all(_is_tensor(v, constants) for v in (start, end)):
                return weight, start, end
    return None


def _is_tensor(value, constants) -> bool:
    return any(not (isinstance(s, sympy.Symbol) and s.name in constants) for s in value.free_symbols)
