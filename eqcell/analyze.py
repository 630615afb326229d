"""Stage 3, analyze: equations -> CellIR.

Finds the states (anything read at t-1), the parameters and their roles and shapes, fuses the
matrices that share an operand into one Keras weight, folds biases into the fused products,
orders the step, and marks what depends on the input only."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field

import sympy
from sympy.core.parameters import evaluate

from . import nodes
from .errors import Span, SpecError, did_you_mean
from .ir import (ActivationArg, CellIR, Dim, InitSlice, LinearState, Operand, Param, Product,
                 State, Statement, Weight)
from .parse import TIME_PREV, Equation, parse_equations
from .printing.plain import PlainPrinter
from .spec import RESERVED, Spec, check_identifier, load_spec

KERAS_ACTIVATIONS = frozenset({
    "sigmoid", "tanh", "relu", "hard_sigmoid", "softplus", "softsign", "exponential", "linear",
    "elu", "selu", "gelu", "silu", "swish", "relu6", "leaky_relu", "hard_silu", "hard_swish",
    "mish", "celu", "hard_tanh", "log_sigmoid", "tanh_shrink", "softmax", "log_softmax"})
KERAS_INITIALIZERS = frozenset({
    "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "random_normal", "random_uniform",
    "truncated_normal", "identity", "variance_scaling"})
UNITS, INPUT_DIM = "units", "input_dim"


def analyze(source) -> CellIR:
    """Spec (or anything `load_spec` accepts) -> CellIR."""
    spec = source if isinstance(source, Spec) else load_spec(source)
    return _Analysis(spec, parse_equations(spec)).run()


@dataclass
class _Add:
    """One sum in an equation, found by its path in the tree."""

    path: tuple[int, ...]
    equation: str
    terms: tuple[sympy.Expr, ...]
    top_level: bool              # the equation's right side, or the argument of its outer function


@dataclass
class _Fused:
    name: str
    operand: sympy.Expr
    members: list[str] = field(default_factory=list)
    biases: list[str] = field(default_factory=list)   # one per member when the bias is fused


class _Analysis:
    def __init__(self, spec: Spec, equations: tuple[Equation, ...]):
        self.spec, self.equations = spec, equations
        self.input = spec.input.value
        self.variables = {eq.target: eq for eq in equations}
        self.plain = PlainPrinter(self.variables, self.input)

    def fail(self, message, span, hint=""):
        raise SpecError(message, span, hint)

    # -- the whole analysis ---------------------------------------------------------------
    def run(self) -> CellIR:
        self.check_names()
        order = self.dependency_order()
        self.output = output = self.find_output()
        states = self.find_states()
        self.classify_params()
        self.infer_sizes()
        fused = self.fuse()
        self.attach_biases(fused)
        self.apply_layout(fused)
        groups = self.group_products(fused)
        expressions = self.rewrite(groups)
        activations = self.activations()
        return self.build_ir(order, states, output, fused, groups, expressions, activations)

    # -- names ----------------------------------------------------------------------------
    def check_names(self):
        for eq in self.equations:
            check_identifier(eq.target, eq.span, "variable")
            if eq.target.endswith("_tm1") or eq.target == self.input:
                what = "the input" if eq.target == self.input else "a name ending in _tm1"
                self.fail(f"variable {eq.target!r} cannot be defined: it is {what}", eq.span,
                          "the input is given, not computed; choose another name")
        self.param_spans: dict[str, Span] = {}
        for eq in self.equations:
            for ref in eq.refs:
                if ref.time is None:
                    if ref.name in self.variables or ref.name == self.input:
                        self.fail(f"{ref.name!r} is a variable and needs a time index", ref.span,
                                  f"write {ref.name}_t or {ref.name}_{{t-1}}")
                    check_identifier(ref.name, ref.span, "parameter")
                    self.param_spans.setdefault(ref.name, ref.span)
                elif ref.name != self.input and ref.name not in self.variables:
                    self.fail(f"variable {ref.name!r} is used but never defined", ref.span,
                              did_you_mean(ref.name, self.variables) or
                              f"add an equation `{ref.name}_t = ...`, or drop the time index if it is a parameter")

    # -- order ----------------------------------------------------------------------------
    def step_deps(self, eq: Equation) -> list[str]:
        return [s.name for s in sorted(eq.expr.free_symbols, key=lambda s: s.name)
                if s.name in self.variables]

    def dependency_order(self) -> list[str]:
        """Targets in an order where each reads only earlier ones; stable w.r.t. writing order."""
        written = [eq.target for eq in self.equations]
        deps = {eq.target: set(self.step_deps(eq)) for eq in self.equations}
        done: list[str] = []
        remaining = list(written)
        while remaining:
            for name in remaining:
                if deps[name] <= set(done):
                    done.append(name)
                    remaining.remove(name)
                    break
            else:
                cycle = self.find_cycle(remaining, deps)
                first = min(cycle, key=written.index)
                names = cycle[cycle.index(first):] + cycle[:cycle.index(first)] + [first]
                self.fail("cycle among step-t definitions: " + " -> ".join(f"{n}_t" for n in names),
                          self.variables[first].span,
                          f"read one of them at t-1 instead, e.g. {names[1]}_{{t-1}} in the equation of {first}_t")
        return done

    @staticmethod
    def find_cycle(remaining, deps) -> list[str]:
        start = remaining[0]
        path, node = [], start
        while node not in path:
            path.append(node)
            node = sorted(d for d in deps[node] if d in remaining)[0]
        return path[path.index(node):]

    # -- states ---------------------------------------------------------------------------
    def find_states(self) -> list[str]:
        read_prev = []
        for eq in self.equations:
            for ref in eq.refs:
                if ref.time == TIME_PREV and ref.name not in read_prev:
                    read_prev.append(ref.name)
        if not read_prev:
            self.fail("the cell has no state: no variable is read at t-1", self.equations[-1].span,
                      f"a recurrent cell reads its past, e.g. {self.equations[-1].target}_{{t-1}}; "
                      "without one, use a Dense layer")
        output = self.output
        if self.spec.states is not None:
            listed = [s.value for s in self.spec.states]
            for loc in self.spec.states:
                if loc.value not in self.variables:
                    self.fail(f"`states` names {loc.value!r}, which is not a variable", loc.span,
                              did_you_mean(loc.value, self.variables) or "list the variables read at t-1")
                if loc.value not in read_prev:
                    self.fail(f"`states` names {loc.value!r}, which is never read at t-1", loc.span,
                              "a state is a variable read at t-1; remove it from `states`")
                if listed.count(loc.value) > 1:
                    self.fail(f"`states` names {loc.value!r} twice", loc.span)
            missing = [s for s in read_prev if s not in listed]
            if missing:
                self.fail(f"`states` misses {', '.join(repr(m) for m in missing)}, read at t-1",
                          self.spec.states[0].span if self.spec.states else self.spec.equations_span,
                          "list every variable read at t-1, in the order of the state list")
            return listed
        written = [eq.target for eq in self.equations]
        ordered = sorted(read_prev, key=lambda s: (s != output, written.index(s)))
        return ordered

    def find_output(self) -> str:
        if self.spec.output is None:
            return self.equations[-1].target
        loc = self.spec.output
        if loc.value not in self.variables:
            self.fail(f"`output` names {loc.value!r}, which is not a variable", loc.span,
                      did_you_mean(loc.value, self.variables) or "name a variable defined by an equation")
        return loc.value

    # -- parameters -----------------------------------------------------------------------
    def all_nodes(self):
        for eq in self.equations:
            for node in sympy.preorder_traversal(eq.expr):
                yield eq, node

    def classify_params(self):
        known = set(self.variables) | {f"{v}_tm1" for v in self.variables} | {self.input}
        self.matrices: dict[str, sympy.Expr] = {}      # matrix -> its operand
        self.matrix_uses: dict[str, int] = defaultdict(int)
        self.params: list[str] = []
        self.roles: dict[str, str] = {}
        for eq, node in self.all_nodes():
            if isinstance(node, nodes.MatVec):
                matrix, operand = node.args
                self.matrix_uses[matrix.name] += 1
                if matrix.name in self.matrices and self.matrices[matrix.name] != operand:
                    self.fail(f"matrix {matrix.name!r} multiplies two different operands",
                              self.param_spans[matrix.name],
                              "use one matrix per operand; fused weights are grouped by operand")
                self.matrices.setdefault(matrix.name, operand)
            if nodes.function_name(node) == "layer_norm":
                self.roles[node.args[1].name] = "gain"
                self.roles[node.args[2].name] = "layer_norm_bias"
        for eq, node in self.all_nodes():
            if node.is_Symbol and node.name not in known and node.name not in self.params:
                self.params.append(node.name)
        for name in self.params:
            if name in self.matrices:
                self.roles[name] = "matrix"
            else:
                self.roles.setdefault(name, "vector")
        for eq, node in self.all_nodes():  # a matrix used as a vector elsewhere
            if node.is_Symbol and self.roles.get(node.name) == "matrix":
                for parent in sympy.preorder_traversal(eq.expr):
                    if node in parent.args and not isinstance(parent, nodes.MatVec):
                        self.fail(f"parameter {node.name!r} is used both as a matrix and element-wise",
                                  self.param_spans[node.name], "use two parameters")
                    if isinstance(parent, nodes.MatVec) and parent.args[1] == node:
                        self.fail(f"parameter {node.name!r} is used both as a matrix and as an operand",
                                  self.param_spans[node.name], "use two parameters")

    # -- sizes ----------------------------------------------------------------------------
    def infer_sizes(self):
        parent: dict[str, str] = {}
        labels: dict[str, str] = {}
        members_var: dict[str, bool] = {}

        def find(a):
            while parent.setdefault(a, a) != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        size_of_var = {}
        for key, value in self.spec.sizes:
            if key.value not in self.variables:
                self.fail(f"`sizes` names {key.value!r}, which is not a variable", key.span,
                          did_you_mean(key.value, self.variables) or "name a variable; it gets that size")
            size_of_var[key.value] = value.value
        for var in self.variables:
            find(f"v:{var}")
            members_var[f"v:{var}"] = True
            if var in size_of_var:
                labels[f"v:{var}"] = size_of_var[var]
        labels[find("v:" + self.input)] = INPUT_DIM
        self.square_input = False

        def union(a, b, eq):
            ra, rb = find(a), find(b)
            if ra == rb:
                return ra
            la, lb = labels.get(ra), labels.get(rb)
            if la and lb and la != lb:
                # the caret: a name of either side that is not a matrix's operand, else the target
                operands = {m.args[1] for m in sympy.preorder_traversal(eq.expr) if isinstance(m, nodes.MatVec)}
                direct = [(r, ("v:" + r.name,) if r.time is not None else ("p:" + r.name, "m:" + r.name))
                          for r in eq.refs if sympy.Symbol(r.name + ("_tm1" if r.time else "")) not in operands]
                at = next((r.span for root in (rb, ra) for r, keys in direct
                           if any(k in parent and find(k) == root for k in keys)), eq.span)
                self.fail(f"element-wise combination of vectors of sizes {la} and {lb}", at,
                          "element-wise operations need equal sizes; a matrix changes the size")
            parent[rb] = ra
            if lb and not la:
                labels[ra] = lb
            members_var[ra] = members_var.get(ra, False) or members_var.get(rb, False)
            return ra

        def visit(expr, eq) -> str | None:
            if expr.is_Number:
                return None
            if expr.is_Symbol:
                name = expr.name
                if name.endswith("_tm1") and name[:-4] in self.variables:
                    return find("v:" + name[:-4])
                if name in self.variables or name == self.input:
                    return find("v:" + name)
                return find("p:" + name)
            if isinstance(expr, nodes.MatVec):
                matrix, operand = expr.args
                col = visit(operand, eq)
                if col is None:
                    self.fail(f"matrix {matrix.name!r} multiplies a constant", eq.span)
                self.matrix_cols.setdefault(matrix.name, []).append((col, operand))
                return find("m:" + matrix.name)
            if expr.is_Pow:
                return visit(expr.args[0], eq)
            classes = [c for c in (visit(a, eq) for a in expr.args) if c is not None]
            if not classes:
                return None
            out = classes[0]
            for c in classes[1:]:
                out = union(out, c, eq)
            return find(out)

        self.matrix_cols: dict[str, list] = {}
        for eq in self.equations:
            cls = visit(eq.expr, eq)
            if cls is not None:
                union("v:" + eq.target, cls, eq)

        def resolve(key) -> str:
            root = find(key)
            label = labels.get(root)
            if label == INPUT_DIM and any(members_var.get(k) and find(k) == root
                                          for k in list(parent) if k.startswith("v:") and k != "v:" + self.input):
                self.square_input = True
                return UNITS
            return label or UNITS

        self.var_size = {v: resolve("v:" + v) for v in self.variables}
        self.shapes: dict[str, tuple[str, ...]] = {}
        for name in self.params:
            if self.roles[name] == "matrix":
                col_class, operand = self.matrix_cols[name][0]
                col = INPUT_DIM if operand == sympy.Symbol(self.input) else resolve(col_class)
                self.shapes[name] = (resolve("m:" + name), col)
            else:
                self.shapes[name] = (resolve("p:" + name),)

    # -- fusion ---------------------------------------------------------------------------
    def fuse(self) -> list[_Fused]:
        """Group matrices by operand, so each step does one matmul per operand.

        Keras stores LSTM's four gate matrices as one `kernel` for the same reason."""
        groups: dict[sympy.Expr, _Fused] = {}
        for name in self.params:
            if self.roles[name] != "matrix":
                continue
            operand = self.matrices[name]
            if operand not in groups:
                groups[operand] = _Fused(self.weight_name(operand, name, groups), operand)
            groups[operand].members.append(name)
        fused = list(groups.values())
        fused.sort(key=lambda f: (f.name != "kernel", f.name != "recurrent_kernel"))
        taken = {f.name for f in fused}
        for name in self.params:
            if self.roles[name] != "matrix" and name in taken:
                self.fail(f"parameter {name!r} has the name of a fused weight", self.param_spans[name],
                          "rename the parameter")
        return fused

    def weight_name(self, operand, matrix, groups) -> str:
        output = self.output
        if operand == sympy.Symbol(self.input):
            return "kernel"
        if operand == sympy.Symbol(f"{output}_tm1"):
            return "recurrent_kernel"
        if operand.is_Symbol:
            base = operand.name[:-4] if operand.name.endswith("_tm1") else operand.name + "_t"
            name = f"{base}_kernel"
        else:
            name = f"{matrix.lower()}_kernel"
        taken = {g.name for g in groups.values()}
        while name in taken:
            name += "_"
        return name

    def attach_biases(self, fused: list[_Fused]):
        """Vectors added to a fused product join its `bias` (one per member, else none)."""
        self.adds: list[_Add] = []
        for eq in self.equations:
            self.collect_adds(eq.expr, (), eq.target, eq.expr)
        uses = defaultdict(int)
        for _, node in self.all_nodes():
            if node.is_Symbol:
                uses[node.name] += 1
        self.bias_of: dict[str, str] = {}
        for add in self.adds:
            matvecs = [i for i, t in enumerate(add.terms) if isinstance(t, nodes.MatVec)]
            if not matvecs:
                continue
            for i, term in enumerate(add.terms):
                if not (term.is_Symbol and self.roles.get(term.name) == "vector" and uses[term.name] == 1):
                    continue
                before = [j for j in matvecs if j < i and add.terms[j].args[0].name not in self.bias_of]
                after = [j for j in matvecs if j > i and add.terms[j].args[0].name not in self.bias_of]
                pick = before[-1] if before else (after[0] if after else None)
                if pick is not None and self.matrix_uses[add.terms[pick].args[0].name] == 1:
                    self.bias_of[add.terms[pick].args[0].name] = term.name
        for f in fused:
            if all(m in self.bias_of for m in f.members):
                f.biases = [self.bias_of[m] for m in f.members]
        fused_biases = {b for f in fused for b in f.biases}
        self.bias_of = {m: b for m, b in self.bias_of.items() if b in fused_biases}
        for b in fused_biases:
            self.roles[b] = "bias"

    def collect_adds(self, expr, path, target, top):
        if isinstance(expr, sympy.Add):
            is_top = expr is top or (nodes.function_name(top) is not None and len(top.args) >= 1
                                     and top.args[0] is expr)
            self.adds.append(_Add(path, target, expr.args, is_top))
        for i, arg in enumerate(expr.args):
            self.collect_adds(arg, path + (i,), target, top)

    def apply_layout(self, fused: list[_Fused]):
        by_name = {f.name: f for f in fused}
        bias_names = self.bias_weight_names(fused)
        for key, entries in self.spec.layout:
            names = [e.value for e in entries]
            if key.value in by_name:
                target = by_name[key.value].members
            elif key.value in bias_names.values():
                target = next(f for f in fused if bias_names.get(f.name) == key.value).biases
            else:
                choices = list(by_name) + list(bias_names.values())
                self.fail(f"`layout` names {key.value!r}, which is not a fused weight of this cell",
                          key.span, did_you_mean(key.value, choices) or f"fused weights: {', '.join(choices)}")
            for entry in entries:
                if entry.value not in target:
                    self.fail(f"`layout.{key.value}` names {entry.value!r}, which is not in that weight",
                              entry.span, did_you_mean(entry.value, target) or f"members: {', '.join(target)}")
            if sorted(names) != sorted(target):
                missing = [m for m in target if m not in names]
                dup = [m for m in names if names.count(m) > 1]
                self.fail(f"`layout.{key.value}` must list each of {', '.join(target)} once"
                          + (f" (missing {', '.join(missing)})" if missing else f" ({dup[0]} twice)"),
                          key.span)
            new_order = [target.index(n) for n in names]
            for f in fused:  # members and biases move together
                if f.members is target or f.biases is target:
                    f.members = [f.members[i] for i in new_order]
                    if f.biases:
                        f.biases = [f.biases[i] for i in new_order]

    def bias_weight_names(self, fused) -> dict[str, str]:
        with_bias = [f for f in fused if f.biases]
        if len(with_bias) <= 1 or self.stackable(with_bias):
            return {f.name: "bias" for f in with_bias}
        out = {}
        for i, f in enumerate(with_bias):
            out[f.name] = "bias" if i == 0 else f.name.replace("kernel", "bias").strip("_") or "bias"
        return out

    def stackable(self, with_bias) -> bool:
        widths = {tuple(self.shapes[m][0] for m in f.members) for f in with_bias}
        return len(widths) == 1

    # -- products -------------------------------------------------------------------------
    def group_products(self, fused: list[_Fused]) -> list[list[_Fused]]:
        """Fused weights whose members are summed slot by slot form one product: LSTM's
        `x @ kernel + h @ recurrent_kernel + bias`, split once."""
        add_of: dict[str, tuple] = {}
        for add in self.adds:
            for term in add.terms:
                if isinstance(term, nodes.MatVec):
                    add_of.setdefault(term.args[0].name, (add.equation, add.path))
        groups: list[list[_Fused]] = []
        for f in fused:
            for group in groups:
                g = group[0]
                if (len(g.members) == len(f.members)
                        and all(self.matrix_uses[m] == 1 for m in g.members + f.members)
                        and all(self.shapes[a][0] == self.shapes[b][0] for a, b in zip(g.members, f.members))
                        and all(add_of.get(a) == add_of.get(b) is not None for a, b in zip(g.members, f.members))
                        and self.operand_ready(f) == self.operand_ready(g)):
                    group.append(f)
                    break
            else:
                groups.append([f])
        return groups

    def operand_ready(self, f: _Fused) -> frozenset:
        """Step-t variables a product must wait for."""
        return frozenset(s.name for s in f.operand.free_symbols if s.name in self.variables)

    def slot_names(self, groups) -> tuple[dict[int, list[str]], dict[int, str]]:
        """Names of the split parts (`z_f`) and of each product before the split (`z`)."""
        fresh = self.fresh_name
        output = self.output
        slots: dict[int, list[str]] = {}
        targets: dict[int, str] = {}
        for gi, group in enumerate(groups):
            lead = group[0]
            if len(group) > 1:
                prefix = "z"
            elif lead.name == "kernel":
                prefix = "x"
            elif lead.name == "recurrent_kernel":
                prefix = output
            else:
                prefix = lead.name[: -len("_kernel")].rstrip("_") or "z"
            out = []
            for i in range(len(lead.members)):
                matrices = [f.members[i] for f in group]
                suffixes = {m.split("_", 1)[1] if "_" in m else "" for m in matrices}
                suffix = suffixes.pop() if len(suffixes) == 1 else ""
                if not suffix:
                    suffix = self.slot_variable(group, i) or str(i)
                if len(lead.members) == 1 and len(group) > 1 and not any("_" in m for m in matrices):
                    out.append(fresh("z"))
                else:
                    out.append(fresh(f"{prefix}_{suffix}"))
            slots[gi] = out
            targets[gi] = out[0] if len(out) == 1 else fresh("z" if len(group) > 1 else f"z_{prefix}")
        return slots, targets

    @staticmethod
    def input_only_slots(products) -> set[str]:
        return {slot for p in products if p.hoistable for slot in p.slots}

    def fresh_name(self, name: str) -> str:
        """A local name of the generated step that no spec name or earlier local uses."""
        if not hasattr(self, "taken"):
            self.taken = set(self.variables) | {f"{v}_tm1" for v in self.variables} | set(self.params)
            self.taken |= {self.input} | RESERVED | {f"{v}_tm1_dp" for v in self.variables}
            self.taken |= {"projected", "keep", "outputs", "last_output", "new_states", "step"}
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    def slot_variable(self, group, i) -> str | None:
        for add in self.adds:
            for term in add.terms:
                if isinstance(term, nodes.MatVec) and term.args[0].name == group[0].members[i]:
                    return add.equation
        for eq in self.equations:
            for node in sympy.preorder_traversal(eq.expr):
                if isinstance(node, nodes.MatVec) and node.args[0].name == group[0].members[i]:
                    return eq.target
        return None

    def rewrite(self, groups) -> dict[str, sympy.Expr]:
        """Each equation with its fused products and biases replaced by the split slices."""
        self.slots, self.product_targets = self.slot_names(groups)
        slot_of_matrix: dict[str, str] = {}
        merged_slot: dict[str, str] = {}
        for gi, group in enumerate(groups):
            for f in group:
                for i, m in enumerate(f.members):
                    slot_of_matrix[m] = self.slots[gi][i]
                    if len(group) > 1:
                        merged_slot[m] = self.slots[gi][i]
        fused_bias = set(self.bias_of.values())

        def visit(expr):
            if isinstance(expr, nodes.MatVec):
                return sympy.Symbol(slot_of_matrix[expr.args[0].name])
            if nodes.function_name(expr) == "identity":
                return visit(expr.args[0])
            if not expr.args:
                return expr
            if isinstance(expr, sympy.Add):
                terms, placed = [], set()
                for term in expr.args:
                    if term.is_Symbol and term.name in fused_bias:
                        continue
                    if isinstance(term, nodes.MatVec):
                        slot = slot_of_matrix[term.args[0].name]
                        if slot in placed:
                            continue
                        if term.args[0].name in merged_slot:
                            placed.add(slot)
                    terms.append(visit(term))
                return nodes.add(*terms)
            args = [visit(a) for a in expr.args]
            if isinstance(expr, sympy.Mul):
                return nodes.mul(*args)
            with evaluate(False):
                return expr.func(*args)

        self.rewrite_expr = visit
        return {eq.target: visit(eq.expr) for eq in self.equations}

    # -- activations ----------------------------------------------------------------------
    def activations(self) -> list[ActivationArg]:
        used = {nodes.function_name(n) for _, n in self.all_nodes()} - {None}
        out, seen = [], {}
        for act in self.spec.activations:
            arg, symbol, default = act.arg.value, act.symbol.value, act.default.value
            symbol = nodes.ALIASES.get(symbol, symbol)
            if symbol not in nodes.FUNCTIONS or symbol == "layer_norm":
                self.fail(f"activation {arg!r} replaces {symbol!r}, which is not an element-wise function",
                          act.symbol.span, did_you_mean(symbol, nodes.FUNCTIONS) or
                          f"functions: {', '.join(f for f in nodes.FUNCTIONS if f != 'layer_norm')}")
            if symbol not in used:
                self.fail(f"activation {arg!r} replaces {symbol!r}, which the equations never call",
                          act.symbol.span, f"the equations call {', '.join(sorted(used)) or 'no function'}")
            if symbol in seen:
                self.fail(f"{symbol!r} is already exposed as {seen[symbol]!r}", act.symbol.span)
            if default not in KERAS_ACTIVATIONS:
                self.fail(f"unknown Keras activation {default!r}", act.default.span,
                          did_you_mean(default, KERAS_ACTIVATIONS) or "e.g. tanh, sigmoid, linear")
            check_identifier(arg, act.arg.span, "activation argument")
            seen[symbol] = arg
            out.append(ActivationArg(arg, symbol, default))
        return out

    # -- the IR ---------------------------------------------------------------------------
    def build_ir(self, order, state_names, output, fused, groups, expressions, activations) -> CellIR:
        spec = self.spec
        size_args = []
        for _, value in spec.sizes:
            if value.value not in size_args:
                check_identifier(value.value, value.span, "size name")
                if value.value in self.variables or value.value in self.params:
                    self.fail(f"size name {value.value!r} is also a variable or parameter", value.span)
                size_args.append(value.value)

        initial = {s: "zeros" for s in state_names}
        for key, value in spec.initial_state:
            if key.value not in state_names:
                self.fail(f"`initial_state` names {key.value!r}, which is not a state", key.span,
                          did_you_mean(key.value, state_names) or f"states: {', '.join(state_names)}")
            v = value.value
            if isinstance(v, bool) or not (isinstance(v, (int, float)) or v in ("zeros", "ones", "learned")):
                self.fail(f"initial state {v!r} is not zeros, ones, a number or learned", value.span)
            initial[key.value] = v if isinstance(v, str) else repr(float(v))
        states = tuple(State(s, f"{s}_tm1", self.var_size[s], initial[s]) for s in state_names)

        overrides: dict[str, str] = {}
        for key, value in spec.initializers:
            if key.value not in self.params:
                self.fail(f"`initializers` names {key.value!r}, which is not a parameter", key.span,
                          did_you_mean(key.value, self.params) or f"parameters: {', '.join(self.params)}")
            if value.value not in KERAS_INITIALIZERS:
                self.fail(f"unknown Keras initializer {value.value!r}", value.span,
                          did_you_mean(value.value, KERAS_INITIALIZERS) or "e.g. zeros, ones, glorot_uniform")
            overrides[key.value] = value.value

        weights, params = self.weights_and_params(fused, overrides, states)
        products = self.products(groups)
        statements = {}
        hoist = set()
        for name in order:
            expr = expressions[name]
            deps = {s.name for s in expr.free_symbols}
            slots_hoistable = {s for p in products for s in p.slots if p.hoistable}
            state_prev = {f"{s}_tm1" for s in state_names}
            step_vars = set(self.variables)
            hoistable = not (deps & state_prev) and all(
                (d in hoist) if d in step_vars else (d in slots_hoistable or d not in {s for p in products for s in p.slots})
                for d in deps)
            if hoistable:
                hoist.add(name)
            statements[name] = Statement(name, expr, self.equation_text(name), hoistable,
                                         self.variables[name].span, self.var_size[name])
        steps = self.topo_steps(products, statements, order)
        projected = self.projected(steps)
        scan, reason = self.linear_states(states, expressions, hoist, products)
        recurrent = next((s.name for s in states if s.name == output), None)
        return CellIR(
            name=spec.name.value,
            layer=spec.layer.value if spec.layer else (spec.name.value[:-4] if spec.name.value.endswith("Cell")
                                                       and len(spec.name.value) > 4 else spec.name.value + "Layer"),
            description=spec.description.strip(),
            digest=self.digest(),
            input=self.input, output=output, output_size=self.var_size[output],
            states=states, params=tuple(params), weights=tuple(weights), steps=tuple(steps),
            activations=tuple(activations), sizes=tuple(size_args),
            equations=tuple(self.equation_text(eq.target) for eq in self.equations),
            parsed=tuple((eq.target, eq.expr) for eq in self.equations),
            uses_layer_norm=any(nodes.function_name(n) == "layer_norm" for _, n in self.all_nodes()),
            square_input=self.square_input, scan=scan, scan_reason=reason,
            projected=projected, has_bias=any(w.optional for w in weights), recurrent_state=recurrent)

    def equation_text(self, name: str) -> str:
        return f"{name}_t = {self.plain.doprint(self.variables[name].expr)}"

    def weights_and_params(self, fused, overrides, states):
        weights: list[Weight] = []
        params: dict[str, Param] = {}
        bias_names = self.bias_weight_names(fused)

        def dims(names):
            return [Dim(((1, self.shapes[n][0]),)) for n in names]

        def columns(names):
            start, out = Dim(()), []
            for d in dims(names):
                out.append((start, start.plus(d)))
                start = start.plus(d)
            return out, start

        def init_slices(names, cols):
            if not any(n in overrides for n in names):
                return ()
            out = []
            for n, (a, b) in zip(names, cols):
                init = overrides.get(n)
                if out and out[-1].initializer == init:
                    out[-1] = InitSlice(out[-1].start, b, init)
                else:
                    out.append(InitSlice(a, b, init))
            return tuple(out)

        for f in fused:
            cols, width = columns(f.members)
            col_dim = self.shapes[f.members[0]][1]
            default = "glorot_uniform" if f.name == "kernel" else "orthogonal"
            if f.operand == sympy.Symbol(self.input):
                default = "glorot_uniform"
            weights.append(Weight(f.name, "kernel", (Dim(((1, col_dim),)), width), tuple(f.members),
                                  self.plain.doprint(f.operand), default, init_slices(f.members, cols),
                                  False, 0))
            for m, (a, b) in zip(f.members, cols):
                params[m] = Param(m, "matrix", self.shapes[m], f.name, None, a, b, overrides.get(m))
        with_bias = [f for f in fused if f.biases]
        stacked = len(with_bias) > 1 and set(bias_names.values()) == {"bias"}
        done_bias = set()
        for row, f in enumerate(with_bias):
            name = bias_names[f.name]
            cols, width = columns(f.biases)
            if name not in done_bias:
                done_bias.add(name)
                shape = (Dim(((len(with_bias), ""),)), width) if stacked else (width,)
                all_biases = [b for g in with_bias for b in g.biases] if stacked else f.biases
                weights.append(Weight(name, "bias", shape, tuple(all_biases), "", "zeros",
                                      init_slices(f.biases, cols) if not stacked else
                                      self.stacked_slices(with_bias, overrides), True,
                                      len(with_bias) if stacked else 0))
            for b, (a, c) in zip(f.biases, cols):
                params[b] = Param(b, "bias", self.shapes[b], name, row if stacked else None, a, c,
                                  overrides.get(b))
        for n in self.params:
            if n in params:
                continue
            role = self.roles[n]
            default = {"gain": "ones"}.get(role, "zeros")
            size = self.shapes[n][0]
            weights.append(Weight(n, "vector", (Dim(((1, size),)),), (n,), "", default, (), False, 0))
            params[n] = Param(n, "vector" if role != "gain" else "gain", self.shapes[n], n, None,
                              Dim(()), Dim(((1, size),)), overrides.get(n))
        for s in states:
            if s.initial == "learned":
                weights.append(Weight(f"initial_{s.name}", "initial_state", (Dim(((1, s.size),)),), (),
                                      "", "zeros", (), False, 0))
        return weights, [params[n] for n in self.params]

    def stacked_slices(self, with_bias, overrides):
        if any(b in overrides for f in with_bias for b in f.biases):
            raise SpecError("per-parameter initializers are not supported in a stacked bias",
                            self.spec.equations_span, "initialize the whole bias with the bias_initializer argument")
        return ()

    def products(self, groups) -> list[Product]:
        output = self.output
        out = []
        bias_names = self.bias_weight_names([f for g in groups for f in g])
        with_bias = [f for g in groups for f in g if f.biases]
        stacked = len(with_bias) > 1 and set(bias_names.values()) == {"bias"}
        for gi, group in enumerate(groups):
            operands = []
            for f in group:
                dropout = ""
                if f.operand == sympy.Symbol(self.input):
                    dropout = "input"
                elif f.operand == sympy.Symbol(f"{output}_tm1"):
                    dropout = "recurrent"
                symbol = f.operand.name if f.operand.is_Symbol else ""
                operand = self.rewrite_expr(f.operand)  # `U(W x_t)`: the inner product is a slice too
                input_only = {s.name for s in operand.free_symbols} <= {self.input} | self.input_only_slots(out)
                bias = bias_names[f.name] if f.biases else None
                row = with_bias.index(f) if f.biases and stacked else None
                operands.append(Operand(symbol, operand, f.name, dropout, input_only, bias, row))
            operands = self.bias_with_input(operands)
            hoistable = all(op.hoistable for op in operands)
            mixed = not hoistable and any(op.hoistable for op in operands)
            target = self.product_targets[gi]
            partial = self.fresh_name(f"{target}_x") if mixed else None
            widths = tuple(Dim(((1, self.shapes[m][0]),)) for m in group[0].members)
            out.append(Product(target, tuple(operands), tuple(self.slots[gi]), widths, hoistable, partial))
        return out

    @staticmethod
    def bias_with_input(operands: list[Operand]) -> list[Operand]:
        """In a summed product, a bias added on the state's side moves to the input's side, so it
        is added once for all steps with x @ kernel (the sum is the same)."""
        free = [i for i, op in enumerate(operands) if op.hoistable and not op.bias]
        for i, op in enumerate(operands):
            if op.bias and not op.hoistable and free:
                j = free.pop(0)
                operands[j] = dataclasses.replace(operands[j], bias=op.bias, bias_row=op.bias_row)
                operands[i] = dataclasses.replace(op, bias=None, bias_row=None)
        return operands

    def projected(self, steps) -> tuple[str, ...]:
        """Input-only values that the recurrent part reads: what the layer precomputes for all steps."""
        made, read = [], set()
        for step in steps:
            if isinstance(step, Statement):
                if step.hoistable:
                    made.append(step.target)
                else:
                    read |= {s.name for s in step.expr.free_symbols}
            elif step.hoistable:
                made += list(step.slots)
            else:
                if step.partial:
                    made.append(step.partial)
                    read.add(step.partial)
                read |= {s.name for op in step.operands if not op.hoistable for s in op.expr.free_symbols}
        projected = tuple(name for name in [self.input, *made] if name in read)
        return projected or (self.input,)

    def topo_steps(self, products, statements, order):
        producer = {}
        for p in products:
            for s in p.slots:
                producer[s] = p
        steps, done = [], set()
        ready = {self.input} | {f"{v}_tm1" for v in self.variables}

        def emit_product(p):
            if id(p) in done:
                return
            for op in p.operands:
                for s in op.expr.free_symbols:
                    if s.name in producer and s.name not in ready:
                        emit_product(producer[s.name])
                    elif s.name in statements and s.name not in ready:
                        emit_statement(s.name)
            done.add(id(p))
            steps.append(p)
            ready.update(p.slots)

        def emit_statement(name):
            if name in ready:
                return
            st = statements[name]
            for s in sorted(st.expr.free_symbols, key=lambda s: s.name):
                if s.name in producer:
                    emit_product(producer[s.name])
                elif s.name in statements:
                    emit_statement(s.name)
            steps.append(st)
            ready.add(name)

        for p in products:
            if all(s.name not in statements and s.name not in producer
                   for op in p.operands for s in op.expr.free_symbols):
                emit_product(p)
        for name in order:
            emit_statement(name)
        for p in products:
            emit_product(p)
        return steps

    def linear_states(self, states, expressions, hoist, products):
        """Decide whether every state's update is s_t = a_t * s_{t-1} + b_t with a_t, b_t
        depending on the input only, which a parallel scan can evaluate."""
        input_only = set(hoist) | {s for p in products if p.hoistable for s in p.slots} | {self.input}
        input_only |= set(self.params)
        # a product computed inside the loop stands for a (linear but matrix) mix of its operands
        mixes = {sympy.Symbol(slot): sympy.Function("matmul")(*[op.expr for op in p.operands])
                 for p in products if not p.hoistable for slot in p.slots}
        out = []
        for st in states:
            with evaluate(False):  # an evaluated Add would import sympy.tensor (40 ms) for nothing
                expr = self.inline(expressions[st.name], expressions, hoist).xreplace(mixes)
            prev = sympy.Symbol(st.prev)
            split = affine(expr, prev)
            if split is None:
                return None, (f"{st.name}_t is not affine in {st.name}_{{t-1}} (it passes through a "
                              f"function or a matrix product): sequential")
            decay, drive = split
            for part in (decay, drive):
                for sym in sorted(part.free_symbols, key=lambda s: s.name):
                    if sym.name in input_only:
                        continue
                    through = self.through(st.name, sym.name, expressions)
                    return None, f"{st.name}_t depends on {self.readable(sym.name)}{through}: sequential"
            out.append(LinearState(st.name, decay, drive))
        if not out:
            return None, "the cell has no state: nothing to scan"
        state_names = {st.name for st in states}
        for name, expr in expressions.items():  # what is left after the scans must not need t-1
            if name in hoist or name in state_names:
                continue
            late = sorted(s.name for s in expr.free_symbols if s.name.endswith("_tm1"))
            if late:
                return None, f"{name}_t reads {self.readable(late[0])}: sequential"
        for p in products:
            if not p.hoistable and any(s.name.endswith("_tm1") for op in p.operands for s in op.expr.free_symbols):
                return None, "a product in the step reads a state at t-1: sequential"
        return tuple(out), ("every state is s_t = a_t * s_{t-1} + b_t with a_t, b_t from the input only: "
                            "parallel scan")

    def readable(self, name: str) -> str:
        if name.endswith("_tm1") and name[:-4] in self.variables:
            return f"{name[:-4]}_{{t-1}}"
        return f"{name}_t" if name in self.variables else name

    def through(self, state: str, name: str, expressions) -> str:
        """' through f_t' when `name` reaches the state's update through a step-t variable."""
        direct = {s.name for s in expressions[state].free_symbols}
        if name in direct:
            return ""
        for var in sorted(direct & set(self.variables)):
            seen, todo = set(), [var]
            while todo:
                v = todo.pop()
                if v in seen:
                    continue
                seen.add(v)
                syms = {s.name for s in expressions[v].free_symbols}
                if name in syms:
                    return f" through {var}_t"
                todo += [s for s in syms if s in self.variables]
        return ""

    def inline(self, expr, expressions, hoist):
        """Substitute step-t variables that are not input-only, so the test sees through them."""
        for _ in range(len(expressions) + 1):
            subs = {sympy.Symbol(v): expressions[v] for v in expressions
                    if v not in hoist and sympy.Symbol(v) in expr.free_symbols}
            if not subs:
                break
            with evaluate(False):
                expr = expr.xreplace(subs)
        return expr

    def digest(self) -> str:
        """A hash of what the cell is (not how it was spelled): plain and LaTeX agree."""
        spec = self.spec
        content = {
            "name": spec.name.value, "layer": spec.layer.value if spec.layer else None,
            "description": spec.description, "input": self.input,
            "output": spec.output.value if spec.output else None,
            "states": [s.value for s in spec.states] if spec.states is not None else None,
            "equations": [self.equation_text(eq.target) for eq in self.equations],
            "activations": [[a.arg.value, a.symbol.value, a.default.value] for a in spec.activations],
            "initializers": [[k.value, v.value] for k, v in spec.initializers],
            "layout": [[k.value, [e.value for e in v]] for k, v in spec.layout],
            "initial_state": [[k.value, v.value] for k, v in spec.initial_state],
            "sizes": [[k.value, v.value] for k, v in spec.sizes],
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


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
