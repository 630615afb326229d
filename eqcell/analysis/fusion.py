"""Stage 4: fusion and layout. Matrices that multiply the same operand become one weight (one
matmul per operand and step, as Keras stores LSTM's four gate matrices in one `kernel`); a
vector added to each of a weight's products becomes its fused bias; fused weights summed slot
by slot form one product, split once (LSTM's `x @ kernel + h @ recurrent_kernel + bias`)."""
from __future__ import annotations

from typing import NamedTuple

from collections import Counter
from collections.abc import Mapping

import sympy

from .. import nodes
from ..errors import SpecError, did_you_mean
from ..spec import Spec
from .frozen import frozen
from .roles import Roles
from .shapes import Shapes
from .structure import Structure


class FusedWeight(NamedTuple):
    name: str                        # "kernel", "recurrent_kernel", "c_kernel": the weight's own name
    operand: sympy.Expr
    members: tuple[str, ...]         # matrices, in column order
    biases: tuple[str, ...]          # one per member when the bias is fused, else ()
    bias_weight: str | None          # "bias", or e.g. "c_bias" when several biases cannot stack


class Sum(NamedTuple):
    """One sum in an equation, found by its path in the tree."""

    path: tuple[int, ...]
    equation: str
    terms: tuple[sympy.Expr, ...]


class Fusion(NamedTuple):
    weights: tuple[FusedWeight, ...]
    groups: tuple[tuple[int, ...], ...]      # indices into weights: summed slot by slot, one product
    bias_of: Mapping[str, str]               # matrix -> the bias fused with it
    stacked: bool                            # several biased weights share one (rows, width) bias
    sums: tuple[Sum, ...]


def fuse(spec: Spec, structure: Structure, roles: Roles, shapes: Shapes) -> Fusion:
    groups: dict[sympy.Expr, list[str]] = {}
    for name in structure.params:
        if roles.role[name] == "matrix":
            groups.setdefault(roles.operand[name], []).append(name)
    names = _weight_names(structure, groups)
    order = sorted(groups, key=lambda op: (names[op] != "kernel", names[op] != "recurrent_kernel"))
    sums = tuple(s for eq in structure.equations for s in _sums(eq.expr, (), eq.target))
    bias_of = _attach_biases(structure, roles, sums)
    members = {op: groups[op] for op in order}
    biases = {op: [bias_of[m] for m in ms] if all(m in bias_of for m in ms) else [] for op, ms in members.items()}
    fused_biases = {b for bs in biases.values() for b in bs}
    bias_of = {m: b for m, b in bias_of.items() if b in fused_biases}
    _apply_layout(spec, names, members, biases, shapes)
    with_bias = [op for op in order if biases[op]]
    stacked = len(with_bias) > 1 and len({tuple(shapes.param[m][0] for m in members[op]) for op in with_bias}) == 1
    bias_names = {}
    for i, op in enumerate(with_bias):
        bias_names[op] = "bias" if stacked or i == 0 else names[op].replace("kernel", "bias").strip("_") or "bias"
    weights = tuple(FusedWeight(names[op], op, tuple(members[op]), tuple(biases[op]), bias_names.get(op))
                    for op in order)
    return Fusion(weights, _group_products(structure, roles, shapes, weights, sums), frozen(bias_of),
                  stacked, sums)


def _weight_names(structure: Structure, groups) -> dict[sympy.Expr, str]:
    """kernel (on the input), recurrent_kernel (on the output at t-1), <operand>_kernel."""
    names: dict[sympy.Expr, str] = {}
    for operand, matrices in groups.items():
        if operand == sympy.Symbol(structure.input):
            name = "kernel"
        elif operand == nodes.prev(structure.output):
            name = "recurrent_kernel"
        elif operand.is_Symbol:
            previous = nodes.prev_of(operand)
            name = f"{previous}_kernel" if previous is not None else f"{operand.name}_t_kernel"
        else:
            name = f"{matrices[0].lower()}_kernel"
        while name in names.values():
            name += "_"
        names[operand] = name
    return names


def _sums(expr, path, target):
    if isinstance(expr, sympy.Add):
        yield Sum(path, target, expr.args)
    for i, arg in enumerate(expr.args):
        yield from _sums(arg, path + (i,), target)


def _attach_biases(structure: Structure, roles: Roles, sums) -> dict[str, str]:
    """matrix -> the vector added next to its product (the nearest one before it, else after),
    for vectors used exactly once and matrices used in one product."""
    uses = Counter(node.name for _, node in structure.nodes() if node.is_Symbol)
    bias_of: dict[str, str] = {}
    for s in sums:
        matvecs = [i for i, t in enumerate(s.terms) if isinstance(t, nodes.MatVec)]
        if not matvecs:
            continue
        for i, term in enumerate(s.terms):
            if not (term.is_Symbol and roles.role.get(term.name) == "vector" and uses[term.name] == 1):
                continue
            before = [j for j in matvecs if j < i and s.terms[j].args[0].name not in bias_of]
            after = [j for j in matvecs if j > i and s.terms[j].args[0].name not in bias_of]
            pick = before[-1] if before else (after[0] if after else None)
            if pick is not None and roles.uses[s.terms[pick].args[0].name] == 1:
                bias_of[s.terms[pick].args[0].name] = term.name
    return bias_of


def _apply_layout(spec: Spec, names, members, biases, shapes) -> None:
    """Reorders `members` and `biases` (in place, before they are frozen) as `layout` says."""
    by_weight = {names[op]: op for op in members}
    bias_weight = {}
    with_bias = [op for op in members if biases[op]]
    for i, op in enumerate(with_bias):
        bias_weight.setdefault("bias" if i == 0 else names[op].replace("kernel", "bias").strip("_") or "bias", op)
    for key, entries in spec.layout:
        listed = [e.value for e in entries]
        if key.value in by_weight:
            target = members[by_weight[key.value]]
        elif key.value in bias_weight:
            target = biases[bias_weight[key.value]]
        else:
            choices = list(by_weight) + list(bias_weight)
            raise SpecError(f"`layout` names {key.value!r}, which is not a fused weight of this cell",
                            key.span, did_you_mean(key.value, choices) or f"fused weights: {', '.join(choices)}")
        for entry in entries:
            if entry.value not in target:
                raise SpecError(f"`layout.{key.value}` names {entry.value!r}, which is not in that weight",
                                entry.span, did_you_mean(entry.value, target) or f"members: {', '.join(target)}")
        if sorted(listed) != sorted(target):
            missing = [m for m in target if m not in listed]
            dup = [m for m in listed if listed.count(m) > 1]
            raise SpecError(f"`layout.{key.value}` must list each of {', '.join(target)} once"
                            + (f" (missing {', '.join(missing)})" if missing else f" ({dup[0]} twice)"), key.span)
        new_order = [target.index(n) for n in listed]
        for op in members:  # a weight's matrices and their biases move together
            if members[op] is target or biases[op] is target:
                members[op] = [members[op][i] for i in new_order]
                if biases[op]:
                    biases[op] = [biases[op][i] for i in new_order]


def _group_products(structure, roles, shapes, weights, sums) -> tuple[tuple[int, ...], ...]:
    sum_of: dict[str, tuple] = {}
    for s in sums:
        for term in s.terms:
            if isinstance(term, nodes.MatVec):
                sum_of.setdefault(term.args[0].name, (s.equation, s.path))

    def waits_for(w: FusedWeight) -> frozenset:
        return frozenset(s.name for s in w.operand.free_symbols if s.name in structure.variables)

    groups: list[list[int]] = []
    for i, f in enumerate(weights):
        for group in groups:
            g = weights[group[0]]
            if (len(g.members) == len(f.members)
                    and all(roles.uses[m] == 1 for m in g.members + f.members)
                    and all(shapes.param[a][0] == shapes.param[b][0] for a, b in zip(g.members, f.members))
                    and all(sum_of.get(a) == sum_of.get(b) is not None for a, b in zip(g.members, f.members))
                    and waits_for(f) == waits_for(g)):
                group.append(i)
                break
        else:
            groups.append([i])
    return tuple(tuple(g) for g in groups)
