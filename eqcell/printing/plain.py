"""Prints an equation back in the spec's plain syntax: the canonical form for comments and
docstrings, so a plain spec and its LaTeX spelling generate the same module."""
from __future__ import annotations

from collections.abc import Iterable

from ..nodes import FUNCTIONS, prev
from .base import EqPrinter, WrittenTensorPrinting


class PlainPrinter(WrittenTensorPrinting, EqPrinter):
    def __init__(self, variables: Iterable[str], input_name: str):
        names = {v: f"{v}_t" for v in variables}
        names.update({prev(v).name: f"{v}_{{t-1}}" for v in variables})
        names[input_name] = f"{input_name}_t"
        names[prev(input_name).name] = f"{input_name}_{{t-1}}"
        super().__init__(names, {f: f for f in FUNCTIONS})

    def _print_Symbol(self, expr):
        return self._names.get(expr.name, expr.name)

    def _print_RowMatVec(self, expr):
        matrix, vector = expr.args
        if vector.is_Symbol:
            return f"{self._print(vector)} {self._print(matrix)}"
        return f"({self._print(vector)}) {self._print(matrix)}"

    def _print_MatVec(self, expr):
        matrix, vector = expr.args
        if vector.is_Symbol:
            return f"{self._print(matrix)} {self._print(vector)}"
        return f"{self._print(matrix)}({self._print(vector)})"

    transpose, norm = "^T", ("‖", "‖")

    def _print_ElementwiseBase(self, expr):  # a declared function (`phi`) prints as written
        name = type(expr).__name__
        return f"{self._functions.get(name, name)}({', '.join(self._print(a) for a in expr.args)})"

    def _print_layer_norm(self, expr):
        return f"layer_norm({self._print(expr.args[0])})"
