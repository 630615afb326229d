"""The shared base of eqcell's printers: refuse nodes the parser never makes."""
from __future__ import annotations

from collections.abc import Mapping

from sympy import preorder_traversal
from sympy.printing.str import StrPrinter

from .. import nodes
from ..nodes import PARSER_NODES


class PrinterError(Exception):
    """An expression holds a node this printer cannot print (an eqcell bug, not a spec error)."""


class EqPrinter(StrPrinter):
    """StrPrinter that keeps the written term order and maps names and functions from tables."""

    def __init__(self, names: Mapping[str, str], functions: Mapping[str, str]):
        super().__init__({"order": "none"})
        self._names, self._functions = names, functions

    def doprint(self, expr):
        for node in preorder_traversal(expr):
            if not isinstance(node, PARSER_NODES):
                raise PrinterError(f"{type(self).__name__} cannot print {type(node).__name__}")
        return super().doprint(expr)

    def _print_Symbol(self, expr):
        return self._names[expr.name]

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_ElementwiseBase(self, expr):
        name = type(expr).__name__
        if name not in self._functions:
            raise PrinterError(f"{type(self).__name__} has no function {name!r}")
        return f"{self._functions[name]}({', '.join(self._print(a) for a in expr.args)})"

    def _print_MatVec(self, expr):
        raise PrinterError(f"{type(self).__name__}: matrix products are fused before printing")


class WrittenTensorPrinting:
    """Prints the products, transposes, `diag`, `I` and norms as the spec writes them (mixed into
    the plain and LaTeX printers): `v_t k_t^T`, `S_{t-1} (I - b_t k_t k_t^T)`, `diag(a_t) S`."""

    transpose, norm, diag = "^T", ("‖", "‖"), "diag"

    def _factor(self, expr) -> str:
        """A factor of a product, bracketed unless it is a name, a call or a transpose of one."""
        if expr.is_Symbol or isinstance(expr, (nodes.ElementwiseBase, nodes.Diag, nodes.Eye, nodes.Norm)):
            return self._print(expr)
        if isinstance(expr, nodes.Transposed) and expr.args[0].is_Symbol:
            return self._print(expr)
        if isinstance(expr, (nodes.Times, nodes.MatVec)) and not isinstance(expr, nodes.BracketTimes):
            return self._print(expr)
        return f"({self._print(expr)})"

    def _print_Times(self, expr):
        left, right = expr.args
        if isinstance(expr, nodes.BracketTimes):
            return f"{self._factor(left)}({self._print(right)})"
        first = self._factor(left) if not isinstance(left, nodes.Times) else f"({self._print(left)})"
        return f"{first} {self._factor(right)}"

    _print_BracketTimes = _print_Times

    def _print_Transposed(self, expr):
        inner = expr.args[0]
        text = self._print(inner) if inner.is_Symbol else f"({self._print(inner)})"
        return text + self.transpose

    def _print_Diag(self, expr):
        return f"{self.diag}({self._print(expr.args[0])})"

    def _print_Eye(self, expr):
        return "I"

    def _print_Norm(self, expr):
        return f"{self.norm[0]}{self._print(expr.args[0])}{self.norm[1]}"
