"""`eqcell show`: the cell as eqcell understands it, for a human."""
from __future__ import annotations

from .ir import CellIR, ChunkedState
from .printing.latex import LatexPrinter, latex_name


def describe(ir: CellIR, latex: bool = False, units: int = 32, input_dim: int = 32) -> str:
    heads = ir.heads_default if ir.heads else 1
    sizes = {"units": units, "input_dim": input_dim, **{s: units for s in ir.sizes}, "h": heads}
    lines = [f"{ir.name} (layer {ir.layer}), content hash {ir.digest}"]
    if ir.description:
        lines.append("  " + ir.description.splitlines()[0])
    lines.append("")
    lines.append("equations (as parsed):")
    if latex:
        printer = LatexPrinter([target for target, _ in ir.parsed], ir.input)
        lines += [f"  {latex_name(target)}_t &= {printer.doprint(expr)} \\\\" for target, expr in ir.parsed]
    else:
        lines += [f"  {eq}" for eq in ir.equations]
    lines.append("")
    if ir.heads:
        lines.append(f"heads: {ir.heads_default} (constructor argument {ir.heads}); every value but the input is "
                     "per head, h = the number of heads, units/h one head's share of units")
    lines.append("values (per example):")
    width = max(len(v) for v, _ in ir.value_shapes) if ir.value_shapes else 0
    lines += [f"  {v + '_t':<{width + 2}} {shape}" for v, shape in ir.value_shapes]
    lines.append("")
    lines.append("states (t-1 reads, in state-list order):")
    for s in ir.states:
        kept = " (a matrix, kept flattened)" if s.matrix else ""
        lines.append(f"  {s.name}: size {s.size}{kept}, initial {s.initial}")
    lines.append(f"output: {ir.output} (size {ir.output_size})")
    if ir.constants:
        lines.append("constants (constructor arguments): " + ", ".join(
            f"{k.name} = {k.default!r}" + (f" (argument {k.arg})" if k.arg != k.name else "") for k in ir.constants))
    lines.append("")
    lines.append("parameters (paper orientation):")
    for p in ir.params:
        lone = any(w.name == p.weight and w.kind == "vector" for w in ir.weights)
        where = p.weight if lone else f"{p.weight}[{'' if p.row is None else f'{p.row}, '}..., {p.start.text()}:{p.stop.text()}]"
        role = "matrix, element-wise" if p.role == "vector" and len(p.shape) - (1 if ir.heads else 0) == 2 else p.role
        lines.append(f"  {p.name:<10} {role:<7} ({', '.join(p.shape)}{',' if len(p.shape) == 1 else ''})  in {where}")
    lines.append("")
    lines.append("weights (row-vector convention, x @ kernel):")
    total = 0
    for w in ir.weights:
        shape = ", ".join(d.text() for d in w.shape)
        count = 1
        for d in w.shape:
            count *= d.size(sizes)
        total += count
        members = (f" = [{' | '.join(w.members)}]" if w.kind != "initial_state"
                   else f": learned initial value of {w.members[0]}")
        lines.append(f"  {w.name:<18} ({shape}{',' if len(w.shape) == 1 else ''}){members}  {count} values")
    lines.append("")
    named = ", ".join(f"{s}={units}" for s in ir.sizes) + (f", {ir.heads}={heads}" if ir.heads else "")
    lines.append(f"parameter count for units={units}, input_dim={input_dim}{', ' + named if named else ''}: {total}")
    lines.append("")
    when = ("the layer's scan runs it for all steps at once" if ir.scan else
            "the layer runs it for all steps at once when the input has at least as many features")
    lines.append(f"input-only part (project_inputs; {when}): " + ", ".join(_spec_terms(ir, ir.projected)))
    lines.append(f"path: {ir.scan_reason}")
    if ir.scan:
        chunked = any(isinstance(item, ChunkedState) for item in ir.scan)
        lines.append("  (the layer's parallel_scan='auto' loops instead on JAX's CPU backend, where the loop is faster"
                     + (", unless each head's matrix state has 1024 entries or more)" if chunked else ")"))
    if ir.square_input:
        lines.append("note: the input is combined element-wise with the state: input_dim must equal units")
    return "\n".join(lines)



def _spec_terms(ir: CellIR, names) -> list[str]:
    """The generated step's values in the spec's terms: a variable as `v_t`, a product's slice as
    the matrix product it holds (`W_q x_t`), the input-only part of a fused product by its weight."""
    from .ir import Product, Statement

    described = {ir.input_local: f"{ir.input}_t"}
    weights = {w.name: w for w in ir.weights}
    for step in ir.steps:
        if isinstance(step, Statement):
            described[step.target] = f"{step.variable}_t"
        elif isinstance(step, Product):
            lead = weights[step.operands[0].weight]
            hoisted = [op for op in step.operands if op.hoistable]
            for slot, member in zip(step.slots, lead.members):
                described[slot] = f"{member} {lead.operand}"
            if step.partial and hoisted:
                described[step.partial] = " + ".join(f"{ir.input}_t @ {op.weight}" for op in hoisted) + " (+ bias)"
    return [described.get(name, name) for name in names]
