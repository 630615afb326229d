"""The parser: plain and LaTeX spellings, names, time indices, precedence."""
import pytest
import sympy

from eqcell import nodes
from eqcell.parse import parse_equations
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
        assert expr(f"h_t = tanh(U {spelling})") == nodes.call("tanh", nodes.matmul(S("U"), S("h_tm1")))


def test_braces_dropped_from_subscripts():
    assert expr("h_t = W_{xf} x_t") == nodes.matmul(S("W_xf"), S("x"))


def test_capital_before_bracket_is_matrix_product():
    got = expr("h_t = U(r_t * h_{t-1})\nr_t = sigmoid(x_t)".splitlines()[0])
    assert got == nodes.matmul(S("U"), nodes.mul(S("r"), S("h_tm1")))


def test_elementwise_binds_looser_than_matrix_product():
    assert expr("h_t = f_t * W x_t") == nodes.mul(S("f"), nodes.matmul(S("W"), S("x")))


def test_unicode_operators_and_accents():
    assert expr("h_t = σ(a) ⊙ h̃_t") == nodes.mul(nodes.call("sigmoid", S("a")), S("htilde"))


def test_latex_single_character_subscripts():
    eq = parse(r"f_t &=\sigma(W_fx_t+R_fh_{t−1}+b_f)")[0]
    assert eq.expr == nodes.call("sigmoid", nodes.add(nodes.matmul(S("W_f"), S("x")),
                                                      nodes.matmul(S("R_f"), S("h_tm1")), S("b_f")))


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
    from eqcell.errors import SpecError
    with pytest.raises(SpecError):
        parse(line)
