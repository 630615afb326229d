"""The torch target's parameter names: the CellIR with its fused weights renamed as PyTorch's own
recurrent modules name them, so that a spec written as PyTorch documents nn.LSTM loads nn.LSTM's
state_dict unchanged.

    kernel (the product with x_t)            -> weight_ih   (stored (width, input_size))
    recurrent_kernel (the product with h)    -> weight_hh
    a stacked bias, one row per product      -> bias_ih, bias_hh (one parameter each)
    a single fused bias                      -> bias_ih
    anything else (peepholes, A, D, ...)     -> its own name

A pure function of the IR, run by the torch target's render only; the keras targets keep Keras's
names (eqcell.analysis.keras_names)."""
from __future__ import annotations

import sympy

from ..ir import CellIR, Operand, Param, Product

_KERNELS = {"kernel": "weight_ih", "recurrent_kernel": "weight_hh"}


def for_torch(ir: CellIR) -> CellIR:
    """`ir` with PyTorch's parameter names, each stacked bias row a parameter of its own."""
    taken = {w.name for w in ir.weights}
    kernels = {old: new for old, new in _KERNELS.items() if old in taken and new not in taken}
    rows: dict[tuple[str, int | None], str] = {}   # (keras bias, row) -> torch name
    for step in ir.steps:
        if not isinstance(step, Product):
            continue
        for op in step.operands:
            if op.bias is None or (op.bias, op.bias_row) in rows:
                continue
            kernel = kernels.get(op.weight, op.weight)
            name = "bias_" + kernel[len("weight_"):] if kernel.startswith("weight_") else f"{kernel}_bias"
            rows[op.bias, op.bias_row] = name if op.bias == "bias" or op.bias_row is not None else op.bias
    weights = []
    for w in ir.weights:
        if w.kind == "bias" and (w.name, None) in rows:
            weights.append(w._replace(name=rows[w.name, None]))
        elif w.kind == "bias" and w.rows:
            per_row = len(w.members) // w.rows
            for row in range(w.rows):
                weights.append(w._replace(name=rows[w.name, row], shape=w.shape[1:], rows=0,
                                          members=w.members[row * per_row:(row + 1) * per_row]))
        else:
            weights.append(w._replace(name=kernels.get(w.name, w.name)))
    params = tuple(_param(p, kernels, rows) for p in ir.params)
    # no recurrent dropout (PyTorch's cells have none): the products read the state itself
    unmasked = ({sympy.Symbol(ir.recurrent_dropout.masked): sympy.Symbol(ir.recurrent_dropout.prev)}
                if ir.recurrent_dropout else {})

    def renamed(items):
        return tuple(item._replace(operands=tuple(_operand(op, kernels, rows, unmasked) for op in item.operands))
                     if isinstance(item, Product) else item for item in items)

    return ir._replace(weights=tuple(weights), params=params, steps=renamed(ir.steps),
                       scan=None if ir.scan is None else renamed(ir.scan), recurrent_dropout=None)


def _param(p: Param, kernels, rows) -> Param:
    if (p.weight, p.row) in rows:
        return p._replace(weight=rows[p.weight, p.row], row=None)
    return p._replace(weight=kernels.get(p.weight, p.weight))


def _operand(op: Operand, kernels, rows, unmasked) -> Operand:
    bias = rows.get((op.bias, op.bias_row), op.bias) if op.bias else None
    return op._replace(weight=kernels.get(op.weight, op.weight), bias=bias, bias_row=None,
                       expr=op.expr.xreplace(unmasked) if unmasked else op.expr)
