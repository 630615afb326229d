"""Stage 3: sizes. Every variable and parameter gets a size: `units`, `input_dim` or a size the
spec names. Element-wise operations join their operands' sizes (union-find); a matrix maps its
operand's size to its own rows. The only stage that knows about sizes: the next spec format's
scalars, matrices and heads widen it, not the others."""
from __future__ import annotations

from typing import NamedTuple

from collections.abc import Mapping

import sympy

from .. import nodes
from ..errors import SpecError, did_you_mean
from ..spec import Spec
from .frozen import frozen
from .roles import Roles
from .structure import Structure

UNITS, INPUT_DIM, SCALAR = "units", "input_dim", "1"


class Shapes(NamedTuple):
    variable: Mapping[str, str]               # variable -> its size
    param: Mapping[str, tuple[str, ...]]      # parameter -> (rows, columns) or (size,), paper orientation
    square_input: bool                        # the input joins a state element-wise: input_dim == units
    sizes: tuple[str, ...]                    # the named sizes, constructor arguments, as written


def infer_shapes(spec: Spec, structure: Structure, roles: Roles) -> Shapes:
    return _Sizes(spec, structure, roles).run()


class _Sizes:
    """Union-find over size classes; keys are "v:<variable>", "p:<parameter>", "m:<matrix rows>"."""

    def __init__(self, spec: Spec, structure: Structure, roles: Roles):
        self.spec, self.structure, self.roles = spec, structure, roles
        self.parent: dict[str, str] = {}
        self.labels: dict[str, str] = {}
        self.holds_variable: dict[str, bool] = {}
        self.matrix_columns: dict[str, tuple[str, sympy.Expr]] = {}

    def find(self, key: str) -> str:
        while self.parent.setdefault(key, key) != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def run(self) -> Shapes:
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
            if var in named:
                self.labels["v:" + var] = named[var]
        self.labels[self.find("v:" + structure.input)] = INPUT_DIM
        for eq in structure.equations:
            cls = self.visit(eq.expr, eq)
            if cls is not None:
                self.union("v:" + eq.target, cls, eq, broadcast=False)
        square = [False]
        variable = {v: self.resolve("v:" + v, square) for v in structure.variables}
        param: dict[str, tuple[str, ...]] = {}
        for name in structure.params:
            if self.roles.role[name] == "matrix":
                col_class, operand = self.matrix_columns[name]
                col = INPUT_DIM if operand == sympy.Symbol(structure.input) else self.resolve(col_class, square)
                param[name] = (self.resolve("m:" + name, square), col)
            else:
                param[name] = (self.resolve("p:" + name, square),)
        sizes = tuple(dict.fromkeys(value.value for _, value in self.spec.sizes if value.value != SCALAR))
        return Shapes(frozen(variable), frozen(param), square[0], sizes)

    def union(self, a: str, b: str, eq, broadcast: bool = True) -> str:
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
            raise SpecError(f"element-wise combination of vectors of sizes {la} and {lb}",
                            self.caret(eq, ra, rb),
                            "element-wise operations need equal sizes; a matrix changes the size")
        self.parent[rb] = ra
        if lb and not la:
            self.labels[ra] = lb
        self.holds_variable[ra] = self.holds_variable.get(ra, False) or self.holds_variable.get(rb, False)
        return ra

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

    def visit(self, expr, eq) -> str | None:
        structure = self.structure
        if expr.is_Number or (expr.is_Symbol and expr.name in structure.constants):
            return None  # a number or a constant broadcasts
        if expr.is_Symbol:
            previous = nodes.prev_of(expr)
            if previous is not None:
                return self.find("v:" + previous)
            if expr.name in structure.variables or expr.name == structure.input:
                return self.find("v:" + expr.name)
            return self.find("p:" + expr.name)
        if isinstance(expr, nodes.MatVec):
            matrix, operand = expr.args
            col = self.visit(operand, eq)
            if col is not None and self.labels.get(col) == SCALAR:
                raise SpecError(f"matrix {matrix.name!r} multiplies a scalar", structure.param_spans.get(matrix.name, eq.span),
                                "a matrix maps a vector to a vector; multiply a scalar element-wise (*)")
            if col is None:
                raise SpecError(f"matrix {matrix.name!r} multiplies a constant",
                                structure.param_spans.get(matrix.name, eq.span),
                                "a matrix multiplies a vector: a variable, the input or an expression of them")
            self.matrix_columns.setdefault(matrix.name, (col, operand))
            return self.find("m:" + matrix.name)
        classes = [c for c in (self.visit(a, eq) for a in expr.args) if c is not None]
        if not classes:
            return None
        out = classes[0]
        for c in classes[1:]:
            out = self.union(out, c, eq)
        return self.find(out)

    def resolve(self, key: str, square: list[bool]) -> str:
        root = self.find(key)
        label = self.labels.get(root)
        if label == INPUT_DIM and any(self.holds_variable.get(k) and self.find(k) == root
                                      for k in list(self.parent)
                                      if k.startswith("v:") and k != "v:" + self.structure.input):
            square[0] = True
            return UNITS
        return label or UNITS
