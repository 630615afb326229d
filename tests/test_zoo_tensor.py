"""The tensor-valued cells shipped in specs/ (mLSTM and sLSTM of xLSTM, GLA, DeltaNet, Gated DeltaNet,
Mamba's selective SSM) equal float64 references written from their authors' code
(tests/zoo_references.py: NX-AI/xlstm, fla-org/flash-linear-attention, state-spaces/mamba), never
from eqcell's specs or generated code.

Each cell is the generated full-sequence layer (`eqcell.load_layer("specs/<name>.yaml")`; two heads for
the specs with heads, mLSTM, sLSTM and GLA) with a different random draw for every parameter, set in
the paper's orientation with `cell.set_symbol_weights` (the references take the same names with a
leading head axis, of 1 for the cells without heads); it
runs `return_sequences=True, return_state=True` from zeros and from random initial states, and the
outputs and every final state (matrix states flattened row-major) must equal the reference's to
float32 precision. Also: the stabilised mLSTM and sLSTM give the unstabilised equations' h, with
states that differ by the stabiliser's factor exp(m_t); the LaTeX specs generate the same module
as the same equations in plain text. TensorFlow in the default run; JAX and torch under -m slow.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import eqcell  # noqa: E402
import zoo_references as zoo  # noqa: E402
from conftest import ROOT, SPECS  # noqa: E402
from helpers import assert_close  # noqa: E402

BATCH, STEPS, FEATURES, UNITS, KEY, D_STATE = 3, 7, 5, 6, 4, 4

# spec -> (its reference, the layer's state list in order, constructor arguments beyond units)
CELLS = {
    "mlstm": (zoo.mlstm, ("C", "n", "m"), {"key_units": KEY, "d": KEY}),
    "xlstm_slstm": (zoo.slstm_xlstm, ("h", "c", "n", "m"), {}),
    "gla": (zoo.gla, ("S",), {"key_units": KEY}),
    "deltanet": (zoo.deltanet, ("S",), {"key_units": KEY}),
    "gated_deltanet": (zoo.gated_deltanet, ("S",), {"key_units": KEY}),
    "mamba_ssm": (zoo.mamba_ssm, ("h",), {"d_state": D_STATE}),
}
# a matrix state's (rows, cols) as the reference keeps it; every other state has its own shape
MATRIX_STATES = {("mlstm", "C"): (UNITS, KEY), ("gla", "S"): (KEY, UNITS), ("deltanet", "S"): (UNITS, KEY),
                 ("gated_deltanet", "S"): (UNITS, KEY), ("mamba_ssm", "h"): (UNITS, D_STATE)}
STATE_SIZES = {("mlstm", "n"): KEY, ("mlstm", "m"): 1}


# the specs with heads (a constructor argument): compared with 2 heads; other tests take 1
HEADS = {"mlstm": 2, "xlstm_slstm": 2, "gla": 2}


def _layer(name, **kwargs):
    _, _, arguments = CELLS[name]
    if name in HEADS:
        kwargs.setdefault("num_heads", 1)
    return eqcell.load_layer(SPECS / f"{name}.yaml")(UNITS, return_sequences=True, return_state=True,
                                                     **{**arguments, **kwargs})


def _features(name):
    return UNITS if name == "mamba_ssm" else FEATURES  # Mamba scans x_t itself: input_dim == units


def _random_params(name, cell, seed):
    """A different draw for every parameter (two swapped parameters cannot pass), in the paper's
    orientation as the cell reports it; gates and decays kept in their useful range."""
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 0.5, np.shape(v)) for k, v in sorted(cell.symbol_weights().items())}
    if name == "mlstm":
        params["b_f"] = params["b_f"] + 1.0  # a forget gate that mostly keeps
    if name == "mamba_ssm":
        params["A"] = -np.exp(params["A"])  # mamba's A = -exp(A_log): a decay
    return params


def _reference_params(name, params):
    """The draft's interface: a leading head axis (the specs with heads have it already); GLA's
    row-vector weights (in, out) transposed to the draft's (out, in)."""
    if name == "gla":
        params = {k: np.swapaxes(v, -1, -2) if k.startswith("W_") else v for k, v in params.items()}
    return {k: np.asarray(v) if name in HEADS else np.asarray(v)[None] for k, v in params.items()}


def _flat(value):
    """A reference state (batch, 1, ...) as the layer keeps it: (batch, size), matrices row-major."""
    return value.reshape(value.shape[0], -1)


def _random_states(name, rng, heads=1):
    """Random initial states, per head as the reference takes them (batch, heads, ...)."""
    _, state_names, _ = CELLS[name]
    states = {}
    for s in state_names:
        shape = MATRIX_STATES.get((name, s), (STATE_SIZES.get((name, s), UNITS),))
        shape = tuple(d // heads if d > 1 else d for d in shape)  # one head's share of each size
        states[s] = rng.normal(0.0, 0.5, (BATCH, heads) + shape)
    if name == "xlstm_slstm":
        states["n"] = np.abs(states["n"]) + 0.5  # a normaliser: positive, as any n_t is
    return states


def _run(name, seed, layer_kwargs=None):
    """(the layer's [outputs, *states], the reference's), from zeros and from random initial states."""
    reference, state_names, arguments = CELLS[name]
    heads = (layer_kwargs or {}).get("num_heads", HEADS.get(name, 1))
    layer = _layer(name, **{"num_heads": heads, **(layer_kwargs or {})} if name in HEADS else (layer_kwargs or {}))
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((BATCH, STEPS, _features(name)))
    layer(x.astype("float32"))
    params = _random_params(name, layer.cell, seed)
    layer.cell.set_symbol_weights(params)
    for key, value in layer.cell.symbol_weights().items():  # the weights went in as set
        np.testing.assert_allclose(ops.convert_to_numpy(value), params[key], rtol=1e-6, atol=1e-6, err_msg=key)
    constants = {"d": arguments["d"]} if "d" in arguments else None
    runs = []
    for initial in (None, _random_states(name, rng, heads)):
        kwargs = {} if initial is None else {
            "initial_state": [_flat(initial[s]).astype("float32") for s in state_names]}
        got = [ops.convert_to_numpy(t) for t in layer(x.astype("float32"), **kwargs)]
        outputs, final = reference(x, _reference_params(name, params), constants, initial_states=initial)
        runs.append((got, [outputs] + [_flat(final[s]) for s in state_names]))
    return runs


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_equals_the_authors_reference(name):
    _, state_names, _ = CELLS[name]
    for start, (got, want) in zip(("zeros", "random"), _run(name, seed=sorted(CELLS).index(name))):
        assert len(got) == len(want) == 1 + len(state_names), (name, len(got))
        for label, g, w in zip(("outputs",) + state_names, got, want):
            assert np.all(np.isfinite(w)) and np.std(w) > 1e-3, f"{name}: a degenerate reference {label}"
            assert g.shape == w.shape, f"{name} {label}: shape {g.shape} != {w.shape}"
            assert_close(g, w, f"{name} {label} from {start} initial states")


def test_matrix_states_are_row_major_in_the_papers_orientation():
    """C of mLSTM is v k^T, (units, key_units): a state whose row 0 alone is set reads back, through
    C_t q_t, into output unit 0 only (q = b_q with every input weight zero)."""
    layer = _layer("mlstm")
    x = np.zeros((1, 1, FEATURES), "float32")
    layer(x)
    params = {k: np.zeros(np.shape(v)) for k, v in layer.cell.symbol_weights().items()}
    params["b_q"] = np.ones((1, KEY))  # one head
    params["b_f"] = np.full((1, 1), 50.0)  # f_t = 1, and i_t = exp(0 - m_t) with k_t = 0: nothing written
    layer.cell.set_symbol_weights(params)
    C0 = np.zeros((1, UNITS, KEY), "float32")
    C0[0, 0, :] = 1.0
    n0 = np.ones((1, KEY), "float32")
    out = ops.convert_to_numpy(layer(x, initial_state=[C0.reshape(1, -1), n0, np.zeros((1, 1), "float32")])[0])
    assert out[0, 0, 0] > 0.1 and np.all(np.abs(out[0, 0, 1:]) < 1e-6), out


# ---------------------------------------------------------------- stabilised == unstabilised

SLSTM_UNSTABILISED = """name: UnstabilisedSLSTMCell
states: [h, c, n]
equations: |
  i_t = exp(W_i x_t + R_i h_{t-1} + b_i)
  f_t = sigmoid(W_f x_t + R_f h_{t-1} + b_f)
  z_t = tanh(W_z x_t + R_z h_{t-1} + b_z)
  o_t = sigmoid(W_o x_t + R_o h_{t-1} + b_o)
  c_t = f_t * c_{t-1} + i_t * z_t
  n_t = f_t * n_{t-1} + i_t
  h_t = o_t * c_t / n_t
"""


def _stabiliser_scale(m):
    scale = np.exp(m)
    # the fact tested is not vacuous: the stabiliser moved the states by more than rounding
    assert np.max(np.abs(m)) > 0.1, f"m stayed at {np.max(np.abs(m))}: pick weights that move it"
    return scale


def test_mlstm_stabilised_equals_the_papers_unstabilised_form():
    """xLSTM eqs. (19)-(27) without the stabiliser (zoo_references.mlstm_unstabilised) give the same
    h; C_t and n_t are the stabilised ones times exp(m_t)."""
    layer = _layer("mlstm")
    rng = np.random.default_rng(21)
    x = rng.standard_normal((BATCH, STEPS, FEATURES))
    layer(x.astype("float32"))
    params = _random_params("mlstm", layer.cell, 21)
    params["b_i"] = params["b_i"] + 2.0  # input gates exp(itilde) > 1: m_t moves away from 0
    layer.cell.set_symbol_weights(params)
    h, C, n, m = (ops.convert_to_numpy(t) for t in layer(x.astype("float32")))
    want_h, want = zoo.mlstm_unstabilised(x, _reference_params("mlstm", params), {"d": KEY})
    assert_close(h, want_h, "mLSTM h, stabilised vs unstabilised")
    scale = _stabiliser_scale(m)  # (batch, 1)
    assert_close(C * scale, want["C"].reshape(BATCH, -1), "mLSTM C exp(m) vs unstabilised C")
    assert_close(n * scale, want["n"][:, 0], "mLSTM n exp(m) vs unstabilised n")
    assert np.max(np.abs(C - want["C"].reshape(BATCH, -1))) > 1e-2, "the states should differ"


def test_slstm_stabilised_equals_the_papers_unstabilised_form():
    """xLSTM eqs. (8)-(14) without the stabiliser (eqs. 15-17), written here in plain text: the same
    h; c_t and n_t are the stabilised ones times exp(m_t)."""
    rng = np.random.default_rng(22)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    stable = _layer("xlstm_slstm")
    plain = eqcell.load_layer(SLSTM_UNSTABILISED)(UNITS, return_sequences=True, return_state=True)
    stable(x)
    plain(x)
    params = _random_params("xlstm_slstm", stable.cell, 22)
    params["b_i"] = params["b_i"] + 1.5
    stable.cell.set_symbol_weights(params)
    plain.cell.set_symbol_weights({k: v[0] for k, v in params.items()})  # one head: its parameters
    h, _, c, n, m = (ops.convert_to_numpy(t) for t in stable(x))
    want_h, _, want_c, want_n = (ops.convert_to_numpy(t) for t in plain(x))
    assert_close(h, want_h, "sLSTM h, stabilised vs unstabilised")
    scale = _stabiliser_scale(m)  # (batch, units)
    assert_close(c * scale, want_c, "sLSTM c exp(m) vs unstabilised c")
    assert_close(n * scale, want_n, "sLSTM n exp(m) vs unstabilised n")
    assert np.max(np.abs(n - want_n)) > 1e-2, "the states should differ"


# ---------------------------------------------------------------- LaTeX == plain text

PLAIN = {
    "mlstm": r"""
  q_t = W_q x_t + b_q
  k_t = (1/sqrt(d)) W_k x_t + b_k
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
""",
    "xlstm_slstm": r"""
  itilde_t = W_i x_t + R_i h_{t-1} + b_i
  ftilde_t = W_f x_t + R_f h_{t-1} + b_f
  z_t = tanh(W_z x_t + R_z h_{t-1} + b_z)
  o_t = sigmoid(W_o x_t + R_o h_{t-1} + b_o)
  m_t = max(logsigmoid(ftilde_t) + m_{t-1}, itilde_t)
  i_t = exp(itilde_t - m_t)
  f_t = exp(logsigmoid(ftilde_t) + m_{t-1} - m_t)
  c_t = f_t * c_{t-1} + i_t * z_t
  n_t = f_t * n_{t-1} + i_t
  htilde_t = c_t / n_t
  h_t = o_t * htilde_t
""",
    "gla": r"""
  q_t = x_t W_q
  k_t = x_t W_k
  v_t = x_t W_v
  alpha_t = sigmoid(x_t W_alpha + b_alpha)^(1/tau)
  S_t = diag(alpha_t) S_{t-1} + k_t^T v_t
  o_t = q_t S_t
""",
    "deltanet": r"""
  q_t = W_q x_t
  k_t = W_k x_t / ‖W_k x_t‖
  v_t = W_v x_t
  beta_t = sigmoid(W_beta x_t + b_beta)
  S_t = S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T
  o_t = S_t q_t
""",
    "gated_deltanet": r"""
  q_t = W_q x_t
  k_t = W_k x_t / ‖W_k x_t‖
  v_t = W_v x_t
  alpha_t = sigmoid(W_alpha x_t + b_alpha)
  beta_t = sigmoid(W_beta x_t + b_beta)
  S_t = S_{t-1} (alpha_t(I - beta_t k_t k_t^T)) + beta_t v_t k_t^T
  o_t = S_t q_t
""",
    "mamba_ssm": r"""
  Delta_t = softplus(W_delta x_t + b_delta)
  B_t = W_B x_t
  C_t = W_C x_t
  h_t = exp(diag(Delta_t) A) * h_{t-1} + (Delta_t * x_t) B_t^T
  y_t = h_t C_t + D * x_t
""",
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_latex_spec_equals_plain_text(name):
    """The shipped spec (the paper's LaTeX) and the same equations in plain text: the same module."""
    text = (SPECS / f"{name}.yaml").read_text(encoding="utf-8")
    head, sep, latex = text.partition("equations: |\n")
    assert sep and "\\" in latex, f"{name}: the shipped equations should be LaTeX"
    plain = head + sep + PLAIN[name].lstrip("\n")
    assert eqcell.generate(plain) == eqcell.generate(text)


# ---------------------------------------------------------------- other backends

def test_runs_on_the_backend_asked_for():
    """Guards the reruns below: KERAS_BACKEND reached Keras (TensorFlow when unset)."""
    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


def _rerun(backend):
    module = {"jax": "jax", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_zoo_tensor.py",
         "-k", "equals_the_authors_reference or stabilised or row_major or backend_asked_for"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = "\n".join(result.stdout.splitlines()[-30:])
    assert result.returncode == 0, f"KERAS_BACKEND={backend}:\n{tail}\n{result.stderr[-2000:]}"
    assert f"{len(CELLS) + 4} passed" in tail, tail


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_equals_the_references_on_backend(backend):
    _rerun(backend)
