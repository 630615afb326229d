"""Tensor-valued cells and heads (spec format 2): properties that must hold whatever the weights.

The cells' agreement with their authors' code is tested in test_zoo_tensor.py; here: LaTeX reads
back to the same module, renaming changes nothing, one head equals no heads, heads are
independent (permuting the heads' weights permutes the heads' outputs), every product form
agrees with numpy, and `verify` passes on the constructs no shipped spec uses."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import eqcell  # noqa: E402
from eqcell.cli import cli  # noqa: E402

MLSTM = """name: MLSTMCell
sizes: {q: key_units, k: key_units, itilde: 1, ftilde: 1, m: 1}
constants: {d: 4}
states: [C, n, m]
equations: |
  q_t = W_q x_t + b_q
  k_t = (W_k x_t) / sqrt(d) + b_k
  v_t = W_v x_t + b_v
  itilde_t = W_i x_t + b_i
  ftilde_t = W_f x_t + b_f
  o_t = sigmoid(W_o x_t + b_o)
  m_t = max(logsigmoid(ftilde_t) + m_{t-1}, itilde_t)
  i_t = exp(itilde_t - m_t)
  f_t = exp(logsigmoid(ftilde_t) + m_{t-1} - m_t)
  C_t = f_t C_{t-1} + i_t v_t k_t^T
  n_t = f_t n_{t-1} + i_t k_t
  htilde_t = C_t q_t / max(|n_t^T q_t|, exp(-m_t))
  h_t = o_t * htilde_t
"""

# every product form, transposes, diag on both sides, I, the norm, a matrix parameter used
# element-wise, a matrix-matrix product and a row vector read back as a vector
PRODUCTS = """name: ProductsCell
sizes: {k: key_units, s: 1}
output: y
equations: |
  k_t = tanh(W_k x_t)
  v_t = tanh(W_v x_t)
  s_t = sigmoid(W_s x_t)
  S_t = diag(v_t) S_{t-1} diag(s_t k_t) (I - s_t k_t k_t^T / (1 + ‖k_t‖^2)) + v_t k_t^T + 0.1 * A * S_{t-1}
  r_t = k_t^T S_t^T
  y_t = tanh(S_t k_t + r_t * v_t + (v_t^T S_t k_t) * v_t + U y_{t-1})
"""


def _numpy_products(x, w, units, key):
    """PRODUCTS written out in numpy, one example axis, from the equations."""
    batch, steps, _ = x.shape
    S = np.zeros((batch, units, key))
    y = np.zeros((batch, units))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    outs = []
    for t in range(steps):
        xt = x[:, t]
        k = np.tanh(xt @ w["W_k"].T)
        v = np.tanh(xt @ w["W_v"].T)
        s = sig(xt @ w["W_s"].T)
        eye = np.eye(key)
        inner = eye - (s / (1 + np.sum(k * k, -1, keepdims=True)))[:, :, None] * np.einsum("bi,bj->bij", k, k)
        S = (v[:, :, None] * S * (s * k)[:, None, :]) @ inner + np.einsum("bi,bj->bij", v, k) + 0.1 * w["A"] * S
        r = np.einsum("bj,bij->bi", k, S)  # k^T S^T, a row vector of units
        quad = np.einsum("bi,bij,bj->b", v, S, k)[:, None]
        y = np.tanh(np.einsum("bij,bj->bi", S, k) + r * v + quad * v + y @ w["U"].T)
        outs.append(y)
    return np.stack(outs, 1), S.reshape(batch, -1), y


def _layer(text, units, **kwargs):
    return eqcell.load_layer(text)(units, return_sequences=True, return_state=True, **kwargs)


def _random_weights(cell, seed):
    rng = np.random.default_rng(seed)
    return {name: 0.5 * rng.standard_normal(value.shape) for name, value in cell.symbol_weights().items()}


def _run(layer, x, weights=None, seed=1):
    layer(x)
    weights = weights or _random_weights(layer.cell, seed)
    layer.cell.set_symbol_weights(weights)
    return weights, [np.asarray(v) for v in layer(x)]


def test_every_product_form_equals_numpy():
    x = np.random.default_rng(0).standard_normal((3, 6, 4)).astype("float32")
    layer = _layer(PRODUCTS, 5, key_units=3)
    w, (ys, y, S) = _run(layer, x)  # the state list: the output first
    want_ys, want_S, want_y = _numpy_products(x.astype(float), w, 5, 3)
    np.testing.assert_allclose(ys, want_ys, atol=2e-5)
    np.testing.assert_allclose(S, want_S, atol=2e-5)
    np.testing.assert_allclose(y, want_y, atol=2e-5)


def test_products_verify():
    from eqcell.verify import verify

    report = verify(PRODUCTS)
    assert report.ok, "\n".join(f"{c.name}: {c.detail}" for c in report.checks if not c.ok)


def _latex_of(text):
    result = CliRunner().invoke(cli, ["show", "-", "--latex"], input=text)
    assert result.exit_code == 0, result.output
    latex = result.output.split("equations (as parsed):\n")[1].split("\n\n")[0].splitlines()
    head = text.partition("equations: |\n")[0]
    return head + "equations: |\n" + "".join(line + "\n" for line in latex)


@pytest.mark.parametrize("text", [MLSTM, PRODUCTS], ids=["mlstm", "products"])
def test_show_latex_reads_back_to_the_same_module(text):
    assert eqcell.generate(_latex_of(text)) == eqcell.generate(text)


MLSTM_LATEX = r"""name: MLSTMCell
sizes: {q: key_units, k: key_units, itilde: 1, ftilde: 1, m: 1}
constants: {d: 4}
states: [C, n, m]
equations: |
  \mathbf{q}_t &= W_q \mathbf{x}_t + \mathbf{b}_q \\
  \mathbf{k}_t &= \frac{W_k \mathbf{x}_t}{\sqrt{d}} + \mathbf{b}_k \\
  \mathbf{v}_t &= W_v \mathbf{x}_t + \mathbf{b}_v \\
  \tilde{i}_t &= W_i \mathbf{x}_t + b_i \\
  \tilde{f}_t &= W_f \mathbf{x}_t + b_f \\
  \mathbf{o}_t &= \sigma(W_o \mathbf{x}_t + \mathbf{b}_o) \\
  m_t &= \max\{\mathrm{logsigmoid}(\tilde{f}_t) + m_{t-1}, \tilde{i}_t\} \\
  i_t &= \exp(\tilde{i}_t - m_t) \\
  f_t &= \exp(\mathrm{logsigmoid}(\tilde{f}_t) + m_{t-1} - m_t) \\
  C_t &= f_t C_{t-1} + i_t \mathbf{v}_t \mathbf{k}_t^\top \\
  \mathbf{n}_t &= f_t \mathbf{n}_{t-1} + i_t \mathbf{k}_t \\
  \tilde{\mathbf{h}}_t &= \frac{C_t \mathbf{q}_t}{\max\left\{\left|\mathbf{n}_t^{\top} \mathbf{q}_t\right|, \exp(-m_t)\right\}} \\
  \mathbf{h}_t &= \mathbf{o}_t \odot \tilde{\mathbf{h}}_t
"""


def test_paper_latex_equals_plain_text():
    assert eqcell.generate(MLSTM_LATEX) == eqcell.generate(MLSTM)


def test_renaming_changes_nothing():
    import re

    renamed = MLSTM
    for old, new in [("C", "Mem"), ("n", "norm"), ("m", "stab")]:
        renamed = re.sub(rf"\b{old}(?=_|,|]|:)", new, renamed)
    assert "Mem_t = f_t Mem_{t-1}" in renamed and "stab_{t-1}" in renamed and "[Mem, norm, stab]" in renamed
    x = np.random.default_rng(3).standard_normal((2, 5, 4)).astype("float32")
    w, a = _run(_layer(MLSTM, 6, key_units=4), x)
    _, b = _run(_layer(renamed, 6, key_units=4), x, weights=w)
    for got, want in zip(b, a):
        np.testing.assert_allclose(got, want, atol=1e-6)


def _with_heads(text, heads):
    return text.replace("\nsizes:", f"\nheads: {{arg: num_heads, default: {heads}}}\nsizes:", 1)


def test_one_head_equals_no_heads():
    x = np.random.default_rng(4).standard_normal((2, 5, 4)).astype("float32")
    w, plain = _run(_layer(MLSTM, 6, key_units=4), x)
    _, one = _run(_layer(_with_heads(MLSTM, 1), 6, key_units=4), x, weights={k: v[None] for k, v in w.items()})
    for got, want in zip(one, plain):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_heads_are_independent():
    """Swapping two heads' parameters swaps those heads' outputs and states, and nothing else."""
    x = np.random.default_rng(5).standard_normal((2, 5, 4)).astype("float32")
    heads, units, key = 3, 6, 9
    w, out = _run(_layer(_with_heads(MLSTM, heads), units, key_units=key), x)
    order = [2, 0, 1]
    _, permuted = _run(_layer(_with_heads(MLSTM, heads), units, key_units=key), x,
                       weights={k: v[order] for k, v in w.items()})

    def by_head(value):
        return value.reshape(value.shape[:-1] + (heads, -1))[..., order, :].reshape(value.shape)
    for got, want in zip(permuted, out):
        np.testing.assert_allclose(got, by_head(want), atol=1e-6)


def test_block_diagonal_recurrence_per_head():
    """sLSTM-style heads: head h's recurrent matrices read only head h's h_{t-1}; a head's
    recurrent weights can be set to zero without changing any other head."""
    text = """name: BlockCell
heads: 2
equations: |
  f_t = sigmoid(W_f x_t + R_f h_{t-1} + b_f)
  h_t = f_t * h_{t-1} + (1 - f_t) * tanh(W_z x_t + R_z h_{t-1})
"""
    x = np.random.default_rng(6).standard_normal((2, 7, 3)).astype("float32")
    w, out = _run(_layer(text, 8), x)
    assert w["R_f"].shape == (2, 4, 4) and w["W_f"].shape == (2, 4, 3) and w["b_f"].shape == (2, 4)
    changed = {k: v.copy() for k, v in w.items()}
    changed["R_z"][1] = 0.0
    _, other = _run(_layer(text, 8), x, weights=changed)
    np.testing.assert_allclose(other[0][..., :4], out[0][..., :4], atol=1e-6)  # head 0 unchanged
    assert np.abs(other[0][..., 4:] - out[0][..., 4:]).max() > 1e-3          # head 1 changed


def test_heads_refuse_sizes_they_do_not_divide():
    layer_class = eqcell.load_layer(_with_heads(MLSTM, 4))
    with pytest.raises(ValueError, match="multiple of `num_heads`"):
        layer_class(6, key_units=8)


def test_heads_serialize():
    import keras

    layer = _layer(_with_heads(MLSTM, 2), 6, key_units=4)
    x = np.random.default_rng(7).standard_normal((2, 4, 3)).astype("float32")
    layer(x)
    clone = type(layer).from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    assert clone.cell.num_heads == 2
    for got, want in zip(clone(x), layer(x)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
    assert isinstance(keras.layers.RNN(layer.cell), keras.layers.RNN)


def test_readme_mlstm_section_runs():
    """The README's mLSTM example, as written: the paper's LaTeX to a trained model."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## mLSTM, from the paper's equations to a trained model")[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    code = code.replace("epochs=2", "epochs=1").replace("(64, 20, 8)", "(16, 6, 8)")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation, not user input
    assert namespace["model"].layers[0].cell.symbol_weights()["W_k"].shape == (4, 16, 8)
    assert eqcell.generate(namespace["MLSTM"]) == eqcell.generate(_with_heads(MLSTM, 4).replace("d: 4", "d: 16")
                                                                   .replace("{arg: num_heads, default: 4}", "4"))


def test_a_function_the_paper_names_is_declared_in_activations():
    r"""`\phi(...)` with "phi is tanh" in the prose: `activations: {activation: {symbol: phi,
    default: tanh}}` declares it; the cell equals the one that writes tanh, and a typo of a known
    function is still refused."""
    declared = ("name: PhiCell\nactivations:\n  activation: {symbol: phi, default: tanh}\nequations: |\n"
                "  h_t &= \\phi(W x_t + U h_{t-1})\n")
    written = ("name: PhiCell\nactivations:\n  activation: {symbol: tanh, default: tanh}\nequations: |\n"
               "  h_t = tanh(W x_t + U h_{t-1})\n")
    x = np.random.default_rng(8).standard_normal((2, 4, 3)).astype("float32")
    w, a = _run(_layer(declared, 5), x)
    _, b = _run(_layer(written, 5), x, weights=w)
    for got, want in zip(a, b):
        np.testing.assert_allclose(got, want, atol=1e-6)
    with pytest.raises(eqcell.SpecError, match="did you mean 'sigmoid'"):
        eqcell.analyze(declared.replace("phi, default", "sigmod, default").replace("\\phi(", "sigmod("))
