"""Errors that point at the spec: file, line, column, the line itself, and a hint."""
from __future__ import annotations

from typing import Iterable, NamedTuple


class Span(NamedTuple):
    """Where something stands in a spec file (1-based line and column)."""

    file: str
    line: int
    col: int
    end_col: int | None = None  # exclusive, like lark's end_column
    line_text: str = ""


SHOWN_LINE = 240  # a longer source line is shown as a window around the error's column


class SpecError(Exception):
    """Something wrong in a spec: says where, what, and what to do."""

    def __init__(self, message: str, span: Span, hint: str = ""):
        super().__init__(message)
        self.message, self.span, self.hint = message, span, hint

    def __str__(self) -> str:
        s = self.span
        message = self.message if len(self.message) <= 2 * SHOWN_LINE else (
            f"{self.message[:SHOWN_LINE]} ... {self.message[-SHOWN_LINE // 2:]}")  # a name 1 MiB long
        out = [f"{_visible(s.file)}:{s.line}:{s.col}: {message}"]
        if s.line_text:
            shown, before = _visible(s.line_text), s.col - 1
            width = max(1, (s.end_col or s.col + 1) - s.col)
            if len(shown) > SHOWN_LINE:  # a window around the column, not a whole 1 MiB line
                start = max(0, before - SHOWN_LINE // 2)
                end = min(len(shown), before + min(width, SHOWN_LINE // 2) + SHOWN_LINE // 4)
                shown = ("..." if start else "") + shown[start:end] + ("..." if end < len(shown) else "")
                before += (3 if start else 0) - start
                width = min(width, len(shown) - before)
            pad = len(shown[:before].expandtabs())
            out += ["    " + shown.expandtabs(), "    " + " " * pad + "^" * width]
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


def _visible(text: str) -> str:
    """The line as shown under a message: control and invisible format characters become one
    visible character each (C0 controls their Control Pictures symbol), so the caret stays aligned
    and no control character reaches the terminal."""
    import unicodedata

    out = []
    for ch in text:
        if ch == "\t":
            out.append(ch)
        elif ch < " " or ch == "\x7f":
            out.append(chr(0x2400 + ord(ch)) if ch < " " else "\u2421")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def did_you_mean(word: str, choices) -> str:
    """A 'did you mean ...?' hint for a genuinely close choice, or '' when nothing is close.

    Close means a typo away: a few edits for the word's length (none for one or two characters,
    one up to five, two up to nine, three beyond), the same word in another case, or one word
    the start of the other (`tanhh`, `maximum` -> `max`). Ties go to the most similar spelling."""
    import difflib  # only on the error path: 2 ms saved on every generation

    best = None
    for choice in sorted(set(choices)):
        if not isinstance(choice, str) or not choice or choice == word:
            continue
        a, b = word.lower(), choice.lower()
        shorter, longer = sorted((a, b), key=len)
        distance = _edits(a, b)
        close = (distance <= _allowed_edits(len(word)) or a == b
                 or len(shorter) >= 3 and longer.startswith(shorter))
        if close:
            key = (-distance if not longer.startswith(shorter) else -min(distance, 1),
                   difflib.SequenceMatcher(None, a, b).ratio(), choice)
            best = max(best, key) if best else key
    return f"did you mean {best[2]!r}?" if best else ""


def _allowed_edits(length: int) -> int:
    return 0 if length <= 2 else 1 if length <= 5 else 2 if length <= 9 else 3


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps."""
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


# Parts of spec format 2 (docs/spec-format.md) that this version of eqcell does not implement
# yet: key -> (what, "is" or "are", hint). The one table of them, so that the change implementing
# a construct deletes its entry (and the check that raises it), and the "Not yet supported" note
# beside it in docs/spec-format.md, and nothing else.
NOT_YET: dict[str, tuple[str, str, str]] = {
}


def not_yet(key: str, span: Span, hint: str | None = None) -> SpecError:
    """The error for a part of spec format 2 that this eqcell does not implement yet."""
    what, verb, default_hint = NOT_YET[key]
    pronoun = "them" if verb == "are" else "it"
    return SpecError(f"{what} {verb} part of the spec language (format 2), but this version of eqcell "
                     f"does not support {pronoun} yet", span, default_hint if hint is None else hint)


_CONTROL_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BACKSPACE", 0x09: "TAB", 0x0B: "VERTICAL TAB",
                  0x0C: "FORM FEED", 0x1B: "ESCAPE", 0x7F: "DELETE", 0x85: "NEXT LINE"}


def describe_char(ch: str) -> str:
    """`';'` for a printable ASCII character, else its code point and name: `U+200B (ZERO WIDTH SPACE)`."""
    if " " < ch < "\x7f":
        return repr(ch)
    import unicodedata

    code = ord(ch)
    name = _CONTROL_NAMES.get(code) or unicodedata.name(ch, "")
    return f"U+{code:04X}" + (f" ({name})" if name else "")
