"""Stage 2, parse: equation text (plain or LaTeX) -> sympy expressions, with positions.

A hand-written tokenizer and precedence parser; spec text never reaches eval, exec,
sympify or parse_expr. Only syntax is checked here; meaning (states, parameters, sizes)
is the analyzer's job, helped by the `Ref` positions recorded for every name."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import sympy

from . import nodes
from .errors import Span, SpecError, did_you_mean
from .spec import EquationLine, Spec

TIME_NOW, TIME_PREV = 0, -1
ACCENTS = {"\u0303": "tilde", "\u0302": "hat", "\u0304": "bar", "\u0305": "bar"}
LATEX_ACCENTS = {"tilde": "tilde", "widetilde": "tilde", "hat": "hat", "widehat": "hat",
                 "bar": "bar", "overline": "bar"}
LATEX_FONTS = {"mathbf", "boldsymbol", "bm", "mathit", "mathrm", "mathsf", "mathcal", "vec",
               "text", "textrm", "textit", "textbf", "operatorname", "mathtt"}
LATEX_FUNCTIONS = {"sigma": "sigmoid", "tanh": "tanh", "exp": "exp", "log": "log", "ln": "log"}
LATEX_ELEMENTWISE = {"otimes", "odot", "circ"}
LATEX_MATMUL = {"cdot"}
LATEX_IGNORED = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
                 "quad", "qquad", "displaystyle", "nonumber", "notag"}
LATEX_SPACES = {",", ";", ":", "!", " "}
GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "pi", "rho", "tau", "upsilon", "phi", "chi", "psi", "omega",
         "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Phi", "Psi", "Omega", "varphi", "varepsilon"}
UNICODE_OPS = {"⊙": "odot", "⊗": "odot", "∘": "odot", "·": "@", "⋅": "@", "−": "-", "×": "odot"}
KNOWN_FUNCTIONS = tuple(nodes.FUNCTIONS) + tuple(nodes.ALIASES)
_NUMBER = re.compile(r"(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")
_TIME = re.compile(r"^t(?:\s*([-+−])\s*(\d+))?$|^t([mp])(\d+)$")


@dataclass(frozen=True, slots=True)
class Ref:
    """One name as written: `name` with braces dropped, its time index (None for parameters)."""

    name: str
    time: int | None
    span: Span


@dataclass(frozen=True, slots=True)
class Equation:
    target: str
    expr: sympy.Expr
    text: str          # the equation as the user wrote it, for the generated comment
    span: Span         # the target's position
    refs: tuple[Ref, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Token:
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
    for line in spec.equations:
        for start, end in _segments(line.text, latex):
            text = line.text[start:end]
            if not text.strip():
                continue
            tokens = tokenize(line, start, end, latex, spec.input.value)
            eq = _Parser(line, tokens, counter).equation()
            if eq.target in first_def:
                raise SpecError(f"variable {eq.target!r} is defined twice "
                                f"(first on line {first_def[eq.target].line})", eq.span,
                                "define each variable once; rename one of them")
            first_def[eq.target] = eq
            out.append(eq)
    if not out:
        raise SpecError("`equations` holds no equation", spec.equations_span,
                        "write one `v_t = expression` per line")
    return tuple(out)


class _LayerNormCounter:
    """Numbers layer norms in the order they are written: ln1_gain, ln1_bias, ln2_gain, ..."""

    def __init__(self):
        self.count = 0

    def next(self) -> tuple[sympy.Symbol, sympy.Symbol]:
        self.count += 1
        return sympy.Symbol(f"ln{self.count}_gain"), sympy.Symbol(f"ln{self.count}_bias")


def _segments(text: str, latex: bool) -> list[tuple[int, int]]:
    """(start, end) of each equation on a line, comments and LaTeX scaffolding removed."""
    comment = text.find("%" if latex else "#")
    end = len(text) if comment < 0 else comment
    if not latex:
        return [(0, end)]
    stripped = text[:end].strip()
    if re.fullmatch(r"\\(begin|end)\{[^}]*\}\s*|\$\$|\\\[|\\\]", stripped):
        return []
    out, start = [], 0
    for match in re.finditer(r"\\\\", text[:end]):
        out.append((start, match.start()))
        start = match.end()
    out.append((start, end))
    return out


def tokenize(line: EquationLine, start: int, end: int, latex: bool, input_name: str) -> list[Token]:
    return _Tokenizer(line, start, end, latex, input_name).run()


class _Tokenizer:
    def __init__(self, line: EquationLine, start: int, end: int, latex: bool, input_name: str):
        self.line, self.text, self.pos, self.end = line, line.text, start, end
        self.latex, self.input_name = latex, input_name
        self.tokens: list[Token] = []

    def fail(self, message: str, start: int, end: int | None = None, hint: str = ""):
        raise SpecError(message, self.line.span(start, end), hint)

    def run(self) -> list[Token]:
        text = self.text
        while self.pos < self.end:
            ch = text[self.pos]
            if ch.isspace() or (self.latex and ch == "&"):
                self.pos += 1
            elif ch == "\\":
                self._command()
            elif ch.isdigit() or (ch == "." and self.pos + 1 < self.end and text[self.pos + 1].isdigit()):
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
            elif ch in "+-*/@()=[]":
                self._emit("op", {"[": "(", "]": ")"}.get(ch, ch), self.pos, self.pos + 1)
            elif self.latex and ch in "{}":
                self._emit("op", "(" if ch == "{" else ")", self.pos, self.pos + 1)
            elif ch in "^":
                self.fail("powers are not supported", self.pos, hint="write the product out, e.g. h_t * h_t")
            else:
                self.fail(f"unexpected character {ch!r}", self.pos,
                          hint="operators are + - * / @ ⊙ and brackets; `#` starts a comment")
        self.tokens.append(Token("end", "", self.end, self.end))
        return self.tokens

    def _emit(self, kind, value, start, end, **extra):
        self.tokens.append(Token(kind, value, start, end, **extra))
        self.pos = end

    # -- LaTeX commands -------------------------------------------------------------------
    def _command(self):
        text, start = self.text, self.pos
        m = re.compile(r"\\([A-Za-z]+|.)").match(text, start, self.end)
        if not m:
            self.fail("a lone backslash", start)
        word, after = m.group(1), m.end()
        if not self.latex:
            self.fail(f"unexpected LaTeX command '\\{word}'", start, after)
        if word in LATEX_SPACES or word in LATEX_IGNORED:
            self.pos = after
            if word in ("left", "right") and text.startswith(".", after, self.end):  # `\right.`: no bracket
                self.pos += 1
        elif word == "tag":
            self.pos = self._skip_group(after, start)
        elif word in LATEX_FUNCTIONS:
            self._emit("func", LATEX_FUNCTIONS[word], start, after)
        elif word in LATEX_ELEMENTWISE:
            self._emit("op", "odot", start, after)
        elif word in LATEX_MATMUL:
            self._emit("op", "@", start, after)
        elif word in LATEX_ACCENTS or word in LATEX_FONTS:
            inner_start, inner_end, close = self._group(after, start)
            inner = text[inner_start:inner_end].strip()
            if word in LATEX_ACCENTS:
                if not inner.isalpha():
                    self.fail(f"'\\{word}' expects a letter", start, close)
                base = inner + LATEX_ACCENTS[word]
            else:
                base = inner.replace(" ", "")
                if base in nodes.FUNCTIONS or base in nodes.ALIASES:
                    self._emit("func", nodes.ALIASES.get(base, base), start, close)
                    return
                if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", base):
                    self.fail(f"'\\{word}{{...}}' must hold a name", start, close)
            self.pos = close
            self._subscripts(base, start)
        elif word in GREEK:
            self.pos = after
            self._subscripts(word, start)
        else:
            self.fail(f"unknown LaTeX command '\\{word}'", start, after,
                      did_you_mean(word, [*LATEX_FUNCTIONS, *LATEX_ELEMENTWISE, *LATEX_MATMUL,
                                          *LATEX_ACCENTS, *LATEX_FONTS, "left", "right", "tag"])
                      or "write this part with + - * / and named functions, e.g. \\mathrm{relu}(...)")

    def _group(self, pos: int, command_start: int) -> tuple[int, int, int]:
        """(inner start, inner end, position after '}') of a `{...}` group, or one character."""
        while pos < self.end and self.text[pos] == " ":
            pos += 1
        if pos >= self.end:
            self.fail("a LaTeX command is missing its argument", command_start, pos)
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

    def _subscripts(self, base: str, start: int):
        """Read `_x`, `_{xy}` or `_xy` parts after a name; the last may be a time index."""
        text = self.text
        parts: list[tuple[str, int, int]] = []
        while self.pos < self.end and text[self.pos] == "_":
            pos = self.pos + 1
            if pos < self.end and text[pos] == "{":
                close = text.find("}", pos, self.end)
                if close < 0:
                    self.fail("unclosed '{' in a subscript", pos)
                parts.append((text[pos + 1:close].strip(), pos, close + 1))
                self.pos = close + 1
            else:
                m = re.compile(r"[A-Za-z0-9]" if self.latex else r"[A-Za-z0-9]+").match(text, pos, self.end)
                if not m:
                    self.fail("a subscript is missing after '_'", self.pos)
                parts.append((m.group(0), pos, m.end()))
                self.pos = m.end()
        time = time_span = None
        if parts:
            index = _time_index(parts[-1][0])
            if index is not None:
                time, (_, t0, t1) = index, parts.pop()
                time_span = (t0, t1)
                if time not in (TIME_NOW, TIME_PREV):
                    self.fail(f"time index {parts and '' or ''}{_show_index(time)} is not supported", t0, t1,
                              "a step reads t (now) and t-1 (the previous step) only")
        for part, p0, p1 in parts:
            if not re.fullmatch(r"[A-Za-z0-9]+", part):
                self.fail(f"subscript '{part}' is not a plain name", p0, p1,
                          "subscripts are letters and digits, e.g. W_{xf}")
        name = "_".join([base, *(p for p, _, _ in parts)])
        if name == self.input_name and time == TIME_PREV:
            self.fail(f"the input {self.input_name} cannot be read at t-1", start, self.pos,
                      "only states are read at t-1; keep the previous input in a state if you need it")
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

    def __init__(self, line: EquationLine, tokens: list[Token], counter: _LayerNormCounter):
        self.line, self.tokens, self.i, self.counter = line, tokens, 0, counter
        self.refs: list[Ref] = []
        self.open: list[Token] = []

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
        if first.kind != "name" or first.time is None:
            self.fail("expected an equation `v_t = expression`", first, shape_hint)
        if first.time != TIME_NOW:
            self.fail(f"the left side must be a variable at step t, got '{self._text(first)}'", first, shape_hint)
        self.advance()
        if not self.is_op("="):
            self.fail(f"expected '=' after {first.value}_t", self.current, shape_hint)
        self.advance()
        if self.current.kind == "end":
            self.fail("expected an expression after '='", self.current, shape_hint)
        expr = self.sum()
        if self.is_op(")"):
            self.fail("unmatched ')'", self.current, "remove it or open a bracket before it")
        if self.current.kind != "end":
            self.fail(f"unexpected '{self._text(self.current)}'", self.current,
                      "an operator is missing between two terms?")
        span = self.line.span(first.start, first.end)
        start = self.tokens[0].start
        return Equation(first.value, expr, self.line.text[start:self.tokens[-1].end].strip(),
                        span, tuple(self.refs), self.line.line)

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
        factors = [self.matrix_product()]
        while self.is_op("*", "odot", "/"):
            op = self.advance()
            self._operand_follows(op)
            right = self.matrix_product()
            if op.value == "/":
                factors = [nodes.div(nodes.mul(*factors), right)]
            else:
                factors.append(right)
        expr = nodes.mul(*factors)
        return nodes.neg(expr) if negative else expr

    def matrix_product(self) -> sympy.Expr:
        left_tok = self.current
        left = self.primary()
        explicit = self.is_op("@")
        juxtaposed = self._starts_primary(self.current)
        if not (explicit or juxtaposed):
            return left
        if left_tok.kind == "number" and juxtaposed:
            return nodes.mul(left, self.matrix_product())
        if not (left_tok.kind == "name" and left_tok.time is None and isinstance(left, sympy.Symbol)):
            self.fail("the left factor of a matrix product must be a parameter (a weight matrix)",
                      left_tok, "juxtaposition and @ are matrix products; use * or ⊙ to multiply element-wise")
        if explicit:
            op = self.advance()
            self._operand_follows(op)
        return nodes.matmul(left, self.matrix_product())

    def _starts_primary(self, tok: Token) -> bool:
        return tok.kind in ("name", "func", "number") or (tok.kind == "op" and tok.value == "(")

    def _operand_follows(self, op: Token):
        if not (self._starts_primary(self.current) or (self.current.kind == "op" and self.current.value in "+-")):
            self.fail(f"expected an operand after '{self._text(op)}'", op, "an operator is dangling here")

    def primary(self) -> sympy.Expr:
        tok = self.current
        if tok.kind == "number":
            self.advance()
            return sympy.Integer(tok.value) if tok.value.isdigit() else sympy.Float(tok.value)
        if tok.kind == "func":
            self.advance()
            return self._call(tok.value, tok)
        if tok.kind == "name":
            self.advance()
            if self.is_op("(") and tok.time is None:
                if tok.value in nodes.FUNCTIONS or tok.value in nodes.ALIASES:
                    return self._call(nodes.ALIASES.get(tok.value, tok.value), tok)
                if not tok.value[0].isupper():
                    self.fail(f"unknown function {tok.value!r}", tok,
                              did_you_mean(tok.value, KNOWN_FUNCTIONS)
                              or f"functions: {', '.join(nodes.FUNCTIONS)}; a matrix applied to a bracket "
                                 f"starts with a capital letter (`U(...)`), or write `{tok.value} @ (...)`")
                self.refs.append(Ref(tok.value, None, self._span(tok)))
                return nodes.matmul(sympy.Symbol(tok.value), self._bracketed(tok))
            self.refs.append(Ref(tok.value, tok.time, self._span(tok)))
            suffix = "_tm1" if tok.time == TIME_PREV else ""
            return sympy.Symbol(tok.value + suffix)
        if self.is_op("("):
            return self._bracketed(tok)
        if tok.kind == "end":
            prev = self.tokens[self.i - 1]
            self.fail(f"expected an operand after '{self._text(prev)}'", prev, "an operator is dangling here")
        self.fail(f"unexpected '{self._text(tok)}'", tok, "expected a name, a number or '('")

    def _bracketed(self, before: Token) -> sympy.Expr:
        if not self.is_op("("):
            self.fail(f"expected '(' after '{self._text(before)}'", self.current)
        opener = self.advance()
        if self.is_op(")"):
            self.fail("empty brackets", opener)
        inner = self.sum()
        if not self.is_op(")"):
            if self.current.kind == "end":
                self.fail("unclosed bracket", opener, "close it with ')'")
            self.fail(f"expected ')', got '{self._text(self.current)}'", self.current,
                      f"the bracket opened at column {self.line.col + opener.start} is still open")
        self.advance()
        return inner

    def _call(self, name: str, tok: Token) -> sympy.Expr:
        if not self.is_op("("):
            self.fail(f"function '{self._text(tok)}' needs its argument in brackets", tok,
                      f"write {self._text(tok)}(...)")
        arg = self._bracketed(tok)
        if name == "layer_norm":
            gain, bias = self.counter.next()
            return nodes.call(name, arg, gain, bias)
        return nodes.call(name, arg)

    def _span(self, tok: Token) -> Span:
        return self.line.span(tok.start, tok.end)

    def _text(self, tok: Token) -> str:
        return self.line.text[tok.start:tok.end] if tok.kind != "end" else "end of line"
