"""Prints an equation as LaTeX that eqcell's own LaTeX reader parses back to the same cell."""
from __future__ import annotations

from collections.abc import Iterable

from sympy.printing.precedence import PRECEDENCE

from ..nodes import FUNCTIONS, prev_of
from ..parse import GREEK, LATEX_ACCENTS
from .base import EqPrinter, WrittenTensorPrinting

LATEX_FUNCTIONS = {"sigmoid": r"\sigma", "tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "max": r"\max",
                   "min": r"\min"}
ACCENTS = tuple(dict.fromkeys(LATEX_ACCENTS.values()))  # tilde, hat, bar


def latex_name(name: str) -> str:
    """W_xf -> W_{xf}, htilde -> \\tilde{h}, alpha -> \\alpha, proj -> \\mathrm{proj}."""
    base, _, sub = name.partition("_")
    accent = next((a for a in ACCENTS if base.endswith(a) and len(base) > len(a)), None)
    core = base[: -len(accent)] if accent else base
    core = core if len(core) == 1 else f"\\{core}" if core in GREEK else f"\\mathrm{{{core}}}"
    out = f"\\{accent}{{{core}}}" if accent else core
    return f"{out}_{{{sub}}}" if sub else out


class LatexPrinter(WrittenTensorPrinting, EqPrinter):
    transpose, norm, diag = "^{\\top}", ("\\|", "\\|"), "\\operatorname{diag}"

    def __init__(self, variables: Iterable[str], input_name: str):
        self._variables, self._input = set(variables), input_name
        super().__init__({}, {})

    def doprint(self, expr):
        return super().doprint(expr).replace("*", r" \odot ")

    def _print_Symbol(self, expr):
        name = expr.name
        if prev_of(name) in self._variables or prev_of(name) == self._input:
            return self._timed(prev_of(name), "t-1")
        if name in self._variables or name == self._input:
            return self._timed(name, "t")
        return latex_name(name)

    @staticmethod
    def _timed(name: str, index: str) -> str:
        return f"{latex_name(name)}_{{{index}}}" if len(index) > 1 else f"{latex_name(name)}_{index}"

    def _print_ElementwiseBase(self, expr):
        name = type(expr).__name__
        head = LATEX_FUNCTIONS.get(name, f"\\operatorname{{{'LN' if name == 'layer_norm' else name}}}")
        if name not in FUNCTIONS:  # a function the spec declares (`\phi`): its name as the paper writes it
            head = latex_name(name)
        args = expr.args[:1] if name == "layer_norm" else expr.args  # its gain and bias are implicit
        return f"{head}({', '.join(self._print(a) for a in args)})"

    def _print_Pow(self, expr):
        base, exponent = expr.args
        if exponent == -1:
            return f"1/{self.parenthesize(base, PRECEDENCE['Mul'] + 1)}"
        left = self._print(base)
        if not (base.is_Symbol or (base.is_Number and base >= 0)):
            left = f"({left})"
        return f"{left}^{{{self._print(exponent)}}}"

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
