"""Stage 2: what each parameter is. A matrix (applied to one operand), a layer norm's gain or
bias, or a vector used element-wise; biases are told apart later, by fusion."""
from __future__ import annotations

from typing import NamedTuple

from collections import Counter
from collections.abc import Mapping

import sympy

from .. import nodes
from ..errors import SpecError
from ..printing.plain import PlainPrinter
from .frozen import frozen
from .structure import Structure


class Roles(NamedTuple):
    role: Mapping[str, str]              # "matrix", "vector", "gain", "layer_norm_bias"
    operand: Mapping[str, sympy.Expr]    # matrix -> the one operand it multiplies
    uses: Mapping[str, int]              # matrix -> how many products it appears in


def classify(structure: Structure) -> Roles:
    operand: dict[str, sympy.Expr] = {}
    uses: Counter = Counter()
    role: dict[str, str] = {}
    for eq, node in structure.nodes():
        if isinstance(node, nodes.MatVec):
            matrix, vector = node.args
            uses[matrix.name] += 1
            if matrix.name in operand and operand[matrix.name] != vector:
                plain = PlainPrinter(structure.variables, structure.input)
                raise SpecError(f"matrix {matrix.name!r} multiplies two different operands, "
                                f"{plain.doprint(operand[matrix.name])} and {plain.doprint(vector)}",
                                structure.param_spans[matrix.name],
                                "use one matrix per operand (e.g. W_x and W_h); weights are fused by operand")
            operand.setdefault(matrix.name, vector)
        elif nodes.function_name(node) == "layer_norm":
            role[node.args[1].name] = "gain"
            role[node.args[2].name] = "layer_norm_bias"
    for name in structure.params:
        role[name] = "matrix" if name in operand else role.get(name, "vector")
    _check_matrices_stay_matrices(structure, role)
    return Roles(frozen(role), frozen(operand), frozen(uses))


def _check_matrices_stay_matrices(structure: Structure, role) -> None:
    """A matrix appears only as the left factor of products; one pass over each tree."""
    for eq in structure.equations:
        for parent in sympy.preorder_traversal(eq.expr):
            for i, arg in enumerate(parent.args):
                if not (arg.is_Symbol and role.get(arg.name) == "matrix"):
                    continue
                if not isinstance(parent, nodes.MatVec):
                    raise SpecError(f"parameter {arg.name!r} is used both as a matrix and element-wise",
                                    structure.param_spans[arg.name],
                                    f"use two parameters, e.g. {arg.name} for the product and "
                                    f"{arg.name}_e element-wise")
                if i == 1:
                    raise SpecError(f"parameter {arg.name!r} is used both as a matrix and as an operand",
                                    structure.param_spans[arg.name], "use two parameters")
