"""Stage 4, render: CellIR -> module text, through the target's Jinja template.

Every expression is printed here, into a small frozen context of strings and tuples; the
templates only loop and print, and every name they print comes from the IR. What differs
between targets is the target's `Dialect` (eqcell/targets.py) and its template's blocks.
The result must pass `ast.parse` before it is returned."""
from __future__ import annotations

from typing import NamedTuple

import ast
import os
import re
from functools import lru_cache
from pathlib import Path

import jinja2
import sympy

from . import __version__, nodes
from .analysis.naming import ModuleNames
from .ir import CellIR, ChunkedState, Dim, LinearState, Product, Statement, Weight
from .printing.code import CodePrinter
from .targets import DIALECTS, TARGETS, Dialect

__all__ = ["TARGETS", "RenderError", "render", "module_names", "snake_case"]


class RenderError(Exception):
    """The generated text did not compile: an eqcell bug, never the user's."""


class Arg(NamedTuple):
    name: str
    default: str          # Python source of the default value
    doc: str


class WeightCode(NamedTuple):
    attr: str             # "kernel"
    shape: str            # "(input_dim, 2 * self.units)"
    initializer: str      # "self.kernel_initializer" or a local function's name
    init_function: tuple[str, ...]   # lines of a local initializer function, or ()
    regularizer: str
    constraint: str
    optional: bool


class Context(NamedTuple):
    target: str
    lib: str
    version: str
    name: str
    layer: str
    digest: str
    summary: str
    doc_lines: tuple[str, ...]
    args: tuple[Arg, ...]
    activations: tuple[tuple[str, str], ...]        # (arg, default)
    constants: tuple[str, ...]                      # constructor arguments holding the spec's constants
    weight_args: tuple[str, ...]                    # "kernel", "recurrent", "bias", ...
    sizes: tuple[str, ...]
    has_bias: bool
    state_size: str
    built_state_size: str                           # the state sizes once `build` knows input_dim, or ""
    output_size: str
    square_input: bool
    weights: tuple[WeightCode, ...]
    unpack_states: str
    state_reshapes: tuple[str, ...]                 # matrix and per-head states from their flat form
    dropout_prev: str                               # the t-1 value recurrent dropout masks, or ""
    dropout_masked: str                             # its masked copy, or ""
    project_lines: tuple[str, ...]
    step_lines: tuple[str, ...]
    projected_return: str
    projected_width: str                            # code: how many features project_inputs returns
    custom_initial_state: bool                      # some state does not start at zeros
    projected_unpack: str
    scan_lines: tuple[str, ...]
    scan_uses_cell: bool                            # the scan reads the cell's weights or activations
    scan_reason: str
    scan_doc: str                                   # the parallel path's docstring
    scan_output: str                                # the outputs of every step, (batch, T, output_size)
    scan_first_state: str                           # the first state at every step (output-shaped cells)
    scan_finals: tuple[str, ...]                    # each state after the last step, flat
    uses_max_plus: bool
    uses_shift: bool
    chunked: bool                                   # a matrix state evaluated chunkwise: `chunk_size`
    chunked_diagonal: bool                          # ... with a diagonal decay (`_chunkwise`)
    chunked_delta: bool                             # ... by a delta rule (`_chunkwise_delta`)
    chunk_default: int
    state_prevs: tuple[str, ...]
    state_locals: tuple[str, ...]
    output_local: str
    cell_name: str
    returns: str
    initial_states: tuple[str, ...]
    symbol_layout: tuple[str, ...]
    uses_layer_norm: bool
    uses_rnn_uniform: bool                          # an initializer is "pytorch_rnn_uniform" (`_get_initializer`)
    uses_input_dim_in_layout: bool
    uses_flat_matmul: bool                          # project_inputs or the scan multiplies whole sequences
    first_state_is_output_shaped: bool              # Keras's JAX loop can output the first state at a masked step
    heads: str                                      # the number of heads' argument, or ""
    matrix_entries: str = ""                        # the largest chunked matrix state's entries per head, in the layer


def templates_dir() -> Path:
    """`templates/` beside the package in a checkout, or `eqcell/templates` in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("eqcell's templates are missing from this installation")


@lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False, bytecode_cache=_bytecode_cache())


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja's own cache of compiled templates, in the user's cache folder, as Python keeps .pyc
    files: compiling the two templates is a fifth of `eqcell generate`. Jinja checks each entry
    against the template's text and its own and Python's versions; an unwritable folder means
    no cache, never an error."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(root, "eqcell", "templates")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(folder) if os.access(folder, os.W_OK) else None


@lru_cache(maxsize=None)
def _template(target: str) -> jinja2.Template:
    """Loaded once per process."""
    return _environment().get_template(DIALECTS[target].template)


_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
# Python text that holds no code: strings (f-strings' fields are read elsewhere in the templates too) and comments
_NOT_CODE = re.compile(r'[rfbRFB]?("""|\'\'\').*?\1|[rfbRFB]?("|\')(?:\\.|(?!\2).)*?\2|#[^\n]*', re.DOTALL)
_ATTRIBUTE = re.compile(r"\.\s*([A-Za-z_]\w*)")
_NAME = re.compile(r"\b[A-Za-z_]\w*")
_DEFINED = re.compile(r"\bdef\s+([A-Za-z_]\w*)")
# a template whose methods never hold the step's code except through its own names (torch.py.j2:
# its attributes are checked by render_torch): the names it binds at module level
_OWN_NAMES = frozenset({"torch.py.j2"})
_GLOBAL = re.compile(r"^(?:import\s+[\w.]+\s+as\s+(\w+)|import\s+(\w+)|from\s+\S+\s+import\s+\w+(?:\s+as\s+(\w+))?|def\s+(\w+)|class\s+(\w+)|(\w+)\s*=)",
                     re.MULTILINE)


@lru_cache(maxsize=None)
def module_names() -> ModuleNames:
    """Every identifier the templates write themselves (outside Jinja tags), for the naming stage:
    a spec name meeting one of them is renamed in code, never confused with it. Names written
    after a dot are attributes; all others may be locals or globals."""
    names, attributes = set(), set()
    for path in sorted(templates_dir().glob("*.j2")):
        code = _NOT_CODE.sub(" ", _JINJA_TAG.sub(" ", path.read_text(encoding="utf-8")))
        if path.name in _OWN_NAMES:  # only its module globals can meet the step's code
            names.update(name for match in _GLOBAL.findall(code) for name in match if name)
            names.update(re.findall(r"^from\s+\S+\s+import\s+(\w+)\s*$", code, re.MULTILINE))
            continue
        attributes.update(_ATTRIBUTE.findall(code))
        names.update(_NAME.findall(_ATTRIBUTE.sub(" ", code)))
        attributes.update(_DEFINED.findall(code))  # methods are attributes too
    return ModuleNames(frozenset(names), frozenset(attributes))


def render(ir: CellIR, target: str = "keras") -> str:
    """Module text for `target`; compiled with `ast.parse` before it is returned."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if target == "torch":
        from .render_torch import torch_context
        context, extra = torch_context(ir)
        text = _template(target).render(c=context, t=extra, o=DIALECTS[target].ops, target=target)
    else:
        text = _template(target).render(c=build_context(ir, DIALECTS[target]), o=DIALECTS[target].ops, target=target)
    try:
        ast.parse(text)
    except SyntaxError as err:
        raise RenderError(f"generated {target} code does not compile: {err}") from err
    return text


def snake_case(name: str) -> str:
    """SLSTMCell -> slstm_cell, as Keras names LSTMCell lstm_cell."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def size_scope(ir: CellIR, owner: str, units: str = "units") -> dict[str, str]:
    """Each size name as code: `units` -> `self.units` (`units`: the attribute holding it); with
    heads, `h` the number of heads and `units/h` one head's share."""
    scope = {"units": f"{owner}.{units}", "1": "1", **{s: f"{owner}.{s}" for s in ir.sizes if s != ir.heads}}
    if ir.heads:
        heads = f"{owner}.{ir.heads}"
        scope.update({f"{name}/h": f"{code} // {heads}" for name, code in list(scope.items()) if name != "1"})
        scope["h"] = heads
    return scope


def build_context(ir: CellIR, dialect: Dialect) -> Context:
    scope = {**size_scope(ir, "self", dialect.units), "input_dim": dialect.input_dim or "input_dim"}
    exposed = {a.function: a.arg for a in ir.activations}
    constants = {k.arg for k in ir.constants}
    printer = CodePrinter(dialect, "self", exposed, constants, size_scope(ir, "self", dialect.units))

    args = [Arg("units", "", "Positive integer, dimensionality of the output space (`units` in the shapes below)"
                             + (", all heads together." if ir.heads else "."))]
    for s in ir.sizes:
        if s != ir.heads:
            args.append(Arg(s, "", f"Positive integer, the size named `{s}` in the shapes below"
                                   + (", all heads together." if ir.heads else ".")))
    if ir.heads:
        args.append(Arg(ir.heads, str(ir.heads_default), "Positive integer, the number of heads (`h` in the shapes "
                                                           "below); it divides `units` and every other size."))
    for a in ir.activations:
        args.append(Arg(a.arg, f'"{a.default}"', f"Activation function replacing `{a.function}` in the equations "
                                                  f"(default: `{a.default}`)."))
    for k in ir.constants:
        args.append(Arg(k.arg, repr(k.default), f"Number, the constant `{k.name}` of the equations "
                                                f"(default: {k.default!r})."))
    if ir.has_bias:
        args.append(Arg("use_bias", "True", "Boolean, whether the fused `bias` weight is used."))
    for kind in ("initializer", "regularizer", "constraint"):
        for w in ir.weights:
            default = f'"{w.default_initializer}"' if kind == "initializer" else "None"
            args.append(Arg(f"{w.arg}_{kind}", default, f"{kind.capitalize()} for `{w.name}`."))
    args += [Arg("dropout", "0.0", "Float in [0, 1): fraction of the inputs to drop (one mask per sequence)."),
             Arg("recurrent_dropout", "0.0", "Float in [0, 1): fraction of the recurrent state to drop "
                                              "in the recurrent products."),
             Arg("seed", "None", "Random seed for dropout.")]

    project_lines, step_lines = _sections(ir, printer, dialect)
    layer_scope = size_scope(ir, "cell", dialect.units)
    scan_lines = (_scan_lines(ir, CodePrinter(dialect, "cell", exposed, constants, layer_scope), dialect, layer_scope)
                  if dialect.scan else ())
    path = ir.scan or ()
    # the previous input's size is known once built: None until then (Keras 3), or read from `build`
    init_scope = {**scope, "input_dim": "None" if dialect.target == "keras" else 'getattr(self, "_input_dim", None)'}
    state_sizes = [Dim.of(s.size).code(init_scope) for s in ir.states]
    built_state_sizes = [Dim.of(s.size).code(scope) for s in ir.states]
    single = dialect.single_state_bare and len(state_sizes) == 1
    dropout = ir.recurrent_dropout
    return Context(
        target=dialect.target, lib=dialect.lib, version=__version__, name=ir.name, layer=ir.layer,
        digest=ir.digest,
        summary=_docstring_safe((ir.description.splitlines() or [f"The {ir.name} recurrent cell."])[0]),
        doc_lines=tuple(_docstring_safe(line) for line in _doc_lines(ir, dialect.keras_weights_doc)),
        args=tuple(args),
        activations=tuple((a.arg, a.default) for a in ir.activations),
        constants=tuple(k.arg for k in ir.constants),
        weight_args=tuple(w.arg for w in ir.weights),
        sizes=tuple(s for s in ir.sizes if s != ir.heads), has_bias=ir.has_bias,
        heads=ir.heads or "",
        state_size=state_sizes[0] if single else "[" + ", ".join(state_sizes) + "]",
        built_state_size=("" if not any(s.size == "input_dim" for s in ir.states) or dialect.target != "keras"
                          else "[" + ", ".join(built_state_sizes) + "]"),
        output_size=scope[ir.output_size],
        square_input=ir.square_input,
        weights=tuple(_weight_code(w, scope, dialect) for w in ir.weights),
        unpack_states=_unpack(ir, dialect, scope),
        state_reshapes=_state_reshapes(ir, dialect, scope),
        dropout_prev=dropout.prev if dropout else "", dropout_masked=dropout.masked if dropout else "",
        project_lines=project_lines,
        step_lines=step_lines,
        projected_return="[" + ", ".join(ir.projected) + "]",
        projected_width=_projected_width(ir),
        custom_initial_state=any(s.initial != "zeros" for s in ir.states),
        projected_unpack=(f"{ir.projected[0]} = projected[0]" if len(ir.projected) == 1
                          else f"{', '.join(ir.projected)} = projected"),
        scan_lines=scan_lines,
        scan_uses_cell=_scan_reads_cell(ir),
        scan_reason=ir.scan_reason,
        scan_doc=_scan_doc(ir),
        scan_output=_flat_sequence(ir, _output_local(ir), ir.output_size, dialect, layer_scope),
        scan_first_state=_flat_sequence(ir, _scanned_local(ir, ir.states[0]), ir.states[0].size, dialect, layer_scope),
        scan_finals=tuple(_scan_final(ir, s, dialect, layer_scope) for s in ir.states),
        uses_max_plus=any(isinstance(i, LinearState) and i.max_plus for i in path),
        uses_shift=any(isinstance(i, LinearState) and i.shifted for i in path),
        chunked=any(isinstance(i, ChunkedState) for i in path),
        chunked_diagonal=any(isinstance(i, ChunkedState) and i.strength is None for i in path),
        chunked_delta=any(isinstance(i, ChunkedState) and i.strength is not None for i in path),
        chunk_default=ir.chunk_size,
        state_prevs=tuple(s.prev for s in ir.states),
        state_locals=tuple(s.local for s in ir.states),
        output_local=_output_local(ir),
        cell_name=snake_case(ir.name),
        returns=_returns(ir, dialect, scope),
        initial_states=tuple(_initial_state(s, ir.weights, {**scope, "input_dim": dialect.input_dim or "self._input_dim"},
                                            dialect)
                             for s in ir.states),
        symbol_layout=_symbol_layout(ir, scope),
        uses_layer_norm=ir.uses_layer_norm,
        uses_rnn_uniform=any(RNN_UNIFORM in _initializer_names(w) for w in ir.weights),
        uses_input_dim_in_layout=any(s.size == "input_dim" for s in ir.states) or any(
                                     "input_dim" in d.text() for p in ir.params
                                     for d in (p.start, p.stop, *(p.view or ()))),
        uses_flat_matmul=dialect.sequence_matmul != dialect.matmul and _multiplies_sequences(ir),
        first_state_is_output_shaped=ir.states[0].size == ir.output_size,
        matrix_entries=_matrix_entries(ir, layer_scope),
    )


def _matrix_entries(ir: CellIR, scope) -> str:
    """The entries of each head's matrix, for the largest matrix state the parallel path chunks."""
    chunked = [i.state for i in ir.scan or () if isinstance(i, ChunkedState)]
    def factor(d):
        code = Dim.of(d).code(scope)
        return f"({code})" if " " in code else code
    sizes = [" * ".join(factor(d) for d in s.matrix) for s in chunked if s.matrix]
    return "max(" + ", ".join(sizes) + ")" if len(sizes) > 1 else (sizes[0] if sizes else "")


def _output_local(ir: CellIR) -> str:
    return next(s.target for s in ir.steps if isinstance(s, Statement) and s.variable == ir.output)


def _multiplies_sequences(ir: CellIR) -> bool:
    """project_inputs (a hoisted or partial product) or the scan multiplies whole sequences."""
    products = [s for s in ir.steps if isinstance(s, Product)]
    return any(p.hoistable or p.partial for p in products) or (ir.scan is not None and bool(products))


def _scan_reads_cell(ir: CellIR) -> bool:
    """Whether the scan's lines read the cell: a product's weights, a weight, an exposed activation."""
    if ir.scan is None:
        return False
    exprs = []
    for item in ir.scan:
        if isinstance(item, LinearState):
            exprs += [item.decay, item.drive]
        elif isinstance(item, ChunkedState):
            exprs += [item.log_decay, item.rows, item.columns, *(r.query for r in item.readouts)]
        elif isinstance(item, Statement):
            exprs.append(item.expr)
    exposed = {a.function for a in ir.activations}
    return (any(isinstance(i, Product) for i in ir.scan) or any(s.shape for s in ir.states)
            or any(isinstance(n, nodes.Attribute) or nodes.function_name(n) in exposed
                   for e in exprs for n in sympy.preorder_traversal(e)))


def _unpack(ir: CellIR, dialect: Dialect, scope) -> str:
    """`h_tm1, c_tm1 = states`, then each matrix state from its flat form to (batch, rows, columns)."""
    prevs = [s.prev for s in ir.states]
    comment = ", ".join(f"{s.name}_{{t-1}}" for s in ir.states)
    if len(prevs) == 1:
        line = f"{prevs[0]} = states[0] if {dialect.is_nested} else states  # {comment}"
    else:
        line = f"{', '.join(prevs)} = states  # {comment}"
    return line


def _state_reshapes(ir: CellIR, dialect: Dialect, scope) -> tuple[str, ...]:
    """Each state passed flat, as the step computes with it: a matrix (batch, rows, columns), per
    head (batch, heads, ...). After recurrent dropout, whose mask Keras makes for the flat state."""
    lines = []
    masked = ir.recurrent_dropout
    for s in ir.states:
        if s.shape:
            shape = dialect.shape.format(", ".join(["-1"] + [Dim.of(d).code(scope) for d in s.shape]))
            why = "per head" if ir.heads else "kept flattened"
            lines.append(f"{s.prev} = {dialect.reshape.format(s.prev, shape)}  # {s.name} is {why}")
            if masked and masked.prev == s.prev:
                lines.append(f"{masked.masked} = {dialect.reshape.format(masked.masked, shape)}")
    return tuple(lines)


def _returns(ir: CellIR, dialect: Dialect, scope) -> str:
    """`h, [h, c]`; a single state comes back in the structure it came in, as tf_keras's GRUCell does.
    A matrix state goes back flattened, row-major."""
    names = []
    for s in ir.states:
        if s.shape:
            names.append(dialect.reshape.format(s.local, dialect.shape.format(f"-1, {Dim.of(s.size).code(scope)}")))
        else:
            names.append(s.local)
    output = _output_local(ir)
    if ir.heads:  # the heads' outputs side by side
        output = dialect.reshape.format(output, dialect.shape.format(f"-1, {Dim.of(ir.output_size).code(scope)}"))
    if dialect.single_state_bare and len(names) == 1:
        if dialect.target == "torch":  # a one-state cell's state is a tensor, as nn.GRUCell's
            return f"{output}, {names[0]}"
        return f"{output}, [{names[0]}] if {dialect.is_nested} else {names[0]}"
    return f"{output}, {dialect.state_list.format(', '.join(names))}"


def _sections(ir: CellIR, printer: CodePrinter, dialect: Dialect) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Lines of the input-only part (`project_inputs`) and of the recurrent part (`recurrent_step`).

    A product on both the input and a state (LSTM's z) is split: `x @ kernel + bias` for all
    steps at once, `+ h_tm1 @ recurrent_kernel` in the loop."""
    project: list[str] = []
    step_part: list[str] = []
    for step in ir.steps:
        if isinstance(step, Statement):
            out = project if step.hoistable else step_part
            out.append(f"# {step.equation}")
            out.append(f"{step.target} = {printer.doprint(step.expr)}")
            continue
        if step.hoistable:
            project += _product_lines(ir, step, step.operands, step.target, None, True, printer, dialect,
                                      sequence=True)
        elif step.partial:
            hoisted = tuple(op for op in step.operands if op.hoistable)
            rest = tuple(op for op in step.operands if not op.hoistable)
            # a sum: every bias may join the part computed once per sequence where the target says so
            early = step.operands if dialect.hoist_biases else None
            project += _product_lines(ir, step, hoisted, step.partial, None, False, printer, dialect, sequence=True,
                                      bias_operands=early)
            step_part += _product_lines(ir, step, rest, step.target, step.partial, True, printer, dialect,
                                        bias_operands=() if dialect.hoist_biases else None)
        else:
            step_part += _product_lines(ir, step, step.operands, step.target, None, True, printer, dialect)
    return _tidy(project), _tidy(step_part)


def _product_lines(ir: CellIR, step: Product, operands, target: str, start: str | None, split: bool,
                   printer: CodePrinter, dialect: Dialect, sequence: bool = False, bias_operands=None) -> list[str]:
    """`target = [start +] operand @ weight + ... [+ bias]`, then the split into the slots.

    `sequence`: the operand may hold a whole sequence (batch, T, features); Keras 3 code then
    multiplies it as one 2-D matrix (`_matmul`), whose gradient XLA computes far faster on CPU.
    `bias_operands`: the operands whose biases this part adds (default: its own)."""
    owner = printer.owner
    matmul = dialect.sequence_matmul if sequence else dialect.matmul
    parts = []
    for op in operands:
        w = next(w for w in ir.weights if w.name == op.weight)
        parts.append(f"{w.name} = [{' | '.join(w.members)}]")
    biases = [(op.bias, "" if op.bias_row is None else f"[{op.bias_row}]", op.bias_row)
              for op in (operands if bias_operands is None else bias_operands) if op.bias]
    for bias, row, index in biases:
        members = [p.name for p in ir.params if p.weight == bias and p.row == index]
        parts.append(f"{bias}{row} = [{' | '.join(members)}]")
    lines = ["", "# " + ", ".join(parts)]
    heads = f"{owner}.{ir.heads}" if ir.heads else ""
    for i, op in enumerate(operands):
        operand, weight = printer.doprint(op.expr), f"{owner}.{op.weight}"
        product = matmul.format(operand, weight)
        if heads and op.whole_input:  # all of x_t (or x_{t-1}), each head's columns side by side
            product = f"_split_heads({product}, {heads})"
        elif heads:  # a per-head value times its head's block of a block-diagonal weight
            product = dialect.heads_matmul.format(operand, weight)
        elif dialect.fused_matmul and i == 0 and not start and biases:  # F.linear(x, weight, bias): None adds nothing
            bias = biases.pop(0)[0]
            product = dialect.fused_matmul["bias"].format(operand, weight, f"{owner}.{bias}")
        elif dialect.fused_matmul and not sequence and (i or start):  # torch.addmm(start, x, weight.t())
            lines.append(f"{target} = " + dialect.fused_matmul["add"].format(target if i else start, operand, weight))
            continue
        if i == 0:
            lines.append(f"{target} = {start} + {product}" if start else f"{target} = {product}")
        else:
            lines.append(f"{target} = {target} + {product}")
    if biases:
        lines.append(f"if {owner}.{dialect.use_bias}:")
        for bias, row, _ in biases:
            value = f"{owner}.{bias}{row}"
            if heads:
                value = dialect.reshape.format(value, dialect.shape.format(f"{heads}, -1"))
            lines.append(f"    {target} = {target} + {value}")
    if split and len(step.slots) > 1:
        split_code = dialect.split
        if len({w.text() for w in step.widths}) == 1:
            how = str(len(step.slots))
            split_code = dialect.split_count or dialect.split
        else:
            scope = size_scope(ir, owner, dialect.units)
            if dialect.split_at_indices:
                cuts, acc = [], Dim(())
                for w in step.widths[:-1]:
                    acc = acc.plus(w)
                    cuts.append(acc.code(scope))
            else:
                cuts = [w.code(scope) for w in step.widths]
            how = "[" + ", ".join(cuts) + "]"
        lines.append(f"{', '.join(step.slots)} = {split_code.format(target, how)}")
    lines.append("")
    return lines


def _tidy(lines: list[str]) -> tuple[str, ...]:
    """One blank line between blocks, none doubled, none at either end."""
    out: list[str] = []
    for line in lines:
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return tuple(out)


def _projected_width(ir: CellIR) -> str:
    """Total feature width of `project_inputs`' values, as code in the layer's scope."""
    widths: dict[str, Dim] = {ir.input_local: Dim(((1, "input_dim"),))}
    for step in ir.steps:
        if isinstance(step, Statement):
            widths[step.target] = Dim.of(step.size)
        else:
            step_widths = step.widths
            if ir.heads:  # per head: the heads' share of every width together
                step_widths = tuple(Dim(tuple((c, f"h*{n}" if n else "h") for c, n in w.terms)) for w in step.widths)
            widths.update(zip(step.slots, step_widths))
            if step.partial:
                total = Dim(())
                for w in step_widths:
                    total = total.plus(w)
                widths[step.partial] = total
    total = Dim(())
    for name in ir.projected:
        total = total.plus(widths[name])
    scope = {**size_scope(ir, "cell"), "input_dim": "sequences.shape[-1]"}
    return total.code(scope)


def _scan_lines(ir: CellIR, printer: CodePrinter, dialect: Dialect, scope) -> tuple[str, ...]:
    """The body of the layer's parallel path: the cell's step for every time step at once, in
    order, each state by its scan or its chunkwise form. It runs in the layer: weights are `cell.*`."""
    if ir.scan is None:
        return ()
    lines = []
    for s in ir.states:  # the initial states as the step reads them
        if s.shape:
            shape = dialect.shape.format(", ".join(["-1"] + [Dim.of(d).code(scope) for d in s.shape]))
            lines.append(f"{s.prev} = {dialect.reshape.format(s.prev, shape)}")
    equations = {s.variable: s.equation for s in ir.steps if isinstance(s, Statement)}
    for item in ir.scan:
        if isinstance(item, LinearState):
            state = item.state
            scan = "_max_plus_scan" if item.max_plus else "_linear_scan"
            lines.append(f"# {equations.get(state.name, state.name + '_t, carried over masked steps, for ' + state.name + '_{t-1}')}")
            lines.append(f"{state.local} = {scan}({printer.doprint(item.decay)}, {printer.doprint(item.drive)}, "
                         f"{state.prev}, keep, frame)")
            if item.shifted:
                lines.append(f"{state.prev} = _shifted({state.local}, {state.prev})  # {state.name}_{{t-1}}, every step")
        elif isinstance(item, ChunkedState):
            state = item.state
            queries = ", ".join(f'({printer.doprint(r.query)}, "{r.contracts}")' for r in item.readouts)
            reads = ", ".join(r.local for r in item.readouts) + ("," if len(item.readouts) == 1 else "")
            lines.append(f"# {equations[state.name]}")
            if item.strength is not None:
                lines.append(f"({reads}), {state.local} = _chunkwise_delta(")
                lines.append(f"    {printer.doprint(item.log_decay)}, {printer.doprint(item.strength)}, "
                             f"{printer.doprint(item.rows)}, {printer.doprint(item.columns)}, {state.prev},")
                queries = ", ".join(printer.doprint(r.query) for r in item.readouts)
                lines.append(f"    [{queries}], keep, frame, self.chunk_size{', left=True' if item.left else ''})")
                continue
            lines.append(f"({reads}), {state.local} = _chunkwise(")
            lines.append(f"    {printer.doprint(item.log_decay)}, \"{item.decay_axis}\", {printer.doprint(item.rows)}, "
                         f"{printer.doprint(item.columns)}, {state.prev},")
            lines.append(f"    [{queries}], keep, frame, self.chunk_size)")
        elif isinstance(item, Statement):
            lines.append(f"# {item.equation}")
            lines.append(f"{item.target} = {printer.doprint(item.expr)}")
        else:
            lines += [line for line in _product_lines(ir, item, item.operands, item.target, None, True,
                                                      printer, dialect, sequence=True) if line]
    return tuple(lines)


def _scanned_local(ir: CellIR, state) -> str:
    return state.local


def _flat_sequence(ir: CellIR, local: str, size: str, dialect: Dialect, scope) -> str:
    """A value of every step as (batch, T, size): per head, the heads side by side."""
    if not ir.heads or "shape" not in dialect.ops:  # (no parallel path: nothing to flatten)
        return local
    shape_of = dialect.ops["shape"]
    shape = dialect.shape.format(f"{shape_of}({local})[0], {shape_of}({local})[1], {Dim.of(size).code(scope)}")
    return dialect.reshape.format(local, shape)


def _scan_final(ir: CellIR, state, dialect: Dialect, scope) -> str:
    """A state after the last step, flat as the state list holds it."""
    chunked = any(isinstance(i, ChunkedState) and i.state.name == state.name for i in ir.scan or ())
    value = state.local if chunked else f"{state.local}[:, -1]"
    if state.shape:
        return dialect.reshape.format(value, dialect.shape.format(f"-1, {Dim.of(state.size).code(scope)}"))
    return value


def _scan_doc(ir: CellIR) -> str:
    if any(isinstance(i, ChunkedState) for i in ir.scan or ()):
        return "Every step at once: vector states by scans, matrix states chunk by chunk (`_chunkwise`)."
    return ("Every state is s_t = a_t * s_{t-1} + b_t with a_t, b_t known before it, so all steps are "
            "evaluated at once by a scan (`_linear_scan`), not a step loop.")


def _weight_code(w: Weight, scope, dialect: Dialect) -> WeightCode:
    shape = "(" + ", ".join(d.code(scope) for d in w.shape) + ("," if len(w.shape) == 1 else "") + ")"
    init = f"self.{w.arg}_initializer"
    function: tuple[str, ...] = ()
    if w.slices:
        lead = "".join(d.code(scope) + ", " for d in w.shape[:-1])
        pieces = []
        for s in w.slices:
            width = s.stop.plus(Dim(tuple((-c, n) for c, n in s.start.terms)))
            if s.initializer is None:
                make = init
            elif s.initializer == RNN_UNIFORM:  # eqcell's own name: the module's `_get_initializer` knows it
                make = f'_get_initializer("{s.initializer}", self.{dialect.units})'
            else:
                make = f'{dialect.lib}.initializers.get("{s.initializer}")'
            pieces.append(f"        {make}(({lead}{width.code(scope)},), *args, **kwargs),")
        concat = dialect.concat.format("[\n" + "\n".join(pieces) + "\n    ]")
        function = (f"def {w.name}_initializer(_, *args, **kwargs):", *f"    return {concat}".split("\n"))
        init = f"{w.name}_initializer"
    return WeightCode(w.name, shape, init, function, f"self.{w.arg}_regularizer", f"self.{w.arg}_constraint",
                      w.optional)


RNN_UNIFORM = "pytorch_rnn_uniform"   # eqcell's own initializer name (spec.EQCELL_INITIALIZERS)


def _initializer_names(w: Weight) -> set[str]:
    """Every initializer a weight draws from: its own, and its slices' where the spec names them."""
    return {w.default_initializer} | {s.initializer for s in w.slices if s.initializer}


def _initial_state(state, weights, scope, dialect: Dialect) -> str:
    weight = next((w.name for w in weights if w.kind == "initial_state" and w.members == (state.name,)), "")
    shape = dialect.state_shape.format(size=Dim.of(state.size).code(scope))
    kind = state.initial if state.initial in ("zeros", "ones", "learned") else "number"
    return dialect.full[kind].format(shape=shape, dtype=dialect.state_dtype, value=state.initial,
                                     weight=f"self.{weight}" if weight else "")


def _symbol_layout(ir: CellIR, scope) -> tuple[str, ...]:
    layout_scope = {**scope, "input_dim": "self._input_dim"}
    lines = []
    for p in ir.params:
        row = "None" if p.row is None else str(p.row)
        where = f'"{p.name}": ("{p.weight}", {row}, {p.start.code(layout_scope)}, {p.stop.code(layout_scope)}, '
        if ir.heads:  # the weight seen head by head, then the slice in the paper's orientation
            view = "None" if p.view is None else "(" + ", ".join(d.code(layout_scope) for d in p.view) + ")"
            lines.append(where + f"{view}, {p.axes}),")
        else:
            lines.append(where + f"{p.role == 'matrix' and not p.row_vector}),")
    return tuple(lines)


def _docstring_safe(line: str) -> str:
    """Text that cannot end or escape the generated docstring, whatever the spec's description says."""
    return line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').rstrip()


def _doc_lines(ir: CellIR, keras_weights: bool = True) -> tuple[str, ...]:
    lines = list(ir.description.splitlines()[1:]) if ir.description else []
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines:
        lines.append("")
    lines.append("Equations (one step, element-wise products as `*`):")
    lines += [f"    {eq}" for eq in ir.equations]
    lines.append("")
    lines.append("States: " + ", ".join(f"{s.name} ({s.size}, initially {s.initial})" for s in ir.states)
                 + f"; output: {ir.output} ({ir.output_size}).")
    if keras_weights:  # (the torch target's class lists its own parameters, in PyTorch's orientation)
        lines.append("")
        lines.append("Weights (row-vector convention, `x @ kernel`; parameters in column order):")
        for w in ir.weights:
            shape = "(" + ", ".join(d.text() for d in w.shape) + ("," if len(w.shape) == 1 else "") + ")"
            if w.kind == "initial_state":
                lines.append(f"    {w.name} {shape}: learned initial value of {w.members[0]}")
            elif w.rows:
                per_row = len(w.members) // w.rows
                rows = [" | ".join(w.members[i * per_row:(i + 1) * per_row]) for i in range(w.rows)]
                lines.append(f"    {w.name} {shape} = " + "; ".join(f"[{r}]" for r in rows))
            else:
                lines.append(f"    {w.name} {shape} = [{' | '.join(w.members)}]")
    if ir.square_input:
        lines.append("")
        lines.append("The input is combined element-wise with the state: input_dim must equal units.")
    return tuple(lines)
