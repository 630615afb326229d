"""Stage 6: recurrence. Whether every state's update is s_t = a_t * s_{t-1} + b_t with a_t and
b_t computed from the input only, which the layer then evaluates for all steps at once with a
parallel scan instead of a step loop; and why not, in the user's terms, when it is not."""
from __future__ import annotations

from typing import NamedTuple


import sympy
from sympy.core.parameters import evaluate

from .. import nodes
from ..ir import LinearState, Product
from .lowering import Lowered
from .structure import Structure

MAX_INLINED_NODES = 5000   # beyond this the inlined update is not analyzed: the cell loops


class Recurrence(NamedTuple):
    linear: tuple[tuple[str, sympy.Expr, sympy.Expr], ...] | None   # (state, a_t, b_t) for every state
    reason: str


def find_recurrence(structure: Structure, lowered: Lowered, matrices: frozenset[str] = frozenset(),
                    heads: bool = False) -> Recurrence:
    if heads:
        return Recurrence(None, "a cell with heads: sequential (its parallel form is not written yet)")
    matrix_states = [s for s in structure.states if s in matrices]
    if matrix_states:
        return Recurrence(None, f"{matrix_states[0]} is a matrix state: sequential (its chunkwise-parallel form "
                                "is not written yet)")
    expressions = dict(lowered.expressions)
    hoisted = lowered.hoisted
    products = [s for s in lowered.steps if isinstance(s, Product)]
    for p in products:
        if not p.hoistable:
            for op in p.operands:
                inlined = _inline(op.expr, expressions, hoisted)
                late = "a state at t-1" if inlined is None else _reads_prev(inlined)
                if late:
                    return Recurrence(None, f"a matrix product in the step reads {_readable(late, structure)}: "
                                            "sequential")
    input_only = (set(hoisted) | {s for p in products for s in p.slots} | {structure.input}
                  | set(structure.params) | set(structure.constants) | {p.partial for p in products if p.partial})
    out = []
    for state in structure.states:
        expr = _inline(expressions[state], expressions, hoisted)
        if expr is None:
            return Recurrence(None, f"{state}_t is too large to analyze for a scan: sequential")
        split = affine(expr, nodes.prev(state))
        if split is None:
            return Recurrence(None, f"{state}_t is not affine in {state}_{{t-1}} (it passes through a "
                                    "function or a matrix product): sequential")
        for part in split:
            for sym in sorted(part.free_symbols, key=lambda s: s.name):
                if sym.name not in input_only:
                    through = _through(structure, state, sym.name, expressions)
                    return Recurrence(None, f"{state}_t depends on {_readable(sym.name, structure)}{through}: "
                                            "sequential")
        out.append((state, *split))
    states = set(structure.states)
    for name, expr in expressions.items():  # what is left after the scans must not need t-1
        if name not in hoisted and name not in states:
            late = _reads_prev(expr)
            if late:
                return Recurrence(None, f"{name}_t reads {_readable(late, structure)}: sequential")
    return Recurrence(tuple(out), "every state is s_t = a_t * s_{t-1} + b_t with a_t, b_t from the input only: "
                                  "parallel scan")


def linear_states(recurrence: Recurrence, states) -> tuple[LinearState, ...] | None:
    if recurrence.linear is None:
        return None
    by_name = {s.name: s for s in states}
    return tuple(LinearState(by_name[name], decay, drive) for name, decay, drive in recurrence.linear)


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
