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
    precedence = 55


class Times(sympy.Function):
    """`Times(a, b)`: `a b` or `a @ b` where `a` is not a parameter (`C_t q_t`, `v_t k_t^T`,
    `S_{t-1} (I - ...)`). What it computes (a matrix-vector or matrix-matrix product, a dot or
    an outer product, a scaling by a scalar) depends on the shapes, which the shapes stage
    infers and then writes as one of the explicit nodes below."""

    nargs = 2
    precedence = 55  # binds tighter than * and /, looser than ^ (sympy's StrPrinter brackets by it)


class BracketTimes(Times):
    """`a_t(...)`, as papers write a scaling: like `Times`, except that two vectors of one size
    multiply element-wise (`a_t(U h_{t-1} + 1)`)."""


class Transposed(sympy.Function):
    """`a^T`: a row vector from a column vector, or a transposed matrix."""

    nargs = 1


class Diag(sympy.Function):
    """`diag(a)`: the diagonal matrix of a vector; only ever multiplied (`diag(a) S`, `S diag(a)`)."""

    nargs = 1


class Eye(sympy.Function):
    """`I`, the identity matrix, sized by where it stands. The shapes stage gives it its size:
    `Eye(Symbol("#units"))` (see `size_symbol`)."""

    nargs = (0, 1)


class Norm(sympy.Function):
    """`\\|a\\|`: the Euclidean norm of a vector, a scalar."""

    nargs = 1


# The explicit tensor operations `Times`, `Transposed`, `Diag` and broadcasting become once
# shapes are known; values have a leading batch axis, matrices two trailing axes (rows, columns).
class MatrixVector(sympy.Function):
    """A (rows, cols) matrix value times a vector of cols: a vector of rows."""

    nargs = 2


class VectorMatrix(sympy.Function):
    """A row vector of rows times a (rows, cols) matrix value: a vector of cols."""

    nargs = 2


class MatrixMatrix(sympy.Function):
    nargs = 2


class Outer(sympy.Function):
    """`u v^T`: the (len u, len v) matrix."""

    nargs = 2


class DotProduct(sympy.Function):
    """`u^T v`: a scalar (kept as one feature, so it broadcasts like every scalar)."""

    nargs = 2


class SwapAxes(sympy.Function):
    """A matrix value transposed."""

    nargs = 1


class AsColumn(sympy.Function):
    """A vector (or scalar) as a one-column matrix: scales the rows of the matrix it meets
    (`diag(a) S`; a scalar times a matrix)."""

    nargs = 1


class AsRow(sympy.Function):
    """A vector as a one-row matrix: scales the columns of the matrix it meets (`S diag(a)`)."""

    nargs = 1


TENSOR_NODES = (MatrixVector, VectorMatrix, MatrixMatrix, Outer, DotProduct, SwapAxes, AsColumn, AsRow, Eye, Norm)
WRITTEN_TENSOR_NODES = (Times, Transposed, Diag, Eye, Norm)

SIZE_MARK = "#"


def size_symbol(size: str) -> Symbol:
    """A size (`units`, a named size, `units/heads`) where an expression needs one (`Eye`)."""
    return Symbol(SIZE_MARK + size)


def size_of(symbol) -> str | None:
    return symbol.name[len(SIZE_MARK):] if symbol.name.startswith(SIZE_MARK) else None


class RowMatVec(MatVec):
    """`RowMatVec(W, v)`: a row vector times a parameter matrix, `v W` (`vectors: row`); W is
    (in, out) as the paper writes it. Fused like any weight matrix."""


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
    return (FUNCTION_CLASSES.get(name) or placeholder(name))(*args, evaluate=False)


_PLACEHOLDERS: dict[str, type] = {}


def placeholder(name: str) -> type:
    """The function class of a name the spec declares as an activation (`\\phi` in a paper that
    says "phi is the tanh"): element-wise, one argument, what it computes set by `activations:`."""
    if name not in _PLACEHOLDERS:
        _PLACEHOLDERS[name] = type(name, (ElementwiseBase,), {"__module__": __name__})
    return _PLACEHOLDERS[name]


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


PARSER_NODES = (Symbol, Integer, Float, Rational, Add, Mul, Pow, MatVec, ElementwiseBase, *WRITTEN_TENSOR_NODES,
                *TENSOR_NODES,
                sympy.core.numbers.NegativeOne, sympy.core.numbers.One, sympy.core.numbers.Zero,
                sympy.core.numbers.Half)
