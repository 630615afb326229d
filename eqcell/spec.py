"""Stage 1, load: spec text -> a frozen `Spec` whose every value knows where it came from.

The YAML is composed with PyYAML's safe loader into nodes (never constructed into Python
objects by a loader that could run code); tags, aliases and duplicate keys are refused here.
"""
from __future__ import annotations

import keyword
import math
import re
import unicodedata
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .errors import NOT_YET, Span, SpecError, describe_char, did_you_mean, not_yet

MAX_BYTES = 1 << 20
FORMAT_VERSIONS = (1, 2)  # 2 is current; 1 is still read and means the same
KEYS = ("eqcell", "name", "layer", "description", "input", "output", "states", "equations",
        "activations", "initializers", "default_initializer", "layout", "initial_state", "sizes", "constants",
        "heads", "vectors")
KEYS_NOT_YET: tuple[str, ...] = ()  # keys of format 2 this version does not read yet
# What YAML's reader refuses (and what a double-quoted escape can still smuggle into a value):
# control characters other than tab and line ends, surrogates and the noncharacters U+FFFE/U+FFFF.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
# Line ends YAML counts besides LF; read as LF so that line numbers agree with YAML's.
_LINE_ENDS = re.compile("\r\n|[\r\x85\u2028\u2029]")
KERAS_ACTIVATIONS = frozenset({
    "sigmoid", "tanh", "relu", "hard_sigmoid", "softplus", "softsign", "exponential", "linear",
    "elu", "selu", "gelu", "silu", "swish", "relu6", "leaky_relu", "hard_silu", "hard_swish",
    "mish", "celu", "hard_tanh", "log_sigmoid", "tanh_shrink", "softmax", "log_softmax"})
KERAS_INITIALIZERS = frozenset({
    "zeros", "ones", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_uniform", "lecun_normal", "orthogonal", "random_normal", "random_uniform",
    "truncated_normal", "identity", "variance_scaling"})
# eqcell's own initializer names, which every target's generated code defines
EQCELL_INITIALIZERS = frozenset({
    "pytorch_rnn_uniform",   # U(-1/sqrt(units), 1/sqrt(units)): PyTorch's recurrent layers' default
})
INITIALIZERS = KERAS_INITIALIZERS | EQCELL_INITIALIZERS


def shipped_specs_dir() -> Path:
    """`specs/` beside the package in a checkout, or `eqcell/specs` in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "specs", here / "specs"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("eqcell's shipped specs are missing from this installation")


def shipped_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in shipped_specs_dir().glob("*.yaml")))


class Located(NamedTuple):
    """A YAML value and where it was written."""

    value: Any
    span: Span


class EquationLine(NamedTuple):
    """One line of the `equations` block, with where its first character sits in the file."""

    text: str
    file: str
    line: int
    col: int
    line_text: str  # the file's line, for the caret; "" when the text could not be placed exactly

    def span(self, start: int, end: int | None = None) -> Span:
        """The span of text[start:end] in the file."""
        if not self.line_text:
            return Span(self.file, self.line, self.col)
        end = start + 1 if end is None or end <= start else end
        return Span(self.file, self.line, self.col + start, self.col + end, self.line_text)


class Activation(NamedTuple):
    """A function exposed as a constructor argument: `arg` replaces every call of `symbol`."""

    arg: Located
    symbol: Located
    default: Located


class Spec(NamedTuple):
    file: str
    version: int
    name: Located
    layer: Located | None
    description: str
    input: Located
    output: Located | None
    states: tuple[Located, ...] | None
    equations: tuple[EquationLine, ...]
    equations_span: Span
    activations: tuple[Activation, ...]
    initializers: tuple[tuple[Located, Located], ...]
    layout: tuple[tuple[Located, tuple[Located, ...]], ...]
    initial_state: tuple[tuple[Located, Located], ...]
    sizes: tuple[tuple[Located, Located], ...]
    text: str
    constants: tuple[tuple[Located, Located], ...] = ()   # name -> its default, a number
    heads: "Heads | None" = None                          # the equations describe one head of several
    row_vectors: bool = False                             # `vectors: row`: the paper's vectors are rows (x_t W)
    default_initializer: Located | None = None            # replaces the defaults by role for every parameter


class Heads(NamedTuple):
    """`heads: 4` or `heads: {arg: num_heads, default: 4}`: a constructor argument."""

    arg: Located
    default: Located


class _Loader(yaml.SafeLoader):
    """Composes nodes only, refusing aliases, anchors and explicit tags on the way."""

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML hook
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused("YAML aliases are not allowed in a spec", event.start_mark,
                           "write the value out in full")
        if getattr(event, "anchor", None):
            raise _Refused("YAML anchors are not allowed in a spec", event.start_mark,
                           "write the value out in full")
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            shown = tag.replace("tag:yaml.org,2002:", "!!", 1)
            raise _Refused(f"YAML tags are not allowed in a spec (got {shown!r})", event.start_mark,
                           "remove the tag; a spec is plain data and is never executed")
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, message, mark, hint=""):
        super().__init__(message)
        self.message, self.mark, self.hint = message, mark, hint


def resolve_source(source: str | Path | bytes, display_name: str | None = None) -> tuple[str, str]:
    """(display file name, text) for a path, a shipped spec name, or YAML text (str or bytes).

    With a `display_name` (`<stdin>`), `source` is always the spec's text, never a file name."""
    if isinstance(source, Path):
        return str(source), _read(source)
    if isinstance(source, bytes):
        return display_name or "<bytes>", _decode(source, display_name or "<bytes>")
    if display_name is None and "\n" not in source and ":" not in source.split("/")[-1]:
        path = Path(source)
        if _is_file(path):
            return source, _read(path)
        if _is_dir(path):
            raise SpecError(f"{source} is a folder, not a spec file", Span(source, 1, 1),
                            "name a .yaml file, or a shipped spec")
        shipped = shipped_specs_dir() / f"{source}.yaml"
        if "/" not in source and "\\" not in source and _is_file(shipped):
            return f"specs/{source}.yaml", _read(shipped)
        hint = did_you_mean(source, shipped_names()) or f"shipped specs: {', '.join(shipped_names())}"
        raise SpecError(f"no such spec file or shipped spec: {source!r}", Span(source, 1, 1), hint)
    file = display_name or "<string>"
    return file, _decode(source.encode("utf-8", "surrogatepass"), file)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the system, a NUL in it: no such file
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SpecError(f"cannot read spec: {err.strerror}", Span(str(path), 1, 1)) from None
    return _decode(data, str(path))


def _decode(data: bytes, file: str) -> str:
    if len(data) > MAX_BYTES:
        raise SpecError(f"spec is {len(data)} bytes, over the 1 MiB limit", Span(file, 1, 1),
                        "a spec holds a few equations; is this the right file?")
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is fine
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        begin = data.rfind(b"\n", 0, err.start) + 1
        end = data.find(b"\n", err.start)
        col = len(data[begin:err.start].decode("utf-8", "replace")) + 1
        line_text = data[begin:end if end >= 0 else len(data)].decode("utf-8", "replace").rstrip("\r")
        raise SpecError(f"spec is not UTF-8 (byte 0x{data[err.start]:02x})", Span(file, line, col, None, line_text),
                        "save the file as UTF-8") from None
    text = _LINE_ENDS.sub("\n", text)  # YAML counts a lone CR, NEL, U+2028 and U+2029 as line ends too
    bad = _FORBIDDEN.search(text)
    if bad:
        raise SpecError(*_forbidden_char(text, bad.start(), file))
    if not text.strip():
        raise SpecError("spec is empty", Span(file, 1, 1), "a spec needs at least `name` and `equations`")
    return text


def _forbidden_char(text: str, pos: int, file: str) -> tuple[str, Span, str]:
    """(message, span, hint) for a character no spec may hold, at text[pos]."""
    ch = text[pos]
    line = text.count("\n", 0, pos) + 1
    begin = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line_text = text[begin:end if end >= 0 else len(text)]
    what = _forbidden_kind(ch)
    hint = "delete it; it does not show in most editors"
    if ch == "\x00" and text.count("\x00") * 4 >= len(text):
        hint = "this looks like a UTF-16 file; save it as UTF-8"
    return (f"{what.removeprefix('the ')} {describe_char(ch)} is not allowed in a spec",
            Span(file, line, pos - begin + 1, None, line_text), hint)


def _forbidden_kind(ch: str) -> str:
    if ch <= "\x9f":
        return "the control character"
    return "the lone surrogate" if "\ud800" <= ch <= "\udfff" else "the noncharacter"


def load_spec(source: str | Path | bytes, display_name: str | None = None) -> Spec:
    """Read and check a spec's YAML structure; equations stay text for the parser.

    `source` is a path, a shipped spec name, or the spec's text (str, or bytes checked as UTF-8).
    `display_name` names text in messages (default `<string>`), e.g. `<stdin>`; given one, a str
    `source` is always text, never a file name (standard input that reads `lstm` is not the
    shipped LSTM)."""
    file, text = resolve_source(source, display_name)
    return _build(display_name or file, text)


def _build(file: str, text: str) -> Spec:
    lines = text.split("\n")

    def span_of(mark, end_mark=None) -> Span:
        line_text = lines[mark.line] if mark.line < len(lines) else ""
        end = end_mark.column + 1 if end_mark is not None and end_mark.line == mark.line else None
        return Span(file, mark.line + 1, mark.column + 1, end, line_text)

    try:
        root = yaml.compose(text, Loader=_Loader)
    except _Refused as err:
        raise SpecError(err.message, span_of(err.mark), err.hint) from None
    except yaml.MarkedYAMLError as err:
        problem, context, mark = err.problem or "", err.context or "", err.problem_mark
        if err.context_mark and (mark is None or mark.line >= len(lines) or not lines[mark.line].strip()):
            mark = err.context_mark  # the file ended first: point at what was left open
        message, hint = _yaml_message(problem, context)
        raise SpecError(f"YAML syntax error: {message}", span_of(mark) if mark else Span(file, 1, 1),
                        hint) from None
    if root is None:
        raise SpecError("spec is empty", Span(file, 1, 1), "a spec needs at least `name` and `equations`")

    def fail(message, node, hint=""):
        raise SpecError(message, span_of(node.start_mark, node.end_mark), hint)

    def mapping(node, what, hint="") -> list[tuple[Any, Any]]:
        if not isinstance(node, yaml.MappingNode):
            fail(f"{what} must be a mapping, got {_kind(node)}", node,
                 hint or "write its entries below it, indented, one `key: value` per line")
        seen: dict[str, Any] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                fail(f"a key of {what} must be a name, got {_kind(key)}", key,
                     "write `key: value`, the key a plain name")
            if key.value in seen:
                first = seen[key.value].start_mark.line + 1
                fail(f"duplicate key {key.value!r} (first written on line {first})", key,
                     "YAML would keep only the last one; write each key once")
            seen[key.value] = key
        return node.value

    def scalar(node, what, types=(str,), hint=""):
        if not isinstance(node, yaml.ScalarNode):
            fail(f"{what} must be {_names(types)}, got {_kind(node)}", node, hint)
        try:
            value = yaml.constructor.SafeConstructor().construct_object(node)
        except (yaml.constructor.ConstructorError, ValueError, OverflowError) as err:  # `!!int` on text, ...
            fail(f"{what} cannot be read: {getattr(err, 'problem', None) or err}", node, hint)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            if isinstance(value, bool) and str in types:
                hint = hint or (f"YAML reads an unquoted {node.value} as a boolean; "
                                f"write '{node.value}' in quotes for the text")
            fail(f"{what} must be {_names(types)}, got {_describe(value)}", node, hint)
        if isinstance(value, str):
            bad = _FORBIDDEN.search(value)
            if bad:
                fail(f"{what} holds {_forbidden_kind(bad.group())} {describe_char(bad.group())}, written as an escape",
                     node, "remove the escape")
        return Located(value, span_of(node.start_mark, node.end_mark))

    def identifier(node, what) -> Located:
        loc = scalar(node, what)
        check_identifier(loc.value, loc.span, what)
        return loc

    top = mapping(root, "the top level of a spec", "a spec is keys and values: `name: MyCell`, `equations: |`, ...")
    fields: dict[str, tuple[Any, Any]] = {}
    for key, value in top:
        if key.value in KEYS_NOT_YET:
            raise not_yet(key.value, span_of(key.start_mark, key.end_mark))
        if key.value not in KEYS:
            fail(f"unknown key {key.value!r}", key, did_you_mean(key.value, KEYS)
                 or f"known keys: {', '.join(KEYS)}")
        fields[key.value] = (key, value)

    version = FORMAT_VERSIONS[-1]
    if "eqcell" in fields:
        loc = scalar(fields["eqcell"][1], "`eqcell` (the format version)", (int,),
                     f"write `eqcell: {FORMAT_VERSIONS[-1]}`, or leave the key out")
        if loc.value not in FORMAT_VERSIONS:
            raise SpecError(f"unsupported spec format version {loc.value}", loc.span,
                            f"this eqcell reads versions {' and '.join(map(str, FORMAT_VERSIONS))}")
        version = loc.value
    for required in ("name", "equations"):
        if required not in fields:
            raise SpecError(f"missing required key {required!r}", Span(file, 1, 1, None, lines[0]),
                            "every spec needs `name` (the class name) and `equations`")

    name = identifier(fields["name"][1], "`name`")
    layer = identifier(fields["layer"][1], "`layer`") if "layer" in fields else None
    description = scalar(fields["description"][1], "`description`").value if "description" in fields else ""
    input_ = identifier(fields["input"][1], "`input`") if "input" in fields else Located("x", Span(file, 1, 1))
    output = identifier(fields["output"][1], "`output`") if "output" in fields else None

    states = None
    if "states" in fields:
        node = fields["states"][1]
        if not isinstance(node, yaml.SequenceNode):
            fail(f"`states` must be a list of names, got {_kind(node)}", node,
                 f"write a list: states: [{node.value}]" if isinstance(node, yaml.ScalarNode) and node.value else "")
        states = tuple(identifier(item, "a `states` entry") for item in node.value)

    eq_node = fields["equations"][1]
    block_hint = "write `equations: |` and one equation per line below it"
    if getattr(eq_node, "style", None) == '"':
        written = text[eq_node.start_mark.index:eq_node.end_mark.index]
        command = re.search(r"\\(?!n)[A-Za-z]{2,}", written)
        if command:
            fail(f"LaTeX in double quotes: YAML reads the backslash of {command.group()} as an escape",
                 eq_node, block_hint)
    eq_loc = scalar(eq_node, "`equations`", hint=block_hint)
    if eq_node.style == ">" or eq_node.style != "|" and eq_node.end_mark.line > eq_node.start_mark.line:
        fail("`equations` must be a literal block: YAML joins the lines of this one", eq_node, block_hint)
    equations = _equation_lines(eq_node, eq_loc.value, lines, file)

    activations = []
    if "activations" in fields:
        for key, value in mapping(fields["activations"][1], "`activations`"):
            arg = identifier(key, "an activation argument")
            if isinstance(value, yaml.MappingNode):
                entries = {k.value: (k, v) for k, v in mapping(value, f"`activations.{key.value}`")}
                for k, (knode, _) in entries.items():
                    if k not in ("symbol", "default"):
                        fail(f"unknown key {k!r} in activation {key.value!r}", knode,
                             did_you_mean(k, ("symbol", "default")) or "use `symbol` and `default`")
                if "symbol" not in entries:
                    fail(f"activation {key.value!r} needs a `symbol`", value)
                symbol = scalar(entries["symbol"][1], "an activation symbol")
                default = (scalar(entries["default"][1], "an activation default")
                           if "default" in entries else symbol)
            else:
                symbol = scalar(value, f"activation {key.value!r}")
                default = symbol
            activations.append(_checked_activation(Activation(arg, symbol, default), activations))

    def name_map(key, what_key, what_value, value_is_name=True):
        if key not in fields:
            return ()
        out = []
        for k, v in mapping(fields[key][1], f"`{key}`"):
            kloc = scalar(k, what_key)
            vloc = identifier(v, what_value) if value_is_name else scalar(v, what_value, (str, int, float))
            out.append((kloc, vloc))
        return tuple(out)

    initializers = name_map("initializers", "an `initializers` key", "an initializer", value_is_name=False)
    default_initializer = (scalar(fields["default_initializer"][1], "`default_initializer`", (str, int, float))
                           if "default_initializer" in fields else None)
    for value in [v for _, v in initializers] + ([default_initializer] if default_initializer else []):
        if not isinstance(value.value, str):
            raise SpecError("an initializer must be a name such as 'zeros' or 'ones'", value.span)
        if value.value not in INITIALIZERS:
            raise SpecError(f"unknown initializer {value.value!r}", value.span,
                            did_you_mean(value.value, INITIALIZERS)
                            or "e.g. zeros, ones, glorot_uniform (Keras's names), or pytorch_rnn_uniform")
    initial_state = tuple((key, _initial_value(value))
                          for key, value in name_map("initial_state", "an `initial_state` key", "an initial state",
                                                     value_is_name=False))
    sizes = []
    for key, value in name_map("sizes", "a `sizes` key", "a size", value_is_name=False):
        if value.value == 1 and not isinstance(value.value, bool):  # a scalar: one number per example
            sizes.append((key, Located("1", value.span)))
            continue
        if not isinstance(value.value, str):
            raise SpecError(f"size {value.value!r} is neither a name nor 1", value.span,
                            "a size is a name (a constructor argument, e.g. proj_units) or 1 for a scalar")
        check_identifier(value.value, value.span, "a size name")
        sizes.append((key, value))
    sizes = tuple(sizes)
    constants = []
    for key, value in name_map("constants", "a `constants` key", "a constant", value_is_name=False):
        check_identifier(key.value, key.span, "constant")
        number = value.value
        if isinstance(number, str) and _FLOAT.fullmatch(number.strip()):  # YAML 1.1 reads 1e-3 as text
            number = float(number)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise SpecError(f"constant {key.value!r} must be a number, got {value.value!r}", value.span,
                            f"a constant is a fixed number, e.g. {key.value}: 0.5")
        constants.append((key, Located(number, value.span)))

    heads = _heads(fields["heads"], scalar, identifier, mapping, fail) if "heads" in fields else None
    row_vectors = False
    if "vectors" in fields:
        loc = scalar(fields["vectors"][1], "`vectors`", (str,), "write `vectors: row` or `vectors: column`")
        if loc.value not in ("row", "column"):
            raise SpecError(f"`vectors` must be row or column, got {loc.value!r}", loc.span,
                            did_you_mean(loc.value, ("row", "column")) or
                            "`vectors: row` reads a paper that writes x_t W and q_t S_t; column is the default")
        row_vectors = loc.value == "row"

    layout = []
    if "layout" in fields:
        for k, v in mapping(fields["layout"][1], "`layout`"):
            kloc = identifier(k, "a `layout` key")
            if not isinstance(v, yaml.SequenceNode):
                fail(f"`layout.{k.value}` must be a list of parameter names, got {_kind(v)}", v)
            layout.append((kloc, tuple(scalar(item, "a `layout` entry") for item in v.value)))

    return Spec(file, version, name, layer, description, input_, output, states, equations,
                span_of(eq_node.start_mark), tuple(activations), initializers, tuple(layout),
                initial_state, sizes, text, tuple(constants), heads, row_vectors, default_initializer)


def _heads(field, scalar, identifier, mapping, fail) -> Heads:
    """`heads: 4` is `heads: {arg: num_heads, default: 4}`: the number of heads is a constructor
    argument, as Keras's MultiHeadAttention takes `num_heads`."""
    _, node = field
    hint = "write `heads: 4`, or `heads: {arg: num_heads, default: 4}`"
    if isinstance(node, yaml.MappingNode):
        entries = {k.value: (k, v) for k, v in mapping(node, "`heads`")}
        for k, (knode, _) in entries.items():
            if k not in ("arg", "default"):
                fail(f"unknown key {k!r} in `heads`", knode, did_you_mean(k, ("arg", "default")) or hint)
        if "default" not in entries:
            fail("`heads` needs a `default` number of heads", node, hint)
        default = scalar(entries["default"][1], "the default number of heads", (int,), hint)
        arg = (identifier(entries["arg"][1], "the `heads` argument") if "arg" in entries
               else Located("num_heads", default.span))
    else:
        default = scalar(node, "`heads`", (int,), hint)
        arg = Located("num_heads", default.span)
    if isinstance(default.value, bool) or default.value < 1:
        raise SpecError(f"`heads` must be a positive whole number, got {default.value!r}", default.span, hint)
    return Heads(arg, default)


def check_identifier(name: str, span: Span, what: str) -> None:
    """Refuse names that cannot become Python identifiers in the generated module."""
    if not name.isidentifier():
        raise SpecError(f"{what} {name!r} is not a valid Python identifier", span,
                        "use letters, digits and underscores, not starting with a digit")
    if not name.isascii():
        raise SpecError(f"{what} {name!r} is not ASCII", span, _ascii_hint(name))
    if keyword.iskeyword(name) and name != "lambda":  # \lambda, as papers write it: renamed in code
        raise SpecError(f"{what} {name!r} is a Python keyword", span,
                        f"Python reserves it; choose another name, e.g. {name}1")
    if name.startswith("__") and name.endswith("__"):
        raise SpecError(f"{what} {name!r} starts and ends with '__'", span,
                        "Python reserves such names for itself; choose a name without the double underscores")


def _ascii_hint(name: str) -> str:
    """What to write instead of a name with non-ASCII letters in it."""
    folded = unicodedata.normalize("NFKC", name)  # fullwidth and other compatibility forms
    if folded.isascii() and folded.isidentifier():
        return f"generated names are ASCII; write {folded!r}"
    odd = next(ch for ch in unicodedata.normalize("NFD", folded) if not ch.isascii())
    if "GREEK" in unicodedata.name(odd, ""):
        return "generated names are ASCII; spell Greek letters out (beta, or \\beta in LaTeX)"
    if unicodedata.combining(odd):
        return (f"generated names are ASCII; drop the accent {describe_char(odd)} or write it as a word, "
                "as htilde for h̃")
    return f"generated names are ASCII; {describe_char(odd)} has no ASCII spelling, choose another name"


def _equation_lines(node, value: str, lines: list[str], file: str) -> tuple[EquationLine, ...]:
    """Map each line of the equations value to its place in the file.

    A literal block (`|`) keeps lines one to one; for other styles each line is placed
    where the scalar starts when the text cannot be found verbatim."""
    out = []
    parts = value.split("\n")
    if node.style == "|":
        first = node.start_mark.line + 1
        for i, part in enumerate(parts):
            lineno = first + i
            raw = lines[lineno] if lineno < len(lines) else ""
            col = raw.find(part) if part else 0
            if col < 0 or raw[col:] != part:
                col = len(raw) - len(raw.lstrip())
            out.append(EquationLine(part, file, lineno + 1, col + 1, raw))
    else:
        line = node.start_mark.line
        raw = lines[line]
        quote = 1 if node.style in ("'", '"') else 0
        for i, part in enumerate(parts):
            if i == 0 and raw[node.start_mark.column + quote:].startswith(part):
                out.append(EquationLine(part, file, line + 1, node.start_mark.column + quote + 1, raw))
            else:
                out.append(EquationLine(part, file, line + 1, node.start_mark.column + 1, ""))
    return tuple(out)


def _checked_activation(act: Activation, earlier: list[Activation]) -> Activation:
    """An exposed activation replaces an element-wise function by a Keras activation."""
    from . import nodes  # sympy: only once a spec has activations

    symbol = nodes.ALIASES.get(act.symbol.value, act.symbol.value)
    functions = [f for f, arity in nodes.FUNCTIONS.items() if arity == 1]
    if symbol in nodes.FUNCTIONS and symbol not in functions:  # a Keras activation takes one argument
        raise SpecError(f"activation {act.arg.value!r} replaces {symbol!r}, which is not a function of one "
                        "argument", act.symbol.span, f"an activation replaces one of: {', '.join(functions)}")
    close = did_you_mean(symbol, functions)
    declared = (act.default is not act.symbol and isinstance(symbol, str) and symbol.isidentifier()
                and symbol.isascii() and not close)
    if symbol not in nodes.FUNCTIONS and not declared:  # `{symbol: phi, default: tanh}` declares phi
        raise SpecError(f"activation {act.arg.value!r} replaces {symbol!r}, which is not an element-wise function",
                        act.symbol.span, close or f"functions: {', '.join(functions)}; a function the paper "
                        f"names itself is declared with its default: {{symbol: {symbol}, default: tanh}}")
    for other in earlier:
        if other.symbol.value == symbol:
            raise SpecError(f"{symbol!r} is already exposed as {other.arg.value!r}", act.symbol.span,
                            "each function is replaced by one argument")
    if act.default.value not in KERAS_ACTIVATIONS:
        raise SpecError(f"unknown Keras activation {act.default.value!r}", act.default.span,
                        did_you_mean(act.default.value, KERAS_ACTIVATIONS) or "e.g. tanh, sigmoid, linear")
    return Activation(act.arg, Located(symbol, act.symbol.span), act.default)


def _initial_value(loc: Located) -> Located:
    """An `initial_state` value: YAML 1.1 reads `1e-3` as text; it is the number the user wrote."""
    value = loc.value
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or value in ("zeros", "ones", "learned")):
        raise SpecError(f"initial state {value!r} is not zeros, ones, a number or learned", loc.span,
                        "an initial state is zeros, ones, learned or a finite number")
    if isinstance(value, float) and not math.isfinite(value):
        written = loc.span.line_text[loc.span.col - 1:(loc.span.end_col or 0) - 1] or str(loc.value)
        raise SpecError(f"initial state {written} is not a finite number", loc.span,
                        "an initial state is zeros, ones, learned or a finite number")
    return Located(value, loc.span)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _yaml_message(problem: str, context: str) -> tuple[str, str]:
    """A PyYAML syntax error (problem, context) as (message, hint) in the spec writer's terms."""
    indent_hint = "check the indentation and quoting around this point"
    if "'\\t'" in problem:
        return "a tab character here", "YAML indents with spaces only; replace the tab with spaces"
    if problem.startswith("mapping values are not allowed"):
        return ("unexpected ':'", "is this line indented deeper than the key above it? "
                "A value that holds ': ' must be quoted")
    if "another document" in problem:
        return ("a second YAML document starts here", "a spec is one document; "
                "remove this `---` line and what follows it, or move it to a file of its own")
    if "quoted scalar" in context and problem.startswith("found unknown escape character"):
        return (f"unknown escape {problem.split(' character ', 1)[1]} in a double-quoted value",
                "in double quotes a backslash starts an escape; for LaTeX use single quotes or a block (`|`)")
    if "quoted scalar" in context and problem.startswith("found unexpected"):
        return "this quoted value is never closed", "add the closing quote"
    if "flow sequence" in context and "<stream end>" in problem:
        return "this list is never closed", "close it with ']'"
    if "flow mapping" in context and "<stream end>" in problem:
        return "this mapping is never closed", "close it with '}'"
    if "flow sequence" in context or "flow mapping" in context:
        close = "]" if "sequence" in context else "}"
        return (f"unexpected {problem.rsplit('got ', 1)[-1]} inside {'[...]' if close == ']' else '{...}'}",
                f"separate the values with ',' and close with '{close}'; quote a value that holds ':' or ','")
    if "block scalar" in context and problem.startswith("expected a comment or a line break"):
        return ("text after `|` on the same line", "start the block on the next line, indented: "
                "`equations: |`, then one equation per line")
    if "block scalar" in context:  # `|x`, `|0`
        return ("`|` may be followed only by an indentation digit 1-9, `+` or `-`",
                "write `equations: |` and the equations on the lines below it, indented")
    if problem.startswith("expected <block end>"):
        return ("this line does not fit the block above it",
                "check its indentation: the keys of one mapping start in the same column, "
                "and a list `- ...` is indented under its key")
    if "anchor" in context or "alias" in context:
        return ("a '&' or '*' here starts a YAML anchor or alias, which a spec does not use",
                "put the value in quotes")
    if "simple key" in context and "':'" in problem:
        return ("a line that is not `key: value`", "is it part of a block above? Indent it under "
                "`equations: |`; otherwise write `key: value`")
    if problem.startswith("found character") and "cannot start any token" in problem:
        ch = problem.split("'")[1] if "'" in problem else "it"
        return f"a plain value cannot start with {ch!r}", "put the value in quotes"
    if problem.startswith("found undefined tag handle"):
        return "an undefined YAML tag", "remove the tag; a spec is plain data"
    readable = {"<stream end>": "the end of the file", "<block end>": "the end of the block",
                "<scalar>": "a value", "<block mapping start>": "a mapping", "<block sequence start>": "a list",
                "<flow sequence start>": "'['", "<flow mapping start>": "'{'", "<block entry>": "'- '",
                "<document start>": "'---'"}
    for word, said in readable.items():
        problem, context = problem.replace(f"'{word}'", said), context.replace(f"'{word}'", said)
    if context.startswith("while"):
        message = f"{problem} ({context})" if problem else context
    else:
        message = ", ".join(filter(None, (context, problem)))
    return message, indent_hint


def _kind(node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    try:
        return _describe(yaml.constructor.SafeConstructor().construct_object(node))
    except (yaml.YAMLError, ValueError, OverflowError):
        return f"the value {node.value!r}"


def _describe(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if hasattr(value, "isoformat"):
        return f"the date {value.isoformat()} (YAML reads this spelling as a date)"
    return {list: "a list", dict: "a mapping"}.get(type(value), f"a {type(value).__name__} ({value!r})")


def _names(types) -> str:
    words = [{str: "text", int: "a whole number", float: "a number"}.get(t, t.__name__) for t in types]
    if "a number" in words and "a whole number" in words:
        words.remove("a whole number")
    return " or ".join(words)
