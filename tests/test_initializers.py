"""A spec's `initializers:` is what every target's fresh cell holds: each named parameter, fused or
standing alone (a peephole, IndRNN's u, Mamba's D), starts at the value its initializer gives."""
import numpy as np
import pytest

import eqcell
from conftest import SHIPPED

CONSTANT = {"ones": np.ones, "zeros": np.zeros}
CASES = [(p.stem, param.name, param.initializer) for p in SHIPPED for param in eqcell.analyze(p).params
         if param.initializer in CONSTANT]


def _sizes(spec):
    ir = eqcell.analyze(spec)
    sizes = {size: 4 for size in ir.sizes if size != ir.heads}
    if ir.heads:
        sizes[ir.heads] = 2
    return sizes, 8, 8 if ir.square_input else 5


def test_shipped_specs_name_initializers():
    assert {spec for spec, _, _ in CASES} >= {"lstm", "indrnn", "mamba_ssm", "ln_lstm", "peephole_lstm"}


@pytest.mark.parametrize(("spec", "name", "initializer"), CASES, ids=[f"{s}-{n}" for s, n, _ in CASES])
def test_keras_target_draws_the_specs_initializer(spec, name, initializer):
    pytest.importorskip("keras")
    sizes, units, width = _sizes(spec)
    cell = eqcell.load(spec)(units, **sizes)
    cell.build((None, width))
    value = np.asarray(cell.symbol_weights()[name])
    np.testing.assert_array_equal(value, CONSTANT[initializer](value.shape))


@pytest.mark.parametrize(("spec", "name", "initializer"), CASES, ids=[f"{s}-{n}" for s, n, _ in CASES])
def test_torch_target_draws_the_specs_initializer(spec, name, initializer):
    pytest.importorskip("torch")
    sizes, units, width = _sizes(spec)
    cell = eqcell.load(spec, target="torch")(width, units, **sizes)
    value = cell.symbol_weights()[name].numpy()
    np.testing.assert_array_equal(value, CONSTANT[initializer](value.shape))
