"""Errors that point at the spec: file, line, column, the line itself, and a hint."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True, slots=True)
class Span:
    """Where something stands in a spec file (1-based line and column)."""

    file: str
    line: int
    col: int
    end_col: int | None = None  # exclusive, like lark's end_column
    line_text: str = ""


class SpecError(Exception):
    """Something wrong in a spec: says where, what, and what to do."""

    def __init__(self, message: str, span: Span, hint: str = ""):
        super().__init__(message)
        self.message, self.span, self.hint = message, span, hint

    def __str__(self) -> str:
        s = self.span
        out = [f"{s.file}:{s.line}:{s.col}: {self.message}"]
        if s.line_text:
            pad = len(s.line_text[: s.col - 1].expandtabs())
            width = max(1, (s.end_col or s.col + 1) - s.col)
            out += ["    " + s.line_text.expandtabs(), "    " + " " * pad + "^" * width]
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean ...?' hint, or '' when nothing is close."""
    import difflib  # only on the error path: 2 ms saved on every generation

    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""
