"""Printers, sympy-style one-liners: one expression in, one line of code out."""
import pytest
import sympy

from eqcell import nodes
from eqcell.printing.base import PrinterError
from eqcell.printing.code import CodePrinter
from eqcell.printing.plain import PlainPrinter
from eqcell.targets import DIALECTS, KERAS, TF_KERAS

S = sympy.Symbol
keras_printer = CodePrinter(KERAS, "self", {"tanh": "activation"})
tf_printer = CodePrinter(TF_KERAS, "self", {})


def test_keeps_written_order_and_spacing():
    e = nodes.add(nodes.mul(S("f"), S("c_tm1")),
                  nodes.mul(nodes.add(sympy.Integer(1), nodes.neg(S("f"))), nodes.call("tanh", S("z_c"))))
    assert keras_printer.doprint(e) == "f*c_tm1 + (1 - f)*self.activation(z_c)"


def test_functions_from_tables():
    assert keras_printer.doprint(nodes.call("sigmoid", S("f"))) == "ops.sigmoid(f)"
    assert tf_printer.doprint(nodes.call("sigmoid", S("f"))) == "tf.sigmoid(f)"
    assert tf_printer.doprint(nodes.call("hard_sigmoid", S("f"))) == "tf_keras.activations.hard_sigmoid(f)"
    assert keras_printer.doprint(nodes.call("gelu", S("f"))) == "ops.gelu(f, approximate=False)"


@pytest.mark.parametrize("target", sorted(DIALECTS))
@pytest.mark.parametrize("function", sorted(set(nodes.FUNCTIONS) - {"layer_norm", "identity"}))
def test_every_function_prints_exposed_or_not(function, target):
    """Each function has code on each target, and an exposed one (one argument: a Keras
    activation) calls the owner's attribute (`self.` in the cell, `cell.` in the layer's scan)."""
    dialect = DIALECTS[target]
    args = [S("z"), S("y")][:nodes.FUNCTIONS[function]]
    plain = CodePrinter(dialect, "self", {}).doprint(nodes.call(function, *args))
    assert "(z" in plain and not plain.startswith(f"{function}(")
    assert all(a.name in plain for a in args)
    if len(args) > 1:
        return
    for owner in ("self", "cell"):
        exposed = CodePrinter(dialect, owner, {function: "my_activation"}).doprint(nodes.call(function, S("z")))
        assert exposed == f"{owner}.my_activation(z)"


def test_attributes_print_with_their_owner():
    e = nodes.mul(S("inputs"), nodes.Attribute("p"))
    assert keras_printer.doprint(e) == "inputs*self.p"
    assert CodePrinter(KERAS, "cell", {}).doprint(e) == "inputs*cell.p"


def test_floats_print_as_written():
    assert keras_printer.doprint(nodes.mul(sympy.Float("0.2"), S("f"))) == "0.2*f"


def test_division_and_negation():
    assert keras_printer.doprint(nodes.div(S("f"), nodes.add(sympy.Integer(1), S("c_tm1")))) == "f/(1 + c_tm1)"
    assert keras_printer.doprint(nodes.neg(S("f"))) == "-f"


def test_unfused_matrix_product_is_refused():
    with pytest.raises(PrinterError):
        keras_printer.doprint(nodes.matmul(S("W"), S("x")))


def test_foreign_nodes_are_refused():
    with pytest.raises(PrinterError):
        keras_printer.doprint(sympy.Integral(S("f"), S("c_tm1")))


def test_plain_printer_writes_the_spec_syntax():
    plain = PlainPrinter(["h", "c"], "x")
    e = nodes.call("tanh", nodes.add(nodes.matmul(S("W"), S("x")), nodes.matmul(S("U"), nodes.prev("h"))))
    assert plain.doprint(e) == "tanh(W x_t + U h_{t-1})"


def test_torch_prints_a_gate_mixing_two_values_as_lerp():
    from eqcell.targets import TORCH
    torch_printer = CodePrinter(TORCH, "self", {"tanh": "activation"}, constants={"beta"})
    one_minus = lambda v: nodes.add(sympy.Integer(1), nodes.neg(v))  # noqa: E731
    gru = nodes.add(nodes.mul(S("z"), S("h_tm1")), nodes.mul(one_minus(S("z")), nodes.call("tanh", S("n"))))
    assert torch_printer.doprint(gru) == "torch.lerp(self.activation(n), h_tm1, z)"
    assert keras_printer.doprint(gru) == "z*h_tm1 + (1 - z)*self.activation(n)"   # keras has no lerp
    mingru = nodes.add(nodes.mul(one_minus(S("z")), S("h_tm1")), nodes.mul(S("z"), S("htilde")))
    assert torch_printer.doprint(mingru) == "torch.lerp(h_tm1, htilde, z)"
    # not a mix of two tensors: a number or a constant on one side, a third term, another weight
    for expr in (nodes.add(nodes.mul(one_minus(S("z")), sympy.Integer(2)), nodes.mul(S("z"), S("h"))),
                 nodes.add(nodes.mul(one_minus(S("z")), S("beta")), nodes.mul(S("z"), S("h"))),
                 nodes.add(nodes.mul(one_minus(S("z")), S("a")), nodes.mul(S("z"), S("h")), S("b")),
                 nodes.add(nodes.mul(one_minus(S("z")), S("a")), nodes.mul(S("f"), S("h")))):
        assert "lerp" not in torch_printer.doprint(expr), expr
