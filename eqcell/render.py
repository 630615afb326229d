"""Stage 4, render: CellIR -> module text, through one Jinja template set per target.

Every expression is printed here, into a small frozen context of strings and tuples;
the templates only loop and print. The result must pass `ast.parse` before it is returned."""
from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from . import __version__
from .ir import CellIR, Dim, Product, Statement, Weight
from .printing.keras import KerasPrinter
from .printing.tf_keras import TfKerasPrinter

TARGETS = ("keras", "tf-keras")


class RenderError(Exception):
    """The generated text did not compile: an eqcell bug, never the user's."""


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    default: str          # Python source of the default value
    doc: str


@dataclass(frozen=True, slots=True)
class WeightCode:
    attr: str             # "kernel"
    shape: str            # "(input_dim, 2 * self.units)"
    initializer: str      # "self.kernel_initializer" or a local function's name
    init_function: tuple[str, ...]   # lines of a local initializer function, or ()
    regularizer: str
    constraint: str
    optional: bool
    trainable: bool


@dataclass(frozen=True, slots=True)
class Context:
    target: str
    version: str
    name: str
    layer: str
    digest: str
    summary: str
    doc_lines: tuple[str, ...]
    args: tuple[Arg, ...]
    activations: tuple[tuple[str, str], ...]        # (arg, default)
    weight_args: tuple[str, ...]                    # "kernel", "recurrent", "bias", ...
    sizes: tuple[str, ...]
    has_bias: bool
    state_size: str
    output_size: str
    square_input: bool
    weights: tuple[WeightCode, ...]
    unpack_states: str
    recurrent_dropout: str                          # the state's prev name, or ""
    project_lines: tuple[str, ...]
    step_lines: tuple[str, ...]
    projected_return: str
    projected_width: str                            # code: how many features project_inputs returns
    custom_initial_state: bool                      # some state does not start at zeros
    projected_unpack: str
    scan_lines: tuple[str, ...]
    scan_uses_cell: bool                            # the scan reads the cell's weights or activations
    scan_reason: str
    state_prevs: tuple[str, ...]
    state_names: tuple[str, ...]
    output: str
    cell_name: str
    returns: str
    initial_states: tuple[str, ...]
    symbol_layout: tuple[str, ...]
    uses_layer_norm: bool
    uses_input_dim_in_layout: bool
    uses_flat_matmul: bool                          # project_inputs or the scan calls _matmul


@lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)


def templates_dir() -> Path:
    """`templates/` beside the package in a checkout, or `eqcell/templates` in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("eqcell's templates are missing from this installation")


PRECOMPILED_HEADER = "# eqcell: Jinja's compiled form of {name}, made from the text with sha1 {sha1}\n"


def _template_paths(target: str) -> tuple[str, Path, Path]:
    name = f"{target.replace('-', '_')}/module.py.j2"
    source = templates_dir() / name
    return name, source, source.with_name("module_compiled.py")


def _template(target: str) -> jinja2.Template:
    """The target's template, from its precompiled form when that was made from the current text.

    Jinja's compile costs ~13 ms, a tenth of `eqcell generate`; the precompiled Python (refreshed
    with the golden files, `pytest tests/test_golden.py --update-golden`) skips it, and a stale
    one is simply not used."""
    name, source, compiled = _template_paths(target)
    text = source.read_text(encoding="utf-8")
    if compiled.is_file():
        code = compiled.read_text(encoding="utf-8")
        sha1 = hashlib.sha1(text.encode("utf-8")).hexdigest()
        if code.startswith(PRECOMPILED_HEADER.format(name=name, sha1=sha1)):
            env = _environment()
            return jinja2.Template.from_code(env, compile(code, str(compiled), "exec"), env.make_globals(None))
    return _environment().get_template(name)


def precompile_template(target: str) -> tuple[Path, str]:
    """(path, text) of the precompiled template for `target`, for the refresh command to write."""
    name, source, compiled = _template_paths(target)
    text = source.read_text(encoding="utf-8")
    sha1 = hashlib.sha1(text.encode("utf-8")).hexdigest()
    code = _environment().compile(text, name, str(source), raw=True)
    return compiled, PRECOMPILED_HEADER.format(name=name, sha1=sha1) + code + "\n"


def render(ir: CellIR, target: str = "keras") -> str:
    """Module text for `target`; compiled with `ast.parse` before it is returned."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    context = build_context(ir, target)
    text = _template(target).render(c=context)
    try:
        ast.parse(text)
    except SyntaxError as err:
        raise RenderError(f"generated {target} code does not compile: {err}") from err
    return text


def weight_arg(weight: Weight) -> str:
    """Constructor prefix of a weight: kernel -> kernel, recurrent_kernel -> recurrent, bias -> bias."""
    if weight.name.endswith("_kernel") and weight.name != "kernel":
        return weight.name[: -len("_kernel")]
    return weight.name


def build_context(ir: CellIR, target: str) -> Context:
    tf = target == "tf-keras"
    lib = "tf_keras" if tf else "keras"
    scope = {"units": "self.units", "input_dim": "input_dim", **{s: f"self.{s}" for s in ir.sizes}}
    names = _names(ir)
    exposed = {a.function: f"self.{a.arg}" for a in ir.activations}
    printer = (TfKerasPrinter if tf else KerasPrinter)(names, exposed)

    args = [Arg("units", "", "Positive integer, dimensionality of the output space (`units` in the shapes below).")]
    for s in ir.sizes:
        args.append(Arg(s, "", f"Positive integer, the size named `{s}` in the shapes below."))
    for a in ir.activations:
        args.append(Arg(a.arg, f'"{a.default}"', f"Activation function replacing `{a.function}` in the equations "
                                                  f"(default: `{a.default}`)."))
    if ir.has_bias:
        args.append(Arg("use_bias", "True", "Boolean, whether the fused `bias` weight is used."))
    for kind in ("initializer", "regularizer", "constraint"):
        for w in ir.weights:
            default = f'"{w.default_initializer}"' if kind == "initializer" else "None"
            args.append(Arg(f"{weight_arg(w)}_{kind}", default, f"{kind.capitalize()} for `{w.name}`."))
    args += [Arg("dropout", "0.0", "Float in [0, 1): fraction of the inputs to drop (one mask per sequence)."),
             Arg("recurrent_dropout", "0.0", "Float in [0, 1): fraction of the recurrent state to drop "
                                              "in the recurrent products."),
             Arg("seed", "None", "Random seed for dropout.")]

    weights = tuple(_weight_code(w, scope, lib, tf) for w in ir.weights)
    project_lines, step_lines = _sections(ir, printer, tf)
    scan_lines = () if tf else _scan_lines(ir, _cell_printer(ir, names, exposed))
    projected = [names[n] for n in ir.projected]
    state_sizes = [scope[s.size] for s in ir.states]
    return Context(
        target=target, version=__version__, name=ir.name, layer=ir.layer, digest=ir.digest,
        summary=_docstring_safe((ir.description.splitlines() or [f"The {ir.name} recurrent cell."])[0]),
        doc_lines=tuple(_docstring_safe(line) for line in _doc_lines(ir)),
        args=tuple(args),
        activations=tuple((a.arg, a.default) for a in ir.activations),
        weight_args=tuple(weight_arg(w) for w in ir.weights),
        sizes=ir.sizes, has_bias=ir.has_bias,
        state_size=state_sizes[0] if tf and len(state_sizes) == 1 else "[" + ", ".join(state_sizes) + "]",
        output_size=scope[ir.output_size],
        square_input=ir.square_input, weights=weights,
        unpack_states=_unpack(ir, tf),
        recurrent_dropout=next((s.prev for s in ir.states if s.name == ir.recurrent_state
                                and _has_recurrent_operand(ir)), ""),
        project_lines=project_lines,
        step_lines=step_lines,
        projected_return="[" + ", ".join(projected) + "]",
        projected_width=_projected_width(ir),
        custom_initial_state=any(s.initial != "zeros" for s in ir.states),
        projected_unpack=(f"{projected[0]} = projected[0]" if len(projected) == 1
                          else f"{', '.join(projected)} = projected"),
        scan_lines=scan_lines,
        scan_uses_cell=any("cell." in line for line in scan_lines),
        scan_reason=ir.scan_reason,
        state_prevs=tuple(s.prev for s in ir.states),
        state_names=tuple(s.name for s in ir.states),
        output=ir.output,
        cell_name=snake_case(ir.name),
        returns=_returns(ir, tf),
        initial_states=tuple(_initial_state(s, scope, tf) for s in ir.states),
        symbol_layout=_symbol_layout(ir, scope),
        uses_layer_norm=ir.uses_layer_norm,
        uses_input_dim_in_layout=any("input_dim" in d for p in ir.params for d in (p.start.text(), p.stop.text())),
        uses_flat_matmul=any(" _matmul(" in line for line in project_lines + scan_lines),
    )


def snake_case(name: str) -> str:
    """SLSTMCell -> slstm_cell, as Keras names LSTMCell lstm_cell."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _names(ir: CellIR) -> dict[str, str]:
    names = {ir.input: "inputs"}
    for step in ir.steps:
        if isinstance(step, Statement):
            names[step.target] = step.target
        else:
            names.update({s: s for s in step.slots})
            if step.partial:
                names[step.partial] = step.partial
    for s in ir.states:
        names[s.prev] = s.prev
    for p in ir.params:
        if p.weight == p.name:
            names[p.name] = f"self.{p.name}"
    return names


def _has_recurrent_operand(ir: CellIR) -> bool:
    return any(op.dropout == "recurrent" for step in ir.steps if isinstance(step, Product) for op in step.operands)


def _unpack(ir: CellIR, tf: bool) -> str:
    prevs = [s.prev for s in ir.states]
    comment = ", ".join(f"{s.name}_{{t-1}}" for s in ir.states)
    if len(prevs) == 1:
        nested = "tf.nest.is_nested(states)" if tf else "isinstance(states, (list, tuple))"
        return f"{prevs[0]} = states[0] if {nested} else states  # {comment}"
    return f"{', '.join(prevs)} = states  # {comment}"


def _returns(ir: CellIR, tf: bool) -> str:
    """`h, [h, c]`; a single state comes back in the structure it came in, as tf_keras's GRUCell does."""
    names = [s.name for s in ir.states]
    if tf and len(names) == 1:
        return f"{ir.output}, [{names[0]}] if tf.nest.is_nested(states) else {names[0]}"
    return f"{ir.output}, [{', '.join(names)}]"


def _sections(ir: CellIR, printer, tf: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
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
            project += _product_lines(ir, step, step.operands, step.target, None, True, printer, tf,
                                      sequence=True)
        elif step.partial:
            hoisted = tuple(op for op in step.operands if op.hoistable)
            rest = tuple(op for op in step.operands if not op.hoistable)
            project += _product_lines(ir, step, hoisted, step.partial, None, False, printer, tf, sequence=True)
            step_part += _product_lines(ir, step, rest, step.target, step.partial, True, printer, tf)
        else:
            step_part += _product_lines(ir, step, step.operands, step.target, None, True, printer, tf)
    return _tidy(project), _tidy(step_part)


def _product_lines(ir, step: Product, operands, target: str, start: str | None, split: bool, printer,
                   tf: bool, owner: str = "self", sequence: bool = False) -> list[str]:
    """`target = [start +] operand @ weight + ... [+ bias]`, then the split into the slots.

    `sequence`: the operand may hold a whole sequence (batch, T, features); Keras 3 code then
    multiplies it as one 2-D matrix (`_matmul`), whose gradient XLA computes far faster on CPU."""
    matmul = "tf.matmul" if tf else "_matmul" if sequence else "ops.matmul"
    parts = []
    for op in operands:
        w = next(w for w in ir.weights if w.name == op.weight)
        parts.append(f"{w.name} = [{' | '.join(w.members)}]")
    biases = [(op.bias, "" if op.bias_row is None else f"[{op.bias_row}]", op.bias_row)
              for op in operands if op.bias]
    for bias, row, index in biases:
        members = [p.name for p in ir.params if p.weight == bias and p.row == index]
        parts.append(f"{bias}{row} = [{' | '.join(members)}]")
    lines = ["", "# " + ", ".join(parts)]
    for i, op in enumerate(operands):
        operand = printer.doprint(op.expr)
        if op.dropout == "recurrent":
            operand = f"{operand}_dp"
        product = f"{matmul}({operand}, {owner}.{op.weight})"
        if i == 0:
            lines.append(f"{target} = {start} + {product}" if start else f"{target} = {product}")
        else:
            lines.append(f"{target} = {target} + {product}")
    if biases:
        lines.append(f"if {owner}.use_bias:")
        lines += [f"    {target} = {target} + {owner}.{bias}{row}" for bias, row, _ in biases]
    if split and len(step.slots) > 1:
        if len({w.text() for w in step.widths}) == 1:
            how = str(len(step.slots))
        else:
            scope = {"units": f"{owner}.units", **{s: f"{owner}.{s}" for s in ir.sizes}}
            cuts, acc = [], Dim(())
            for w in step.widths[:-1]:
                acc = acc.plus(w)
                cuts.append(acc.code(scope))
            how = "[" + ", ".join(cuts) + "]"
        lib = "tf" if tf else "ops"
        lines.append(f"{', '.join(step.slots)} = {lib}.split({target}, {how}, axis=-1)")
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


def _cell_printer(ir: CellIR, names: dict[str, str], exposed: dict[str, str]) -> KerasPrinter:
    """A printer for code in the layer, where the cell's weights and activations are `cell.*`."""
    in_layer = {k: v.replace("self.", "cell.", 1) for k, v in names.items()}
    return KerasPrinter(in_layer, {k: v.replace("self.", "cell.", 1) for k, v in exposed.items()})


def _projected_width(ir: CellIR) -> str:
    """Total feature width of `project_inputs`' values, as code in the layer's scope."""
    widths: dict[str, Dim] = {ir.input: Dim(((1, "input_dim"),))}
    for step in ir.steps:
        if isinstance(step, Statement):
            widths[step.target] = Dim(((1, step.size),))
        else:
            widths.update(zip(step.slots, step.widths))
            if step.partial:
                total = Dim(())
                for w in step.widths:
                    total = total.plus(w)
                widths[step.partial] = total
    total = Dim(())
    for name in ir.projected:
        total = total.plus(widths[name])
    scope = {"units": "cell.units", "input_dim": "sequences.shape[-1]", **{s: f"cell.{s}" for s in ir.sizes}}
    return total.code(scope)


def _scan_lines(ir: CellIR, printer) -> tuple[str, ...]:
    """The body of the layer's parallel path: one scan per state, then the rest of the step
    evaluated for all steps at once. It runs in the layer, so the cell's weights are `cell.*`."""
    if ir.scan is None:
        return ()
    lines = []
    for lin in ir.scan:
        st = next(s for s in ir.states if s.name == lin.state)
        lines.append(f"# {next(s.equation for s in ir.steps if isinstance(s, Statement) and s.target == lin.state)}")
        lines.append(f"{lin.state} = _linear_scan({printer.doprint(lin.decay)}, {printer.doprint(lin.drive)}, "
                     f"{st.prev}, keep, frame)")
    scanned = {lin.state for lin in ir.scan}
    for step in ir.steps:
        if isinstance(step, Statement) and not step.hoistable and step.target not in scanned:
            lines.append(f"# {step.equation}")
            lines.append(f"{step.target} = {printer.doprint(step.expr)}")
        elif isinstance(step, Product) and not step.hoistable:
            lines += [line for line in _product_lines(ir, step, step.operands, step.target, None, True,
                                                      printer, False, owner="cell", sequence=True) if line]
    return tuple(lines)


def _weight_code(w: Weight, scope, lib: str, tf: bool) -> WeightCode:
    arg = weight_arg(w)
    shape = "(" + ", ".join(d.code(scope) for d in w.shape) + ("," if len(w.shape) == 1 else "") + ")"
    if w.kind == "initial_state":
        shape = "(" + w.shape[0].code(scope) + ",)"
    init = f"self.{arg}_initializer"
    function: tuple[str, ...] = ()
    if w.slices:
        concat = "tf.concat" if tf else "ops.concatenate"
        rows = w.shape[:-1]
        lead = "".join(d.code(scope) + ", " for d in rows)
        pieces = []
        for s in w.slices:
            width = Dim(tuple((c, n) for c, n in s.stop.terms)).plus(Dim(tuple((-c, n) for c, n in s.start.terms)))
            make = f'{lib}.initializers.get("{s.initializer}")' if s.initializer else init
            pieces.append(f"    {make}(({lead}{width.code(scope)},), *args, **kwargs),")
        axis = ", axis=-1" if not tf else ", axis=-1"
        function = (f"def {w.name}_initializer(_, *args, **kwargs):",
                    f"    return {concat}([",
                    *["    " + p for p in pieces],
                    f"    ]{axis})")
        init = f"{w.name}_initializer"
    return WeightCode(w.name, shape, init, function, f"self.{arg}_regularizer",
                      f"self.{arg}_constraint", w.optional, True)


def _initial_state(state, scope, tf: bool) -> str:
    size = scope[state.size]
    if tf:
        shape, dtype = f"[batch_size, {size}]", "dtype"
        if state.initial == "zeros":
            return f"tf.zeros({shape}, dtype={dtype})"
        if state.initial == "ones":
            return f"tf.ones({shape}, dtype={dtype})"
        if state.initial == "learned":
            return f"tf.broadcast_to(tf.cast(self.initial_{state.name}, {dtype}), {shape})"
        return f"tf.fill({shape}, tf.cast({state.initial}, {dtype}))"
    shape, dtype = f"(batch_size, {size})", "self.compute_dtype"
    if state.initial == "zeros":
        return f"ops.zeros({shape}, dtype={dtype})"
    if state.initial == "ones":
        return f"ops.ones({shape}, dtype={dtype})"
    if state.initial == "learned":
        return f"ops.broadcast_to(ops.cast(self.initial_{state.name}, {dtype}), {shape})"
    return f"ops.full({shape}, {state.initial}, dtype={dtype})"


def _symbol_layout(ir: CellIR, scope) -> tuple[str, ...]:
    layout_scope = {**scope, "input_dim": "self._input_dim"}
    lines = []
    for p in ir.params:
        row = "None" if p.row is None else str(p.row)
        lines.append(f'"{p.name}": ("{p.weight}", {row}, {p.start.code(layout_scope)}, '
                     f'{p.stop.code(layout_scope)}, {p.role == "matrix"}),')
    return tuple(lines)


def _docstring_safe(line: str) -> str:
    """Text that cannot end or escape the generated docstring, whatever the spec's description says."""
    return line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').rstrip()


def _doc_lines(ir: CellIR) -> tuple[str, ...]:
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
    lines.append("")
    lines.append("Weights (row-vector convention, `x @ kernel`; parameters in column order):")
    for w in ir.weights:
        shape = "(" + ", ".join(d.text() for d in w.shape) + ("," if len(w.shape) == 1 else "") + ")"
        if w.kind == "initial_state":
            lines.append(f"    {w.name} {shape}: learned initial value of {w.name[len('initial_'):]}")
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
