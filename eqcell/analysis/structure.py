"""Stage 1: the cell's structure. Which names are variables, parameters and the input; the
order in which a step computes the variables; the output; the states (variables read at t-1)."""
from __future__ import annotations

from typing import NamedTuple

from collections.abc import Mapping

import sympy

from .. import nodes
from ..errors import Span, SpecError, did_you_mean
from ..parse import TIME_PREV, Equation
from ..spec import Spec, check_identifier
from .frozen import frozen


class Structure(NamedTuple):
    input: str                                 # "x"
    equations: tuple[Equation, ...]            # as written
    variables: tuple[str, ...]                 # targets, as written
    order: tuple[str, ...]                     # targets, each after what it reads at step t
    output: str
    states: tuple[str, ...]                    # state-list order: the output first
    params: tuple[str, ...]                    # in order of first appearance
    param_spans: Mapping[str, Span]            # where each parameter is first written
    constants: tuple[str, ...]                 # names of fixed numbers (`constants:`), as listed
    input_prev: bool = False                   # x_{t-1} is read: the previous input is a state, the last

    def equation(self, name: str) -> Equation:
        return next(eq for eq in self.equations if eq.target == name)

    def nodes(self):
        """(equation, node) for every node of every right side, in preorder."""
        for eq in self.equations:
            for node in sympy.preorder_traversal(eq.expr):
                yield eq, node


def find_structure(spec: Spec, equations: tuple[Equation, ...]) -> Structure:
    input_name = spec.input.value
    variables = tuple(eq.target for eq in equations)
    constants = _check_constants(spec, equations, variables)
    param_spans = _check_names(equations, input_name, set(variables), set(constants))
    output = _find_output(spec, variables)
    params: list[str] = []
    for eq in equations:
        for node in sympy.preorder_traversal(eq.expr):
            if (node.is_Symbol and node.name not in params and node.name != input_name
                    and node.name not in variables and node.name not in constants and nodes.prev_of(node) is None):
                params.append(node.name)
    input_prev = any(ref.name == input_name and ref.time == TIME_PREV for eq in equations for ref in eq.refs)
    return Structure(input_name, equations, variables, _dependency_order(equations), output,
                     _find_states(spec, equations, output), tuple(params), frozen(param_spans), constants, input_prev)


def _check_constants(spec: Spec, equations, variables) -> tuple[str, ...]:
    read = {ref.name for eq in equations for ref in eq.refs}
    for key, _ in spec.constants:
        if key.value in variables or key.value == spec.input.value:
            raise SpecError(f"`constants` names {key.value!r}, which is a variable", key.span,
                            "a constant is a fixed number; give it a name of its own")
        if key.value not in read:
            raise SpecError(f"`constants` names {key.value!r}, which the equations never use", key.span,
                            did_you_mean(key.value, read) or "write it in an equation, or remove it")
    return tuple(key.value for key, _ in spec.constants)


def _check_names(equations, input_name: str, variables: set[str], constants: set[str]) -> dict[str, Span]:
    spans: dict[str, Span] = {}
    for eq in equations:
        check_identifier(eq.target, eq.span, "variable")
        if eq.target == input_name:
            raise SpecError(f"variable {eq.target!r} cannot be defined: it is the input", eq.span,
                            "the input is given, not computed; choose another name")
    for eq in equations:
        for ref in eq.refs:
            if ref.time is None:
                if ref.name in constants:
                    continue
                if ref.name in variables or ref.name == input_name:
                    raise SpecError(f"{ref.name!r} is a variable and needs a time index", ref.span,
                                    f"write {ref.name}_t or {ref.name}_{{t-1}}")
                check_identifier(ref.name, ref.span, "parameter")
                spans.setdefault(ref.name, ref.span)
            elif ref.name in constants:
                raise SpecError(f"{ref.name!r} is a constant: it has no time index", ref.span,
                                f"write {ref.name} alone")
            elif ref.name == input_name and ref.time == TIME_PREV:
                continue  # x_{t-1}: the previous input (token shift), kept as the last state
            elif ref.name != input_name and ref.name not in variables:
                raise SpecError(f"variable {ref.name!r} is used but never defined", ref.span,
                                did_you_mean(ref.name, variables) or
                                f"add an equation `{ref.name}_t = ...`, or drop the time index if it is a parameter")
    return spans


def _dependency_order(equations) -> tuple[str, ...]:
    """Targets in an order where each reads only earlier ones; stable w.r.t. writing order."""
    written = [eq.target for eq in equations]
    names = set(written)
    deps = {eq.target: {s.name for s in eq.expr.free_symbols if s.name in names} for eq in equations}
    done: list[str] = []
    done_set: set[str] = set()
    remaining = list(written)
    while remaining:
        ready = [name for name in remaining if deps[name] <= done_set]
        if not ready:
            cycle = _find_cycle(remaining, deps)
            first = min(cycle, key=written.index)
            names = cycle[cycle.index(first):] + cycle[:cycle.index(first)] + [first]
            span = next(eq.span for eq in equations if eq.target == first)
            if len(names) == 2:
                raise SpecError(f"{first}_t is defined in terms of itself", span,
                                f"a recurrence reads the past: write {first}_{{t-1}} on the right side")
            raise SpecError("cycle among step-t definitions: " + " -> ".join(f"{n}_t" for n in names), span,
                            f"read one of them at t-1 instead, e.g. {names[1]}_{{t-1}} in the equation of {first}_t")
        name = ready[0]
        done.append(name)
        done_set.add(name)
        remaining.remove(name)
    return tuple(done)


def _find_cycle(remaining, deps) -> list[str]:
    path, node = [], remaining[0]
    while node not in path:
        path.append(node)
        node = sorted(d for d in deps[node] if d in remaining)[0]
    return path[path.index(node):]


def _find_output(spec: Spec, variables: tuple[str, ...]) -> str:
    if spec.output is None:
        return variables[-1]
    loc = spec.output
    if loc.value not in variables:
        raise SpecError(f"`output` names {loc.value!r}, which is not a variable", loc.span,
                        did_you_mean(loc.value, variables) or "name a variable defined by an equation")
    return loc.value


def _find_states(spec: Spec, equations, output: str) -> tuple[str, ...]:
    read_prev: list[str] = []
    input_prev = False
    for eq in equations:
        for ref in eq.refs:
            if ref.time == TIME_PREV and ref.name == spec.input.value:
                input_prev = True
            elif ref.time == TIME_PREV and ref.name not in read_prev:
                read_prev.append(ref.name)
    if not read_prev and not input_prev:
        raise SpecError("the cell has no state: no variable is read at t-1", equations[-1].span,
                        f"a recurrent cell reads its past, e.g. {equations[-1].target}_{{t-1}}; "
                        "without one, use a Dense layer")
    variables = [eq.target for eq in equations]
    if spec.states is None:
        return tuple(sorted(read_prev, key=lambda s: (s != output, variables.index(s))))
    given = spec.states
    if given and given[-1].value == spec.input.value and input_prev:
        given = given[:-1]  # `states: [h, c, x]`: the previous input, last, as it is anyway
    listed = [s.value for s in given]
    for loc in given:
        if loc.value == spec.input.value:
            raise SpecError(f"`states` names the input {loc.value!r} before other states", loc.span,
                            f"the previous input ({loc.value}_{{t-1}}) is always the last state; list it last "
                            "or leave it out")
        if loc.value not in variables:
            raise SpecError(f"`states` names {loc.value!r}, which is not a variable", loc.span,
                            did_you_mean(loc.value, variables) or "list the variables read at t-1")
        if loc.value not in read_prev:
            raise SpecError(f"`states` names {loc.value!r}, which is never read at t-1", loc.span,
                            "a state is a variable read at t-1; remove it from `states`")
        if listed.count(loc.value) > 1:
            raise SpecError(f"`states` names {loc.value!r} twice", loc.span)
    missing = [s for s in read_prev if s not in listed]
    if missing:
        raise SpecError(f"`states` misses {', '.join(repr(m) for m in missing)}, read at t-1",
                        spec.states[0].span if spec.states else spec.equations_span,
                        "list every variable read at t-1, in the order of the state list")
    return tuple(listed)
