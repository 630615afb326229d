"""The shared base of eqcell's printers: refuse nodes the parser never makes."""
from __future__ import annotations

from collections.abc import Mapping

from sympy import preorder_traversal
from sympy.printing.str import StrPrinter

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
