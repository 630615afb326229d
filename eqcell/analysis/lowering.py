"""Stage 5: lowering. The equations become what a step executes: fused products split into
slices, statements with those slices in place of the matrix products and biases, in an order
where each reads only what is computed before it, each marked input-only (hoistable) or not;
and the Keras weights with every parameter's place in them.

Values the equations do not name (products, slices) are `nodes.local` symbols; the naming stage
turns every symbol into its identifier afterwards."""
from __future__ import annotations

from typing import NamedTuple


import sympy
from sympy.core.parameters import evaluate

from .. import nodes
from ..errors import SpecError, did_you_mean
from ..ir import Dim, InitSlice, Operand, Param, Product, Statement, Weight
from ..printing.plain import PlainPrinter
from ..spec import Spec
from .fusion import FusedWeight, Fusion
from .roles import Roles
from .shapes import Shapes
from .structure import Structure


class Lowered(NamedTuple):
    steps: tuple[Product | Statement, ...]
    weights: tuple[Weight, ...]
    params: tuple[Param, ...]
    expressions: tuple[tuple[str, sympy.Expr], ...]   # variable -> its rewritten right side
    hoisted: frozenset[str]                            # variables computed from the input only
    projected: tuple[str, ...]                         # input-only values the recurrent part reads
    recurrent_operand: bool                            # some product multiplies the output at t-1
    equations: tuple[str, ...]                         # canonical plain text, as written


def lower(spec: Spec, structure: Structure, roles: Roles, shapes: Shapes, fusion: Fusion,
          initial: dict[str, str]) -> Lowered:
    plain = PlainPrinter(structure.variables, structure.input)
    text = {eq.target: f"{eq.target}_t = {plain.doprint(eq.expr)}" for eq in structure.equations}
    slots, targets = _slot_names(structure, fusion)
    rewrite = _Rewriter(fusion, slots)
    expressions = {eq.target: rewrite(shapes.exprs.get(eq.target, eq.expr)) for eq in structure.equations}
    overrides = _initializer_overrides(spec, structure)
    weights, params = _weights_and_params(spec, structure, roles, shapes, fusion, overrides, plain, initial)
    input_only = _InputOnly(structure, fusion, slots, rewrite, expressions, frozenset(shapes.matrix), shapes)
    heads = Heads(spec.heads is not None)
    products = _products(structure, shapes, fusion, slots, targets, rewrite, input_only, heads)
    statements, hoisted = {}, set()
    for name in structure.order:
        hoistable = sympy.Symbol(name) in input_only.known
        if hoistable:
            hoisted.add(name)
        eq = structure.equation(name)
        statements[name] = Statement(name, name, _per_head(expressions[name], heads), text[name], hoistable,
                                     eq.span, shapes.variable[name])
    steps = _order_steps(structure, products, statements)
    return Lowered(tuple(steps), tuple(weights), tuple(params), tuple(expressions.items()), frozenset(hoisted),
                   _projected(structure, steps, structure.input_prev),
                   any(op.dropout == "recurrent" for p in products for op in p.operands),
                   tuple(text[eq.target] for eq in structure.equations))


class _Fresh:
    """Distinct local symbols: a hint taken twice gets a trailing underscore."""

    def __init__(self):
        self.taken: set[str] = set()

    def __call__(self, hint: str) -> sympy.Symbol:
        while hint in self.taken:
            hint += "_"
        self.taken.add(hint)
        return nodes.local(hint)


def _slot_names(structure: Structure, fusion: Fusion):
    """Each product's slices (`z_f`, named after the matrices' common label) and its name before
    the split (`z`)."""
    fresh = _Fresh()
    slots: dict[int, tuple[sympy.Symbol, ...]] = {}
    targets: dict[int, sympy.Symbol] = {}
    for gi, group in enumerate(fusion.groups):
        lead = fusion.weights[group[0]]
        if len(group) > 1:
            prefix = "z"
        elif lead.name == "kernel":
            prefix = "x"
        elif lead.name == "recurrent_kernel":
            prefix = structure.output
        else:
            prefix = lead.name[: -len("_kernel")].rstrip("_") or "z"
        out = []
        for i in range(len(lead.members)):
            matrices = [fusion.weights[w].members[i] for w in group]
            labels = {m.split("_", 1)[1] if "_" in m else "" for m in matrices}
            label = labels.pop() if len(labels) == 1 else ""
            if not label:
                label = _slot_variable(structure, fusion, lead.members[i]) or str(i)
            if len(lead.members) == 1 and len(group) > 1 and not any("_" in m for m in matrices):
                out.append(fresh("z"))
            else:
                out.append(fresh(f"{prefix}_{label}"))
        slots[gi] = tuple(out)
        targets[gi] = out[0] if len(out) == 1 else fresh("z" if len(group) > 1 else f"z_{prefix}")
    return slots, targets


def _slot_variable(structure: Structure, fusion: Fusion, matrix: str) -> str | None:
    """The variable whose equation holds the matrix's product, to label its slice."""
    for s in fusion.sums:
        if any(isinstance(t, nodes.MatVec) and t.args[0].name == matrix for t in s.terms):
            return s.equation
    for eq, node in structure.nodes():
        if isinstance(node, nodes.MatVec) and node.args[0].name == matrix:
            return eq.target
    return None


class _Rewriter:
    """An expression with each fused product and bias replaced by its slice."""

    def __init__(self, fusion: Fusion, slots):
        self.slot_of: dict[str, sympy.Symbol] = {}
        self.merged: set[str] = set()
        for gi, group in enumerate(fusion.groups):
            for w in group:
                for i, m in enumerate(fusion.weights[w].members):
                    self.slot_of[m] = slots[gi][i]
                    if len(group) > 1:
                        self.merged.add(m)
        self.fused_bias = set(fusion.bias_of.values())

    def __call__(self, expr):
        if isinstance(expr, nodes.MatVec):
            return self.slot_of[expr.args[0].name]
        if nodes.function_name(expr) == "identity":
            return self(expr.args[0])
        if not expr.args:
            return expr
        if isinstance(expr, sympy.Add):
            terms, placed = [], set()
            for term in expr.args:
                if term.is_Symbol and term.name in self.fused_bias:
                    continue
                if isinstance(term, nodes.MatVec):
                    slot = self.slot_of[term.args[0].name]
                    if slot in placed:
                        continue
                    if term.args[0].name in self.merged:
                        placed.add(slot)
                terms.append(self(term))
            return nodes.add(*terms)
        args = [self(a) for a in expr.args]
        if isinstance(expr, sympy.Mul):
            return nodes.mul(*args)
        with evaluate(False):
            return expr.func(*args)


def _initializer_overrides(spec: Spec, structure: Structure) -> dict[str, str]:
    overrides = {}
    for key, value in spec.initializers:
        if key.value not in structure.params:
            raise SpecError(f"`initializers` names {key.value!r}, which is not a parameter", key.span,
                            did_you_mean(key.value, structure.params) or
                            f"parameters: {', '.join(structure.params)}")
        overrides[key.value] = value.value
    return overrides


class Heads(NamedTuple):
    """Where a cell with `heads:` keeps its values: every variable but the input per head, each
    size of the equations split over the heads (`units` -> `units/h` features per head; a scalar
    stays 1 per head). Fused weights lie head-major: a head's columns side by side."""

    on: bool

    def size(self, size: str) -> str:
        """A size as one head has it."""
        return f"{size}/h" if self.on and size not in ("1", "input_dim") else size

    def total(self, size: str) -> Dim:
        """A per-head size times the heads: `units` for `units/h`, `h` for a scalar."""
        if not self.on:
            return Dim.of(size)
        return Dim(((1, "h"),)) if size == "1" else Dim.of(size)

    def state_size(self, shapes: Shapes, name: str) -> str:
        if name in shapes.matrix:
            rows, cols = shapes.matrix[name]
            return "*".join((["h"] if self.on else []) + [self.size(rows), self.size(cols)])
        size = shapes.variable[name]
        return "h" if self.on and size == "1" else size

    def state_shape(self, shapes: Shapes, name: str) -> tuple[str, ...] | None:
        """A state's shape inside the step (batch excluded) where it is not kept as it is passed."""
        head = ("h",) if self.on else ()
        if name in shapes.matrix:
            return head + tuple(self.size(d) for d in shapes.matrix[name])
        return head + (self.size(shapes.variable[name]),) if self.on else None


def _dims(shapes: Shapes, names, heads: Heads = Heads(False)) -> list[Dim]:
    return [Dim.of(heads.size(shapes.param[n][0])) for n in names]


def _total(shapes: Shapes, names, heads: Heads) -> Dim:
    out = Dim(())
    for n in names:
        out = out.plus(heads.total(shapes.param[n][0]))
    return out


def _columns(shapes: Shapes, names, heads: Heads = Heads(False)):
    start, out = Dim(()), []
    for d in _dims(shapes, names, heads):
        out.append((start, start.plus(d)))
        start = start.plus(d)
    return out, start


def _init_slices(names, cols, overrides) -> tuple[InitSlice, ...]:
    if not any(n in overrides for n in names):
        return ()
    out: list[InitSlice] = []
    for n, (a, b) in zip(names, cols):
        init = overrides.get(n)
        if out and out[-1].initializer == init:
            out[-1] = InitSlice(out[-1].start, b, init)
        else:
            out.append(InitSlice(a, b, init))
    return tuple(out)


def generated(name: str) -> str:
    """The weights the generator makes (fused, initial states) in the naming stage's terms:
    named apart from the spec's parameters, which may be called `kernel` too."""
    return nodes.local(name).name


def weight_arg(name: str) -> str:
    """Constructor prefix of a weight: kernel -> kernel, recurrent_kernel -> recurrent, bias -> bias."""
    if name.endswith("_kernel") and name != "kernel":
        return name[: -len("_kernel")]
    return name


def _weights_and_params(spec, structure, roles, shapes, fusion: Fusion, overrides, plain, initial):
    """The Keras weights and each parameter's place in them. With heads, a matrix on the input
    is an ordinary (input_dim, units) kernel whose columns lie head-major, a matrix on a per-head
    value is block-diagonal (heads, rows, columns), and every parameter reads back with a leading
    head axis (`view`, then `axes` to the paper's orientation)."""
    heads = Heads(spec.heads is not None)
    H = Dim(((1, "h"),))
    chosen = spec.default_initializer.value if spec.default_initializer else None  # else by role
    weights: list[Weight] = []
    params: dict[str, Param] = {}
    for f in fusion.weights:
        cols, width = _columns(shapes, f.members, heads)
        col_dim = shapes.param[f.members[0]][1]
        on_input = f.operand in (sympy.Symbol(structure.input), nodes.prev(structure.input))
        default = chosen or ("glorot_uniform" if f.name == "kernel" or on_input else "orthogonal")
        view = axes = None
        if not heads.on:
            shape = (Dim.of(col_dim), width)
        elif on_input:
            shape, view, axes = (Dim.of(col_dim), _total(shapes, f.members, heads)), (Dim.of(col_dim), H, width), (1, 2, 0)
        else:
            shape, axes = (H, Dim.of(heads.size(col_dim)), width), (0, 2, 1)
        weights.append(Weight(generated(f.name), weight_arg(f.name), "kernel", shape, f.members,
                              plain.doprint(f.operand), default, _init_slices(f.members, cols, overrides),
                              False, 0, view))
        for m, (a, b) in zip(f.members, cols):
            row = m in shapes.row_matrices  # `x_t W`: the paper's W is (in, out), as the weight stores it
            shape_m = shapes.param[m][::-1] if row else shapes.param[m]
            axes_m = axes if not row else ((1, 0, 2) if axes == (1, 2, 0) else None)
            params[m] = Param(m, "matrix", _head_shape(heads, shape_m), generated(f.name), None, a, b,
                              overrides.get(m), view, axes_m, row)
    with_bias = [f for f in fusion.weights if f.biases]
    made = set()
    for row, f in enumerate(with_bias):
        cols, width = _columns(shapes, f.biases, heads)
        view = (H, width) if heads.on else None
        total = _total(shapes, f.biases, heads)
        if f.bias_weight not in made:
            made.add(f.bias_weight)
            if fusion.stacked:
                if any(b in overrides for g in with_bias for b in g.biases):
                    raise SpecError("per-parameter initializers are not supported in a stacked bias",
                                    next(k.span for k, _ in spec.initializers
                                         if any(k.value in g.biases for g in with_bias)),
                                    "initialize the whole bias with the bias_initializer argument")
                weights.append(Weight(generated(f.bias_weight), weight_arg(f.bias_weight), "bias",
                                      (Dim(((len(with_bias), ""),)), total),
                                      tuple(b for g in with_bias for b in g.biases), "", chosen or "zeros", (), True,
                                      len(with_bias), view))
            else:
                weights.append(Weight(generated(f.bias_weight), weight_arg(f.bias_weight), "bias", (total,), f.biases, "",
                                      chosen or "zeros", _init_slices(f.biases, cols, overrides), True, 0, view))
        for b, (a, c) in zip(f.biases, cols):
            params[b] = Param(b, "bias", _head_shape(heads, shapes.param[b]), generated(f.bias_weight),
                              row if fusion.stacked else None, a, c, overrides.get(b), view)
    for n in structure.params:
        if n in params:
            continue
        role = roles.role[n]
        # a vector, or a matrix used element-wise; with heads, one per head
        shape = tuple(Dim.of(size) for size in _head_shape(heads, shapes.param[n]))
        # a layer norm's own gain and bias (not written in the spec) keep ones and zeros
        by_role = "ones" if role == "gain" else (chosen if chosen and role != "layer_norm_bias" else "zeros")
        weights.append(Weight(n, n, "vector", shape, (n,), "", overrides.get(n, by_role), (), False, 0))
        params[n] = Param(n, "gain" if role == "gain" else "vector", _head_shape(heads, shapes.param[n]), n, None,
                          Dim(()), shape[-1], overrides.get(n))
    for s in structure.states:
        if initial[s] == "learned":
            name = f"initial_{s}"
            weights.append(Weight(generated(name), name, "initial_state", (Dim.of(heads.state_size(shapes, s)),), (s,),
                                  "", "zeros", (), False, 0))
    return weights, [params[n] for n in structure.params]


def _head_shape(heads: Heads, shape: tuple[str, ...]) -> tuple[str, ...]:
    """A parameter's shape as `symbol_weights` gives it: with heads, a leading head axis."""
    if not heads.on:
        return shape
    return ("h",) + tuple(heads.size(size) for size in shape)


class _InputOnly:
    """The values computed from the input alone (never from a state), which the layer computes
    for all steps at once: a value is input-only when it reads the input or an input-only value,
    and otherwise only parameters. A value of parameters alone is not: it has no time axis; nor
    is a matrix value, which the step computes from input-only vectors instead."""

    def __init__(self, structure: Structure, fusion: Fusion, slots, rewrite, expressions, matrices=frozenset(),
                 shapes: Shapes | None = None):
        self.params = frozenset(sympy.Symbol(p) for p in structure.params + structure.constants)
        self.known = {sympy.Symbol(structure.input)}
        operands = {gi: [rewrite(shapes.operands.get(fusion.weights[w].operand, fusion.weights[w].operand))
                         for w in group]
                    for gi, group in enumerate(fusion.groups)}
        changed = True
        while changed:
            changed = False
            for gi, exprs in operands.items():
                if slots[gi][0] not in self.known and all(self(e) for e in exprs):
                    self.known.update(slots[gi])
                    changed = True
            for name, expr in expressions.items():  # a matrix value stays in the step: (T, rows, cols) is large
                if sympy.Symbol(name) not in self.known and name not in matrices and self(expr):
                    self.known.add(sympy.Symbol(name))
                    changed = True

    def __call__(self, expr) -> bool:
        free = expr.free_symbols
        return bool(free & self.known) and free <= self.known | self.params


def _products(structure: Structure, shapes: Shapes, fusion: Fusion, slots, targets, rewrite,
              input_only: _InputOnly, heads: Heads = Heads(False)) -> list[Product]:
    fresh = _Fresh()
    fresh.taken = {nodes.local_hint(s) for ss in slots.values() for s in ss} | {nodes.local_hint(t) for t in targets.values()}
    with_bias = [f for f in fusion.weights if f.biases]
    out: list[Product] = []
    for gi, group in enumerate(fusion.groups):
        operands = []
        for w in group:
            f: FusedWeight = fusion.weights[w]
            dropout = ("input" if f.operand == sympy.Symbol(structure.input) else
                       "recurrent" if f.operand == nodes.prev(structure.output) else "")
            operand = rewrite(shapes.operands.get(f.operand, f.operand))  # `U(W x_t)`: the inner product is a slice too
            row = with_bias.index(f) if f.biases and fusion.stacked else None
            whole = f.operand in (sympy.Symbol(structure.input), nodes.prev(structure.input))
            operands.append(Operand(operand, generated(f.name), dropout, input_only(operand),
                                    generated(f.bias_weight) if f.biases else None, row, whole))
        operands = _bias_with_input(operands)
        hoistable = all(op.hoistable for op in operands)
        mixed = not hoistable and any(op.hoistable for op in operands)
        target = targets[gi]
        partial = fresh(f"{nodes.local_hint(target)}_x").name if mixed else None
        widths = tuple(_dims(shapes, fusion.weights[group[0]].members, heads))
        out.append(Product(target.name, tuple(operands), tuple(s.name for s in slots[gi]), widths, hoistable,
                           partial))
    return out


def _bias_with_input(operands: list[Operand]) -> list[Operand]:
    """In a summed product, a bias added on the state's side moves to the input's side, so it
    is added once for all steps with x @ kernel (the sum is the same)."""
    free = [i for i, op in enumerate(operands) if op.hoistable and not op.bias]
    for i, op in enumerate(operands):
        if op.bias and not op.hoistable and free:
            j = free.pop(0)
            operands[j] = operands[j]._replace(bias=op.bias, bias_row=op.bias_row)
            operands[i] = op._replace(bias=None, bias_row=None)
    return operands


def _order_steps(structure: Structure, products, statements):
    """Products and statements in an order where each reads only what comes before it."""
    producer = {sympy.Symbol(s): p for p in products for s in p.slots}
    variables = {sympy.Symbol(v): v for v in statements}
    steps, done, ready = [], set(), set()

    def emit_product(p):
        if id(p) in done:
            return
        for op in p.operands:
            for s in op.expr.free_symbols:
                if s in producer and s not in ready:
                    emit_product(producer[s])
                elif s in variables and s not in ready:
                    emit_statement(variables[s])
        done.add(id(p))
        steps.append(p)
        ready.update(sympy.Symbol(s) for s in p.slots)

    def emit_statement(name):
        if sympy.Symbol(name) in ready:
            return
        st = statements[name]
        for s in sorted(st.expr.free_symbols, key=lambda s: s.name):
            if s in producer:
                emit_product(producer[s])
            elif s in variables:
                emit_statement(variables[s])
        steps.append(st)
        ready.add(sympy.Symbol(name))

    for p in products:
        if all(s not in variables and s not in producer for op in p.operands for s in op.expr.free_symbols):
            emit_product(p)
    for name in structure.order:
        emit_statement(name)
    for p in products:
        emit_product(p)
    return steps


def _projected(structure: Structure, steps, input_is_state: bool = False) -> tuple[str, ...]:
    """Input-only values that the recurrent part reads: what the layer precomputes for all steps
    (the input itself when the step keeps it as the next x_{t-1})."""
    made, read = [], {structure.input} if input_is_state else set()
    read |= {*structure.states, structure.output}  # the step returns them, input-only ones too (`S_t = W x_t`)
    for step in steps:
        if isinstance(step, Statement):
            if step.hoistable:
                made.append(step.target)
            else:
                read |= {s.name for s in step.expr.free_symbols}
        elif step.hoistable:
            made += list(step.slots)
        else:
            if step.partial is not None:
                made.append(step.partial)
                read.add(step.partial)
            read |= {s.name for op in step.operands if not op.hoistable for s in op.expr.free_symbols}
    projected = tuple(s for s in [structure.input, *made] if s in read)
    return projected or (structure.input,)


def state_size(shapes: Shapes, name: str) -> str:
    """A state's size in the state list: a matrix state is kept flattened, rows * columns."""
    if name in shapes.matrix:
        return "*".join(shapes.matrix[name])
    return shapes.variable[name]


def _per_head(expr, heads: Heads):
    """With heads, an identity matrix is one head's size (`I` in DeltaNet's update)."""
    if not heads.on:
        return expr
    sizes = {node.args[0]: nodes.size_symbol(heads.size(nodes.size_of(node.args[0])))
             for node in sympy.preorder_traversal(expr) if isinstance(node, nodes.Eye) and node.args}
    if not sizes:
        return expr
    with evaluate(False):
        return expr.xreplace(sizes)
