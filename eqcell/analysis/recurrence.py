"""Stage 6: recurrence. Whether every state's update is s_t = a_t * s_{t-1} + b_t with a_t and
b_t computed from the input only, which the layer then evaluates for all steps at once with a
parallel scan instead of a step loop; and why not, in the user's terms, when it is not."""
from __future__ import annotations

from typing import NamedTuple


import sympy
from sympy.core.parameters import evaluate

from .. import nodes
from ..ir import ChunkedState, LinearState, Product, Readout, Statement
from .lowering import Lowered
from .shapes import Shapes
from .structure import Structure

MAX_INLINED_NODES = 5000   # beyond this the inlined update is not analyzed: the cell loops


# The chunkwise form's default chunk, by the kind of matrix state (benchmarks/bench_parallel.py, TF
# CPU, T = 2048, training step / the loop's): a decay per row or column works by sub-chunks of about
# sqrt(C) steps (GLA, heads 1 / 4: 1.20 / 0.76 at C = 8, 0.72 / 0.61 at 16, 0.65 / 0.81 at 32, 0.89 /
# 1.23 at 64); one number a step builds (C, C) blocks (mLSTM: 0.15 at 16 and at 64); the delta rule
# chains its chunks one by one (DeltaNet: 0.55 at 8, 0.19 at 32, 0.14 at 64). A cell with several
# kinds takes the smallest.
CHUNK_SIZES = {"vector": 16, "scalar": 32, "delta": 64}


class Recurrence(NamedTuple):
    path: tuple[LinearState | ChunkedState | Statement | Product, ...] | None   # the parallel path, in order
    reason: str
    readouts: tuple[str, ...] = ()     # the locals the path introduces (readouts of matrix states)
    chunk_size: int = 0                # the default chunk of the chunkwise form; 0: no matrix state


class NotParallel(Exception):
    """Why the cell runs one step at a time, in the user's terms."""


def find_recurrence(structure: Structure, lowered: Lowered, shapes: Shapes) -> Recurrence:
    """The parallel path: each step of the cell evaluated for every time step at once, in order.
    A vector state linear in itself (or max-plus, as xLSTM's stabiliser) with coefficients known
    before it is scanned; a matrix state decayed by one number, one per row or one per column and
    driven by an outer product is evaluated chunkwise through the products that read it."""
    path = _Path(structure, lowered, shapes)
    try:
        return path.build()
    except NotParallel as why:
        if not path.chunked:
            return Recurrence(None, f"{why}: sequential")
    # a chunkwise state read other than its chunkwise form allows (S_{t-1} q_t, a norm of S_t): every
    # step's matrix by an element-wise scan instead, where its transition allows
    try:
        return _Path(structure, lowered, shapes, element_wise=frozenset(path.chunked)).build()
    except NotParallel as why:
        return Recurrence(None, f"{why}: sequential")


class _Path:
    def __init__(self, structure: Structure, lowered: Lowered, shapes: Shapes, element_wise=frozenset()):
        self.structure, self.lowered, self.shapes = structure, lowered, shapes
        self.element_wise = element_wise   # matrix states scanned entry by entry even where chunkwise applies
        self.expressions = dict(lowered.expressions)
        self.states = set(structure.states)
        self.matrices = {s for s in structure.states if s in shapes.matrix}
        products = [s for s in lowered.steps if isinstance(s, Product)]
        # the values known for every step before any state: the input-only part
        self.known = (set(lowered.hoisted) | {s for p in products for s in p.slots} | {structure.input}
                      | set(structure.params) | set(structure.constants) | {p.partial for p in products if p.partial})
        if structure.input_prev:  # x_{t-1}: the last input not masked, before each step
            if structure.input not in lowered.projected:
                raise NotParallel("x_{t-1} is read but x_t is not part of the input-only values")
            self.known.add(nodes.prev(structure.input).name)
        self.deferred: dict[str, sympy.Expr] = {}
        self.path: list = ([LinearState(structure.input, sympy.Integer(0), sympy.Symbol(structure.input),
                                        shifted=True)] if structure.input_prev else [])
        self.chunked: dict[str, dict] = {}
        self.readouts: dict[sympy.Expr, sympy.Symbol] = {}
        self.shifted: set[str] = set()

    def build(self) -> Recurrence:
        for step in self.lowered.steps:
            if isinstance(step, Product):
                if not step.hoistable:
                    self._product(step)
            elif not step.hoistable:
                self._statement(step)
        for name in list(self.deferred):  # what read a state at t-1 before its scan
            del self.deferred[name]
            self._emit(name, self._substituted(self.expressions[name]), self._statement_of(name))
        if self.structure.output not in self.known:
            raise NotParallel(f"{self.structure.output}_t is not known for every step")
        path = []
        for item in self.path:
            if isinstance(item, LinearState) and item.state in self.shifted:
                item = item._replace(shifted=True)
            if isinstance(item, ChunkedState):
                readouts = tuple(self.chunked[item.state]["readouts"])
                side = self.chunked[item.state]["delta"]
                if side and any(r.contracts != side for r in readouts):
                    raise NotParallel(f"{item.state}_t follows a delta rule and is read from the other side "
                                      "(its chunkwise form is not written yet)")
                item = item._replace(readouts=readouts)
            path.append(item)
        kinds = ["delta" if i.strength is not None else "scalar" if i.decay_axis == "scalar" else "vector"
                 for i in path if isinstance(i, ChunkedState)]
        return Recurrence(tuple(path), _why(path, self.structure, self.matrices), tuple(s.name for s in self.readouts.values()),
                          min((CHUNK_SIZES[k] for k in kinds), default=0))

    def _product(self, step: Product) -> None:
        """A product in the step: its operands must be known for every step by now."""
        operands = []
        for op in step.operands:
            if op.hoistable:
                operands.append(op)
                continue
            expr = self._substituted(op.expr)
            late = _reads_prev(expr)
            if late and late not in self.known:
                raise NotParallel(f"a matrix product in the step reads {self._readable(late)}")
            expr = self._read_matrices(step.target, expr)
            self._check_known(step.target, expr)
            operands.append(op._replace(expr=expr))
        self.path.append(step._replace(operands=tuple(operands)))
        self.known |= {*step.slots, step.target}

    def _statement_of(self, name: str) -> Statement:
        return next(s for s in self.lowered.steps if isinstance(s, Statement) and s.variable == name)

    def _substituted(self, expr: sympy.Expr) -> sympy.Expr:
        subs = {sympy.Symbol(v): e for v, e in self.deferred.items() if sympy.Symbol(v) in expr.free_symbols}
        if not subs:
            return expr
        with evaluate(False):
            return expr.xreplace(subs)

    def _unknown_prev(self, expr, allowed: str | None = None) -> str | None:
        for sym in sorted(expr.free_symbols, key=lambda s: s.name):
            state = nodes.prev_of(sym)
            if state is not None and state != allowed and sym.name not in self.known:
                return sym.name
        return None

    def _statement(self, step: Statement) -> None:
        name = step.variable
        expr = self._substituted(self.expressions[name])
        if sum(1 for _ in sympy.preorder_traversal(expr)) > MAX_INLINED_NODES:
            raise NotParallel(f"{name}_t is too large to analyze for a scan")
        if name in self.states:
            late = self._unknown_prev(expr, allowed=name)
            if late:
                raise NotParallel(f"{name}_t depends on {self._readable(late)}{self._through(name, late)}")
            if name in self.matrices:
                self._matrix_state(step, expr)
            else:
                self._vector_state(step, expr)
            self.known.add(name)
            if name not in self.chunked:
                self.known.add(nodes.prev(name).name)
            for waiting in list(self.deferred):  # what waited for this state at t-1, in order
                del self.deferred[waiting]
                expr = self._substituted(self.expressions[waiting])
                if self._unknown_prev(expr):
                    self.deferred[waiting] = expr
                else:
                    self._emit(waiting, expr, self._statement_of(waiting))
            return
        if self._unknown_prev(expr):
            self.deferred[name] = expr
            return
        self._emit(name, expr, step)

    def _emit(self, name: str, expr: sympy.Expr, step: Statement) -> None:
        late = self._unknown_prev(expr)
        if late:
            raise NotParallel(f"{name}_t reads {self._readable(late)}")
        expr = self._read_matrices(name, expr)
        for sym in expr.free_symbols:
            state = nodes.prev_of(sym)
            if state is not None and state != self.structure.input:
                self.shifted.add(state)
        self.path.append(step._replace(expr=expr))
        self.known.add(name)

    def _vector_state(self, step: Statement, expr: sympy.Expr) -> None:
        name, previous = step.variable, nodes.prev(step.variable)
        split = affine(expr, previous)
        max_plus = False
        if split is None:
            split, max_plus = _max_plus(expr, previous), True
        if split is None:
            raise NotParallel(f"{name}_t is not affine in {name}_{{t-1}} (it passes through a function or a "
                              "matrix product)")
        self._check_known(name, *split)
        state = self._state(name)
        self.path.append(LinearState(state, *split, max_plus=max_plus))

    def _matrix_state(self, step: Statement, expr: sympy.Expr) -> None:
        """A matrix state: chunkwise when its transition is a decay (one number, per row, per column)
        or a delta rule and its drive one outer product; otherwise, when it is affine in S_{t-1}
        element by element (Mamba's exp(diag(d) A) * S_{t-1}, a decay along rows and columns at
        once, several drives), every step's state by an element-wise scan, which its readouts then
        read step by step."""
        try:
            if step.variable in self.element_wise:
                raise NotParallel(f"{step.variable}_t is read other than by its chunkwise form")
            self._chunked_state(step, expr)
        except NotParallel as why:
            split = affine(expr, nodes.prev(step.variable))
            if split is None or not all(self._element_wise(e) for e in split):
                raise why
            self._check_known(step.variable, *split)
            self.path.append(LinearState(self._state(step.variable), *split))

    def _element_wise(self, expr: sympy.Expr) -> bool:
        """Whether `expr` is a value (or product of values) that scales a matrix element by element:
        no matrix state in it."""
        return not any((nodes.prev_of(s) or s.name) in self.chunked for s in expr.free_symbols)

    def _chunked_state(self, step: Statement, expr: sympy.Expr) -> None:
        name, previous = step.variable, nodes.prev(step.variable)
        held, drives = _linear_terms(name, expr, previous)
        decays = [factors for factors, core in held if core is previous]
        rank_one = [(factors, core) for factors, core in held if core is not previous]
        if len(decays) != 1 or len(rank_one) > 1:
            raise NotParallel(f"{name}_{{t-1}} enters {name}_t in {len(held)} terms (a transition other than a "
                              "decay or a delta rule: its parallel form is not written yet)")
        log_decay, axis = self._decay(name, decays[0])
        if len(drives) != 1:
            raise NotParallel(f"{name}_t adds {len(drives)} terms to the decayed state, not one outer product "
                              "(its chunkwise form is not written yet)")
        left_rule = bool(rank_one) and rank_one[0][1][0] == "left"   # a number scales the other side than the key
        rows, columns = self._outer(name, drives[0], scalars_to="columns" if left_rule else "rows")
        strength, left = None, False
        if rank_one:
            strength, left = self._delta(name, decays[0], axis, *rank_one[0], rows, columns)
        self._check_known(name, log_decay, rows, columns, *([strength] if strength is not None else []))
        self.chunked[name] = {"readouts": [], "delta": None if strength is None else ("rows" if left else "columns")}
        self.path.append(ChunkedState(self._state(name), log_decay, axis, rows, columns, (), strength, left))

    def _delta(self, name, decay_factors, axis, factors, core, rows, columns):
        """b_t of a delta rule: decay * S_{t-1} - decay * b_t * S_{t-1} w w^T (or w w^T S_{t-1} for `left`),
        with w the drive's own key."""
        side, first, second = core
        why = (f"{name}_{{t-1}} times a rank-one matrix enters {name}_t other than as a delta rule "
               f"S_{{t-1}} (I - b_t k_t k_t^T) with the key k_t of its outer product (its parallel form is not "
               "written yet)")
        key = columns if side == "right" else rows
        if axis != "scalar" or first != second or first != key:
            raise NotParallel(why)
        rest = list(factors)
        for f in decay_factors:
            if f not in rest:
                raise NotParallel(why)
            rest.remove(f)
        negative = [f for f in rest if f.is_number and f.is_negative]
        if len(negative) != 1:
            raise NotParallel(why)
        rest.remove(negative[0])
        strength = [-negative[0]] if negative[0] != -1 else []
        for f in rest:
            inner, along = self._broadcast(f)
            if along != "scalar":
                raise NotParallel(why)
            strength.append(inner)
        return (nodes.mul(*strength) if strength else sympy.Integer(1)), side == "left"

    def _decay(self, name: str, factors):
        """(log of the decay, its axis) of the factors that multiply S_{t-1}; log 0 for none."""
        logs, axis = [], "scalar"
        for f in factors:
            inner, along = self._broadcast(f)
            if along is None:
                raise NotParallel(f"{name}_{{t-1}} is decayed element by element by a matrix (its chunkwise form "
                                  "is not written yet)")
            if along != "scalar":
                if axis not in ("scalar", along):
                    raise NotParallel(f"{name}_{{t-1}} is decayed along both its rows and its columns (its "
                                      "chunkwise form is not written yet)")
                axis = along
            logs.append(self._log(inner))
        return (nodes.add(*logs) if logs else sympy.Integer(0)), axis

    def _log(self, value: sympy.Expr) -> sympy.Expr:
        """log(value), seeing through a value the path computes (f_t = exp(...): its argument)."""
        if isinstance(value, sympy.Symbol) and value.name in self.known and value.name not in self.lowered.hoisted \
                and value.name in self.expressions:
            inner = log_of(self.expressions[value.name])
            if nodes.function_name(inner) != "log":
                return inner
        return log_of(value)

    def _broadcast(self, factor: sympy.Expr):
        """(value, axis) of a factor that scales a matrix: ("scalar", "rows", "columns"), or None."""
        if isinstance(factor, nodes.AsColumn):
            return factor.args[0], "scalar" if self._is_scalar(factor.args[0]) else "rows"
        if isinstance(factor, nodes.AsRow):
            return factor.args[0], "scalar" if self._is_scalar(factor.args[0]) else "columns"
        if factor.is_number or self._is_scalar(factor):
            return factor, "scalar"
        return factor, None

    def _is_scalar(self, expr: sympy.Expr) -> bool:
        for sym in expr.free_symbols:
            name = nodes.prev_of(sym) or sym.name
            if name in self.structure.constants:
                continue
            size = self.shapes.variable.get(name) or (self.shapes.param.get(name) or ("?",))[0]
            if size != "1" or name in self.shapes.matrix:
                return False
        return True

    def _outer(self, name: str, term: sympy.Expr, scalars_to: str = "rows"):
        """(u, w) of `term` = coefficients * Outer(u, w)."""
        factors = term.args if isinstance(term, sympy.Mul) else (term,)
        outers = [f for f in factors if isinstance(f, nodes.Outer)]
        if len(outers) != 1:
            raise NotParallel(f"{name}_t adds something other than an outer product to the decayed state "
                              "(its chunkwise form is not written yet)")
        rows, columns = outers[0].args
        for f in factors:
            if f is outers[0]:
                continue
            inner, along = self._broadcast(f)
            if along is None:
                raise NotParallel(f"{name}_t scales its outer product element by element by a matrix (its "
                                  "chunkwise form is not written yet)")
            if along == "columns" or (along == "scalar" and scalars_to == "columns"):
                columns = nodes.mul(inner, columns)
            else:
                rows = nodes.mul(inner, rows)
        return rows, columns

    def _read_matrices(self, name: str, expr: sympy.Expr) -> sympy.Expr:
        """`expr` with each product of a matrix state and a vector replaced by its readout's local."""
        def visit(e):
            if isinstance(e, (nodes.MatrixVector, nodes.VectorMatrix)):
                matrix, query = e.args if isinstance(e, nodes.MatrixVector) else e.args[::-1]
                if isinstance(matrix, nodes.SwapAxes):  # S^T q = q^T S, q^T S^T = S q
                    e = (nodes.VectorMatrix(query, matrix.args[0]) if isinstance(e, nodes.MatrixVector)
                         else nodes.MatrixVector(matrix.args[0], query))
                    matrix = matrix.args[0]
                if isinstance(matrix, sympy.Symbol) and matrix.name in self.chunked:
                    if e not in self.readouts:
                        contracts = "columns" if isinstance(e, nodes.MatrixVector) else "rows"
                        query = visit(query)
                        self._check_known(name, query)
                        local = nodes.local(f"{matrix.name}_{_hint(query)}")
                        while local in self.readouts.values():
                            local = nodes.local(nodes.local_hint(local) + "_")
                        self.readouts[e] = local
                        self.chunked[matrix.name]["readouts"].append(Readout(local.name, query, contracts))
                    return self.readouts[e]
            if not e.args:
                return e
            return e.func(*[visit(a) for a in e.args], evaluate=False)
        with evaluate(False):
            out = visit(expr)
        for sym in out.free_symbols:
            base = nodes.prev_of(sym) or sym.name
            if base in self.chunked:
                raise NotParallel(f"{name}_t reads the matrix state {self._readable(sym.name)} other than by a "
                                  "product with a vector (its chunkwise form is not written yet)")
        return out

    def _check_known(self, name: str, *exprs: sympy.Expr) -> None:
        for expr in exprs:
            for sym in sorted(expr.free_symbols, key=lambda s: s.name):
                if sym.name not in self.known and nodes.local_hint(sym) is None:
                    raise NotParallel(f"{name}_t depends on {self._readable(sym.name)}{self._through(name, sym.name)}")

    def _state(self, name: str):
        return name   # replaced by the IR's State in `linear_states`

    def _readable(self, name: str) -> str:
        return _readable(name, self.structure)

    def _through(self, state: str, name: str) -> str:
        return _through(self.structure, state, name, self.expressions)


def _linear_terms(name: str, expr: sympy.Expr, previous: sympy.Symbol):
    """`expr` as sum(factors * core) + sum(drives): core S_{t-1}, ("right", a, b) for S_{t-1} a b^T or
    ("left", a, b) for b a^T S_{t-1}; factors scale each term. NotParallel for any other use of S_{t-1}."""
    if previous not in expr.free_symbols:
        return [], [expr]
    if expr == previous:
        return [([], previous)], []
    if isinstance(expr, sympy.Add):
        held, drives = [], []
        for term in expr.args:
            h, d = _linear_terms(name, term, previous)
            held += h
            drives += d
        return held, drives
    if isinstance(expr, sympy.Mul):
        holding = [f for f in expr.args if previous in f.free_symbols]
        if len(holding) == 1:
            others = [f for f in expr.args if f is not holding[0]]
            held, drives = _linear_terms(name, holding[0], previous)
            return ([(others + factors, core) for factors, core in held],
                    [nodes.mul(*others, d) for d in drives])
    if isinstance(expr, nodes.Outer):
        first, second = expr.args
        if isinstance(first, nodes.MatrixVector) and first.args[0] == previous and previous not in (
                first.args[1].free_symbols | second.free_symbols):
            return [([], ("right", first.args[1], second))], []
        if isinstance(second, nodes.VectorMatrix) and second.args[1] == previous and previous not in (
                second.args[0].free_symbols | first.free_symbols):
            return [([], ("left", second.args[0], first))], []
    raise NotParallel(f"{name}_{{t-1}} enters {name}_t through a function or a product other than a decay or a "
                      "delta rule (its parallel form is not written yet)")


def _why(path, structure: Structure, matrices=frozenset()) -> str:
    """Each state's form and how the layer evaluates it, in the spec's terms."""
    parts = []
    for item in path:
        if isinstance(item, ChunkedState):
            s = item.state
            decay = {"scalar": "one number", "rows": "one per row", "columns": "one per column"}[item.decay_axis]
            reads = ", ".join(f"{s}_t q_t" if r.contracts == "columns" else f"q_t^T {s}_t" for r in item.readouts)
            if item.strength is not None:
                rule = (f"(I - b_t k_t k_t^T) {s}_{{t-1}}" if item.left else f"{s}_{{t-1}} (I - b_t k_t k_t^T)")
                decayed = "" if item.log_decay == 0 else ", decayed (one number a step)"
                parts.append(f"{s}_t is the delta rule {rule}{decayed} plus an outer product with the same key, "
                             f"read only as {reads}: chunkwise-parallel form (WY representation)")
            else:
                parts.append(f"{s}_t is {s}_{{t-1}} decayed ({decay} a step) plus an outer product, read only as "
                             f"{reads}: chunkwise-parallel form")
        elif isinstance(item, LinearState) and item.state == structure.input:
            continue
        elif isinstance(item, LinearState):
            s = item.state
            if s in matrices:
                parts.append(f"{s}_t is {s}_{{t-1}} scaled element by element plus a drive: parallel scan of "
                             "every entry (each step's matrix is formed for its readouts)")
                continue
            form = (f"the larger of {s}_{{t-1}} plus a shift and a floor" if item.max_plus
                    else f"{s}_{{t-1}} times a decay plus a drive")
            parts.append(f"{s}_t is {form}: {'max-plus ' if item.max_plus else ''}parallel scan")
    return "; ".join(parts) + " (each known before its state)"


def _hint(expr: sympy.Expr) -> str:
    names = sorted(s.name for s in expr.free_symbols if nodes.prev_of(s) is None and nodes.local_hint(s) is None)
    return names[0] if len(names) == 1 else "read"


def _max_plus(expr: sympy.Expr, s: sympy.Symbol):
    """(a, b) with expr == max(s + a, b), s in neither; None otherwise."""
    if nodes.function_name(expr) != "max":
        return None
    holding = [a for a in expr.args if s in a.free_symbols]
    if len(holding) != 1:
        return None
    floor = next(a for a in expr.args if a is not holding[0])
    split = affine(holding[0], s)
    if split is None or split[0] != 1:
        return None
    return split[1], floor


def log_of(expr: sympy.Expr) -> sympy.Expr:
    """log(expr) written without a log where the expression allows: log(exp(a)) = a,
    log(sigmoid(a)^p) = p * logsigmoid(a), log(1 - sigmoid(a)) = logsigmoid(-a),
    log(a * b) = log(a) + log(b)."""
    if nodes.function_name(expr) == "exp":
        return expr.args[0]
    if isinstance(expr, sympy.Pow):
        return nodes.mul(expr.exp, log_of(expr.base))
    if isinstance(expr, sympy.Mul):
        return nodes.add(*[log_of(f) for f in expr.args])
    if nodes.function_name(expr) == "sigmoid":
        return nodes.call("logsigmoid", expr.args[0])
    if isinstance(expr, sympy.Add) and len(expr.args) == 2 and sympy.Integer(1) in expr.args:
        other = next(a for a in expr.args if a != 1)   # 1 - sigmoid(a) = sigmoid(-a)
        if (isinstance(other, sympy.Mul) and len(other.args) == 2 and sympy.Integer(-1) in other.args):
            inner = next(a for a in other.args if a != -1)
            if nodes.function_name(inner) == "sigmoid":
                return nodes.call("logsigmoid", nodes.mul(sympy.Integer(-1), inner.args[0]))
    return nodes.call("log", expr)


def linear_states(recurrence: Recurrence, states) -> tuple | None:
    """The path with each state's name replaced by its State."""
    if recurrence.path is None:
        return None
    by_name = {s.name: s for s in states}
    return tuple(item._replace(state=by_name[item.state]) if isinstance(item, (LinearState, ChunkedState))
                 else item for item in recurrence.path)


def _reads_prev(expr) -> str | None:
    return min((s.name for s in expr.free_symbols if nodes.prev_of(s) is not None), default=None)


def _inline(expr, expressions, hoisted):
    """`expr` with the step-t variables that are not input-only substituted, so that the test
    sees through them; None when that grows past MAX_INLINED_NODES."""
    for _ in range(len(expressions) + 1):
        subs = {sympy.Symbol(v): e for v, e in expressions.items()
                if v not in hoisted and sympy.Symbol(v) in expr.free_symbols}
        if not subs:
            return expr
        with evaluate(False):  # an evaluated Add would import sympy.tensor (40 ms) for nothing
            expr = expr.xreplace(subs)
        if sum(1 for _ in sympy.preorder_traversal(expr)) > MAX_INLINED_NODES:
            return None
    return expr


def _readable(name: str, structure: Structure) -> str:
    previous = nodes.prev_of(name)
    if previous is not None:
        return f"{previous}_{{t-1}}"
    return f"{name}_t" if name in structure.variables else name


def _through(structure: Structure, state: str, name: str, expressions) -> str:
    """' through f_t' when `name` reaches the state's update through a step-t variable."""
    direct = {s.name for s in expressions[state].free_symbols}
    if name in direct:
        return ""
    for var in sorted(direct & set(structure.variables)):
        seen, todo = set(), [var]
        while todo:
            v = todo.pop()
            if v in seen:
                continue
            seen.add(v)
            syms = {s.name for s in expressions[v].free_symbols}
            if name in syms:
                return f" through {var}_t"
            todo += [s for s in syms if s in structure.variables]
    return ""


def affine(expr: sympy.Expr, s: sympy.Symbol) -> tuple[sympy.Expr, sympy.Expr] | None:
    """(a, b) with expr == a*s + b and s in neither, read off the tree without evaluating it;
    None when expr is not affine in s (s inside a function, a division, or a product of two)."""
    if s not in expr.free_symbols:
        return sympy.Integer(0), expr
    if expr == s:
        return sympy.Integer(1), sympy.Integer(0)
    if isinstance(expr, sympy.Add):
        decays, drives = [], []
        for term in expr.args:
            split = affine(term, s)
            if split is None:
                return None
            decays += [] if split[0] == 0 else [split[0]]
            drives += [] if split[1] == 0 else [split[1]]
        return (nodes.add(*decays) if decays else sympy.Integer(0),
                nodes.add(*drives) if drives else sympy.Integer(0))
    if isinstance(expr, sympy.Mul):
        holding = [f for f in expr.args if s in f.free_symbols]
        if len(holding) != 1:
            return None
        split = affine(holding[0], s)
        if split is None:
            return None
        others = [f for f in expr.args if f is not holding[0]]

        def scale(e):
            if not others:
                return e
            return nodes.mul(*others) if e == 1 else nodes.mul(*others, e)
        return (scale(split[0]) if split[0] != 0 else sympy.Integer(0),
                scale(split[1]) if split[1] != 0 else sympy.Integer(0))
    return None
