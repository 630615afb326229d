"""Stage 3, analyze: Spec -> CellIR, by the stages of `eqcell.analysis`, in order.

Finds the states (anything read at t-1), the parameters and their roles and shapes, fuses the
matrices that share an operand into one Keras weight, folds biases into the fused products,
orders the step, marks what depends on the input only, finds linear recurrences and names
everything. Pure: no file is read here (`eqcell.api` loads the spec and the templates' names)."""
from __future__ import annotations

import hashlib
import json

import sympy

from . import nodes
from .analysis.fusion import fuse
from .analysis.lowering import Heads, Lowered, lower
from .analysis.naming import ModuleNames, Names, choose_names
from .analysis.recurrence import find_recurrence, linear_states
from .analysis.roles import classify
from .analysis.shapes import infer_shapes
from .analysis.structure import Structure, find_structure
from .errors import SpecError, did_you_mean
from .ir import (ActivationArg, CellIR, ChunkedState, Constant, Dim, LinearState, Operand, Param, Product, RecurrentDropout,
                 State, Statement, Weight)
from .parse import parse_equations
from .spec import Spec


def analyze(spec: Spec, module: ModuleNames) -> CellIR:
    """The CellIR of `spec`; `module`: the names the templates use (`render.module_names()`)."""
    structure = find_structure(spec, parse_equations(spec))
    roles = classify(structure)
    shapes = infer_shapes(spec, structure, roles)
    fusion = fuse(spec, structure, roles, shapes)
    initial = _initial_states(spec, structure)
    lowered = lower(spec, structure, roles, shapes, fusion, initial)
    recurrence = find_recurrence(structure, lowered, shapes)
    heads = Heads(spec.heads is not None)
    if heads.on:
        _check_input_per_head(structure, lowered)
    activations = _exposed_activations(spec, structure)
    dropout = (RecurrentDropout(nodes.prev(structure.output).name,
                                nodes.local(f"{structure.output}{nodes.PREV_MARK}_dp").name)
               if lowered.recurrent_operand else None)
    generated = _generated_locals(lowered) + ([dropout.masked] if dropout else []) + list(recurrence.readouts)
    heads_arg = (spec.heads.arg.value,) if spec.heads else ()
    names = choose_names(structure, [(w.name, w.kind, w.arg) for w in lowered.weights], generated,
                         shapes.sizes + heads_arg, [a.arg for a in activations], spec.name.value, _layer_name(spec),
                         module)
    states = tuple(State(s, names.local[s], names.local[nodes.prev(s).name], heads.state_size(shapes, s), initial[s],
                         tuple(heads.size(d) for d in shapes.matrix[s]) if s in shapes.matrix else None,
                         heads.state_shape(shapes, s)) for s in structure.states)
    if structure.input_prev:  # x_{t-1}: the previous input, the last state, zeros before the first step
        states += (State(structure.input, names.local[structure.input], names.local[nodes.prev(structure.input).name],
                         "input_dim", "zeros"),)
    return _Renamed(names).cell(CellIR(
        name=spec.name.value, layer=_layer_name(spec), description=spec.description.strip(),
        digest=_digest(spec, lowered), input=structure.input, input_local=structure.input,
        output=structure.output, output_size=shapes.variable[structure.output], states=states,
        params=lowered.params, weights=lowered.weights, steps=lowered.steps, activations=activations,
        sizes=shapes.sizes, equations=lowered.equations,
        parsed=tuple((eq.target, eq.expr) for eq in structure.equations),
        uses_layer_norm=any(nodes.function_name(n) == "layer_norm" for _, n in structure.nodes()),
        square_input=shapes.square_input, scan=linear_states(recurrence, states), scan_reason=recurrence.reason,
        projected=lowered.projected, has_bias=any(w.optional for w in lowered.weights),
        recurrent_dropout=dropout,
        constants=tuple(Constant(key.value, key.value, value.value) for key, value in spec.constants),
        heads=heads_arg[0] if heads_arg else None, heads_default=spec.heads.default.value if spec.heads else 1,
        value_shapes=tuple((v, _shape_text(shapes, heads, v)) for v in structure.variables),
        row_vectors=spec.row_vectors, chunk_size=recurrence.chunk_size))


def _shape_text(shapes, heads: Heads, name: str) -> str:
    """`scalar`, `vector (units)`, `matrix (units, key_units)`; with heads, one head's."""
    per_head = " per head" if heads.on else ""
    if name in shapes.matrix:
        rows, cols = (heads.size(d) for d in shapes.matrix[name])
        return f"matrix ({rows}, {cols}){per_head}"
    size = shapes.variable[name]
    return f"scalar{per_head}" if size == "1" else f"vector ({heads.size(size)}){per_head}"


def _check_input_per_head(structure: Structure, lowered: Lowered) -> None:
    """With heads, the input is read through matrices only (each head's W x_t reads all of x_t)."""
    x = {sympy.Symbol(structure.input), nodes.prev(structure.input)}
    for step in lowered.steps:
        if isinstance(step, Statement) and x & step.expr.free_symbols:
            refs = [r for r in structure.equation(step.variable).refs if r.name == structure.input]
            ref = refs[-1] if refs else None  # the last: the one read element-wise, as a rule
            raise SpecError(f"with heads, {structure.input}_t is read through matrices only (W {structure.input}_t)",
                            ref.span if ref else step.span,
                            f"project it first (u_t = W_u {structure.input}_t) and use u_t element-wise")


def _layer_name(spec: Spec) -> str:
    if spec.layer:
        return spec.layer.value
    name = spec.name.value
    return name[:-4] if name.endswith("Cell") and len(name) > 4 else name + "Layer"


def _initial_states(spec: Spec, structure: Structure) -> dict[str, str]:
    initial = {s: "zeros" for s in structure.states}
    for key, value in spec.initial_state:
        if key.value not in structure.states:
            raise SpecError(f"`initial_state` names {key.value!r}, which is not a state", key.span,
                            did_you_mean(key.value, structure.states) or f"states: {', '.join(structure.states)}")
        initial[key.value] = value.value if isinstance(value.value, str) else repr(float(value.value))
    return initial


def _exposed_activations(spec: Spec, structure: Structure) -> tuple[ActivationArg, ...]:
    called = {nodes.function_name(n) for _, n in structure.nodes()} - {None}
    for act in spec.activations:
        if act.symbol.value not in called:
            raise SpecError(f"activation {act.arg.value!r} replaces {act.symbol.value!r}, which the equations "
                            "never call", act.symbol.span,
                            f"the equations call {', '.join(sorted(called)) or 'no function'}")
    return tuple(ActivationArg(a.arg.value, a.symbol.value, a.default.value) for a in spec.activations)


def _generated_locals(lowered: Lowered) -> list[str]:
    out = []
    for step in lowered.steps:
        if isinstance(step, Product):
            out += [*step.slots, step.target] + ([step.partial] if step.partial else [])
    return list(dict.fromkeys(n for n in out if nodes.local_hint(n) is not None))


def _digest(spec: Spec, lowered: Lowered) -> str:
    """A hash of what the cell is (not how it was spelled): plain and LaTeX agree."""
    content = {
        "name": spec.name.value, "layer": spec.layer.value if spec.layer else None,
        "description": spec.description, "input": spec.input.value,
        "output": spec.output.value if spec.output else None,
        "states": [s.value for s in spec.states] if spec.states is not None else None,
        "equations": list(lowered.equations),
        "activations": [[a.arg.value, a.symbol.value, a.default.value] for a in spec.activations],
        "initializers": [[k.value, v.value] for k, v in spec.initializers],
        "layout": [[k.value, [e.value for e in v]] for k, v in spec.layout],
        "initial_state": [[k.value, v.value] for k, v in spec.initial_state],
        "sizes": [[k.value, v.value] for k, v in spec.sizes],
    }
    if spec.heads:
        content["heads"] = [spec.heads.arg.value, spec.heads.default.value]
    if spec.default_initializer:  # only when present, as the constants
        content["default_initializer"] = spec.default_initializer.value
    if spec.constants:  # only when present: a spec without them keeps the hash it had
        content["constants"] = [[k.value, v.value] for k, v in spec.constants]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


class _Renamed:
    """The IR with every name in code replaced by its identifier (symbols included)."""

    def __init__(self, names: Names):
        self.names = names
        self.symbols = {sympy.Symbol(k): sympy.Symbol(v) for k, v in names.local.items()}
        self.symbols.update({sympy.Symbol(k): nodes.Attribute(v) for k, v in names.attribute.items()
                             if nodes.local_hint(k) is None})
        self.symbols.update({sympy.Symbol(k): nodes.Attribute(v) for k, v in names.constant.items()})
        self.sizes = dict(names.size)

    def expr(self, e: sympy.Expr) -> sympy.Expr:
        with sympy.core.parameters.evaluate(False):
            return e.xreplace(self.symbols)

    def dim(self, d: Dim) -> Dim:
        return Dim(tuple((c, self.size(n)) for c, n in d.terms))

    def size(self, s: str) -> str:
        """A size as a name in code; composite sizes (`h*units/h*key_units/h`) part by part."""
        return "*".join("/".join(self.sizes.get(piece, piece) for piece in part.split("/"))
                        for part in s.split("*"))

    def step(self, step, ir: CellIR):
        local, attribute = self.names.local, self.names.attribute
        if isinstance(step, Statement):
            return step._replace(target=local[step.target], expr=self.expr(step.expr), size=self.size(step.size))
        operands = tuple(
            op._replace(expr=(sympy.Symbol(local[ir.recurrent_dropout.masked]) if op.dropout == "recurrent"
                              else self.expr(op.expr)),
                        weight=attribute[op.weight], bias=attribute[op.bias] if op.bias else None)
            for op in step.operands)
        return step._replace(target=local[step.target], operands=operands,
                             slots=tuple(local[s] for s in step.slots),
                             widths=tuple(self.dim(w) for w in step.widths),
                             partial=local[step.partial] if step.partial else None)

    def parallel(self, item, by_name, ir: CellIR):
        """One step of the parallel path, renamed."""
        if isinstance(item, LinearState):
            return item._replace(state=by_name[item.state.name], decay=self.expr(item.decay),
                                 drive=self.expr(item.drive))
        if isinstance(item, ChunkedState):
            return item._replace(state=by_name[item.state.name], log_decay=self.expr(item.log_decay),
                                 rows=self.expr(item.rows), columns=self.expr(item.columns),
                                 readouts=tuple(r._replace(local=self.names.local[r.local], query=self.expr(r.query))
                                                for r in item.readouts))
        return self.step(item, ir)

    def cell(self, ir: CellIR) -> CellIR:
        n, local, attribute = self.names, self.names.local, self.names.attribute
        states = tuple(s._replace(size=self.size(s.size),
                                  matrix=None if s.matrix is None else tuple(self.size(d) for d in s.matrix),
                                  shape=None if s.shape is None else tuple(self.size(d) for d in s.shape))
                       for s in ir.states)
        by_name = {s.name: s for s in states}
        steps = tuple(self.step(step, ir) for step in ir.steps)
        weights = tuple(w._replace(name=attribute[w.name], arg=n.argument[w.name],
                                shape=tuple(self.dim(d) for d in w.shape),
                                view=None if w.view is None else tuple(self.dim(d) for d in w.view),
                                slices=tuple(s._replace(start=self.dim(s.start), stop=self.dim(s.stop)) for s in w.slices))
                        for w in ir.weights)
        params = tuple(p._replace(weight=attribute[p.weight], shape=tuple(self.size(s) for s in p.shape),
                               start=self.dim(p.start), stop=self.dim(p.stop),
                               view=None if p.view is None else tuple(self.dim(d) for d in p.view)) for p in ir.params)
        scan = None if ir.scan is None else tuple(self.parallel(item, by_name, ir) for item in ir.scan)
        dropout = ir.recurrent_dropout
        return ir._replace(
            name=n.cell, layer=n.layer, input_local=local[ir.input], states=states, params=params,
            weights=weights, steps=steps, scan=scan, output_size=self.size(ir.output_size),
            activations=tuple(a._replace(arg=n.activation[a.arg]) for a in ir.activations),
            sizes=tuple(n.size[s] for s in ir.sizes), projected=tuple(local[p] for p in ir.projected),
            recurrent_dropout=None if dropout is None else RecurrentDropout(local[dropout.prev],
                                                                            local[dropout.masked]),
            constants=tuple(c._replace(arg=n.constant[c.name]) for c in ir.constants),
            heads=n.size[ir.heads] if ir.heads else None)
