"""Fuzzing the front end: mutated specs never crash eqcell.

Each example takes a valid spec (the shipped ones and a few more that use the rest of the
language), mutates it (characters, tokens, lines) and runs the real command in-process,
`eqcell generate SPEC -o -`, through the console entry point `main`. Whatever the mutation, the
command exits 0 (and prints a module that Python parses; `show --latex` then works too) or 2 (a
spec error), and never 1 (an internal error) or a traceback.

Reproducible: the examples are derived from the test's name (derandomize), no example database.
A much longer run for hunting bugs: EQCELL_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py."""
from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eqcell.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs").glob("*.yaml"))]
MORE = [
    # LaTeX as pasted from the article (README)
    "name: SLSTMCell\n"
    "equations: |\n"
    "  f_t &=\\sigma(W_fx_t+R_fh_{t−1}+b_f) \\\\\n"
    "  c_t &=f_t \\otimes c_{t−1}+ (1−f_t) \\otimes \\tanh (W_c x_t+R_ch_{t−1}+b_c) \\\\\n"
    "  h_t &=\\tanh (c_t)\n",
    # LaTeX accents, fonts, \left( \right), tags, a capital before a bracket, primes
    "eqcell: 2\n"
    "name: MGUCell\n"
    "equations: |\n"
    "  f'_t &= \\sigma(\\mathbf{W}_f x_t + U_f h_{t-1} + b_f) \\tag{1} \\\\\n"
    "  \\tilde{h}_t &= \\tanh\\left(W_h x_t + U(f'_t \\odot h_{t-1}) + b_h\\right) \\\\\n"
    "  h_t &= (1 - f^{\\prime}_t) \\odot h_{t-1} + f'_t \\odot \\tilde{h}_t\n",
    # every other key
    "eqcell: 1\n"
    "name: KitchenSinkCell\n"
    "layer: KitchenSink\n"
    "description: |\n"
    "  Layer norm, sizes, initial states, layout, initializers, activations.\n"
    "input: u\n"
    "output: h\n"
    "states: [h, c, r]\n"
    "activations:\n"
    "  activation: tanh\n"
    "  recurrent_activation: {symbol: sigmoid, default: hard_sigmoid}\n"
    "initializers:\n"
    "  b_f: ones\n"
    "layout:\n"
    "  kernel: [W_c, W_f]\n"
    "initial_state:\n"
    "  c: learned\n"
    "  h: 0.5\n"
    "sizes:\n"
    "  r: proj_units\n"
    "equations: |\n"
    "  f_t = sigmoid(W_f u_t + U_f r_{t-1} + b_f + v * h_{t-1})   # gate\n"
    "  c_t = f_t * c_{t-1} + (1 - f_t) * tanh(LN(W_c u_t) + layer_norm(U_c r_{t-1}))\n"
    "  h_t = relu(c_t) / 2 - exp(-c_t) * 0.5e-1 + h̃_t\n"
    "  h̃_t = softplus(c_t) * 1 + σ(d) ⊙ c_t\n"
    "  r_t = P h_t\n",
]
BASES = SHIPPED + MORE

# What a mutation may insert: operators, brackets, subscripts, LaTeX, digits, YAML syntax,
# line breaks, control and invisible characters, odd Unicode.
POOL = [
    *"+-*/@()[]{}=_^\\'|,;.#%&:$!?<>~`\"", " ", "\t", "\n", "\r", *"0123456789", *"aAbhxXtTWUI",
    "\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f", "\u00a0", "\u00ad",
    "\u0301", "\u0303", "\u200b", "\u200d", "\u200f", "\u202e", "\u2028", "\u2029", "\ufeff", "\ufffd",
    "\uffff", "σ", "⊙", "⊗", "∘", "·", "−", "×", "²", "⁻", "′", "″", "ｈ", "２", "α", "β", "ĥ", "é", "ß",
    "\U0001d431", "😀", "中",
    "- ", ": ", "? ", "!!python/object ", "&a ", "*a", "|", ">", "---\n", "...\n", "%YAML 1.1\n", "'", '"',
    "h_{t-1}", "h_{t-2}", "h_{t+1}", "x_t", "x_{t-1}", "c_tm1", "W ", "U_f ", "_{t}", "_{xf}", "(t)",
    "tanh(", "sigmoid(", "max(", "min(", "diag(", "logsigmoid(", "layer_norm(", "LN(", "foo(", "abs(",
    "\\frac{", "\\sigma", "\\tanh", "\\left(", "\\right)", "\\mathbf{", "\\tilde{", "\\hat{", "\\top",
    "\\prime", "^{\\prime}", "^T", "^2", "**", "\\|", "\\odot", "\\cdot", "\\\\", "&=", "\\tag{3}",
    "\\begin{aligned}", "\\max", "\\sqrt{", "\\unknown", "\\alpha", "\\", "1e999", "1e-999", "0.5",
    "9" * 400, ".5e3", "1.", "eqcell: 2\n", "eqcell: 9\n", "heads: 4\n", "constants: {beta: 1}\n",
    "sizes: {h: 1}\n", "states: [h]\n", "output: c\n", "initial_state: {h: .nan}\n", "name: X\n",
    "equations: |\n", "  ", "    ", "yes", "null", "~", "[", "]",
]
# Inside the equations block a line break keeps the block's indentation.
EQUATION_POOL = [p.replace("\n", "\n  ") for p in POOL if p not in ("\n", "\r")] + ["\n  ", "\\\\\n  "]
TOKEN = re.compile(r"\\[A-Za-z]+|\w+|\s+|.", re.S)


@st.composite
def mutated_spec(draw) -> str:
    """A base spec with 1-4 mutations; most of them in the equations, which YAML leaves alone
    (a mutation of the YAML around them mostly makes a YAML error, quickly found)."""
    text = draw(st.sampled_from(BASES))
    for _ in range(draw(st.integers(1, 4))):
        head, marker, body = text.partition("equations: |\n")
        if marker and draw(st.integers(0, 9)) < 7:
            body = draw(_mutation(body, EQUATION_POOL))
            # keep the block a block: a line the mutation moved to column 0 is indented again
            text = head + marker + "\n".join("  " + line if line[:1] not in ("", " ", "\t") else line
                                              for line in body.split("\n"))
        else:
            text = draw(_mutation(text, POOL))
    return text


def _mutation(text: str, pool: list[str]):
    n = len(text)
    position = st.integers(0, n)
    piece = st.sampled_from(pool)
    lines = text.split("\n")
    tokens = TOKEN.findall(text)
    return st.one_of(
        # characters
        st.tuples(position, piece).map(lambda a: text[:a[0]] + a[1] + text[a[0]:]),
        st.tuples(position, st.integers(1, 8)).map(lambda a: text[:a[0]] + text[a[0] + a[1]:]),
        st.tuples(position, st.integers(1, 4), piece).map(lambda a: text[:a[0]] + a[2] + text[a[0] + a[1]:]),
        # tokens: drop, double, swap with the next, replace
        st.integers(0, max(len(tokens) - 1, 0)).map(lambda i: "".join(tokens[:i] + tokens[i + 1:])),
        st.integers(0, max(len(tokens) - 1, 0)).map(lambda i: "".join(tokens[:i + 1] + tokens[i:])),
        st.integers(0, max(len(tokens) - 2, 0)).map(
            lambda i: "".join(tokens[:i] + tokens[i + 1:i + 2] + tokens[i:i + 1] + tokens[i + 2:])),
        st.tuples(st.integers(0, max(len(tokens) - 1, 0)), piece).map(
            lambda a: "".join(tokens[:a[0]] + [a[1]] + tokens[a[0] + 1:])),
        # lines: drop, double, swap, indent, dedent, repeat a line many times
        st.integers(0, len(lines) - 1).map(lambda i: "\n".join(lines[:i] + lines[i + 1:])),
        st.integers(0, len(lines) - 1).map(lambda i: "\n".join(lines[:i + 1] + lines[i:])),
        st.tuples(st.integers(0, len(lines) - 1), st.integers(0, len(lines) - 1)).map(
            lambda a: "\n".join(_swapped(lines, *a))),
        st.tuples(st.integers(0, len(lines) - 1), st.sampled_from([" ", "  ", "\t", "- "])).map(
            lambda a: "\n".join(lines[:a[0]] + [a[1] + lines[a[0]]] + lines[a[0] + 1:])),
        st.integers(0, len(lines) - 1).map(lambda i: "\n".join(lines[:i] + [lines[i].lstrip()] + lines[i + 1:])),
        st.tuples(st.integers(0, len(lines) - 1), st.integers(2, 60)).map(
            lambda a: "\n".join(lines[:a[0]] + [lines[a[0]]] * a[1] + lines[a[0] + 1:])),
    )


def _swapped(lines: list[str], i: int, j: int) -> list[str]:
    out = list(lines)
    out[i], out[j] = out[j], out[i]
    return out


_TMP = tempfile.TemporaryDirectory(prefix="eqcell-fuzz-")
SPEC = Path(_TMP.name) / "spec.yaml"


def run(*args: str) -> tuple[int, str, str]:
    """`eqcell ARGS` in-process through the console entry point: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def check_spec_text(text: str, target: str = "keras") -> int:
    """The property: exit 0 with a module Python parses, or exit 2 with a message; nothing else."""
    SPEC.write_bytes(text.encode("utf-8", "surrogatepass"))
    code, out, err = run("generate", str(SPEC), "-o", "-", "--target", target)
    assert code in (0, 2), f"exit {code}\n{err}\nspec:\n{text!r}"
    assert "Traceback" not in err and "internal error" not in err, f"{err}\nspec:\n{text!r}"
    if code == 2:
        assert err.startswith(f"{SPEC}:") and out == "", f"{err!r}\n{out[:200]!r}\nspec:\n{text!r}"
        return code
    ast.parse(out)  # a SyntaxError here is a failure
    code, out, err = run("show", str(SPEC), "--latex")
    assert code == 0 and out and not err, f"show: exit {code}\n{err}\nspec:\n{text!r}"
    return code


EXAMPLES = int(os.environ.get("EQCELL_FUZZ_EXAMPLES", "250"))   # the default run; -m slow adds 2000 more


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=mutated_spec(), target=st.sampled_from(["keras", "tf-keras", "torch"]))
def test_mutated_specs_never_crash(text, target):
    check_spec_text(text, target)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=mutated_spec(), target=st.sampled_from(["keras", "tf-keras", "torch"]))
def test_more_mutated_specs_never_crash(text, target):
    check_spec_text(text, target)


def test_every_base_spec_generates():
    """The fuzzer starts from valid specs: a mutation is what makes one fail."""
    for text in BASES:
        for target in ("keras", "tf-keras", "torch"):
            assert check_spec_text(text, target) == 0, run("check", str(SPEC))[2]


# Crashes the fuzzers found, fixed: a matrix applied to a parameter, or to an input-only value,
# inside a scanned state (the scan printed an analysis placeholder). tests/test_paths.py checks
# what these compute.
FOUND_CRASHES = {
    "matrix_on_parameter_in_scan": "name: T\nequations: |\n  h_t = h_{t-1} + W b\n",
    "matrix_on_input_plus_parameter_in_scan": "name: T\nequations: |\n  h_t = h_{t-1} + W (b + x_t)\n",
    "matrix_on_input_only_variable_in_scan": "name: T\nequations: |\n  a_t = tanh(x_t)\n  h_t = h_{t-1} + U a_t\n",
}


@pytest.mark.parametrize("target", ["keras", "tf-keras", "torch"])
@pytest.mark.parametrize("case", sorted(FOUND_CRASHES))
def test_found_crashes_generate(case, target):
    assert check_spec_text(FOUND_CRASHES[case], target) == 0
