"""The sympy node types the parser builds, and nothing else: printers refuse any other node.

Element-wise functions are undefined sympy functions (so sympy never rewrites `sqrt(x)` into
`x**(1/2)` or evaluates `tanh(0)`); `MatVec(W, v)` is a parameter matrix applied to a vector."""
from __future__ import annotations

import sympy
from sympy import Add, Float, Integer, Mul, Pow, Rational, Symbol

# name -> arity; `layer_norm` carries its own gain and bias symbols as extra arguments.
FUNCTIONS: dict[str, int] = {
    "sigmoid": 1, "tanh": 1, "relu": 1, "hard_sigmoid": 1, "softplus": 1, "softsign": 1,
    "exp": 1, "log": 1, "abs": 1, "sqrt": 1, "silu": 1, "gelu": 1, "elu": 1, "identity": 1,
    "logsigmoid": 1, "max": 2, "min": 2, "layer_norm": 3,
}
ALIASES = {"σ": "sigmoid", "LN": "layer_norm", "ln": "log", "swish": "silu"}  # ln: the logarithm, as in LaTeX



class ElementwiseBase(sympy.Function):
    """Base of eqcell's element-wise functions: never evaluated, printed from a table.

    Real subclasses (not `sympy.Function("tanh")`) so that printers can dispatch on
    `_print_<name>`; sympy skips undefined functions and, before `Function` in the MRO, any
    class whose name does not end in "Base" (sympy.printing.printer.Printer._print)."""


FUNCTION_CLASSES = {name: type(name, (ElementwiseBase,), {"__module__": __name__}) for name in FUNCTIONS}


class MatVec(sympy.Function):
    """`MatVec(W, v)`: parameter matrix W times vector v (printed `v @ W` in row-vector code)."""

    nargs = 2


PREV_MARK = "[t-1]"  # not an identifier character: a t-1 read can never be confused with a spec name


def prev(name: str) -> Symbol:
    """The symbol of variable `name` read at t-1 (`h_{t-1}`)."""
    return Symbol(name + PREV_MARK)


def prev_of(symbol) -> str | None:
    """The variable a t-1 read stands for (`h` for `h_{t-1}`), or None for any other symbol."""
    name = symbol if isinstance(symbol, str) else symbol.name
    return name[: -len(PREV_MARK)] if name.endswith(PREV_MARK) else None


LOCAL_MARK = "$"  # a value the generator introduces (a fused product, its slices): named last


def local(hint: str) -> Symbol:
    """A value of the generated step that no equation names (`z_f`, a split slice); `hint` is the
    name it gets when no spec name or module name takes it (eqcell.analysis.naming decides)."""
    return Symbol(LOCAL_MARK + hint)


def local_hint(symbol) -> str | None:
    name = symbol if isinstance(symbol, str) else symbol.name
    return name[len(LOCAL_MARK):] if name.startswith(LOCAL_MARK) else None


class Attribute(Symbol):
    """A value the cell holds as an attribute (a parameter stored as its own weight): printed
    `self.name` in the cell and `cell.name` in the layer. Only the naming stage makes these."""


def call(name: str, *args: sympy.Expr) -> sympy.Expr:
    return FUNCTION_CLASSES[name](*args, evaluate=False)


def add(*terms: sympy.Expr) -> sympy.Expr:
    return terms[0] if len(terms) == 1 else Add(*terms, evaluate=False)


def mul(*factors: sympy.Expr) -> sympy.Expr:
    return factors[0] if len(factors) == 1 else Mul(*factors, evaluate=False)


def neg(expr: sympy.Expr) -> sympy.Expr:
    """-expr as written: a negated number is that negative number (`s - 1`, never `s - 1*1`)."""
    if expr.is_Number:
        return -expr
    return Mul(Integer(-1), expr, evaluate=False)


def div(num: sympy.Expr, den: sympy.Expr) -> sympy.Expr:
    return Mul(num, Pow(den, Integer(-1), evaluate=False), evaluate=False)


def matmul(matrix: Symbol, vector: sympy.Expr) -> sympy.Expr:
    return MatVec(matrix, vector, evaluate=False)


def function_name(expr) -> str | None:
    """The eqcell function an applied node stands for, or None."""
    if isinstance(expr, ElementwiseBase):
        return type(expr).__name__
    return None


PARSER_NODES = (Symbol, Integer, Float, Rational, Add, Mul, Pow, MatVec, ElementwiseBase,
                sympy.core.numbers.NegativeOne, sympy.core.numbers.One, sympy.core.numbers.Zero,
                sympy.core.numbers.Half)
