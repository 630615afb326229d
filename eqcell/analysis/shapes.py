"""Stage 3: shapes. Every value is a scalar, a vector or a matrix, and every size is `units`,
`input_dim`, a size the spec names or 1. Element-wise operations join their operands' sizes
(union-find over size classes); a weight matrix maps its operand's size to its own rows; a
product of values (`C_t q_t`, `v_t k_t^T`, `u^T v`) is a matrix-vector or matrix-matrix product,
an outer or a dot product or a scaling, as its operands' shapes say. The only stage that knows
about shapes: it writes each such product, transpose and broadcast as an explicit node
(`nodes.MatrixVector`, `nodes.Outer`, `nodes.AsColumn`, ...) for the stages after it.

Whether a value is a matrix or a scalar can depend on equations written after it (a state read
at t-1 before its definition, a parameter combined with a matrix), so cells that use products of
values are read in passes: each pass learns the kinds of more names, until nothing changes;
errors count only in the last pass."""
from __future__ import annotations

from typing import NamedTuple

from collections.abc import Mapping

import sympy
from sympy.core.parameters import evaluate

from .. import nodes
from ..errors import SpecError, did_you_mean
from ..spec import Spec
from .frozen import frozen
from .roles import Roles
from .structure import Structure

UNITS, INPUT_DIM, SCALAR = "units", "input_dim", "1"
MATRIX, SCALAR_KIND = "matrix", "scalar"


class Shapes(NamedTuple):
    variable: Mapping[str, str]               # variable -> its size (a matrix-valued one: its rows)
    param: Mapping[str, tuple[str, ...]]      # parameter -> (rows, columns) or (size,), paper orientation
    square_input: bool                        # the input joins a state element-wise: input_dim == units
    sizes: tuple[str, ...]                    # the named sizes, constructor arguments, as written
    matrix: Mapping[str, tuple[str, str]] = frozen({})   # matrix-valued variables -> (rows, columns)
    exprs: Mapping[str, sympy.Expr] = frozen({})         # right sides with explicit tensor nodes, if any differ
    operands: Mapping[sympy.Expr, sympy.Expr] = frozen({})  # a weight's operand as written -> with explicit nodes
    row_matrices: frozenset[str] = frozenset()           # matrices written right of a row vector (x_t W): (in, out)


class Vec(NamedTuple):
    """A vector (a scalar when its class is labelled 1), column or row."""

    cls: str
    row: bool = False
    guess: str | None = None     # a parameter, or a state read at t-1, whose kind is not known yet


class Mat(NamedTuple):
    rows: str
    cols: str


class _Special(NamedTuple):
    kind: str                    # "eye", "diag"
    cls: str | None = None       # diag: its vector's class


class _Unknown(Exception):
    """In a discovery pass: this part's shape is not known yet."""


def infer_shapes(spec: Spec, structure: Structure, roles: Roles) -> Shapes:
    tensor = any(isinstance(node, nodes.WRITTEN_TENSOR_NODES) for _, node in structure.nodes())
    hints: dict[str, str] = {}
    if tensor:
        for _ in range(2 * len(structure.equations) + 4):
            found = _Sizes(spec, structure, roles, hints, strict=False).discover()
            matrices = {name: kind for name, kind in found.items() if kind == MATRIX}
            if matrices != {name: kind for name, kind in hints.items() if kind == MATRIX}:
                hints = matrices  # what is a scalar is only learned once the matrices are settled
                continue
            if found == hints:
                break
            hints = found
    return _Sizes(spec, structure, roles, hints, strict=True).run(tensor)


class _Sizes:
    """Union-find over size classes; keys are "v:<variable>", "p:<parameter>", "m:<matrix rows>",
    "<key>#r" / "<key>#c" for a matrix value's rows and columns, "n:<k>" for values made inside."""

    def __init__(self, spec: Spec, structure: Structure, roles: Roles, hints: Mapping[str, str], strict: bool):
        self.spec, self.structure, self.roles = spec, structure, roles
        self.hints, self.strict = hints, strict
        self.parent: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self.holds_variable: dict[str, bool] = {}
        self.matrix_columns: dict[str, tuple[str, sympy.Expr]] = {}
        self.found = {name: kind for name, kind in hints.items() if kind == MATRIX}  # kinds only grow
        self.fresh = 0
        self.eyes: list[tuple[sympy.Symbol, str]] = []
        self.operands: dict[sympy.Expr, sympy.Expr] = {}
        self.row = spec.row_vectors  # `vectors: row`: a vector as written is a row
        self.row_matrices: set[str] = set()
        self.scalar_columns: set[sympy.Expr] = set()  # AsColumn nodes that hold a scalar

    def find(self, key: str) -> str:
        while self.parent.setdefault(key, key) != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def new(self, label: str | None = None) -> str:
        self.fresh += 1
        key = f"n:{self.fresh}"
        if label:
            self.labels[self.find(key)] = label
        return self.find(key)

    # -- the passes -----------------------------------------------------------------------
    def _start(self) -> dict[str, str]:
        structure = self.structure
        named: dict[str, str] = {}
        for key, value in self.spec.sizes:
            if key.value not in structure.variables and not (value.value == SCALAR and key.value in structure.params):
                raise SpecError(f"`sizes` names {key.value!r}, which is not a variable", key.span,
                                did_you_mean(key.value, structure.variables) or
                                "name a variable; it gets that size (a parameter may be given size 1: one "
                                "learned number)")
            if key.value in structure.params:  # `sizes: {beta: 1}`: one learned number
                self.labels[self.find("p:" + key.value)] = SCALAR
                continue
            if value.value in structure.variables or value.value in structure.params:
                raise SpecError(f"size name {value.value!r} is also a variable or parameter", value.span,
                                "a size is a constructor argument; give it a name of its own, e.g. "
                                f"{value.value}_size")
            named[key.value] = value.value
        for var in structure.variables:
            self.holds_variable[self.find("v:" + var)] = True
            if self.hints.get(var) == MATRIX:
                self.holds_variable[self.find(f"v:{var}#r")] = self.holds_variable[self.find(f"v:{var}#c")] = True
            if var in named:
                self.labels["v:" + var] = named[var]
            elif self.hints.get(var) == SCALAR_KIND:
                self.labels[self.find("v:" + var)] = SCALAR
        for name in structure.params:
            if self.hints.get(name) == SCALAR_KIND:
                self.labels[self.find("p:" + name)] = SCALAR
        self.labels[self.find("v:" + structure.input)] = INPUT_DIM
        return named

    def discover(self) -> dict[str, str]:
        """One pass that skips what it cannot place yet: the kinds it learned."""
        self._start()
        for name in self.structure.order:
            eq = self.structure.equation(name)
            try:
                value, _ = self.visit(eq.expr, eq)
                if value is not None:
                    self.assign(eq, value)
            except (_Unknown, SpecError):
                continue
        found = dict(self.found)
        for name in self.structure.variables:
            if name not in found and self.labels.get(self.find("v:" + name)) == SCALAR:
                found[name] = SCALAR_KIND
        for name in self.structure.params:
            if name not in found and self.labels.get(self.find("p:" + name)) == SCALAR:
                found[name] = SCALAR_KIND
        return found

    def run(self, tensor: bool) -> Shapes:
        structure = self.structure
        named = self._start()
        exprs: dict[str, sympy.Expr] = {}
        for eq in structure.equations:
            value, expr = self.visit(eq.expr, eq)
            if value is not None:
                self.assign(eq, value)
            exprs[eq.target] = expr
        _check_per_example(structure)
        square = [False]
        variable, matrix = {}, {}
        for v in structure.variables:
            if self.hints.get(v) == MATRIX:
                matrix[v] = (self.resolve(f"v:{v}#r", square), self.resolve(f"v:{v}#c", square))
                variable[v] = matrix[v][0]
            else:
                variable[v] = self.resolve("v:" + v, square)
        if structure.output in matrix:
            eq = structure.equation(structure.output)
            raise SpecError(f"the output {structure.output}_t is a matrix", eq.span,
                            "a layer outputs a vector: read the matrix with a vector (C_t q_t) and output that, "
                            "or choose another `output`")
        param: dict[str, tuple[str, ...]] = {}
        for name in structure.params:
            if self.roles.role[name] == "matrix":
                col_class, operand = self.matrix_columns[name]
                col = INPUT_DIM if operand == sympy.Symbol(structure.input) else self.resolve(col_class, square)
                param[name] = (self.resolve("m:" + name, square), col)
            elif self.hints.get(name) == MATRIX:
                param[name] = (self.resolve(f"p:{name}#r", square), self.resolve(f"p:{name}#c", square))
            else:
                param[name] = (self.resolve("p:" + name, square),)
        sizes = tuple(dict.fromkeys(value.value for _, value in self.spec.sizes if value.value != SCALAR))
        if tensor:
            eyes = {symbol: nodes.size_symbol(self.resolve(key, square)) for symbol, key in self.eyes}
            with evaluate(False):
                exprs = {name: expr.xreplace(eyes) for name, expr in exprs.items()}
            changed = {eq.target: exprs[eq.target] for eq in structure.equations if exprs[eq.target] != eq.expr}
            with evaluate(False):
                operands = {k: v.xreplace(eyes) for k, v in self.operands.items()}
        else:
            changed, operands = {}, {}
        return Shapes(frozen(variable), frozen(param), square[0], sizes, frozen(matrix), frozen(changed),
                      frozen(operands), frozenset(self.row_matrices))

    # -- classes --------------------------------------------------------------------------
    def assign(self, eq, value) -> None:
        """The variable `eq` defines takes the shape of its definition."""
        target = eq.target
        if isinstance(value, Mat):
            if not self.strict:
                self.found[target] = MATRIX
            elif self.hints.get(target) != MATRIX:
                self.fail(f"the shape of {target}_t could not be settled", eq.span,
                          "define it from values whose shapes are known (a state read at t-1 takes the shape "
                          "of its definition)")
            self.union(f"v:{target}#r", value.rows, eq, broadcast=False)
            self.union(f"v:{target}#c", value.cols, eq, broadcast=False)
        elif isinstance(value, Vec):
            if self.hints.get(target) == MATRIX:
                self.fail(f"{target}_t is a matrix, but its definition is a vector", eq.span,
                          "a state keeps one shape: make every term of its definition a matrix")
            self.union("v:" + target, value.cls, eq, broadcast=False)
        else:
            self.fail(f"{target}_t is defined as `{'I' if value.kind == 'eye' else 'diag(...)'}` alone", eq.span,
                      "`I` and `diag(a)` stand in products (S_{t-1} (I - ...), diag(a) S); write a ⊙ v for a vector")

    def union(self, a: str, b: str, eq, broadcast: bool = True, what: str = "", node=None) -> str:
        """The class of an element-wise combination of a and b (`broadcast`: a scalar, size 1,
        broadcasts against anything), or of a variable and its definition (`broadcast=False`)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        la, lb = self.labels.get(ra), self.labels.get(rb)
        if broadcast and (la == SCALAR) != (lb == SCALAR):
            return rb if la == SCALAR else ra
        if la and lb and la != lb:
            if not broadcast and SCALAR in (la, lb):
                raise SpecError(f"{eq.target}_t is a scalar (size 1) but its definition has size "
                                f"{lb if la == SCALAR else la}", eq.span,
                                "a scalar holds one number per example: define it from scalars, or drop its "
                                "size 1 in `sizes`")
            if what:
                self.fail(f"{what} needs equal sizes, got {la} and {lb}", self.span(eq, node) if node is not None else eq.span,
                          "the sizes that meet in a product must agree; check which is transposed")
            raise SpecError(f"element-wise combination of vectors of sizes {la} and {lb}",
                            self.caret(eq, ra, rb),
                            "element-wise operations need equal sizes; a matrix changes the size")
        self.parent[rb] = ra
        if lb and not la:
            self.labels[ra] = lb
        self.holds_variable[ra] = self.holds_variable.get(ra, False) or self.holds_variable.get(rb, False)
        return ra

    def is_scalar(self, value) -> bool:
        return isinstance(value, Vec) and self.labels.get(self.find(value.cls)) == SCALAR

    def caret(self, eq, ra: str, rb: str):
        """A name of either side that is not a matrix's operand, else the equation's target."""
        operands = {m.args[1] for m in sympy.preorder_traversal(eq.expr) if isinstance(m, nodes.MatVec)}
        direct = []
        for r in eq.refs:
            symbol = nodes.prev(r.name) if r.time else sympy.Symbol(r.name)
            if symbol not in operands:
                direct.append((r, ("v:" + r.name,) if r.time is not None else ("p:" + r.name, "m:" + r.name)))
        return next((r.span for root in (rb, ra) for r, keys in direct
                     if any(k in self.parent and self.find(k) == root for k in keys)), eq.span)

    def fail(self, message: str, span, hint: str = ""):
        if not self.strict:
            raise _Unknown()
        raise SpecError(message, span, hint)

    def learn(self, value: Vec) -> None:
        """In a discovery pass, a value that must be a matrix: if it is a parameter or a state
        read at t-1, it is one from the next pass on; otherwise the last pass says what is wrong."""
        if not self.strict and value.guess is not None:
            self.found[value.guess] = MATRIX
            raise _Unknown()

    def span(self, eq, node):
        """Where `node` is written: a product or transpose as recorded by the parser, a name
        where it is first written in the equation, else the equation's target."""
        if node in eq.spans:
            return eq.spans[node]
        if node.is_Symbol:
            name, time = (nodes.prev_of(node), -1) if nodes.prev_of(node) else (node.name, None)
            for ref in eq.refs:
                if ref.name == name and (ref.time == time or (time is None and ref.time == 0)):
                    return ref.span
        return eq.span

    # -- values ---------------------------------------------------------------------------
    def visit(self, expr, eq):
        """(shape, expression with explicit tensor nodes); shape None: a number or a constant."""
        structure = self.structure
        if expr.is_Number or (expr.is_Symbol and expr.name in structure.constants):
            return None, expr  # a number or a constant broadcasts
        if expr.is_Symbol:
            return self.name_value(expr), expr
        if isinstance(expr, nodes.MatVec):
            return self.weight_product(expr, eq)
        if isinstance(expr, nodes.Times):
            return self.times(expr, eq)
        if isinstance(expr, nodes.Transposed):
            value, inner = self.visit(expr.args[0], eq)
            if isinstance(value, Mat):
                return Mat(value.cols, value.rows), nodes.SwapAxes(inner)
            if isinstance(value, Vec):
                return (value if self.is_scalar(value) else Vec(value.cls, not value.row)), inner
            if value is None:
                return None, inner
            self.fail("a transpose of `I` or `diag(...)`", self.span(eq, expr), "they are symmetric: drop the ^T")
        if isinstance(expr, nodes.Eye):
            return _Special("eye"), expr
        if isinstance(expr, nodes.Diag):
            value, inner = self.visit(expr.args[0], eq)
            if not isinstance(value, Vec) or self.is_scalar(value):
                self.fail("diag(...) of something that is not a vector", self.span(eq, expr),
                          "diag(a) is the diagonal matrix of a vector a")
            return _Special("diag", value.cls), inner
        if isinstance(expr, nodes.Norm):
            value, inner = self.visit(expr.args[0], eq)
            if not isinstance(value, Vec):
                self.fail("the norm of something that is not a vector", self.span(eq, expr),
                          "\\|a\\| is the Euclidean norm of a vector a")
            return Vec(self.new(SCALAR)), nodes.Norm(inner)
        return self.elementwise(expr, eq)

    def name_value(self, expr):
        structure = self.structure
        previous = nodes.prev_of(expr)
        name = previous if previous is not None else expr.name
        if previous is not None or name in structure.variables or name == structure.input:
            if self.hints.get(name) == MATRIX or (previous is None and self.found.get(name) == MATRIX):
                return Mat(self.find(f"v:{name}#r"), self.find(f"v:{name}#c"))
            return Vec(self.find("v:" + name), self.row, guess=name if previous is not None else None)
        if self.hints.get(name) == MATRIX:
            return Mat(self.find(f"p:{name}#r"), self.find(f"p:{name}#c"))
        return Vec(self.find("p:" + name), self.row, guess=name)

    def weight_product(self, expr, eq):
        structure = self.structure
        matrix, operand = expr.args
        col, inner = self.visit(operand, eq)
        if isinstance(col, Vec) and self.is_scalar(col):
            raise SpecError(f"matrix {matrix.name!r} multiplies a scalar", structure.param_spans.get(matrix.name, eq.span),
                            "a matrix maps a vector to a vector; multiply a scalar element-wise (*)")
        if col is None:
            raise SpecError(f"matrix {matrix.name!r} multiplies a constant",
                            structure.param_spans.get(matrix.name, eq.span),
                            "a matrix multiplies a vector: a variable, the input or an expression of them")
        row = isinstance(expr, nodes.RowMatVec)  # `x_t W` (vectors: row)
        if not isinstance(col, Vec) or col.row != row:
            what = ("a row vector" if isinstance(col, Vec) and col.row else "a column vector" if isinstance(col, Vec)
                    else "a matrix" if isinstance(col, Mat) else "`I` or diag(...)")
            hint = ("with `vectors: row`, a row vector multiplies a weight matrix from the left (x_t W)" if self.row
                    else "a weight matrix multiplies a column vector (W x_t); read a matrix value with a vector "
                         "first (C_t q_t)")
            self.fail(f"weight matrix {matrix.name!r} multiplies {what}", structure.param_spans.get(matrix.name, eq.span),
                      hint)
        if row:
            self.row_matrices.add(matrix.name)
        self.matrix_columns.setdefault(matrix.name, (col.cls, operand))
        if inner != operand:
            self.operands[operand] = inner
            with evaluate(False):
                expr = type(expr)(matrix, inner)
        return Vec(self.find("m:" + matrix.name), row), expr

    def elementwise(self, expr, eq):
        """An element-wise operation (+, *, /, powers, functions): the operands' shapes join;
        a scalar or a vector meeting a matrix stands as a column (`AsColumn`) to broadcast."""
        parts = []
        for a in expr.args:
            try:
                parts.append(self.visit(a, eq))
            except _Unknown:  # discovery: the other operands may still tell the shape
                continue
        if not parts:
            raise _Unknown()
        if len(parts) < len(expr.args):  # a discovery pass only reads the shape: a matrix if any part is one
            return next((v for v, _ in parts if isinstance(v, Mat)), parts[-1][0]), expr
        shapes = [p[0] for p in parts]
        for a, value in zip(expr.args, shapes):
            if isinstance(value, _Special) and not (value.kind == "eye" and isinstance(a, nodes.Eye)):
                self.fail(f"`{'I' if value.kind == 'eye' else 'diag(...)'}` combined element-wise", self.span(eq, a),
                          "`I` is added to or subtracted from a matrix; `diag(a)` multiplies a matrix")
        matrices = [v for v in shapes if isinstance(v, Mat)]
        eyes = [i for i, a in enumerate(expr.args) if isinstance(a, nodes.Eye)]
        if eyes and not matrices:
            for value in shapes:
                if isinstance(value, Vec):
                    self.learn(value)  # `I - U`: U is a matrix
            self.fail("`I` combined with something that is not a matrix", self.span(eq, expr.args[eyes[0]]),
                      "`I` is the identity matrix: add it to or subtract it from a matrix")
        args = [p[1] for p in parts]
        if not matrices:
            classes = [v.cls for v in shapes if v is not None]
            if not classes:
                return None, self._rebuild(expr, args)
            out = classes[0]
            for c in classes[1:]:
                out = self.union(out, c, eq)
            rows = [v for v in shapes if v is not None and not self.is_scalar(v)]
            return Vec(self.find(out), rows[0].row if rows else False), self._rebuild(expr, args)
        rows, cols = matrices[0].rows, matrices[0].cols
        for m in matrices[1:]:
            rows = self.union(rows, m.rows, eq)
            cols = self.union(cols, m.cols, eq)
        for i, value in enumerate(shapes):
            if isinstance(value, Vec) and not self.is_scalar(value):
                self.learn(value)  # a parameter or a state combined with a matrix is one (Mamba's A)
                if not self.strict:
                    continue  # discovery: a term whose parts are not known yet; the matrices tell the shape
                self.fail("a vector combined element-wise with a matrix", self.span(eq, expr.args[i]),
                          "write diag(a) S to scale the rows of S by a vector a, S diag(a) for its columns")
            if isinstance(value, Vec):
                args[i] = nodes.AsColumn(args[i])
                if self.is_scalar(value):
                    self.scalar_columns.add(args[i])
        for i in eyes:
            rows = self.union(rows, cols, eq, what="`I` plus a matrix (a square one)")
            symbol = sympy.Symbol(f"#eye{len(self.eyes)}")
            self.eyes.append((symbol, rows))
            args[i] = nodes.Eye(symbol)
        return Mat(self.find(rows), self.find(cols)), self._rebuild(expr, args)

    @staticmethod
    def _rebuild(expr, args):
        if tuple(args) == expr.args:
            return expr
        with evaluate(False):
            return expr.func(*args)

    def times(self, expr, eq):
        """`a b` of values: what it computes follows from the shapes."""
        (left, a), (right, b) = (self.visit(arg, eq) for arg in expr.args)
        span = self.span(eq, expr)
        # a scaling: a number, a constant or a scalar on either side
        for one, other, x, y in ((left, right, a, b), (right, left, b, a)):
            if one is None or self.is_scalar(one):
                if isinstance(other, Mat) and one is not None:
                    x = nodes.AsColumn(x)
                    self.scalar_columns.add(x)
                if isinstance(other, _Special):
                    self.fail("a scalar times `I` or diag(...)", span, "multiply the matrix they stand in instead")
                return other, (nodes.mul(x, y) if one is left else nodes.mul(y, x))
        if isinstance(left, _Special) or isinstance(right, _Special):
            return self.special_times(left, right, a, b, expr, eq)
        if isinstance(left, Mat) and isinstance(right, Mat):
            self.union(left.cols, right.rows, eq, what="a matrix product", node=expr)
            return Mat(left.rows, right.cols), self.matrix_product(a, b)
        if isinstance(left, Mat):
            if right.row:
                self.fail("a matrix times a row vector", span, "a matrix multiplies a column vector (S q) or a matrix")
            self.union(left.cols, right.cls, eq, what="a matrix-vector product", node=expr)
            if isinstance(a, nodes.SwapAxes):  # S^T q: q^T S, without transposing S first
                return Vec(self.find(left.rows)), nodes.VectorMatrix(b, a.args[0])
            return Vec(self.find(left.rows)), nodes.MatrixVector(a, b)
        if isinstance(right, Mat):
            if not left.row:
                self.fail("a column vector times a matrix", span,
                          "transpose the vector (k^T S), or write the matrix first (S^T k)")
            self.union(left.cls, right.rows, eq, what="a vector-matrix product", node=expr)
            if isinstance(b, nodes.SwapAxes):  # k^T S^T: S k
                return Vec(self.find(right.cols), True), nodes.MatrixVector(b.args[0], a)
            return Vec(self.find(right.cols), True), nodes.VectorMatrix(a, b)
        if left.row and not right.row:
            self.union(left.cls, right.cls, eq, what="a dot product", node=expr)
            return Vec(self.new(SCALAR)), nodes.DotProduct(a, b)
        if not left.row and right.row:
            return Mat(self.find(left.cls), self.find(right.cls)), nodes.Outer(a, b)
        if isinstance(expr, nodes.BracketTimes) and not left.row:  # `a_t(U h_{t-1} + 1)`: element-wise
            return Vec(self.union(left.cls, right.cls, eq)), nodes.mul(a, b)
        kind = "row" if left.row else "column"
        self.fail(f"a product of two {kind} vectors", span,
                  "u^T v is a dot product, u v^T an outer product; * or ⊙ multiplies element-wise")

    def matrix_product(self, a, b):
        """A B of two matrix values, without a d^3 product where the equations allow it:
        A (I - X) = A - A X, A (u v^T) = (A u) v^T, A (s X) = s (A X) for a scalar s, and the same
        from the left (DeltaNet's S_{t-1} (I - b_t k_t k_t^T) costs d^2 per step, not d^3)."""
        for matrix, other, left in ((b, a, False), (a, b, True)):
            if isinstance(matrix, sympy.Add) and any(isinstance(t, nodes.Eye) for t in matrix.args):
                terms = [other if isinstance(t, nodes.Eye) else
                         (self.matrix_product(t, other) if left else self.matrix_product(other, t)) for t in matrix.args]
                return nodes.add(*terms)
            if isinstance(matrix, sympy.Mul):
                scalars = [f for f in matrix.args if self.scalar_node(f)]
                rest = [f for f in matrix.args if not self.scalar_node(f)]
                if scalars and len(rest) == 1:
                    inner = self.matrix_product(rest[0], other) if left else self.matrix_product(other, rest[0])
                    return nodes.mul(*scalars, inner)
            if isinstance(matrix, nodes.Outer):
                u, v = matrix.args
                if left:  # (u v^T) B = u (v^T B)
                    return nodes.Outer(u, nodes.VectorMatrix(v, other))
                return nodes.Outer(nodes.MatrixVector(other, u), v)  # A (u v^T) = (A u) v^T
        return nodes.MatrixMatrix(a, b)

    def scalar_node(self, node) -> bool:
        """A factor that is one number per example (or a number): it commutes with matrices."""
        if node.is_Number or (node.is_Symbol and node.name in self.structure.constants):
            return True
        if node in self.scalar_columns:
            return True
        if isinstance(node, sympy.Pow):
            return self.scalar_node(node.args[0]) and node.args[1].is_Number
        return False

    def special_times(self, left, right, a, b, expr, eq):
        span = self.span(eq, expr)
        if isinstance(left, _Special) and isinstance(right, _Special):
            self.fail("a product of `I` or diag(...) with each other", span, "write the product out")
        if isinstance(left, _Special):
            special, other, x = left, right, b
        else:
            special, other, x = right, left, a
        if special.kind == "eye":  # I S = S, x^T I = x^T
            return other, x
        diag = a if special is left else b
        if isinstance(other, Vec) and other.guess in self.structure.params:
            self.learn(other)  # diag(d) A: A is a matrix
        if isinstance(other, Vec) and other.guess is not None and not self.strict:
            raise _Unknown()  # diag(a) S_{t-1}: S's other terms tell whether it is a matrix
        if isinstance(other, Vec):
            if (special is left) == other.row:
                self.fail("diag(...) on the wrong side of a vector", span,
                          "diag(a) v is a column (a ⊙ v); v^T diag(a) a row")
            return Vec(self.union(special.cls, other.cls, eq), other.row), nodes.mul(diag, x)
        if special is left:  # diag(a) S: the rows of S scaled
            self.union(special.cls, other.rows, eq, what="diag(a) S", node=expr)
            return other, nodes.mul(nodes.AsColumn(diag), x)
        self.union(special.cls, other.cols, eq, what="S diag(a)", node=expr)
        return other, nodes.mul(x, nodes.AsRow(diag))

    def resolve(self, key: str, square: list[bool]) -> str:
        root = self.find(key)
        label = self.labels.get(root)
        if label == INPUT_DIM and any(self.holds_variable.get(k) and self.find(k) == root
                                      for k in list(self.parent)
                                      if k.startswith("v:") and k != "v:" + self.structure.input):
            square[0] = True
            return UNITS
        return label or UNITS



def _check_per_example(structure: Structure) -> None:
    """The output and the states hold a value per example: each reads the input or a state, at
    least through other variables (a definition of numbers, constants and weights alone is the
    same for every example, and has no batch axis in the step)."""
    varying = {structure.input}
    changed = True
    while changed:
        changed = False
        for eq in structure.equations:
            if eq.target not in varying and any(nodes.prev_of(s) is not None or s.name in varying
                                                for s in eq.expr.free_symbols):
                varying.add(eq.target)
                changed = True
    for eq in structure.equations:
        if eq.target not in varying and (eq.target == structure.output or eq.target in structure.states):
            what = "the output" if eq.target == structure.output else "a state"
            raise SpecError(f"{eq.target}_t, {what}, is the same for every example: it reads neither the input "
                            "nor a state", eq.span,
                            "a per-example value reads x_t or a value at t-1; numbers, constants and weights "
                            "alone are the same for every example")
