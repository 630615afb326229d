"""The parser: plain and LaTeX spellings, names, time indices, precedence, limits."""
import ast

import pytest
import sympy
from click.testing import CliRunner

from eqcell import nodes
from eqcell.cli import cli
from eqcell.errors import SpecError, did_you_mean
from eqcell.parse import MAX_DEPTH, MAX_EQUATIONS, MAX_OPERANDS, parse_equations
from eqcell.spec import load_spec

S = sympy.Symbol


def parse(equations: str, **keys):
    extra = "".join(f"{k}: {v}\n" for k, v in keys.items())
    text = "name: TestCell\n" + extra + "equations: |\n" + "".join(f"  {line}\n" for line in equations.splitlines())
    return parse_equations(load_spec(text))


def expr(line: str):
    return parse(line)[0].expr


def test_matrix_vector_by_juxtaposition_and_at():
    assert expr("h_t = W x_t") == nodes.matmul(S("W"), S("x"))
    assert expr("h_t = W @ x_t") == nodes.matmul(S("W"), S("x"))


def test_previous_step_spellings_agree():
    for spelling in ("h_{t-1}", "h_{t−1}", "h_tm1", "h_{t - 1}"):
        assert expr(f"h_t = tanh(U {spelling})") == nodes.call("tanh", nodes.matmul(S("U"), nodes.prev("h")))


def test_braces_dropped_from_subscripts():
    assert expr("h_t = W_{xf} x_t") == nodes.matmul(S("W_xf"), S("x"))


def test_capital_before_bracket_is_matrix_product():
    got = expr("h_t = U(r_t * h_{t-1})\nr_t = sigmoid(x_t)".splitlines()[0])
    assert got == nodes.matmul(S("U"), nodes.mul(S("r"), nodes.prev("h")))


def test_elementwise_binds_looser_than_matrix_product():
    assert expr("h_t = f_t * W x_t") == nodes.mul(S("f"), nodes.matmul(S("W"), S("x")))


def test_unicode_operators_and_accents():
    assert expr("h_t = σ(a) ⊙ h̃_t") == nodes.mul(nodes.call("sigmoid", S("a")), S("htilde"))


def test_latex_single_character_subscripts():
    eq = parse(r"f_t &=\sigma(W_fx_t+R_fh_{t−1}+b_f)")[0]
    assert eq.expr == nodes.call("sigmoid", nodes.add(nodes.matmul(S("W_f"), S("x")),
                                                      nodes.matmul(S("R_f"), nodes.prev("h")), S("b_f")))


def test_latex_accent_and_font_commands():
    assert expr(r"h_t = \tilde{h}_t \odot \mathbf{W} x_t") == nodes.mul(S("htilde"), nodes.matmul(S("W"), S("x")))


def test_latex_tags_and_left_right_are_ignored():
    assert expr(r"h_t = \tanh \left( c_t \right) \tag{2.6}") == nodes.call("tanh", S("c"))


def test_layer_norms_are_numbered_in_writing_order():
    eqs = parse("a_t = LN(W x_t)\nb_t = layer_norm(U a_t)")
    assert eqs[0].expr.args[1:] == (S("ln1_gain"), S("ln1_bias"))
    assert eqs[1].expr.args[1:] == (S("ln2_gain"), S("ln2_bias"))


def test_comments_and_blank_lines_are_skipped():
    assert [eq.target for eq in parse("# gate\n\nh_t = tanh(W x_t)  # output")] == ["h"]


def test_numbers_and_division():
    assert expr("h_t = 0.5 * a / 2") == nodes.div(nodes.mul(sympy.Float("0.5"), S("a")), sympy.Integer(2))


def test_refs_keep_positions():
    eq = parse("h_t = tanh(W x_t)")[0]
    ref = next(r for r in eq.refs if r.name == "W")
    assert (ref.span.line, ref.span.col, ref.span.end_col) == (3, 14, 15)


@pytest.mark.parametrize("line", ["h_t = tanh(", "h_t = a +", "h_t = sigmod(a)"])
def test_bad_lines_raise_spec_errors(line):
    with pytest.raises(SpecError):
        parse(line)


# -- primes: part of the name ---------------------------------------------------------------
@pytest.mark.parametrize("target", ["f'_t", "f'_{t}", "fprime_t", "f′_t", r"f^{\prime}_t", r"f^\prime_t",
                                    r"f^{ \prime }_{t}"])
def test_primes_are_part_of_the_name(target):
    eq = parse(f"{target} = sigmoid(W x_t)" + (r" \\" if "\\" in target else ""))[0]
    assert eq.target == "fprime"


@pytest.mark.parametrize("read", ["f'_{t-1}", "fprime_{t-1}", "f'_tm1", r"f^{\prime}_{t-1}"])
def test_primes_read_at_t_minus_1(read):
    latex = "\\" in read
    target = r"\mathrm{fprime}_t" if latex else "fprime_t"  # LaTeX: fprime_t is f p r i m e_t
    eq = parse(f"{target} = tanh(U {read})" + (r" \\" if latex else ""))[0]
    assert eq.expr == nodes.call("tanh", nodes.matmul(S("U"), nodes.prev("fprime")))


def test_double_prime_and_prime_on_a_parameter():
    assert parse("f''_t = W' x_t")[0].target == "fprimeprime"
    assert parse("f''_t = W' x_t")[0].expr == nodes.matmul(S("Wprime"), S("x"))
    assert parse(r"f^{\prime\prime}_t &= \tanh(x_t)")[0].target == "fprimeprime"
    assert parse("f″_t = x_t")[0].target == "fprimeprime"


def test_prime_superscript_is_not_a_power():
    """`f^{\prime}` is a name; a real superscript still says it is not supported yet."""
    assert parse(r"f^{\prime}_t &= \tanh(x_t)")[0].target == "fprime"
    assert parse(r"f_t &= \tanh(x_t)^{2}")[0].expr == sympy.Pow(nodes.call("tanh", S("x")), 2, evaluate=False)


def test_unknown_lowercase_function_is_not_offered_a_matrix_product():
    with pytest.raises(SpecError) as raised:
        parse("h_t = maximum(a)")
    assert raised.value.message == "unknown function 'maximum'"
    assert raised.value.hint == "did you mean 'max'?"
    with pytest.raises(SpecError) as raised:
        parse("h_t = frobnicate(a)")
    assert raised.value.hint.startswith("functions: sigmoid, tanh") and "@" not in raised.value.hint
    with pytest.raises(SpecError) as raised:
        parse("h_t = tanhh(a)")
    assert raised.value.hint == "did you mean 'tanh'?"


def test_hash_comments_in_latex_too():
    assert [eq.target for eq in parse("f_t &= \\sigma(x_t)  # gate  \\\\\nh_t &= f_t  % output")] == ["f", "h"]


def test_unicode_spaces_are_spaces():
    assert expr("h_t = W\u00a0x_t\u2009+ b") == nodes.add(nodes.matmul(S("W"), S("x")), S("b"))


# -- limits: nesting depth and operands ------------------------------------------------------
def nested(depth: int, open_: str = "(", close: str = ")", inner: str = "W x_t + U h_{t-1}") -> str:
    return "h_t = " + open_ * depth + inner + close * depth


@pytest.mark.parametrize("open_", ["(", "tanh(", "U(", "layer_norm(", "-(a * ("])
def test_nesting_limit(open_):
    close = ")" * open_.count("(")
    levels = open_.count("(")
    parse(nested(MAX_DEPTH // levels, open_, close))
    with pytest.raises(SpecError, match=f"nests more than {MAX_DEPTH} levels deep") as raised:
        parse(nested(MAX_DEPTH // levels + 1, open_, close))
    assert raised.value.span.col > 3  # at the token that goes too deep, not at the equation


def test_division_and_product_chains_count_as_levels():
    parse("h_t = h_{t-1}" + " / a" * MAX_DEPTH)
    with pytest.raises(SpecError, match="levels deep"):
        parse("h_t = h_{t-1}" + " / a" * (MAX_DEPTH + 1))
    parse("h_t = " + " ".join(f"A{i}" for i in range(MAX_DEPTH + 1)) + " h_{t-1}")
    with pytest.raises(SpecError, match="levels deep"):
        parse("h_t = " + " ".join(f"A{i}" for i in range(MAX_DEPTH + 2)) + " h_{t-1}")
    with pytest.raises(SpecError, match="levels deep"):  # brackets, then divisions over them
        parse("h_t = " + "(" * 40 + "h_{t-1}" + ")" * 40 + " / a" * 30)


def test_operand_limit():
    parse("h_t = " + " + ".join(["h_{t-1}"] * MAX_OPERANDS))
    with pytest.raises(SpecError, match=f"more than {MAX_OPERANDS} names and numbers"):
        parse("h_t = " + " + ".join(["h_{t-1}"] * (MAX_OPERANDS + 1)))


def test_equation_limit():
    parse("\n".join(f"a{i}_t = x_t" for i in range(MAX_EQUATIONS)))
    with pytest.raises(SpecError, match=f"more than {MAX_EQUATIONS} equations") as raised:
        parse("\n".join(f"a{i}_t = x_t" for i in range(MAX_EQUATIONS + 5)))
    assert raised.value.span.line == 3 + MAX_EQUATIONS


def test_huge_numbers():
    assert expr("h_t = " + "9" * 300 + " * a") == nodes.mul(sympy.Integer("9" * 300), S("a"))
    for big in ("1e999", "9" * 400, "9" * 5000):  # int() of 5000 digits would raise ValueError
        with pytest.raises(SpecError, match="too large"):
            parse(f"h_t = {big} * a")


AT_THE_LIMIT = {
    "brackets": nested(MAX_DEPTH),
    "calls": nested(MAX_DEPTH, "tanh(", ")"),
    "layer_norms": nested(MAX_DEPTH, "layer_norm(", ")"),
    "matrices_on_brackets": "h_t = " + "".join(f"U{i}(" for i in range(MAX_DEPTH)) + "h_{t-1}" + ")" * MAX_DEPTH,
    "signs_products": nested(MAX_DEPTH // 2, "-(a * (", "))"),
    "mixed": nested(MAX_DEPTH // 4, "tanh(a + (b * (c / ", ")))"),
    "divisions": "h_t = h_{t-1}" + " / a" * MAX_DEPTH,
    "product_chain": "h_t = " + " ".join(f"A{i}" for i in range(MAX_DEPTH + 1)) + " h_{t-1}",
    "two_deep_equations": nested(MAX_DEPTH, "tanh(", ")").replace("h_t", "a_t", 1)
                          + "\n" + nested(MAX_DEPTH - 1, "tanh(", ")", "a_t + h_{t-1}"),
    "linear_state": "z_t = " + "sigmoid(" * MAX_DEPTH + "W x_t" + ")" * MAX_DEPTH
                    + "\nh_t = (1 - z_t) * h_{t-1} + z_t * " + "tanh(" * (MAX_DEPTH - 1) + "V x_t" + ")" * (MAX_DEPTH - 1),
}


@pytest.mark.parametrize("target", ["keras", "tf-keras"])
@pytest.mark.parametrize("case", sorted(AT_THE_LIMIT))
def test_specs_at_the_limits_generate(case, target):
    """What the parser lets through, the later stages (analysis, sympy, the printers, Python's
    compiler) handle: no RecursionError at the limit, and the module parses."""
    text = "name: TestCell\nequations: |\n" + "".join(f"  {line}\n" for line in AT_THE_LIMIT[case].splitlines())
    result = CliRunner().invoke(cli, ["generate", "-", "-o", "-", "--target", target], input=text)
    assert result.exit_code == 0, (result.exception, result.output[-2000:])
    ast.parse(result.stdout)


def test_many_terms_generate():
    text = ("name: TestCell\nequations: |\n  h_t = " + " + ".join(f"a{i}" for i in range(MAX_OPERANDS - 1))
            + " + h_{t-1}\n")
    result = CliRunner().invoke(cli, ["generate", "-", "-o", "-"], input=text)
    assert result.exit_code == 0, result.output[-2000:]
    ast.parse(result.stdout)


# -- the loader ------------------------------------------------------------------------------
def test_format_versions():
    assert load_spec("name: T\nequations: |\n  h_t = x_t\n").version == 2
    for version in (1, 2):
        assert load_spec(f"eqcell: {version}\nname: T\nequations: |\n  h_t = x_t\n").version == version


def test_initial_state_in_exponent_notation_is_a_number():
    spec = load_spec("name: T\ninitial_state: {h: 1e-3, c: -2E2}\nequations: |\n  h_t = x_t\n")
    assert [(k.value, v.value) for k, v in spec.initial_state] == [("h", 0.001), ("c", -200.0)]


def test_text_given_a_display_name_is_never_a_file_name():
    """Standard input that reads `lstm` is a (bad) spec, not the shipped LSTM."""
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec("lstm", display_name="<stdin>")
    assert load_spec("lstm").name.value == "LSTMCell"
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(b"name: \xff\n", display_name="<stdin>")


@pytest.mark.parametrize("word, choices, hint", [
    ("sigmod", ["sigmoid", "tanh"], "did you mean 'sigmoid'?"),
    ("equation", ["equations", "name"], "did you mean 'equations'?"),
    ("b_g", ["b_f", "b_h"], "did you mean 'b_h'?"),
    ("maximum", ["max", "tanh"], "did you mean 'max'?"),
    ("Sigmoid", ["sigmoid"], "did you mean 'sigmoid'?"),
    ("constants", ["states", "sizes", "name"], ""),
    ("foo", ["sigmoid", "tanh", "log"], ""),
    ("h", ["c"], ""),
    ("units", ["input", "output", "name"], ""),
])
def test_did_you_mean_only_for_close_matches(word, choices, hint):
    assert did_you_mean(word, choices) == hint


@pytest.mark.parametrize("text", ["h_t = max(a, b_t) - min(1, a)", r"h_t &= \max\{a, b_t\} - \min(1, a)",
                                  r"h_t &= \max(a, b_t) - \operatorname{min}(1, a)"])
def test_max_and_min_take_two_arguments(text):
    assert expr(text) == nodes.add(nodes.call("max", S("a"), S("b")), nodes.neg(nodes.call("min", sympy.Integer(1), S("a"))))


@pytest.mark.parametrize("text, message", [("h_t = max(a)", "'max' takes 2 arguments"),
                                           ("h_t = min(a, b, c)", "'min' takes 2 arguments"),
                                           ("h_t = tanh(a, b)", "'tanh' takes one argument")])
def test_argument_counts(text, message):
    with pytest.raises(SpecError) as raised:
        parse(text)
    assert raised.value.message == message


POW = lambda a, b: sympy.Pow(a, b, evaluate=False)  # noqa: E731


@pytest.mark.parametrize("text, expected", [
    ("h_t = a^2", POW(S("a"), sympy.Integer(2))), ("h_t = a ** 2", POW(S("a"), sympy.Integer(2))),
    ("h_t = a²", POW(S("a"), sympy.Integer(2))), ("h_t = a^{b_t}", POW(S("a"), S("b"))),
    ("h_t = -a^2", nodes.neg(POW(S("a"), sympy.Integer(2)))), ("h_t = a^2^3", POW(S("a"), POW(sympy.Integer(2), sympy.Integer(3)))),
    ("h_t = a^-1", POW(S("a"), sympy.Integer(-1))), (r"h_t &= e^{x_t}", nodes.call("exp", S("x"))),
    ("h_t = |a - b_t|", nodes.call("abs", nodes.add(S("a"), nodes.neg(S("b"))))),
    (r"h_t &= \lvert a \rvert", nodes.call("abs", S("a"))), (r"h_t &= \left| a \right|", nodes.call("abs", S("a"))),
    ("h_t = ||a| - b_t|", nodes.call("abs", nodes.add(nodes.call("abs", S("a")), nodes.neg(S("b"))))),
    (r"h_t &= \frac{a}{b_t}", nodes.div(S("a"), S("b"))), (r"h_t &= \sqrt{a}", nodes.call("sqrt", S("a"))),
    (r"h_t &= \frac{1}{2} b_t", nodes.mul(nodes.div(sympy.Integer(1), sympy.Integer(2)), S("b"))),
])
def test_powers_bars_fractions_roots(text, expected):
    assert expr(text) == expected


@pytest.mark.parametrize("text, name", [
    (r"h_t &= W^{f} x_t", "W_f"), (r"h_t &= W_{ih}^{f} x_t", "W_ih_f"), (r"h_t &= U^{(z)} x_t", "U_z"),
    ("h_t = W^{f} x_t", "W_f"), (r"h_t &= W^{(h)} x_t", "W_h"),  # h is a variable, but W multiplies: a label
])
def test_superscript_labels_join_the_name(text, name):
    assert expr(text) == nodes.matmul(S(name), S("x"))


def test_a_superscript_holding_a_variable_is_a_power():
    assert parse("a_t = sigmoid(x_t)\nh_t = c^{a_t}")[1].expr == POW(S("c"), S("a"))


def test_a_bare_variable_name_in_a_superscript_is_a_label():
    """Library docs label a gate's bias by its variable (`b_{ih}^{z}` next to z_t): a variable in
    a power would carry its time index; a constant stays a power."""
    eqs = parse("z_t = sigmoid(W x_t + b_{ih}^{z})\nh_t = z_t * h_{t-1} + p^{z} * x_t")
    assert eqs[0].expr == nodes.call("sigmoid", nodes.add(nodes.matmul(S("W"), S("x")), S("b_ih_z")))
    assert {r.name for r in eqs[1].refs} >= {"p_z"}


@pytest.mark.parametrize("text", [
    "h(t) = tanh(W x(t) + U h(t-1))", r"h(t) &= \tanh(W x(t) + U h(t{-}1))", r"h_t &= \tanh(W x_t + U h_{t-1}),",
    r"h_t &= \tanh(W x_t + U h_{t-1}).",
])
def test_pasted_forms_of_one_equation(text):
    assert parse(text)[0].expr == nodes.call("tanh", nodes.add(nodes.matmul(S("W"), S("x")),
                                                               nodes.matmul(S("U"), nodes.prev("h"))))


@pytest.mark.parametrize("line", [r"a_t &= \sigma(x_t), \quad h_t &= a_t", r"a_t &= \sigma(x_t); h_t &= a_t",
                                  r"a_t &= \sigma(x_t) \qquad h_t &= a_t.", r"a_t &= \sigma(x_t),\; h_t &= a_t,"])
def test_several_latex_equations_on_one_line(line):
    assert [eq.target for eq in parse(line)] == ["a", "h"]


def test_greek_letters_are_names():
    eqs = parse("α_t = sigmoid(x_t)\nh_t = α_t * h_{t-1} + λ * β2")
    assert [eq.target for eq in eqs] == ["alpha", "h"]
    assert {r.name for r in eqs[1].refs} == {"alpha", "h", "lambda", "beta2"}
    assert parse(r"h_t &= \lambda \odot x_t")[0].expr == nodes.mul(S("lambda"), S("x"))


def test_a_time_indexed_variable_before_a_bracket_multiplies_it():
    """Parsed as a product whose meaning the shapes decide: two vectors multiply element-wise
    (`a_t(U h_{t-1} + 1)`), a matrix value multiplies a matrix (`S_{t-1} (I - ...)`)."""
    assert parse(r"h_t &= a_t(U h_{t-1} + 1)")[0].expr == nodes.BracketTimes(
        S("a"), nodes.add(nodes.matmul(S("U"), nodes.prev("h")), sympy.Integer(1)))
    assert parse("h_t = h_{t-1}(x_t - 1)")[0].expr == nodes.BracketTimes(
        nodes.prev("h"), nodes.add(S("x"), sympy.Integer(-1)))


def test_line_break_spacing_and_accents_around_fonts():
    eqs = parse("\\tilde{\\mathbf{h}}_t &= \\tanh(x_t) \\\\[6pt] h_t &= \\tilde{h}_t \\\\ [2mm]")
    assert [eq.target for eq in eqs] == ["htilde", "h"]
    assert eqs[1].expr == S("htilde")


def test_greek_in_fonts_and_subscripts_and_a_function_of_a_function():
    """`\\boldsymbol{\\alpha}_t`, `W_\\alpha`, and `\\log \\sigma(a)` (log of sigmoid, computed as
    logsigmoid: the same number without underflow), as the papers write them."""
    eqs = parse(r"\boldsymbol{\alpha}_t &= \sigma(W_\alpha x_t) \\ f_t &= \log \sigma(W_f x_t) \\ g_t &= \exp \tanh(x_t)")
    assert [eq.target for eq in eqs] == ["alpha", "f", "g"]
    assert eqs[0].expr == nodes.call("sigmoid", nodes.matmul(S("W_alpha"), S("x")))
    assert eqs[1].expr == nodes.call("logsigmoid", nodes.matmul(S("W_f"), S("x")))
    assert eqs[2].expr == nodes.call("exp", nodes.call("tanh", S("x")))


def test_a_learned_scalar_before_a_value_scales_it():
    """`\\alpha\\, h(t-1)` with `sizes: {alpha: 1}` (one learned number): alpha * h, not a matrix."""
    from eqcell.spec import load_spec
    from eqcell.parse import parse_equations

    spec = load_spec("name: T\nsizes: {alpha: 1}\nequations: |\n  h_t &= \\tanh(W x_t + \\alpha\\, h(t-1))\n")
    assert parse_equations(spec)[0].expr == nodes.call(
        "tanh", nodes.add(nodes.matmul(S("W"), S("x")), nodes.mul(S("alpha"), nodes.prev("h"))))
