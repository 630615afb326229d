"""`eqcell verify`: its numpy interpreter computes the equations and the Keras activations; every
shipped spec verifies on both targets; broken cells (a swapped split, a dropped bias, a flipped
sign, swapped states, a wrong scan, the article's cell with a wrong slice) exit 1 naming the check.

Default run: about a minute on a 2-core CPU (one spec on JAX and one on torch, each in its own
process, take 25 s of it). `pytest -m slow` (and CI) adds every shipped spec on JAX and torch (about 2 min)."""
import math
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import REFERENCED_SPECS, VERIFIED_BY_DEFAULT
from conftest import ROOT, SHIPPED
from helpers import PAPER_CELLS
from eqcell import analyze
from eqcell.cli import cli
from eqcell.verify import (ACTIVATIONS, SPEC_FUNCTIONS, Interpreter, fused_weights, random_params,
                           verify)

keras = pytest.importorskip("keras")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="runs on the TensorFlow backend; --backend covers the others")

HANDWRITTEN = ROOT / "benchmarks" / "handwritten_slstm.py"


def run(*args, stdin=None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


# --- the interpreter -------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["keras", "tf-keras"])
def test_numpy_activations_are_keras_activations(target):
    """Every activation the interpreter knows computes what the target's Keras computes."""
    if target == "keras":
        lib, tensor = keras, keras.ops.convert_to_tensor
    else:
        import tensorflow as tf
        lib, tensor = pytest.importorskip("tf_keras"), tf.constant
    x = np.linspace(-7, 7, 281)
    for name, fn in ACTIVATIONS[target].items():
        got = np.asarray(lib.activations.get(name)(tensor(x)))
        np.testing.assert_allclose(fn(x), got, rtol=1e-6, atol=1e-6, err_msg=f"{target} {name}")


def test_numpy_spec_functions_match_the_generated_calls():
    """The spec language's functions: hard_sigmoid differs per target, the rest are the usual maths."""
    x = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(SPEC_FUNCTIONS["keras"]["hard_sigmoid"](x), np.clip(x / 6 + 0.5, 0, 1))
    np.testing.assert_allclose(SPEC_FUNCTIONS["tf-keras"]["hard_sigmoid"](x), np.clip(0.2 * x + 0.5, 0, 1))
    np.testing.assert_allclose(SPEC_FUNCTIONS["keras"]["gelu"](x),
                               0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))))
    np.testing.assert_allclose(SPEC_FUNCTIONS["keras"]["sigmoid"](x), sigmoid(x))


def test_interpreter_computes_slstm_as_the_paper_writes_it():
    """The interpreter against S-LSTM written out by hand here (Wu & King 2016, the article's defaults)."""
    ir = analyze("slstm")
    sizes = {"units": 4, "input_dim": 3, "": 1}
    p = random_params(ir, sizes, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 5, 3))
    hard_sigmoid = lambda v: np.clip(v / 6 + 0.5, 0, 1)  # noqa: E731  Keras 3's
    h, c = np.zeros((2, 4)), np.zeros((2, 4))
    outputs = []
    for t in range(5):
        f = hard_sigmoid(x[:, t] @ p["W_f"].T + h @ p["R_f"].T + p["b_f"])
        c = f * c + (1 - f) * np.tanh(x[:, t] @ p["W_c"].T + h @ p["R_c"].T + p["b_c"])
        h = np.tanh(c)
        outputs.append(h)
    trace = Interpreter(ir, "keras").run(p, x, {"h": np.zeros((2, 4)), "c": np.zeros((2, 4))})
    np.testing.assert_allclose(trace.outputs, np.stack(outputs, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(trace.states["c"], c, rtol=1e-12, atol=1e-12)


def test_interpreter_masks_and_runs_backwards_as_keras_does():
    """A masked step keeps the states and repeats the previous output (zeros before the first);
    go_backwards runs from the last step and returns the outputs in the order they ran."""
    ir = analyze("simple_rnn")
    sizes = {"units": 3, "input_dim": 2, "": 1}
    p = random_params(ir, sizes, np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((1, 4, 2))
    start = {"h": np.full((1, 3), 0.5)}
    interp = Interpreter(ir, "keras")
    mask = np.array([[False, True, False, True]])
    trace = interp.run(p, x, start, mask)
    h1 = np.tanh(x[:, 1] @ p["W"].T + start["h"] @ p["U"].T + p["b"])
    h3 = np.tanh(x[:, 3] @ p["W"].T + h1 @ p["U"].T + p["b"])
    np.testing.assert_allclose(trace.outputs[0], np.stack([np.zeros(3), h1[0], h1[0], h3[0]]))
    first_state = interp.run(p, x, start, mask, masked_output="first_state")
    np.testing.assert_allclose(first_state.outputs[0, 0], start["h"][0])   # JAX's loop
    backwards = interp.run(p, x, start, go_backwards=True)
    forwards = interp.run(p, x[:, ::-1], start)
    np.testing.assert_allclose(backwards.outputs, forwards.outputs)


def test_fused_weights_put_paper_matrices_transposed_into_their_columns():
    ir = analyze("gru")
    sizes = {"units": 2, "input_dim": 3, "": 1}
    p = random_params(ir, sizes, np.random.default_rng(0))
    fused = fused_weights(ir, p, sizes)
    assert fused["kernel"].shape == (3, 6) and fused["bias"].shape == (2, 6)
    np.testing.assert_array_equal(fused["kernel"][:, 2:4], p["W_ir"].T)      # (out, in) -> (in, out)
    np.testing.assert_array_equal(fused["recurrent_kernel"][:, 4:6], p["W_hn"].T)
    np.testing.assert_array_equal(fused["bias"][1, 0:2], p["b_hz"])          # row 1: recurrent biases
    assert len({float(v.flat[0]) for v in p.values()}) == len(p)             # no two parameters alike


# --- shipped specs verify --------------------------------------------------------------------

def _classic_slow(spec, target):
    """The cells with reference tests of their own (tests/test_zoo_*.py) verify under `pytest -m slow`,
    but for a few on the keras target (VERIFIED_BY_DEFAULT)."""
    if spec in REFERENCED_SPECS and (target != "keras" or spec not in VERIFIED_BY_DEFAULT):
        return pytest.param(spec, target, marks=pytest.mark.slow)
    return pytest.param(spec, target)


@pytest.mark.parametrize(("spec", "target"), [_classic_slow(p.stem, target) for p in SHIPPED
                                              for target in ["keras", "tf-keras"]])
def test_every_shipped_spec_verifies(spec, target):
    if target == "tf-keras":
        pytest.importorskip("tf_keras")
    lines = []
    report = verify(spec, target=target, echo=lines.append)
    assert report.ok, "\n".join(lines)
    names = {c.name for c in report.checks}
    assert {"weights", "cell step", "A RNN(cell)", "C layer", "E gradients"} <= names
    if target == "keras":
        text = "\n".join(lines)
        # a cell that needs input_dim == units never has as many input features as its projection;
        # nor does one whose step reads x_t itself besides (x_{t-1} is a state), unless it reads x_t only
        ir = analyze(spec)
        only_input = ir.projected == (ir.input_local,)
        hoisted = not ir.square_input and (only_input or ir.input_local not in ir.projected)
        assert ("[step loop, projection hoisted]" in text) == hoisted
        assert ("[step loop, projection per step]" in text) == (not only_input)
        assert ("[parallel scan]" in text) == (analyze(spec).scan is not None)


def test_cli_verify_prints_checks_and_exits_0():
    result = run("verify", "slstm")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("verify SLSTMCell (generated module) against its equations: target keras")
    assert any(line.startswith("  ok   cell step") and "max abs err" in line for line in lines)
    assert lines[-1].startswith("ok: ") and lines[-1].endswith(" s")


def test_spec_from_stdin_verifies():
    result = run("verify", "-", stdin=(ROOT / "specs" / "mingru.yaml").read_bytes())
    assert result.exit_code == 0, result.output


def test_the_articles_handwritten_cell_verifies():
    """The answer to the article's "I don't know if the implementation is correct": it is."""
    result = run("verify", str(ROOT / "specs" / "slstm.yaml"), "--module", f"{HANDWRITTEN}:SLSTMCell")
    assert result.exit_code == 0, result.output
    assert "filled by fused name: kernel = [W_f | W_c], recurrent_kernel = [R_f | R_c], bias = [b_f | b_c]" \
        in result.output


# --- broken cells are caught -----------------------------------------------------------------

SLSTM_MUTANTS = {  # the generated keras-target S-LSTM module, broken one way each
    "swapped split": ("z_f, z_c = ops.split(z, 2, axis=-1)", "z_c, z_f = ops.split(z, 2, axis=-1)"),
    "dropped bias": ("z_x = z_x + self.bias", "z_x = z_x"),
    "flipped sign": ("c = f*c_tm1 + (1 - f)*self.activation(z_c)", "c = f*c_tm1 - (1 - f)*self.activation(z_c)"),
    "swapped states": ("return h, [h, c]", "return h, [c, h]"),
}


def mutant(tmp_path, code, old, new, name="mutant.py"):
    assert code.count(old) == 1, old
    path = tmp_path / name
    path.write_text(code.replace(old, new))
    return path


@pytest.mark.parametrize("kind", sorted(SLSTM_MUTANTS))
def test_broken_generated_cell_exits_1_naming_the_check(tmp_path, kind):
    from eqcell import generate

    path = mutant(tmp_path, generate("slstm"), *SLSTM_MUTANTS[kind])
    result = run("verify", "slstm", "--module", str(path))
    assert result.exit_code == 1, result.output
    assert "FAIL cell step" in result.output
    assert "FAIL A RNN(cell)" in result.output and "FAIL A layer" in result.output
    which = "state h" if kind == "swapped states" else "output h"
    assert f"{which} differs from the equations first at step t=0" in result.output
    assert result.output.splitlines()[-1].startswith("FAILED: ")


def test_a_hand_edited_symbol_layout_is_caught(tmp_path):
    """The cell computes right, but its symbol_weights/set_symbol_weights swap W_f and W_c."""
    from eqcell import generate

    code = generate("slstm")
    for old, new in [('"W_f": ("kernel", None, 0, self.units, True)', '"W_f": ("kernel", None, 0, 0, True)'),
                     ('"W_c": ("kernel", None, self.units, 2 * self.units, True)',
                      '"W_c": ("kernel", None, 0, self.units, True)'),
                     ('"W_f": ("kernel", None, 0, 0, True)',
                      '"W_f": ("kernel", None, self.units, 2 * self.units, True)')]:
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    path = tmp_path / "layout.py"
    path.write_text(code)
    result = run("verify", "slstm", "--module", str(path))
    assert result.exit_code == 1, result.output
    assert "FAIL symbol weights" in result.output and "symbol_weights()['W_f']" in result.output
    assert result.output.count("  FAIL ") == 1


def test_broken_scan_is_caught_on_the_scan_path_only(tmp_path):
    """A bug in the layer's parallel scan alone: the cell and the loop agree, the scan does not."""
    from eqcell import generate

    path = mutant(tmp_path, generate("mingru"), "h = _linear_scan(1 - z, z*htilde, h_tm1, keep, frame)",
                  "h = _linear_scan(1 - z, htilde, h_tm1, keep, frame)")
    result = run("verify", "mingru", "--module", str(path))
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("  FAIL")]
    assert failed and all("[parallel scan]" in line or "parallel_scan=True" in line for line in failed), failed
    assert "  ok   cell step" in result.output


def test_broken_tf_keras_cell_is_caught(tmp_path):
    pytest.importorskip("tf_keras")
    from eqcell import generate

    path = mutant(tmp_path, generate("lstm", target="tf-keras"), "z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)",
                  "z_f, z_i, z_c, z_o = tf.split(z, 4, axis=-1)")
    result = run("verify", "lstm", "--target", "tf-keras", "--module", str(path))
    assert result.exit_code == 1, result.output
    assert "FAIL cell step" in result.output


def test_the_articles_cell_with_a_wrong_slice_is_caught(tmp_path):
    path = mutant(tmp_path, HANDWRITTEN.read_text(), "h_tm1, self.recurrent_kernel[:, :self.units]))",
                  "h_tm1, self.recurrent_kernel[:, self.units:]))", name="handwritten.py")
    result = run("verify", "slstm", "--module", f"{path}:SLSTMCell")
    assert result.exit_code == 1, result.output
    assert "FAIL cell step" in result.output


def test_a_cell_with_other_weights_says_which_layout_it_needs(tmp_path):
    path = mutant(tmp_path, HANDWRITTEN.read_text(), 'name="recurrent_kernel"', 'name="U"', name="renamed.py")
    result = run("verify", "slstm", "--module", str(path))
    assert result.exit_code == 1, result.output
    assert "missing ['recurrent_kernel'], unexpected ['U']" in result.output
    assert "recurrent_kernel = [R_f | R_c] (5, 10)" in result.output


# --- usage errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["slstm", "--module", "no/such/file.py"], "no such file"),
    (["slstm", "--module", f"{HANDWRITTEN}:NoSuchClass"], "has no class 'NoSuchClass'"),
    (["slstm", "--backend", "tensorflow,cntk"], "unknown backend cntk"),
    (["slstm", "--target", "tf-keras", "--backend", "jax"], "TensorFlow only"),
    (["slstn"], "did you mean 'slstm'?"),
])
def test_usage_and_spec_errors_exit_2(args, message):
    result = run("verify", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_stdin_that_is_not_utf8_is_a_spec_error():
    result = run("verify", "-", stdin=b"name: X\nequations: |\n  h_t = tanh(W x_t \xff)\n")
    assert result.exit_code == 2, result.output
    assert "<stdin>:3:" in result.output and "not UTF-8" in result.output


# --- other backends, each in its own process -------------------------------------------------

@pytest.mark.slow   # a fresh process per backend; the representative reruns cover JAX and torch in the default run
@pytest.mark.parametrize("backend, spec", [("jax", "qrnn"), ("torch", "slstm")])
def test_other_backends_in_a_subprocess(backend, spec):
    pytest.importorskip(backend)
    import subprocess

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-m", "eqcell", "verify", spec, "--backend", backend],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"backend {backend}, float32" in out.stdout
    assert f"backends: {backend} ok;" in out.stdout


@pytest.mark.slow
def test_every_shipped_spec_on_jax_and_torch():
    import subprocess

    for spec in SHIPPED:
        out = subprocess.run([sys.executable, "-m", "eqcell", "verify", spec.stem, "--backend", "jax,torch"],
                             capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr


# --- cells beyond the shipped ones -----------------------------------------------------------

MORE = {
    "layer_norm_learned_sizes": """name: NormSumCell
initial_state: {s: learned, q: 0.5}
sizes: {q: qs}
equations: |
  q_t = tanh(V q_{t-1} + LN(G x_t) + c)
  s_t = s_{t-1} + W x_t + LN(q_t)
""",
    "peephole_lstm": PAPER_CELLS["peephole_lstm"],
    "sru_square_input": PAPER_CELLS["sru"],
    "mgu_latex": r"""name: MGUCell
equations: |
  f_t &= \sigma(W_f x_t + U_f h_{t-1} + b_f) \\
  \tilde{h}_t &= \tanh(W_h x_t + U_h (f_t \odot h_{t-1}) + b_h) \\
  h_t &= (1 - f_t) \odot h_{t-1} + f_t \odot \tilde{h}_t
""",
    "many_functions_exposed": """name: ManyFunctionsCell
output: y
activations:
  act: {symbol: softsign, default: mish}
equations: |
  a_t = exp(-abs(W_a x_t)) / (1 + softplus(U_a h_{t-1}))
  h_t = a_t * h_{t-1} + sqrt(1 - a_t * a_t + 0.01) * tanh(W_h x_t)
  y_t = gelu(h_t) - 0.5 * silu(h_t) + elu(h_t) * softsign(h_t) + hard_sigmoid(h_t) * log(1 + exp(h_t))
""",
    "janet_constant": """name: JANETCell
constants: {beta: 1.0}
equations: |
  s_t = W_f x_t + U_f h_{t-1} + b_f
  htilde_t = tanh(W_c x_t + U_c h_{t-1} + b_c)
  h_t = sigmoid(s_t) * h_{t-1} + (1 - sigmoid(s_t - beta)) * htilde_t
""",
    "scalar_gates": """name: ScalarGateCell
sizes: {i: 1, f: 1, beta: 1}
equations: |
  i_t = exp(W_i x_t + b_i) * beta
  f_t = sigmoid(W_f x_t + b_f)
  c_t = f_t * c_{t-1} + i_t * tanh(W_z x_t + R_z h_{t-1} + b_z)
  n_t = f_t * n_{t-1} + i_t
  h_t = sigmoid(W_o x_t + R_o h_{t-1} + b_o) * c_t / max(n_t, 1)
""",
    "format_2_elementwise": r"""name: Format2Cell
equations: |
  a_t &= \sigma(W_a x_t + U^{(a)} h_{t-1}) \\
  g_t &= \max\{\tanh(W_g x_t), \min(a_t, 0.5)\} - \mathrm{logsigmoid}(x_t) \\
  h_t &= a_t^{2} \odot h_{t-1} + (1 - a_t)^{a_t + 1} \odot \lvert g_t \rvert + \frac{1}{2} \sqrt{a_t} + e^{-a_t}
""",
}


@pytest.mark.parametrize("target", ["keras", pytest.param("tf-keras", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", sorted(MORE))
def test_more_cells_verify(name, target):
    if target == "tf-keras":
        pytest.importorskip("tf_keras")
    lines = []
    report = verify(MORE[name], target=target, echo=lines.append)
    assert report.ok, "\n".join(lines)
