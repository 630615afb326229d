"""Stage 2, parse: equation text (plain or LaTeX) -> sympy expressions, with positions.

A hand-written tokenizer and precedence parser; spec text never reaches eval, exec,
sympify or parse_expr. Only syntax is checked here; meaning (states, parameters, sizes)
is the analyzer's job, helped by the `Ref` positions recorded for every name.

Limits, so that no equation can exhaust the stack of a later stage (the analysis, sympy, the
printers and Python's own compiler all recurse over the expression):
- MAX_DEPTH: an expression nests at most 64 levels deep. Each bracket, function call, factor
  of a chain of juxtaposed products (`A B C x_t`) and division in one product (`a / b / c`)
  is one level; a sum or a product of any length is one level however many terms it has.
- MAX_OPERANDS: the right side of an equation holds at most 1000 names and numbers.
- MAX_EQUATIONS: a spec holds at most 1000 equations (the analysis takes seconds for 1000)."""
from __future__ import annotations

from typing import NamedTuple

from collections.abc import Mapping

import math
import re
import unicodedata

import sympy

from . import nodes
from .errors import NOT_YET, Span, SpecError, describe_char, did_you_mean, not_yet
from .spec import EquationLine, Spec

MAX_DEPTH = 64
MAX_OPERANDS = 1000
MAX_EQUATIONS = 1000

TIME_NOW, TIME_PREV = 0, -1
ACCENTS = {"\u0303": "tilde", "\u0302": "hat", "\u0304": "bar", "\u0305": "bar"}
LATEX_ACCENTS = {"tilde": "tilde", "widetilde": "tilde", "hat": "hat", "widehat": "hat",
                 "bar": "bar", "overline": "bar"}
LATEX_FONTS = {"mathbf", "boldsymbol", "bm", "mathit", "mathrm", "mathsf", "mathcal", "vec",
               "text", "textrm", "textit", "textbf", "operatorname", "mathtt"}
LATEX_FUNCTIONS = {"sigma": "sigmoid", "tanh": "tanh", "exp": "exp", "log": "log", "ln": "log",
                   "max": "max", "min": "min", "sqrt": "sqrt", "frac": "frac"}
LATEX_BARS = {"lvert", "rvert", "vert"}  # `\lvert a \rvert` is |a|
LATEX_NORM_BARS = {"|", "lVert", "rVert", "Vert"}  # `\|a\|` is the norm
LATEX_BRACES = {"{": "(", "}": ")"}  # `\max\{a, b\}`: escaped braces are brackets
LATEX_ELEMENTWISE = {"otimes", "odot", "circ"}
LATEX_MATMUL = {"cdot"}
LATEX_IGNORED = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
                 "quad", "qquad", "displaystyle", "nonumber", "notag"}
LATEX_SPACES = {",", ";", ":", "!", " "}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "pi", "rho", "tau", "upsilon", "phi", "chi", "psi", "omega",
         "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Phi", "Psi", "Omega", "varphi", "varepsilon"}
UNICODE_OPS = {"⊙": "odot", "⊗": "odot", "∘": "odot", "·": "@", "⋅": "@", "−": "-", "×": "odot"}
KNOWN_FUNCTIONS = tuple(nodes.FUNCTIONS) + tuple(nodes.ALIASES) + ("diag",)
# Functions of spec format 2 not implemented yet (errors.NOT_YET says so where they are called).
FUNCTIONS_NOT_YET = tuple(f for f in ("max", "min", "logsigmoid", "diag") if f in NOT_YET)
# LaTeX commands of spec format 2 not implemented yet -> their NOT_YET entry.
LATEX_NOT_YET = {name: key for name, key in {
    "frac": "\\frac", "dfrac": "\\frac", "tfrac": "\\frac", "sqrt": "\\sqrt", "max": "\\max",
    "min": "\\min", "top": "transpose", "intercal": "transpose",
    "|": "norm", "lVert": "norm", "rVert": "norm", "Vert": "norm"}.items() if key in NOT_YET}
_GREEK_LETTERS = {unicodedata.lookup(f"GREEK {'CAPITAL' if name[0].isupper() else 'SMALL'} LETTER "
                                    f"{name.upper().replace('LAMBDA', 'LAMDA')}"): name
                  for name in GREEK if not name.startswith("var")}
_GREEK_LETTERS.update({"ϕ": "varphi", "ϵ": "varepsilon"})
_GREEK_LETTERS.pop("σ", None)  # σ( is the sigmoid
PRIMES = {"'": 1, "′": 1, "″": 2, "‴": 3}
SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺ⁿ"
_SUPERSCRIPT_TO_ASCII = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_NUMBER = re.compile(r"(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)", re.ASCII)
_LATEX_PRIME = re.compile(r"\^\s*(?:\\prime|\{\s*((?:\\prime\s*)+)\})")
_LATEX_GREEK = re.compile(r"\\(" + "|".join(sorted(GREEK, key=len, reverse=True)) + r")(?![A-Za-z])")
_TRANSPOSE = re.compile(r"\^\s*(?:T(?![a-z])|⊤|\\top\b|\\intercal\b|\{\s*(?:T|⊤|\\top|\\intercal)\s*\})")
_TIME_ARGUMENT = re.compile(r"\s*\(\s*t\s*(?:(?:[-+−]|\{\s*[-+−]\s*\})\s*[0-9]+\s*)?\)")
_EQUATION_START = re.compile(r"\s*(?:\\[A-Za-z]+\s*\{?\s*)?[A-Za-z][A-Za-z0-9]*\}?\s*(?:_\{?\s*t\s*\}?)\s*&?=")
_TIME = re.compile(r"^t(?:\s*([-+−])\s*(\d+))?$|^t([mp])(\d+)$")


class Ref(NamedTuple):
    """One name as written: `name` with braces dropped, its time index (None for parameters)."""

    name: str
    time: int | None
    span: Span


class Equation(NamedTuple):
    target: str
    expr: sympy.Expr
    text: str          # the equation as the user wrote it, for the generated comment
    span: Span         # the target's position
    refs: tuple[Ref, ...]
    line: int
    spans: Mapping[sympy.Expr, Span] = {}   # where each product, transpose, diag, I and norm is written


class Token(NamedTuple):
    kind: str          # name, func, number, op, end
    value: str
    start: int
    end: int
    time: int | None = None
    time_span: tuple[int, int] | None = None


def is_latex(lines: tuple[EquationLine, ...]) -> bool:
    return any("\\" in line.text or "&=" in line.text for line in lines)


def parse_equations(spec: Spec) -> tuple[Equation, ...]:
    """Every equation of the spec, in the order written; a variable defined twice is refused."""
    latex = is_latex(spec.equations)
    counter = _LayerNormCounter()
    out: list[Equation] = []
    first_def: dict[str, Equation] = {}
    pieces = [(line, start, end) for line in spec.equations for start, end in _segments(line.text, latex)
              if line.text[start:end].strip()]
    if latex:
        pieces = _continued(pieces)
    lines = [(line, tokenize(line, start, end, latex, spec.input.value)) for line, start, end in pieces]
    # what each equation defines, and the constants: a superscript naming one is a power, not a label
    variables = frozenset(tokens[0].value for _, tokens in lines if tokens and tokens[0].kind == "name")
    constants = frozenset(key.value for key, _ in spec.constants)
    variables |= constants
    declared = frozenset(a.symbol.value for a in spec.activations if a.symbol.value not in nodes.FUNCTIONS)
    scalars = frozenset(key.value for key, value in spec.sizes if value.value == "1") - variables
    for line, tokens in lines:
        eq = _Parser(line, tokens, counter, variables, constants, spec.row_vectors, declared, scalars).equation()
        if eq.target in first_def:
            raise SpecError(f"variable {eq.target!r} is defined twice "
                            f"(first on line {first_def[eq.target].line})", eq.span,
                            "define each variable once; rename one of them")
        first_def[eq.target] = eq
        out.append(eq)
        if len(out) > MAX_EQUATIONS:
            raise SpecError(f"the spec has more than {MAX_EQUATIONS} equations", eq.span,
                            "a cell is a few equations; is this the right file?")
    if not out:
        raise SpecError("`equations` holds no equation", spec.equations_span,
                        "write one `v_t = expression` per line")
    return tuple(_apart_from_written(out, counter.made))


def _apart_from_written(equations: list[Equation], made: list[sympy.Symbol]) -> list[Equation]:
    """A layer norm's own gain and bias (ln1_gain, ...) never merge with a parameter the spec
    writes under the same name: theirs gets a trailing underscore, which no written name has."""
    if not made:
        return equations
    written = {ref.name for eq in equations for ref in eq.refs}
    names = {}
    for symbol in made:
        name = nodes.local_hint(symbol)
        while name in written:
            name += "_"
        names[symbol] = sympy.Symbol(name)
    with sympy.core.parameters.evaluate(False):
        return [eq._replace(expr=eq.expr.xreplace(names)) for eq in equations]


class _LayerNormCounter:
    """Numbers layer norms in the order they are written: ln1_gain, ln1_bias, ln2_gain, ..."""

    def __init__(self):
        self.count = 0
        self.made: list[sympy.Symbol] = []

    def next(self) -> tuple[sympy.Symbol, sympy.Symbol]:
        self.count += 1
        pair = nodes.local(f"ln{self.count}_gain"), nodes.local(f"ln{self.count}_bias")  # named at the end
        self.made += pair
        return pair


def _segments(text: str, latex: bool) -> list[tuple[int, int]]:
    """(start, end) of each equation on a line, comments and LaTeX scaffolding removed.

    `#` starts a comment in both syntaxes (a LaTeX block may keep the plain spec's comments);
    `%` also in LaTeX."""
    starts = [i for i in (text.find("#"), text.find("%") if latex else -1) if i >= 0]
    end = min(starts) if starts else len(text)
    if not latex:
        return [(0, end)]
    stripped = text[:end].strip()
    if re.fullmatch(r"\\(begin|end)\{[^}]*\}(\{[^}]*\})?\s*|\$\$|\\\[|\\\]", stripped):  # `\begin{array}{ll}` too
        return []
    out, start = [], 0
    for match in re.finditer(r"\\\\(?:\s*\[[^\]]*\])?", text[:end]):  # `\\` or `\\[6pt]`
        out.append((start, match.start()))
        start = match.end()
    out.append((start, end))
    return [piece for a, b in out for piece in _separated(text, a, b)]


def _continued(pieces):
    """LaTeX equations continued over lines (`aligned`): in LaTeX an equation ends at `\\\\`, so
    a line whose last equation has no `\\\\` after it goes on in the next line unless that line
    starts an equation of its own (`v_t &= ...`). The pieces of one equation become one line."""
    out: list = []
    for line, start, end in pieces:
        if out:
            previous = out[-1][0]
            last_line = previous.parts[-1][0] if isinstance(previous, _JoinedLine) else previous
            open_end = not re.search(r"\\\\(?:\s*\[[^\]]*\])?\s*$", _uncommented(last_line.text))
            if (open_end and line is not last_line
                    and not _EQUATION_START.match(_SPACING.sub("", line.text[start:end]))):
                joined = _JoinedLine.join(out[-1], (line, start, end))
                out[-1] = (joined, 0, len(joined.text))
                continue
        out.append((line, start, end))
    return out


def _uncommented(text: str) -> str:
    starts = [i for i in (text.find("#"), text.find("%")) if i >= 0]
    return text[:min(starts)] if starts else text


class _JoinedLine:
    """Several pieces of lines read as one line of text; spans map back to where each piece is."""

    def __init__(self, parts):
        self.parts = parts  # (EquationLine, start, end, offset in self.text)
        self.text = " ".join(line.text[a:b] for line, a, b, _ in parts)
        first = parts[0][0]
        self.file, self.line, self.col, self.line_text = first.file, first.line, first.col, first.line_text

    @classmethod
    def join(cls, piece, more) -> "_JoinedLine":
        line, start, end = piece
        parts = list(line.parts) if isinstance(line, _JoinedLine) else [(line, start, end, 0)]
        offset = len(" ".join(l.text[a:b] for l, a, b, _ in parts)) + 1
        return cls(parts + [(more[0], more[1], more[2], offset)])

    def span(self, start: int, end: int | None = None) -> Span:
        for line, a, b, offset in reversed(self.parts):
            if start >= offset:
                local = a + start - offset
                local_end = None if end is None else min(a + end - offset, b)
                return line.span(local, local_end)
        return self.parts[0][0].span(start, end)


_SEPARATOR = re.compile(r"(?<!\\)[;,]|\\q?quad\b")


def _separated(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Several LaTeX equations on one line, `a_t = ..., \\quad h_t = ...`: cut at each `;`, `,`,
    `\\quad` or `\\qquad` that an equation of its own (`v_t =`) follows."""
    out = []
    for match in _SEPARATOR.finditer(text, start, end):
        if match.start() >= start and _EQUATION_START.match(_SPACING.sub("", text[match.end():end])):
            out.append((start, match.start()))
            start = match.end()
    out.append((start, end))
    return [(a, b) for a, b in out if _SPACING.sub("", text[a:b]).strip()]


_SPACING = re.compile(r"^(?:\s|[,;]|\\[,;:! ]|\\q?quad\b)*")


def tokenize(line: EquationLine, start: int, end: int, latex: bool, input_name: str) -> list[Token]:
    return _Tokenizer(line, start, end, latex, input_name).run()


class _Tokenizer:
    def __init__(self, line: EquationLine, start: int, end: int, latex: bool, input_name: str):
        self.line, self.text, self.pos, self.end = line, line.text, start, end
        self.latex, self.input_name = latex, input_name
        self.tokens: list[Token] = []
        self.braces = 0  # braces open after `^` in plain text

    def fail(self, message: str, start: int, end: int | None = None, hint: str = ""):
        raise SpecError(message, self.line.span(start, end), hint)

    def run(self) -> list[Token]:
        text = self.text
        while self.pos < self.end:
            ch = text[self.pos]
            if ch in " \t\r" or unicodedata.category(ch) == "Zs" or (self.latex and ch == "&"):
                self.pos += 1
            elif ch == "\\":
                self._command()
            elif "0" <= ch <= "9" or (ch == "." and self.pos + 1 < self.end and "0" <= text[self.pos + 1] <= "9"):
                m = _NUMBER.match(text, self.pos, self.end)
                self._emit("number", m.group(0), self.pos, m.end())
            elif ch.isalpha() and ch in UNICODE_OPS:
                self._emit("op", UNICODE_OPS[ch], self.pos, self.pos + 1)
            elif ch == "σ":
                self._emit("func", "sigmoid", self.pos, self.pos + 1)
            elif ch.isalpha():
                self._identifier()
            elif ch in UNICODE_OPS:
                self._emit("op", UNICODE_OPS[ch], self.pos, self.pos + 1)
            elif text.startswith("**", self.pos, self.end):
                self._emit("op", "^", self.pos, self.pos + 2)
            elif ch == "^":
                self._superscript(self.pos)
            elif ch == "|":
                self._emit("op", "|", self.pos, self.pos + 1)
            elif ch == "‖":
                self._emit("op", "‖", self.pos, self.pos + 1)
            elif ch in "+-*/@()=[],;":
                self._emit("op", {"[": "(", "]": ")"}.get(ch, ch), self.pos, self.pos + 1)
            elif self.latex and ch in "{}":
                self._emit("op", "(" if ch == "{" else ")", self.pos, self.pos + 1)
            elif ch == "{" and self.tokens and self.tokens[-1].value == "^":  # plain `a^{b}`
                self.braces += 1
                self._emit("op", "(", self.pos, self.pos + 1)
            elif ch == "}" and self.braces:
                self.braces -= 1
                self._emit("op", ")", self.pos, self.pos + 1)
            elif self.latex and ch == ".":  # `h_t = ... .`: the parser says what it is
                self._emit("op", ch, self.pos, self.pos + 1)
            else:
                self._odd_character(ch)
        self._count_operands()
        self.tokens.append(Token("end", "", self.end, self.end))
        return self.tokens

    def _odd_character(self, ch: str):
        """Every character that starts no token: say what it is and what to write instead."""
        pos = self.pos
        if ch in SUPERSCRIPT_DIGITS:  # `h²`: a power
            end = pos
            while end < self.end and self.text[end] in SUPERSCRIPT_DIGITS:
                end += 1
            written = self.text[pos:end]
            digits = written.lstrip("⁻⁺").translate(_SUPERSCRIPT_TO_ASCII)
            if not digits.isdigit() or any(c in "⁻⁺" for c in written.lstrip("⁻⁺")):
                self.fail(f"superscript {written!r} is not a number", pos, end,
                          "write the power with ^, e.g. h^2 or h^{n}")
            self._emit("op", "^", pos, pos)
            if written.startswith("⁻"):
                self._emit("op", "-", pos, pos + 1)
            self._emit("number", digits, pos, end)
            return
        if ch in PRIMES:
            self.fail(f"a prime {ch!r} must follow a name, before its subscripts", pos,
                      hint="write f'_t (the variable fprime), not f_t'")
        if ch == "$":
            self.fail("unexpected '$'", pos, hint="write the equations without the $ signs of LaTeX math mode")
        if ch == "_":
            self.fail("a name cannot start with '_'", pos,
                      hint="'_' starts a subscript; names start with a letter (h_t, W_f)")
        if ch.isdigit():  # a digit, but not an ASCII one
            ascii_digit = unicodedata.normalize("NFKC", ch)
            self.fail(f"digit {describe_char(ch)} is not an ASCII digit", pos,
                      hint=f"write {ascii_digit}" if ascii_digit.isascii() else "write numbers with the digits 0-9")
        if unicodedata.combining(ch):
            self.fail(f"accent {describe_char(ch)} without a letter before it", pos,
                      hint="put the accent right after its letter (h̃_t), or write it as a word (htilde_t)")
        category = unicodedata.category(ch)
        if ch.isspace() or category in ("Zl", "Zp"):
            self.fail(f"line break {describe_char(ch)} inside an equation", pos,
                      hint="write each equation on a line of its own")
        if category.startswith("C"):
            self.fail(f"invisible character {describe_char(ch)} in an equation", pos,
                      hint="delete it; it often comes along with text copied from a web page or a PDF")
        hint = "operators are + - * / @ ⊙ and brackets; `#` starts a comment"
        if self.latex:
            hint = "operators are + - * / \\odot \\cdot and brackets; `%` starts a comment"
        self.fail(f"unexpected character {describe_char(ch)}", pos, hint=hint)

    def _superscript(self, pos: int):
        """`^` that is not a prime: a transpose (`^T`, `^\\top`), else the operator `^`, whose right
        side the parser reads as a power or, holding names that are no variables, as a label."""
        transpose = _TRANSPOSE.match(self.text, pos, self.end)
        if transpose:
            self._emit("op", "^T", pos, transpose.end())
            return
        self._emit("op", "^", pos, pos + 1)

    def _count_operands(self):
        equals = next((i for i, tok in enumerate(self.tokens) if tok.kind == "op" and tok.value == "="), -1)
        operands = [tok for tok in self.tokens[equals + 1:] if tok.kind in ("name", "number")]
        if len(operands) > MAX_OPERANDS:
            tok = operands[MAX_OPERANDS]
            self.fail(f"the right side of this equation has more than {MAX_OPERANDS} names and numbers", tok.start, tok.end,
                      "split it: define intermediate variables (`a_t = ...`) and use them")

    def _emit(self, kind, value, start, end, **extra):
        self.tokens.append(Token(kind, value, start, end, **extra))
        self.pos = end

    # -- LaTeX commands -------------------------------------------------------------------
    def _command(self):
        text, start = self.text, self.pos
        m = re.compile(r"\\([A-Za-z]+|.)").match(text, start, self.end)
        if not m:
            self.fail("a lone backslash", start, hint="a backslash starts a LaTeX command such as \\sigma; remove it")
        word, after = m.group(1), m.end()
        if not self.latex:
            self.fail(f"unexpected LaTeX command '\\{word}'", start, after)
        if word in LATEX_SPACES or word in LATEX_IGNORED:
            self.pos = after
            if word in ("left", "right") and text.startswith(".", after, self.end):  # `\right.`: no bracket
                self.pos += 1
        elif word == "tag":
            self.pos = self._skip_group(after, start)
        elif word == "sqrt" and text[after:self.end].lstrip().startswith("["):
            self.fail("an n-th root `\\sqrt[n]{a}` is not read", start, after, "write it as a power: a^{1/n}")
        elif word in LATEX_FUNCTIONS:
            self._emit("func", LATEX_FUNCTIONS[word], start, after)
        elif word in LATEX_BRACES:
            self._emit("op", LATEX_BRACES[word], start, after)
        elif word in LATEX_BARS:
            self._emit("op", "|", start, after)
        elif word in LATEX_NORM_BARS:
            self._emit("op", "‖", start, after)
        elif word in LATEX_ELEMENTWISE:
            self._emit("op", "odot", start, after)
        elif word in LATEX_MATMUL:
            self._emit("op", "@", start, after)
        elif word in LATEX_ACCENTS or word in LATEX_FONTS:
            inner_start, inner_end, close = self._group(after, start)
            inner = text[inner_start:inner_end].strip()
            if word in LATEX_ACCENTS:
                font = re.fullmatch(r"\\(" + "|".join(LATEX_FONTS) + r")\s*\{\s*([A-Za-z]+)\s*\}", inner)
                if font:  # `\tilde{\mathbf{h}}`: the font does not change the name
                    inner = font.group(2)
                if not inner.isalpha():
                    self.fail(f"'\\{word}' expects a letter", start, close,
                              f"write \\{word}{{h}}, with one letter or name in the braces")
                base = inner + LATEX_ACCENTS[word]
            else:
                base = inner.replace(" ", "")
                if base.startswith("\\") and base[1:] in GREEK:  # `\boldsymbol{\alpha}`: the letter alpha
                    base = base[1:]
                if base.lower() in nodes.FUNCTIONS and base not in nodes.ALIASES and len(base) > 1:
                    base = base.lower()  # `\mathrm{ReLU}`, `\operatorname{Tanh}`: a function's name in any case
                if base in nodes.FUNCTIONS or base in nodes.ALIASES or base.lower() == "diag":
                    self._emit("func", "diag" if base.lower() == "diag" else nodes.ALIASES.get(base, base), start, close)
                    return
                if base.lower() in FUNCTIONS_NOT_YET:
                    raise not_yet(base.lower(), self.line.span(start, close))
                if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", base):
                    self.fail(f"'\\{word}{{...}}' must hold a name", start, close,
                              f"write a name or a function in the braces, e.g. \\{word}{{W}} or \\mathrm{{relu}}")
            self.pos = close
            self._subscripts(base, start)
        elif word in GREEK:
            self.pos = after
            self._subscripts(word, start)
        elif word in LATEX_NOT_YET:
            raise not_yet(LATEX_NOT_YET[word], self.line.span(start, after))
        elif word == "prime":
            self.fail("a prime must follow a name, before its subscripts", start, after,
                      "write f^{\\prime}_t or f'_t (the variable fprime)")
        else:
            if word in nodes.FUNCTIONS or word in nodes.ALIASES or word in FUNCTIONS_NOT_YET:
                hint = f"write \\mathrm{{{word}}}(...)"
                if nodes.ALIASES.get(word) == "sigmoid" or word == "sigmoid":
                    hint = "write \\sigma(...) or \\mathrm{sigmoid}(...)"
            elif word in ("begin", "end"):
                hint = "put \\begin{...} and \\end{...} on lines of their own"
            else:
                hint = (did_you_mean(word, [*LATEX_FUNCTIONS, *LATEX_ELEMENTWISE, *LATEX_MATMUL, *LATEX_ACCENTS,
                                            *LATEX_FONTS, *GREEK, "left", "right", "tag"])
                        or "write this part with + - * / and named functions, e.g. \\mathrm{relu}(...)")
            self.fail(f"unknown LaTeX command '\\{word}'", start, after, hint)

    def _group(self, pos: int, command_start: int) -> tuple[int, int, int]:
        """(inner start, inner end, position after '}') of a `{...}` group, or one character."""
        while pos < self.end and self.text[pos] == " ":
            pos += 1
        if pos >= self.end:
            self.fail("a LaTeX command is missing its argument", command_start, pos,
                      f"write its argument in braces, e.g. {self.text[command_start:pos].strip()}{{h}}")
        if self.text[pos] != "{":
            return pos, pos + 1, pos + 1
        depth = 0
        for i in range(pos, self.end):
            depth += {"{": 1, "}": -1}.get(self.text[i], 0)
            if depth == 0:
                return pos + 1, i, i + 1
        self.fail("unclosed '{'", pos, hint="close every '{' with '}'")

    def _skip_group(self, pos: int, command_start: int) -> int:
        return self._group(pos, command_start)[2]

    # -- names ----------------------------------------------------------------------------
    def _identifier(self):
        text, start = self.text, self.pos
        greek = _GREEK_LETTERS.get(text[start])
        if greek:  # `α_t` is alpha_t, as `\alpha_t` is; in plain text `α2` is alpha2
            self.pos = start + 1
            if not self.latex:
                more = re.compile(r"[A-Za-z0-9]*").match(text, self.pos, self.end)
                greek, self.pos = greek + more.group(0), more.end()
            self._subscripts(greek, start)
            return
        pos = start
        while pos < self.end and (text[pos].isalnum() and text[pos].isascii() or _is_accent(text[pos])):
            pos += 1
        if pos == start:  # a non-ASCII letter such as ĥ: decompose it
            pos += 1
            while pos < self.end and _is_accent(text[pos]):
                pos += 1
        run = text[start:pos]
        if self.latex:
            letters = re.match(r"[A-Za-z]+", run)
            word = letters.group(0) if letters else run
            if word in nodes.FUNCTIONS or word in nodes.ALIASES or word in LATEX_FUNCTIONS:
                self._emit("func", nodes.ALIASES.get(word, LATEX_FUNCTIONS.get(word, word)), start, start + len(word))
                return
            follows_bracket = text[start + len(word):self.end].lstrip().startswith("(")
            if len(word) >= 3 and follows_bracket:  # `sigmod(`: report the word, not its letters
                self.pos = start + len(word)
                self._subscripts(word, start)
                return
            # LaTeX juxtaposes one-letter symbols: `W_fx_t` is W_f x_t.
            self.pos = start + 1
            base = _accent_name(text[start])
            while self.pos < self.end and _is_accent(text[self.pos]):
                self.pos += 1
                base = _accent_name(text[start:self.pos])
            self._subscripts(base, start)
            return
        self.pos = pos
        self._subscripts(_accent_name(run), start)

    def _primes(self) -> str:
        """Primes right after a name (`f'`, `f''`, `f′`, LaTeX `f^{\prime}`): 'prime' once for each."""
        text, count = self.text, 0
        while self.pos < self.end:
            if text[self.pos] in PRIMES:
                count += PRIMES[text[self.pos]]
                self.pos += 1
                continue
            m = _LATEX_PRIME.match(text, self.pos, self.end) if self.latex else None
            if not m:
                break
            count += m.group(1).count("\\prime") if m.group(1) else 1
            self.pos = m.end()
        return "prime" * count

    def _subscripts(self, base: str, start: int):
        """Read `_x`, `_{xy}` or `_xy` parts after a name; the last may be a time index."""
        text = self.text
        base += self._primes()
        parts: list[tuple[str, int, int]] = []
        while self.pos < self.end and text[self.pos] == "_":
            pos = self.pos + 1
            if pos < self.end and text[pos] == "{":
                close = text.find("}", pos, self.end)
                inner = text[pos + 1:close] if close >= 0 else ""
                if self.latex:  # `W_{\alpha}`: a Greek letter in a subscript is its name
                    inner = _LATEX_GREEK.sub(lambda m: m.group(1), inner).replace(" ", "")
                if close < 0 or re.search(r"[(){}\[\]\\=]", inner):
                    self.fail("unclosed '{' in a subscript", pos, hint="close it with '}', e.g. W_{xf} or h_{t-1}")
                parts.append((inner.strip(), pos, close + 1))
                self.pos = close + 1
            else:
                greek = _LATEX_GREEK.match(text, pos, self.end) if self.latex else None
                if greek:  # `W_\alpha`: a Greek letter as the subscript
                    parts.append((greek.group(1), pos, greek.end()))
                    self.pos = greek.end()
                    continue
                m = re.compile(r"[A-Za-z0-9]" if self.latex else r"[A-Za-z0-9]+").match(text, pos, self.end)
                if not m:
                    self.fail("a subscript is missing after '_'", self.pos,
                              hint="write a name or a time index after '_', e.g. W_f, h_t or h_{t-1}")
                parts.append((m.group(0), pos, m.end()))
                self.pos = m.end()
        time = time_span = None
        if parts:
            index = _time_index(parts[-1][0])
            if index is not None:
                time, (_, t0, t1) = index, parts.pop()
                time_span = (t0, t1)
                if time not in (TIME_NOW, TIME_PREV):
                    hint = "a step reads t (now) and t-1 (the previous step) only"
                    if time < TIME_PREV:
                        var = "_".join([base, *(p for p, _, _ in parts)])
                        hint += (f"; keep older values in states: `{var}1_t = {var}_{{t-1}}` makes "
                                 f"{var}1_{{t-1}} the value at t-2")
                    self.fail(f"time index {_show_index(time)} is not supported", t0, t1, hint)
        for part, p0, p1 in parts:
            if not re.fullmatch(r"[A-Za-z0-9]+", part):
                self.fail(f"subscript '{part}' is not a plain name", p0, p1,
                          "subscripts are letters and digits, e.g. W_{xf}")
        name = "_".join([base, *(p for p, _, _ in parts)])
        argument = _TIME_ARGUMENT.match(text, self.pos, self.end)
        if time is None and argument and name not in nodes.FUNCTIONS and name not in nodes.ALIASES:
            # `h(t)`, `h(t-1)`, `h(t{-}1)`: the time written as an argument
            index = re.sub(r"[\s{}()]", "", argument.group(0))
            time, time_span = _time_index(index), (argument.start(), argument.end())
            self.pos = argument.end()
            if time not in (TIME_NOW, TIME_PREV):
                self.fail(f"time index {_show_index(time)} is not supported", *time_span,
                          "a step reads t (now) and t-1 (the previous step) only")
        self.tokens.append(Token("name", name, start, self.pos, time, time_span))


def _time_index(sub: str) -> int | None:
    sub = sub.replace("−", "-").replace(" ", "")
    m = _TIME.match(sub)
    if not m:
        return None
    if m.group(3):
        return (-1 if m.group(3) == "m" else 1) * int(m.group(4))
    if m.group(1):
        return (-1 if m.group(1) in "-−" else 1) * int(m.group(2))
    return TIME_NOW


def _show_index(time: int) -> str:
    return "t" if time == 0 else f"t{time:+d}"


def _is_accent(ch: str) -> bool:
    return ch in ACCENTS or unicodedata.combining(ch) > 0


def _accent_name(run: str) -> str:
    """`h̃` (h + combining tilde) and `ĥ` -> htilde, hhat; ASCII is returned as is."""
    if run.isascii():
        return run
    out = []
    for ch in unicodedata.normalize("NFD", run):
        out.append(ACCENTS.get(ch, ch) if _is_accent(ch) else ch)
    return "".join(out)


class _Parser:
    """Precedence climbing, one method per level (jinja's parser style)."""

    def __init__(self, line: EquationLine, tokens: list[Token], counter: _LayerNormCounter,
                 variables: frozenset[str] = frozenset(), constants: frozenset[str] = frozenset(),
                 row_vectors: bool = False, declared: frozenset[str] = frozenset(),
                 scalars: frozenset[str] = frozenset()):
        self.line, self.tokens, self.i, self.counter = line, tokens, 0, counter
        self.declared = declared  # functions the spec's `activations:` name (placeholders of the paper)
        self.scalars = scalars    # parameters `sizes:` makes one learned number (`sizes: {alpha: 1}`)
        self.variables, self.constants, self.row_vectors = variables, constants, row_vectors
        self.refs: list[Ref] = []
        self.spans: dict[sympy.Expr, Span] = {}
        self.open: list[Token] = []
        self.depth = 0     # levels open where the parser stands (MAX_DEPTH)
        self.deepest = 0   # the deepest level reached in the product being read

    @property
    def current(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, message: str, tok: Token, hint: str = ""):
        raise SpecError(message, self.line.span(tok.start, tok.end), hint)

    def is_op(self, *values: str) -> bool:
        return self.current.kind == "op" and self.current.value in values

    def equation(self) -> Equation:
        first = self.current
        shape_hint = "each line is `v_t = expression`, e.g. h_t = tanh(W x_t + U h_{t-1} + b)"
        if first.kind == "name" and first.time is None and self.tokens[1].kind == "op" and self.tokens[1].value == "=":
            self.fail(f"the left side '{self._text(first)}' has no time index", first,
                      f"a variable is defined at step t: write {self._text(first)}_t = ...")
        if first.kind == "name" and first.time is None:
            run = [first]  # LaTeX letters side by side: `fprime_t` is f p r i m e_t
            while self.tokens[len(run)].kind == "name" and self.tokens[len(run)].start == run[-1].end:
                run.append(self.tokens[len(run)])
            if len(run) > 1 and run[-1].time is not None:
                written = self.line.text[first.start:run[-1].end]
                name = self.line.text[first.start:run[-1].time_span[0] - 1]
                raise SpecError(f"in LaTeX, letters side by side are separate symbols: {written} is not one name",
                                self.line.span(first.start, run[-1].end),
                                f"write a name of several letters as \\mathrm{{{name}}}_t")
        if first.kind != "name" or first.time is None:
            self.fail("expected an equation `v_t = expression`", first, shape_hint)
        if first.time != TIME_NOW:
            self.fail(f"the left side must be a variable at step t, got '{self._text(first)}'", first,
                      f"an equation defines the value at step t: write {first.value}_t = ...")
        self.advance()
        if not self.is_op("="):
            self.fail(f"expected '=' after {self._text(first)}", self.current, shape_hint)
        self.advance()
        if self.current.kind == "end":
            self.fail("expected an expression after '='", self.current, shape_hint)
        expr = self.sum()
        if self.is_op(")"):
            self.fail("unmatched ')'", self.current, "remove it or open a bracket before it")
        if self.current.kind != "end":
            self._after_expression()
        span = self.line.span(first.start, first.end)
        start = self.tokens[0].start
        return Equation(first.value, expr, self.line.text[start:self.tokens[-1].end].strip(),
                        span, tuple(self.refs), self.line.line, self.spans)

    def _after_expression(self):
        """The equation's expression is complete, but something follows it."""
        tok = self.current
        rest = self.line.text[tok.end:]
        latex = is_latex((self.line,)) or any(t.kind == "op" and t.value == "." for t in self.tokens)
        if tok.kind == "op" and tok.value in ",;.=":
            another = tok.value == "=" or _EQUATION_START.match(rest)
            if latex and tok.value in ",." and self.tokens[self.i + 1].kind == "end":
                return  # `h_t = ... ,` as a paper ends an equation: the punctuation is not math
            if tok.value == "=":
                self.fail("a second '=' in one equation", tok, "write one equation per line")
            self.fail(f"unexpected '{tok.value}'", tok, "write one equation per line" if another else
                      "operators are + - * / @ and brackets; a function takes one argument")
        self.fail(f"unexpected '{self._text(tok)}'", tok, "an operator is missing between two terms?")

    def _deeper(self, tok: Token):
        """Open one more level at `tok` (a bracket, a call, a chained product); see MAX_DEPTH."""
        self.depth += 1
        self.deepest = max(self.deepest, self.depth)
        if self.depth > MAX_DEPTH:
            self._too_deep(tok)

    def _too_deep(self, tok: Token):
        self.fail(f"this expression nests more than {MAX_DEPTH} levels deep", tok,
                  "brackets, function calls, divisions in a row and products in a row each add a level; "
                  "define intermediate variables (`a_t = ...`) for the inner parts")

    def sum(self) -> sympy.Expr:
        terms = [self.product_term()]
        while self.is_op("+", "-"):
            op = self.advance()
            self._operand_follows(op)
            term = self.product_term()
            terms.append(term if op.value == "+" else nodes.neg(term))
        return nodes.add(*terms)

    def product_term(self) -> sympy.Expr:
        negative = False
        while self.is_op("-", "+"):
            op = self.advance()
            self._operand_follows(op)
            negative ^= op.value == "-"
        entry, outer_deepest = self.depth, self.deepest
        self.deepest = entry
        factors = [self.matrix_product()]
        while self.is_op("*", "odot", "/"):
            op = self.advance()
            self._operand_follows(op)
            if op.value == "/":  # `a / b / c` nests: the product read so far moves one level down
                self.deepest += 1
                if self.deepest > MAX_DEPTH:
                    self._too_deep(op)
                self.depth = entry + 1  # and the divisor stands one level down
            right = self.matrix_product()
            self.depth = entry
            if op.value == "/":
                factors = [nodes.div(nodes.mul(*factors), right)]
            else:
                factors.append(right)
        self.deepest = max(outer_deepest, self.deepest)
        expr = nodes.mul(*factors)
        return nodes.neg(expr) if negative else expr

    def matrix_product(self, link: int = 0) -> sympy.Expr:
        left_tok = self.current
        left = self.power()
        explicit = self.is_op("@")
        juxtaposed = self._starts_primary(self.current)
        if not (explicit or juxtaposed):
            return left
        if juxtaposed and (left_tok.kind == "number" or not (left.free_symbols or left.has(nodes.Eye))):
            return nodes.mul(left, self._chained(self.current, link + 1))  # `2 x`, `\frac{1}{2} S_t`
        if juxtaposed and left_tok.kind == "name" and left_tok.time is not None and self.is_op("("):
            right = self._chained(self.current, link + 1)  # `a_t(U h_{t-1} + 1)`, `S_{t-1} (I - ...)`
            return self._spanned(nodes.BracketTimes(left, right), left_tok)
        if explicit:
            op = self.advance()
            self._operand_follows(op)
        right_tok = self.current
        right = self._chained(self.current, link + 1)
        if (self.row_vectors and right_tok.kind == "name" and right_tok.time is None and type(right) is sympy.Symbol
                and right.name not in self.variables and not (left_tok.kind == "name" and left_tok.time is None
                                                               and type(left) is sympy.Symbol)):
            return nodes.RowMatVec(right, left)  # `x_t W_q`: a row vector times a weight matrix
        if left_tok.kind == "name" and left_tok.time is None and type(left) is sympy.Symbol:
            if left.name in self.constants or left.name in self.scalars:
                return nodes.mul(left, right)  # `a^{c r_t}`, `\alpha s_{t-1}`: a number scales what follows
            return nodes.matmul(left, right)  # a parameter: a weight matrix
        return self._spanned(nodes.Times(left, right), left_tok)  # `C_t q_t`, `v_t k_t^T`: by shapes

    def _spanned(self, node: sympy.Expr, first: Token) -> sympy.Expr:
        """`node`, remembering where it is written (from `first` to the last token read)."""
        self.spans.setdefault(node, self.line.span(first.start, self.tokens[self.i - 1].end))
        return node

    def _chained(self, tok: Token, link: int) -> sympy.Expr:
        """The right factor of a product; from the second product in a row (`A B x_t`: `B x_t` is
        inside `A`'s) one level down."""
        level = 1 if link >= 2 else 0
        if level:
            self._deeper(tok)
        right = self.matrix_product(link)
        self.depth -= level
        return right

    def _starts_primary(self, tok: Token) -> bool:
        return tok.kind in ("name", "func", "number") or (tok.kind == "op" and tok.value == "(")

    def _operand_follows(self, op: Token):
        if not (self._starts_primary(self.current) or self.is_op("+", "-", "|", "‖")):
            self.fail(f"expected an operand after '{self._text(op)}'", op, "an operator is dangling here")

    def power(self) -> sympy.Expr:
        """`a^b`, `a ** b` (right to left: a^b^c is a^(b^c)); `e^{x}` is exp(x); a superscript of
        names that are not variables is a label that joins the name (`W^{f}` is W_f)."""
        base_tok = self.current
        if base_tok.kind == "name" and base_tok.time is None and self._label_follows():
            return self._labelled(base_tok)
        base = self.primary()
        while self.is_op("^T"):  # `k_t^T`, `(a + b)^\top`
            self.advance()
            base = self._spanned(nodes.Transposed(base), base_tok)
        if not self.is_op("^"):
            return base
        op = self.advance()
        self._operand_follows(op)
        self._deeper(op)
        negative = False
        while self.is_op("-", "+"):
            negative ^= self.advance().value == "-"
            self._operand_follows(op)
        exponent = self.power()
        self.depth -= 1
        if negative:
            exponent = nodes.neg(exponent)
        if base_tok.kind == "name" and base_tok.value == "e" and base_tok.time is None and base == sympy.Symbol("e"):
            self.refs.pop()  # Euler's number, not a parameter
            return nodes.call("exp", exponent)
        return sympy.Pow(base, exponent, evaluate=False)

    def _label_follows(self) -> bool:
        """`W^{f}`, `U^{(z)}`, `W^f`, `b^{z}`: the superscript holds names without a time index only,
        none a constant, or the name is a matrix (a product follows: `W^{(h)} x_t`)."""
        i = self.i + 1
        if not (self.tokens[i].kind == "op" and self.tokens[i].value == "^" and self.tokens[i].end - self.tokens[i].start == 1):
            return False
        names, depth, j = [], 0, i + 1
        while True:
            tok = self.tokens[j]
            if tok.kind == "op" and tok.value == "(":
                depth += 1
            elif tok.kind == "op" and tok.value == ")":
                depth -= 1
                if depth < 0:
                    return False
            elif tok.kind == "name" and tok.time is None:
                names.append(tok)
            else:
                return False
            j += 1
            if depth == 0:
                break
        matrix = self._starts_primary(self.tokens[j]) or (self.tokens[j].kind == "op" and self.tokens[j].value == "@")
        # a variable in a power carries its time index (`c^{a_t}`): bare names are labels, even a
        # variable's name (`b_{ih}^{z}` next to z_t, as library docs label a gate's bias), but not a constant
        return bool(names) and (matrix or not any(t.value in self.constants for t in names))

    def _labelled(self, base_tok: Token) -> sympy.Expr:
        """The name with its label joined: W_{ih}^{f} is the parameter W_ih_f."""
        self.advance()
        self.advance()  # ^
        labels, depth = [], 0
        while True:
            tok = self.advance()
            if tok.kind == "op":
                depth += 1 if tok.value == "(" else -1
            else:
                labels.append(tok.value)
            if depth == 0:
                break
        end = self.tokens[self.i - 1].end
        merged = Token("name", "_".join([base_tok.value, *labels]), base_tok.start, end)
        self.tokens[self.i - 1] = merged
        self.i -= 1
        return self.primary()

    def primary(self) -> sympy.Expr:
        tok = self.current
        if tok.kind == "number":
            self.advance()
            if math.isinf(float(tok.value)):
                shown = tok.value if len(tok.value) <= 24 else f"{tok.value[:12]}... ({len(tok.value)} characters)"
                self.fail(f"number {shown} is too large", tok,
                          "numbers must fit a 64-bit float, up to about 1.8e308")
            return sympy.Integer(tok.value) if tok.value.isdigit() else sympy.Float(tok.value)
        if tok.kind == "func":
            self.advance()
            if tok.value == "frac":
                numerator = self._bracketed(tok, call=True)
                return nodes.div(numerator, self._bracketed(tok, call=True))
            return self._call(tok.value, tok)
        if self.is_op("|"):
            opener = self.advance()
            self._operand_follows(opener)
            self._deeper(opener)
            inner = self.sum()
            self.depth -= 1
            if not self.is_op("|"):
                self.fail("unclosed '|'", opener, "close the absolute value with a second '|'")
            self.advance()
            return nodes.call("abs", inner)
        if self.is_op("‖"):  # `\|a\|`: the Euclidean norm
            opener = self.advance()
            self._operand_follows(opener)
            self._deeper(opener)
            inner = self.sum()
            self.depth -= 1
            if not self.is_op("‖"):
                self.fail("unclosed norm", opener, "close the norm with a second \\| (or \\rVert)")
            self.advance()
            return self._spanned(nodes.Norm(inner), opener)
        if tok.kind == "name":
            self.advance()
            if tok.value == "I" and tok.time is None:  # the identity matrix
                return self._spanned(nodes.Eye(), tok)
            if self.is_op("(") and tok.time is None:
                if tok.value in FUNCTIONS_NOT_YET:
                    raise not_yet(tok.value, self._span(tok))
                if tok.value == "diag":
                    return self._spanned(nodes.Diag(self._bracketed(tok, call=True)), tok)
                if tok.value in self.declared:  # a function the spec declares in `activations:` (\phi)
                    return self._call(tok.value, tok)
                if tok.value in nodes.FUNCTIONS or tok.value in nodes.ALIASES:
                    return self._call(nodes.ALIASES.get(tok.value, tok.value), tok)
                if not tok.value[0].isupper():
                    self.fail(f"unknown function {tok.value!r}", tok, self._unknown_function_hint(tok))
                self.refs.append(Ref(tok.value, None, self._span(tok)))
                return nodes.matmul(sympy.Symbol(tok.value), self._bracketed(tok))
            self.refs.append(Ref(tok.value, tok.time, self._span(tok)))
            return nodes.prev(tok.value) if tok.time == TIME_PREV else sympy.Symbol(tok.value)
        if self.is_op("("):
            return self._bracketed(tok)
        if tok.kind == "end":
            prev = self.tokens[self.i - 1]
            self.fail(f"expected an operand after '{self._text(prev)}'", prev, "an operator is dangling here")
        if self.is_op("-", "+") and self.i > 0 and self.tokens[self.i - 1].kind == "op":
            before = self._text(self.tokens[self.i - 1])
            self.fail(f"a sign right after '{before}'", tok,
                      f"put a negative factor in brackets: a {before} (-b)")
        self.fail(f"unexpected '{self._text(tok)}'", tok, "expected a name, a number or '('")

    def _unknown_function_hint(self, tok: Token) -> str:
        """A lowercase name before a bracket: the close function, or the list of them."""
        close = did_you_mean(tok.value, KNOWN_FUNCTIONS)
        if close:
            return close
        hint = f"functions: {', '.join(nodes.FUNCTIONS)}"
        if len(tok.value.split("_")[0]) == 1:  # `w(...)`, `w_f(...)`: perhaps a matrix after all
            hint += f"; if {tok.value} is a matrix, write {tok.value} @ (...)"
        return hint

    def _bracketed(self, before: Token, call: bool = False) -> sympy.Expr:
        if not self.is_op("("):
            self.fail(f"expected '(' after '{self._text(before)}'", self.current)
        opener = self.advance()
        if self.is_op(")"):
            self.fail("empty brackets", opener, f"write the argument of {self._text(before)} between them"
                      if call else "write an expression between them, or remove them")
        self._deeper(opener)
        inner = self.sum()
        self.depth -= 1
        if not self.is_op(")"):
            if self.current.kind == "end":
                self.fail("unclosed bracket", opener, "close it with ')'")
            if call and self.is_op(","):
                self.fail(f"'{self._text(before)}' takes one argument", self.current,
                          "remove the ',' and what follows it up to the closing bracket")
            if self.is_op(","):
                self.fail("unexpected ',' inside brackets", self.current, "a bracket holds one expression")
            self.fail(f"expected ')', got '{self._text(self.current)}'", self.current,
                      f"the bracket opened at column {self.line.col + opener.start} is still open")
        self.advance()
        return inner

    def _call(self, name: str, tok: Token) -> sympy.Expr:
        if self.current.kind == "func" and nodes.FUNCTIONS.get(name, 1) == 1 and name not in ("layer_norm", "diag"):
            inner = self.advance()  # `\log \sigma(a)`: a function of a function's value, as papers write it
            value = self._call(inner.value, inner)
            if name == "log" and nodes.function_name(value) == "sigmoid":
                return nodes.call("logsigmoid", *value.args)  # the same number, without underflow
            return nodes.call(name, value)
        if not self.is_op("("):
            self.fail(f"function '{self._text(tok)}' needs its argument in brackets", tok,
                      f"write {self._text(tok)}(...)")
        if name == "diag":
            return self._spanned(nodes.Diag(self._bracketed(tok, call=True)), tok)
        if name == "layer_norm":
            gain, bias = self.counter.next()
            return nodes.call(name, self._bracketed(tok, call=True), gain, bias)
        if nodes.FUNCTIONS.get(name, 1) == 1:
            return nodes.call(name, self._bracketed(tok, call=True))
        return nodes.call(name, *self._arguments(tok, nodes.FUNCTIONS[name]))

    def _arguments(self, before: Token, count: int) -> list[sympy.Expr]:
        """`(a, b)`: exactly `count` expressions separated by commas."""
        opener = self.advance()
        self._deeper(opener)
        args = []
        while True:
            if self.is_op(")", ",") or self.current.kind == "end":
                self.fail(f"'{self._text(before)}' takes {count} arguments", self.current,
                          f"write {self._text(before)}(a, b)")
            args.append(self.sum())
            if self.is_op(",") and len(args) < count:
                self.advance()
                continue
            break
        self.depth -= 1
        if not self.is_op(")"):
            if self.current.kind == "end":
                self.fail("unclosed bracket", opener, "close it with ')'")
            if self.is_op(","):
                self.fail(f"'{self._text(before)}' takes {count} arguments", self.current,
                          "remove the ',' and what follows it up to the closing bracket")
            self.fail(f"expected ')', got '{self._text(self.current)}'", self.current,
                      f"the bracket opened at column {self.line.col + opener.start} is still open")
        if len(args) < count:
            self.fail(f"'{self._text(before)}' takes {count} arguments", self.current,
                      f"write {self._text(before)}(a, b)")
        self.advance()
        return args

    def _span(self, tok: Token) -> Span:
        return self.line.span(tok.start, tok.end)

    def _text(self, tok: Token) -> str:
        return self.line.text[tok.start:tok.end] if tok.kind != "end" else "end of line"
