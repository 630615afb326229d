"""Pin the zoo references (tests/zoo_references.py) against ground truth that is not ours.

Two kinds of ground truth:
- the authors' own code, where it runs on a CPU: xlstm (its PyTorch mLSTM backends and vanilla
  sLSTM), fla-core (the naive recurrent/chunkwise functions of GLA, DeltaNet and Gated DeltaNet,
  loaded from the installed package's files: fla's package __init__ needs triton, those files do
  not), and the `rwkv` package (RWKV-4 time mixing, `RWKV.att_seq`). Each skips when its package is
  absent (they are in the `test` extra);
- a second form written independently from the paper (parallel / attention forms, the recurrence
  unrolled as a sum or a product, the unstabilised equations) and algebraic properties that must
  hold (state continuation, stabilised == unstabilised, DeltaNet's beta = 0 and beta = 1).
mamba_ssm (needs triton and a CUDA build) and pytorch-qrnn (cupy; not on the package registry)
cannot run here: their references are pinned by the second kind only.

Weights are random, different per parameter and per head; several head counts; float64 with tight
tolerances, except where the authors' code computes in float32 (fla's naive recurrences cast to
float32; the rwkv package's matmul accepts no float64): there the tolerance is float32's.
"""
import importlib.metadata
import importlib.util
import inspect
import os
import sys

import numpy as np
import pytest

import zoo_references as zoo

TIGHT = 1e-11   # float64 against float64
F32 = 2e-5      # against code that computes in float32

BATCH, T, INPUT_DIM = 2, 8, 5


def close(actual, expected, what, tol=TIGHT):
    """Equal to `tol`, relative, and absolute on the scale of `expected` (at least 1)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---------------------------------------------------------------- random parameters, draft interface


def _normal(rng, shape, scale=0.5):
    return rng.standard_normal(shape) * scale


def mlstm_params(rng, H, d_k, d_v, input_dim=INPUT_DIM):
    return {
        "W_q": _normal(rng, (H, d_k, input_dim)), "b_q": _normal(rng, (H, d_k)),
        "W_k": _normal(rng, (H, d_k, input_dim)), "b_k": _normal(rng, (H, d_k)),
        "W_v": _normal(rng, (H, d_v, input_dim)), "b_v": _normal(rng, (H, d_v)),
        "W_i": _normal(rng, (H, 1, input_dim)), "b_i": _normal(rng, (H, 1)),
        "W_f": _normal(rng, (H, 1, input_dim)), "b_f": _normal(rng, (H, 1)) + 1.0,
        "W_o": _normal(rng, (H, d_v, input_dim)), "b_o": _normal(rng, (H, d_v)),
    }


def slstm_params(rng, H, d, input_dim=INPUT_DIM):
    p = {}
    for g in "ifzo":
        p["W_" + g] = _normal(rng, (H, d, input_dim))
        p["R_" + g] = _normal(rng, (H, d, d))
        p["b_" + g] = _normal(rng, (H, d))
    return p


def gla_params(rng, H, d_k, d_v, input_dim=INPUT_DIM):
    return {
        "W_q": _normal(rng, (H, d_k, input_dim)), "W_k": _normal(rng, (H, d_k, input_dim)),
        "W_v": _normal(rng, (H, d_v, input_dim)),
        "W_alpha": _normal(rng, (H, d_k, input_dim)), "b_alpha": _normal(rng, (H, d_k)) + 1.0,
    }


def deltanet_params(rng, H, d_k, d_v, gated=False, input_dim=INPUT_DIM):
    p = {
        "W_q": _normal(rng, (H, d_k, input_dim)), "W_k": _normal(rng, (H, d_k, input_dim)),
        "W_v": _normal(rng, (H, d_v, input_dim)),
        "W_beta": _normal(rng, (H, 1, input_dim)), "b_beta": _normal(rng, (H, 1)),
    }
    if gated:
        p["W_alpha"] = _normal(rng, (H, 1, input_dim))
        p["b_alpha"] = _normal(rng, (H, 1)) + 1.5
    return p


def mamba_params(rng, H, d, N, input_dim):
    return {
        "W_delta": _normal(rng, (H, d, input_dim)), "b_delta": _normal(rng, (H, d)) - 1.0,
        "W_B": _normal(rng, (H, N, input_dim)), "W_C": _normal(rng, (H, N, input_dim)),
        "A": -np.exp(_normal(rng, (H, d, N))), "D": _normal(rng, (H, d)),
    }


def rwkv_params(rng, units, input_dim):
    return {
        "mu_r": rng.uniform(0, 1, (1, input_dim)), "mu_k": rng.uniform(0, 1, (1, input_dim)),
        "mu_v": rng.uniform(0, 1, (1, input_dim)),
        "W_r": _normal(rng, (1, units, input_dim)), "W_k": _normal(rng, (1, units, input_dim), 1.0),
        "W_v": _normal(rng, (1, units, input_dim)), "W_o": _normal(rng, (1, units, units)),
        "u": _normal(rng, (1, units)), "w": np.exp(_normal(rng, (1, units))),
    }


def qrnn_params(rng, units, input_dim=INPUT_DIM):
    p = {}
    for g in "zfo":
        p[f"W_{g}1"] = _normal(rng, (1, units, input_dim))
        p[f"W_{g}2"] = _normal(rng, (1, units, input_dim))
        p[f"b_{g}"] = _normal(rng, (1, units))
    return p


def inputs(rng, input_dim=INPUT_DIM, T_=T, batch=BATCH):
    return rng.standard_normal((batch, T_, input_dim))


# (cell, H, params factory, input_dim, expected state shapes per head, units)
CASES = [
    ("mlstm", 1, lambda r: mlstm_params(r, 1, 3, 4), INPUT_DIM, {"C": (4, 3), "n": (3,), "m": (1,)}, 4),
    ("mlstm", 2, lambda r: mlstm_params(r, 2, 3, 2), INPUT_DIM, {"C": (2, 3), "n": (3,), "m": (1,)}, 4),
    ("mlstm_unstabilised", 4, lambda r: mlstm_params(r, 4, 2, 3), INPUT_DIM, {"C": (3, 2), "n": (2,)}, 12),
    ("slstm_xlstm", 1, lambda r: slstm_params(r, 1, 3), INPUT_DIM, {s: (3,) for s in "hcnm"}, 3),
    ("slstm_xlstm", 4, lambda r: slstm_params(r, 4, 2), INPUT_DIM, {s: (2,) for s in "hcnm"}, 8),
    ("gla", 2, lambda r: gla_params(r, 2, 3, 4), INPUT_DIM, {"S": (3, 4)}, 8),
    ("deltanet", 2, lambda r: deltanet_params(r, 2, 3, 4), INPUT_DIM, {"S": (4, 3)}, 8),
    ("gated_deltanet", 4, lambda r: deltanet_params(r, 4, 2, 3, gated=True), INPUT_DIM, {"S": (3, 2)}, 12),
    ("mamba_ssm", 1, lambda r: mamba_params(r, 1, 4, 3, 4), 4, {"h": (4, 3)}, 4),
    ("mamba_ssm", 2, lambda r: mamba_params(r, 2, 3, 2, 6), 6, {"h": (3, 2)}, 6),
    ("rwkv4", 1, lambda r: rwkv_params(r, 4, INPUT_DIM), INPUT_DIM,
     {"a": (4,), "b": (4,), "p": (4,), "x_prev": (INPUT_DIM,)}, 4),
    ("qrnn2", 1, lambda r: qrnn_params(r, 4), INPUT_DIM, {"c": (4,), "x_prev": (INPUT_DIM,)}, 4),
]
CASE_IDS = [f"{c[0]}-H{c[1]}" for c in CASES]


# ---------------------------------------------------------------- interface and continuation (all cells)


@pytest.mark.parametrize("cell, H, make, input_dim, state_shapes, units", CASES, ids=CASE_IDS)
def test_interface_shapes(cell, H, make, input_dim, state_shapes, units):
    rng = np.random.default_rng(1)
    out, states = zoo.REFERENCES[cell](inputs(rng, input_dim), make(rng))
    assert out.shape == (BATCH, T, units) and out.dtype == np.float64
    assert np.all(np.isfinite(out))
    assert set(states) == set(state_shapes)
    for name, shape in state_shapes.items():
        assert states[name].shape == (BATCH, H) + shape, name


@pytest.mark.parametrize("cell, H, make, input_dim, state_shapes, units", CASES, ids=CASE_IDS)
def test_two_halves_continue_one_run(cell, H, make, input_dim, state_shapes, units):
    """Running T = 3 + 5 steps, the second part from the first's final states, is one run of 8."""
    rng = np.random.default_rng(2)
    x, params = inputs(rng, input_dim), make(rng)
    f = zoo.REFERENCES[cell]
    out, states = f(x, params)
    out1, states1 = f(x[:, :3], params)
    out2, states2 = f(x[:, 3:], params, initial_states=states1)
    close(np.concatenate([out1, out2], axis=1), out, f"{cell} outputs")
    for name in states:
        close(states2[name], states[name], f"{cell} state {name}")


def test_unknown_constant_is_refused():
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="unknown constants"):
        zoo.gla(inputs(rng), gla_params(rng, 1, 2, 2), {"sclae": 1.0})


def test_head_outputs_are_head_major():
    """Head h's output is units h*d..(h+1)*d-1: running head h's parameters alone gives that slice."""
    rng = np.random.default_rng(4)
    x, params = inputs(rng), deltanet_params(rng, 3, 2, 4)
    out, states = zoo.deltanet(x, params)
    for h in range(3):
        out_h, states_h = zoo.deltanet(x, {k: v[h:h + 1] for k, v in params.items()})
        close(out[..., 4 * h:4 * (h + 1)], out_h, f"head {h}")
        close(states["S"][:, h:h + 1], states_h["S"], f"head {h} S")


# ---------------------------------------------------------------- the authors' code: loaders


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def xlstm_mlstm(torch):
    return pytest.importorskip("xlstm.blocks.mlstm.backends")


@pytest.fixture(scope="module")
def xlstm_slstm(torch):
    vanilla = pytest.importorskip("xlstm.blocks.slstm.src.vanilla")
    cell = pytest.importorskip("xlstm.blocks.slstm.cell")
    return vanilla, cell


def _fla_naive(relpath):
    """One of fla-core's naive reference files, loaded from the installed package by its path
    (importing `fla.ops...` runs fla/ops/__init__.py, which needs triton; the naive files need
    only torch and einops)."""
    pytest.importorskip("torch")
    pytest.importorskip("einops")
    try:
        dist = importlib.metadata.distribution("fla-core")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fla-core is not installed")
    path = dist.locate_file(relpath)
    if not os.path.exists(path):
        pytest.skip(f"fla-core {dist.version} has no {relpath}")
    spec = importlib.util.spec_from_file_location("_fla_" + relpath.replace("/", "_")[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fla_gla():
    return _fla_naive("fla/ops/gla/naive.py")


@pytest.fixture(scope="module")
def fla_delta():
    return _fla_naive("fla/ops/delta_rule/naive.py")


@pytest.fixture(scope="module")
def fla_gated_delta():
    return _fla_naive("fla/ops/gated_delta_rule/naive.py")


@pytest.fixture(scope="module")
def rwkv_att_seq(torch):
    """rwkv.model.RWKV.att_seq as a plain function: the package must be imported with
    RWKV_JIT_ON=0 (its default turns the methods into TorchScript methods of a ScriptModule)."""
    if "rwkv.model" in sys.modules:
        model = sys.modules["rwkv.model"]
    else:
        old = os.environ.get("RWKV_JIT_ON")
        os.environ["RWKV_JIT_ON"] = "0"
        try:
            model = pytest.importorskip("rwkv.model")
        finally:
            if old is None:
                os.environ.pop("RWKV_JIT_ON", None)
            else:
                os.environ["RWKV_JIT_ON"] = old
    att_seq = model.RWKV.att_seq
    if not inspect.isfunction(att_seq):
        pytest.skip("rwkv.model was imported with its TorchScript JIT on")
    return att_seq


# ---------------------------------------------------------------- mLSTM


def _mlstm_pieces(x, p, d=None):
    """q, the key as xlstm receives it (W_k x + sqrt(d) b_k), v, gate pre-activations, o: (B, H, T, .)."""
    d = p["W_k"].shape[1] if d is None else d
    proj = lambda W, b: np.einsum("hri,bti->bhtr", W, x) + b[None, :, None, :]
    q = proj(p["W_q"], p["b_q"])
    k = proj(p["W_k"], np.sqrt(d) * p["b_k"])
    v = proj(p["W_v"], p["b_v"])
    i = proj(p["W_i"], p["b_i"])
    f = proj(p["W_f"], p["b_f"])
    o = sigmoid(proj(p["W_o"], p["b_o"]))
    return q, k, v, i, f, o


def _bthd(a):
    """(B, H, T, d) -> (B, T, H*d)."""
    return np.swapaxes(a, 1, 2).reshape(a.shape[0], a.shape[2], -1)


@pytest.mark.parametrize("H, d_k, d_v", [(1, 3, 3), (2, 4, 3), (4, 2, 2)])
@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_mlstm_equals_xlstm_recurrent_step(torch, xlstm_mlstm, H, d_k, d_v, eps):
    """xlstm's recurrent_step_stabilized_simple, step by step: h, and the final C, n, m."""
    rng = np.random.default_rng(10 + H)
    x, p = inputs(rng), mlstm_params(rng, H, d_k, d_v)
    out, states = zoo.mlstm(x, p, {"eps": eps})
    q, k, v, i, f, o = (torch.from_numpy(a) for a in _mlstm_pieces(x, p))
    c_state = torch.zeros(BATCH, H, d_k, d_v, dtype=torch.float64)
    n_state = torch.zeros(BATCH, H, d_k, 1, dtype=torch.float64)
    m_state = torch.zeros(BATCH, H, 1, 1, dtype=torch.float64)
    hs = []
    for t in range(T):
        sl = slice(t, t + 1)
        h, (c_state, n_state, m_state) = xlstm_mlstm.recurrent_step_stabilized_simple(
            c_state, n_state, m_state, q[:, :, sl].clone(), k[:, :, sl].clone(), v[:, :, sl].clone(),
            i[:, :, sl], f[:, :, sl], eps=eps)
        hs.append(h)
    h_tilde = torch.cat(hs, dim=2).numpy()  # (B, H, T, d_v)
    close(out, _bthd(o.numpy() * h_tilde), "h")
    close(states["C"], np.swapaxes(c_state.numpy(), -1, -2), "C (draft orientation = xlstm's transposed)")
    close(states["n"], n_state.numpy()[..., 0], "n")
    close(states["m"], m_state.numpy()[..., 0], "m")


@pytest.mark.parametrize("H, d", [(1, 3), (2, 2), (4, 3)])
def test_mlstm_equals_xlstm_parallel_form(torch, xlstm_mlstm, H, d):
    """xlstm's parallel_stabilized_simple (the paper's parallel form, row-wise stabilised): same h
    (eps = 0 in both: the two forms add their eps in differently stabilised units)."""
    rng = np.random.default_rng(20 + H)
    x, p = inputs(rng), mlstm_params(rng, H, d, d)
    out, _ = zoo.mlstm(x, p)
    q, k, v, i, f, o = (torch.from_numpy(a) for a in _mlstm_pieces(x, p))
    h_tilde = xlstm_mlstm.parallel_stabilized_simple(q, k, v, i, f, eps=0.0).numpy()
    close(out, _bthd(o.numpy() * h_tilde), "h")


@pytest.mark.parametrize("H, d", [(1, 3), (2, 2)])
def test_mlstm_equals_xlstm_chunkwise_with_states(torch, xlstm_mlstm, H, d):
    """xlstm's chunkwise_simple (two chunks of 4), started from a state the reference reached:
    same h; its final state is the reference's with xlstm's chunkwise orientation and scaling
    (C = k v^T with the UNSCALED key, i.e. sqrt(d) C^T; n likewise sqrt(d) n; the same m)."""
    rng = np.random.default_rng(30 + H)
    x, p = inputs(rng, T_=T + 3), mlstm_params(rng, H, d, d)
    out, states = zoo.mlstm(x, p)
    _, states0 = zoo.mlstm(x[:, :3], p)
    q, k, v, i, f, o = (torch.from_numpy(a[:, :, 3:]) for a in _mlstm_pieces(x, p))
    sq = np.sqrt(d)
    h_tilde, (C, n, m) = xlstm_mlstm.chunkwise_simple(
        q, k, v, i[..., 0], f[..., 0],
        initial_C=torch.from_numpy(sq * np.swapaxes(states0["C"], -1, -2)),
        initial_n=torch.from_numpy(sq * states0["n"]),
        initial_m=torch.from_numpy(states0["m"][..., 0]),
        chunk_size=4, return_last_state=True, eps=0.0)
    close(out[:, 3:], _bthd(o.numpy() * h_tilde.numpy()), "h")
    close(states["C"], np.swapaxes(C.numpy(), -1, -2) / sq, "C")
    close(states["n"], n.numpy() / sq, "n")
    close(states["m"], m.numpy().reshape(BATCH, H, 1), "m")


@pytest.mark.parametrize("H", [1, 2, 4])
def test_mlstm_stabilised_equals_unstabilised(H):
    """The paper's eqs. 19-27 without stabiliser give the same h; C, n differ by exp(m)."""
    rng = np.random.default_rng(40 + H)
    x, p = inputs(rng), mlstm_params(rng, H, 3, 2)
    out, states = zoo.mlstm(x, p)
    out_u, states_u = zoo.mlstm_unstabilised(x, p)
    close(out, out_u, "h")
    scale = np.exp(states["m"])
    close(states["C"] * scale[..., None], states_u["C"], "C exp(m)")
    close(states["n"] * scale, states_u["n"], "n exp(m)")


def test_mlstm_key_scale_constant_d():
    """The draft's d is a constant: k = W_k x / sqrt(d) + b_k, checked against the unstabilised form
    at d != d_k."""
    rng = np.random.default_rng(45)
    x, p = inputs(rng), mlstm_params(rng, 2, 3, 2)
    close(zoo.mlstm(x, p, {"d": 7})[0], zoo.mlstm_unstabilised(x, p, {"d": 7})[0], "h at d = 7")


# ---------------------------------------------------------------- sLSTM


def _slstm_xlstm_layout(x, p):
    """The draft's parameters in xlstm's vanilla layout: Wx (S, B, 4*H*d) gate-major, head-major;
    R (H, 4d, d); b (4*H*d)."""
    H, d, _ = p["W_i"].shape
    Wx = np.stack([np.einsum("hdi,bti->bthd", p["W_" + g], x) for g in "ifzo"], axis=2)  # (B,T,4,H,d)
    Wx = np.swapaxes(Wx.reshape(x.shape[0], x.shape[1], 4 * H * d), 0, 1)
    R = np.stack([p["R_" + g] for g in "ifzo"], axis=1).reshape(H, 4 * d, d)
    b = np.stack([p["b_" + g] for g in "ifzo"], axis=0).reshape(-1)
    return Wx, R, b


@pytest.mark.parametrize("H, d", [(1, 3), (2, 3), (4, 2)])
def test_slstm_equals_xlstm_slstm_forward(torch, xlstm_slstm, H, d):
    """xlstm's vanilla slstm_forward with slstm_forward_pointwise, float64: every h, and the final
    h, c, n, m (the reference with xlstm's first-step m)."""
    vanilla, _ = xlstm_slstm
    rng = np.random.default_rng(50 + H)
    x, p = inputs(rng), slstm_params(rng, H, d)
    out, states = zoo.slstm_xlstm(x, p, {"xlstm_first_step": True})
    Wx, R, b = (torch.from_numpy(a) for a in _slstm_xlstm_layout(x, p))
    states0 = torch.zeros(4, BATCH, H * d, dtype=torch.float64)
    states_all, last, _ = vanilla.slstm_forward(
        Wx, states0, R, b, vanilla.slstm_pointwise_function_registry["slstm"])
    ys = states_all[0, 1:].numpy()  # (T, B, H*d)
    close(out, np.swapaxes(ys, 0, 1), "h sequence")
    for idx, name in enumerate("hcnm"):
        close(states[name], last[idx].numpy().reshape(BATCH, H, d), f"final {name}")


@pytest.mark.parametrize("H, d", [(2, 2), (4, 3)])
def test_slstm_equals_xlstm_slstm_cell_vanilla(torch, xlstm_slstm, H, d):
    """xlstm's sLSTMCell_vanilla (in float64), with the draft's parameters in its EXTERNAL layout:
    recurrent_kernel (H, d_in, 4, d_out) with [h, l, g, j] = R_g[h][j, l], bias (H, 4, d); its input
    (B, S, 4*H*d) as 'BSGNH'. Pins the parameter layout the reference reads xlstm's code with."""
    _, cell_module = xlstm_slstm
    rng = np.random.default_rng(60 + H)
    x, p = inputs(rng), slstm_params(rng, H, d)
    out, states = zoo.slstm_xlstm(x, p, {"xlstm_first_step": True})
    config = cell_module.sLSTMCellConfig(hidden_size=H * d, num_heads=H, backend="vanilla",
                                         dtype="float32", input_shape="BSGNH")
    cell = cell_module.sLSTMCell_vanilla(config).double()
    ext_R = np.stack([p["R_" + g] for g in "ifzo"], axis=1).transpose(0, 3, 1, 2)  # (H, l, g, j)
    ext_b = np.stack([p["b_" + g] for g in "ifzo"], axis=1)  # (H, 4, d)
    with torch.no_grad():
        cell._recurrent_kernel_.copy_(cell._recurrent_kernel_ext2int(torch.from_numpy(ext_R)))
        cell._bias_.copy_(cell._bias_ext2int(torch.from_numpy(ext_b)))
        Wx = np.swapaxes(_slstm_xlstm_layout(x, p)[0], 0, 1)  # (B, S, 4*H*d)
        output, state = cell(torch.from_numpy(np.ascontiguousarray(Wx)))
    close(out, _bthd(output.numpy()), "h (output BNSH)")
    for idx, name in enumerate("hcnm"):
        close(states[name], state[idx].numpy().reshape(BATCH, H, d), f"final {name}")


def test_slstm_draft_m_versus_xlstm_first_step():
    """The draft's m (no first-step rule) and xlstm's give the same h; c, n differ only by the
    common factor exp(m_xlstm - m_draft), which lasts until an input gate resets m."""
    rng = np.random.default_rng(70)
    x, p = inputs(rng), slstm_params(rng, 2, 3)
    p["b_i"] = p["b_i"] - 3.0  # itilde_1 < logsigmoid(ftilde_1): the two rules disagree at step 1
    for steps in (1, 2, T):
        out, st = zoo.slstm_xlstm(x[:, :steps], p)
        out_x, st_x = zoo.slstm_xlstm(x[:, :steps], p, {"xlstm_first_step": True})
        close(out, out_x, f"h over {steps} steps")
        close(st["h"], st_x["h"], f"final h after {steps} steps")
        if steps == 1:
            assert np.all(st["m"] >= st_x["m"]) and np.mean(st["m"] > st_x["m"]) > 0.5, \
                "the first-step rule (m_1 = itilde_1) should lower m at step 1"
        factor = np.exp(st_x["m"] - st["m"])
        close(st["c"], st_x["c"] * factor, f"c after {steps} steps")
        close(st["n"], st_x["n"] * factor, f"n after {steps} steps")


@pytest.mark.parametrize("H, d", [(1, 2), (2, 3), (4, 2)])
def test_slstm_equals_paper_unstabilised(H, d):
    """The paper's eqs. 8-14 as written (i = exp(itilde), f = sigmoid(ftilde), c = f c + i z,
    n = f n + i, h = o c / n), block-diagonal R per head: same h; c_unstab = exp(m) c."""
    rng = np.random.default_rng(80 + H)
    x, p = inputs(rng), slstm_params(rng, H, d)
    out, st = zoo.slstm_xlstm(x, p)
    h = c = n = np.zeros((BATCH, H, d))
    hs = []
    for t in range(T):
        pre = {g: np.einsum("hdi,bi->bhd", p["W_" + g], x[:, t]) + np.einsum("hjl,bhl->bhj", p["R_" + g], h)
               + p["b_" + g] for g in "ifzo"}
        i, f = np.exp(pre["i"]), sigmoid(pre["f"])
        c = f * c + i * np.tanh(pre["z"])
        n = f * n + i
        h = sigmoid(pre["o"]) * c / n
        hs.append(h.reshape(BATCH, -1))
    close(out, np.stack(hs, axis=1), "h")
    close(st["c"] * np.exp(st["m"]), c, "c exp(m)")
    close(st["n"] * np.exp(st["m"]), n, "n exp(m)")


# ---------------------------------------------------------------- GLA


def _gla_pieces(x, p, tau=16.0):
    proj = lambda W: np.einsum("hri,bti->bthr", W, x)  # (B, T, H, d): fla's layout
    log_alpha = np.log(sigmoid(proj(p["W_alpha"]) + p["b_alpha"][None, None])) / tau
    return proj(p["W_q"]), proj(p["W_k"]), proj(p["W_v"]), log_alpha


@pytest.mark.parametrize("H, d_k, d_v", [(1, 3, 2), (2, 4, 3), (4, 2, 2)])
def test_gla_equals_fla_naive_recurrent(torch, fla_gla, H, d_k, d_v):
    """fla's naive_recurrent_gla (computes in float32, q scaled by K**-0.5), with an initial state."""
    rng = np.random.default_rng(90 + H)
    x, p = inputs(rng, T_=T + 2), gla_params(rng, H, d_k, d_v)
    scale = {"scale": d_k ** -0.5}
    _, st0 = zoo.gla(x[:, :2], p, scale)
    out, st = zoo.gla(x[:, 2:], p, scale, initial_states=st0)
    q, k, v, gk = (torch.from_numpy(a[:, 2:]).float() for a in _gla_pieces(x, p))
    o, h = fla_gla.naive_recurrent_gla(q, k, v, gk, initial_state=torch.from_numpy(st0["S"]).float(),
                                       output_final_state=True)
    close(out, o.double().numpy().reshape(BATCH, T, -1), "o", F32)
    close(st["S"], h.double().numpy(), "S (d_k, d_v)", F32)


@pytest.mark.parametrize("H", [1, 2, 4])
def test_gla_equals_paper_parallel_form(H):
    """GLA's parallel form: o_t = sum_{s<=t} (q_t . (k_s * prod_{s<r<=t} alpha_r)) v_s, the decay
    products from cumulative log-gates; with the q scale and tau as constants."""
    rng = np.random.default_rng(100 + H)
    x, p = inputs(rng), gla_params(rng, H, 3, 2)
    out, st = zoo.gla(x, p, {"tau": 4.0, "scale": 0.7})
    q, k, v, log_alpha = _gla_pieces(x, p, tau=4.0)
    G = np.cumsum(log_alpha, axis=1)  # (B, T, H, d_k)
    decay = np.exp(G[:, :, None] - G[:, None, :])  # (B, t, s, H, d_k)
    A = 0.7 * np.einsum("bthj,btshj,bshj->bhts", q, decay, k) * np.tril(np.ones((T, T)))
    o = np.einsum("bhts,bshv->bthv", A, v)
    close(out, o.reshape(BATCH, T, -1), "o")
    S_T = np.einsum("bshj,bshv->bhjv", k * np.exp(G[:, -1:] - G), v)
    close(st["S"], S_T, "S_T")


# ---------------------------------------------------------------- DeltaNet


def _delta_pieces(x, p):
    """q, unit k, v (B, H, T, d) and beta (B, H, T): fla's head-first layout for delta_rule."""
    proj = lambda W: np.einsum("hri,bti->bhtr", W, x)
    kraw = proj(p["W_k"])
    k = kraw / np.linalg.norm(kraw, axis=-1, keepdims=True)
    beta = sigmoid(proj(p["W_beta"])[..., 0] + p["b_beta"][None, :, :])
    out = [proj(p["W_q"]), k, proj(p["W_v"]), beta]
    if "W_alpha" in p:
        out.append(np.log(sigmoid(proj(p["W_alpha"])[..., 0] + p["b_alpha"][None, :, :])))
    return out


def _bhtd(a):
    return np.swapaxes(a, 1, 2).reshape(a.shape[0], a.shape[2], -1)


@pytest.mark.parametrize("H, d_k, d_v", [(1, 3, 2), (2, 4, 3), (4, 2, 3)])
def test_deltanet_equals_fla_recurrence_and_chunkwise(torch, fla_delta, H, d_k, d_v):
    """fla's delta_rule_recurrence (float32 inside) with an initial state; delta_rule_chunkwise and
    delta_rule_parallel (float64, two chunks of 4, from zero) tightly. q scaled by d_k**-0.5."""
    rng = np.random.default_rng(110 + H)
    x, p = inputs(rng, T_=T + 2), deltanet_params(rng, H, d_k, d_v)
    scale = {"scale": d_k ** -0.5}
    _, st0 = zoo.deltanet(x[:, :2], p, scale)
    out, st = zoo.deltanet(x[:, 2:], p, scale, initial_states=st0)
    q, k, v, beta = (torch.from_numpy(np.ascontiguousarray(a[:, :, 2:])) for a in _delta_pieces(x, p))
    o, S = fla_delta.delta_rule_recurrence(q, k, v, beta, initial_state=torch.from_numpy(
        np.swapaxes(st0["S"], -1, -2).copy()), output_final_state=True)
    close(out, _bhtd(o.numpy()), "o (recurrence)", F32)
    close(st["S"], np.swapaxes(S.numpy(), -1, -2), "S (fla's (d_k, d_v) transposed)", F32)

    out0, st_0 = zoo.deltanet(x[:, 2:], p, scale)
    o_c, S_c = fla_delta.delta_rule_chunkwise(q, k, v, beta, chunk_size=4)
    close(out0, _bhtd(o_c.numpy()), "o (chunkwise)")
    close(st_0["S"], np.swapaxes(S_c.numpy(), -1, -2), "S (chunkwise)")
    o_p, _ = fla_delta.delta_rule_parallel(q, k, v, beta, BM=8, BN=4)
    close(out0, _bhtd(o_p.numpy()), "o (parallel)")


def _product_form(q, k, v, beta, S0, alpha=None):
    """S_t = S0 P_1..P_t + sum_s beta_s v_s k_s^T P_{s+1}..P_t, P_r = alpha_r (I - beta_r k_r k_r^T);
    o_t = S_t q_t. Per batch and head, explicit matrices. Inputs (B, H, T, .)."""
    B, H, T_, d_k = k.shape
    o = np.zeros(v.shape)
    S_T = np.zeros(S0.shape)
    for b in range(B):
        for h in range(H):
            P = [(1.0 if alpha is None else alpha[b, h, r])
                 * (np.eye(d_k) - beta[b, h, r] * np.outer(k[b, h, r], k[b, h, r])) for r in range(T_)]

            def prod(lo, hi):  # P_lo .. P_hi-1 (0-based)
                out = np.eye(d_k)
                for r in range(lo, hi):
                    out = out @ P[r]
                return out
            for t in range(T_):
                S = S0[b, h] @ prod(0, t + 1)
                for s in range(t + 1):
                    S = S + beta[b, h, s] * np.outer(v[b, h, s], k[b, h, s]) @ prod(s + 1, t + 1)
                o[b, h, t] = S @ q[b, h, t]
            S_T[b, h] = S
    return o, S_T


@pytest.mark.parametrize("H", [1, 2])
def test_deltanet_equals_product_of_householder_factors(H):
    """DeltaNet's S_t expanded as a sum of products (the paper's generalised Householder form)."""
    rng = np.random.default_rng(120 + H)
    x, p = inputs(rng, T_=5), deltanet_params(rng, H, 3, 2)
    S0 = rng.standard_normal((BATCH, H, 2, 3))
    out, st = zoo.deltanet(x, p, initial_states={"S": S0})
    q, k, v, beta = _delta_pieces(x, p)
    o, S_T = _product_form(q, k, v, beta, S0)
    close(out, _bhtd(o), "o")
    close(st["S"], S_T, "S_T")


def test_deltanet_beta_zero_keeps_state():
    """beta = 0 (sigmoid of -1e4 is exactly 0): S stays S0 and o_t = S0 q_t."""
    rng = np.random.default_rng(130)
    x, p = inputs(rng), deltanet_params(rng, 2, 3, 4)
    p["b_beta"] = np.full((2, 1), -1e4)
    S0 = rng.standard_normal((BATCH, 2, 4, 3))
    out, st = zoo.deltanet(x, p, initial_states={"S": S0})
    np.testing.assert_array_equal(st["S"], S0)
    q = np.einsum("hri,bti->bthr", p["W_q"], x)
    close(out, np.einsum("bhvk,bthk->bthv", S0, q).reshape(BATCH, T, -1), "o = S0 q")


def test_deltanet_beta_one_writes_v_along_k():
    """beta = 1 with unit k: after each step S_t k_t = v_t exactly (the delta rule replaces the value
    stored along k), and the part of S orthogonal to k is untouched: S_t (I - k k^T) = S_{t-1} (I - k k^T)."""
    rng = np.random.default_rng(140)
    x, p = inputs(rng), deltanet_params(rng, 2, 3, 4)
    p["b_beta"] = np.full((2, 1), 1e4)
    S_prev = rng.standard_normal((BATCH, 2, 4, 3))
    _, k, v, beta = _delta_pieces(x, p)
    assert np.all(beta == 1.0)
    for t in range(T):
        _, st = zoo.deltanet(x[:, t:t + 1], p, initial_states={"S": S_prev})
        S = st["S"]
        kt, vt = k[:, :, t], v[:, :, t]
        close(np.einsum("bhvk,bhk->bhv", S, kt), vt, f"S_t k_t = v_t at t={t}")
        proj = np.eye(3) - np.einsum("bhi,bhj->bhij", kt, kt)
        close(S @ proj, S_prev @ proj, f"orthogonal part kept at t={t}")
        S_prev = S


# ---------------------------------------------------------------- Gated DeltaNet


@pytest.mark.parametrize("H, d_k, d_v", [(1, 3, 2), (2, 2, 3), (4, 3, 2)])
def test_gated_deltanet_equals_fla_naive(torch, fla_gated_delta, H, d_k, d_v):
    """fla's naive_recurrent_gated_delta_rule and naive_chunk_gated_delta_rule (both float32
    inside; chunk size 4 over T = 6, padded), from an initial state, with scale = d_k**-0.5."""
    rng = np.random.default_rng(150 + H)
    x, p = inputs(rng, T_=T), deltanet_params(rng, H, d_k, d_v, gated=True)
    scale = {"scale": d_k ** -0.5}
    _, st0 = zoo.gated_deltanet(x[:, :2], p, scale)
    out, st = zoo.gated_deltanet(x[:, 2:], p, scale, initial_states=st0)
    q, k, v, beta, g = (torch.from_numpy(np.ascontiguousarray(np.swapaxes(a[:, :, 2:], 1, 2)))
                        for a in _delta_pieces(x, p))  # (B, T, H, ...)
    S0 = torch.from_numpy(np.swapaxes(st0["S"], -1, -2).copy())
    o, S = fla_gated_delta.naive_recurrent_gated_delta_rule(
        q, k, v, beta, g, initial_state=S0, output_final_state=True)
    close(out, o.double().numpy().reshape(BATCH, T - 2, -1), "o (recurrent)", F32)
    close(st["S"], np.swapaxes(S.double().numpy(), -1, -2), "S (recurrent)", F32)
    o_c, S_c = fla_gated_delta.naive_chunk_gated_delta_rule(
        q, k, v, g, beta, chunk_size=4, initial_state=S0, output_final_state=True)
    close(out, o_c.double().numpy().reshape(BATCH, T - 2, -1), "o (chunk)", F32)
    close(st["S"], np.swapaxes(S_c.double().numpy(), -1, -2), "S (chunk)", F32)


@pytest.mark.parametrize("H", [1, 4])
def test_gated_deltanet_equals_gated_product_form(H):
    rng = np.random.default_rng(160 + H)
    x, p = inputs(rng, T_=5), deltanet_params(rng, H, 2, 3, gated=True)
    S0 = rng.standard_normal((BATCH, H, 3, 2))
    out, st = zoo.gated_deltanet(x, p, initial_states={"S": S0})
    q, k, v, beta, log_alpha = _delta_pieces(x, p)
    o, S_T = _product_form(q, k, v, beta, S0, alpha=np.exp(log_alpha))
    close(out, _bhtd(o), "o")
    close(st["S"], S_T, "S_T")


def test_gated_deltanet_with_alpha_one_is_deltanet():
    rng = np.random.default_rng(170)
    x, p = inputs(rng), deltanet_params(rng, 2, 3, 2, gated=True)
    p["b_alpha"] = np.full((2, 1), 1e4)  # sigmoid = 1 exactly
    out, st = zoo.gated_deltanet(x, p)
    out_d, st_d = zoo.deltanet(x, {k: v for k, v in p.items() if "alpha" not in k})
    close(out, out_d, "o")
    close(st["S"], st_d["S"], "S")


# ---------------------------------------------------------------- Mamba


@pytest.mark.parametrize("H, d, N", [(1, 4, 3), (2, 3, 2), (4, 2, 4)])
def test_mamba_equals_unrolled_sum(H, d, N):
    """The recurrence h_t = exp(delta_t A) h_{t-1} + delta_t x_t B_t^T unrolled:
    h_t = exp(A * (Delta_t - Delta_0)) h_0 + sum_{s<=t} exp(A * (Delta_t - Delta_s)) * (delta_s x_s B_s^T),
    Delta the running sum of delta; y_t = h_t C_t + D x_t. H > 1: grouped B, C (x split per head)."""
    rng = np.random.default_rng(180 + H)
    x, p = inputs(rng, H * d), mamba_params(rng, H, d, N, H * d)
    h0 = rng.standard_normal((BATCH, H, d, N))
    out, st = zoo.mamba_ssm(x, p, initial_states={"h": h0})
    z = np.einsum("hdi,bti->bthd", p["W_delta"], x) + p["b_delta"]
    delta = np.log1p(np.exp(z))
    Bm = np.einsum("hni,bti->bthn", p["W_B"], x)
    Cm = np.einsum("hni,bti->bthn", p["W_C"], x)
    u = x.reshape(BATCH, T, H, d)
    Delta = np.cumsum(delta, axis=1)
    ys = []
    for t in range(T):
        h = np.exp(p["A"] * Delta[:, t, :, :, None]) * h0
        for s in range(t + 1):
            decay = np.exp(p["A"] * (Delta[:, t] - Delta[:, s])[..., None])
            h = h + decay * (delta[:, s] * u[:, s])[..., None] * Bm[:, s, :, None, :]
        ys.append(np.einsum("bhdn,bhn->bhd", h, Cm[:, t]) + p["D"] * u[:, t])
    close(out, np.stack(ys, axis=1).reshape(BATCH, T, -1), "y")
    close(st["h"], h, "h_T")


# ---------------------------------------------------------------- RWKV-4


@pytest.mark.parametrize("C", [3, 6])
def test_rwkv4_equals_rwkv_package_att_seq(torch, rwkv_att_seq, C):
    """The rwkv package's RWKV.att_seq (RWKV-4 time mixing, float32; its input is layer-normed and
    the block's residual added: the reference runs on the layer-normed x and gets the residual added).
    With the package's initial p = -1e30 all states agree; from the draft's p = 0, the outputs agree
    and a, b differ by the common factor exp(p_0 - p_package)."""
    rng = np.random.default_rng(190 + C)
    p = rwkv_params(rng, C, C)
    ln_w, ln_b = torch.from_numpy(rng.uniform(0.5, 1.5, C)).float(), torch.from_numpy(_normal(rng, C)).float()
    f32 = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()
    for b in range(BATCH):
        x = f32(rng.standard_normal((T, C)))
        xx = torch.nn.functional.layer_norm(x, (C,), weight=ln_w, bias=ln_b)
        zeros = torch.zeros(C)
        ret, sx, aa, bb, pp = rwkv_att_seq(
            None, x, zeros, zeros, zeros, zeros - 1e30, ln_w, ln_b,
            f32(p["mu_k"][0]), f32(p["mu_v"][0]), f32(p["mu_r"][0]),
            f32(-p["w"][0]), f32(p["u"][0]),
            f32(p["W_k"][0].T), f32(p["W_v"][0].T), f32(p["W_r"][0].T), f32(p["W_o"][0].T),
            *([None] * 16))
        x_ln = xx.double().numpy()[None]
        out, st = zoo.rwkv4(x_ln, p, initial_states={"p": np.full((1, 1, C), -1e30)})
        close(out[0] + x.double().numpy(), ret.double().numpy(), "x + o", F32)
        close(st["x_prev"][0, 0], sx.double().numpy(), "x_prev", F32)
        for name, theirs in (("a", aa), ("b", bb), ("p", pp)):
            close(st[name][0, 0], theirs.double().numpy(), name, F32)
        out0, st0 = zoo.rwkv4(x_ln, p)
        close(out0, out, "o from p = 0")
        factor = np.exp(st0["p"] - st["p"])
        close(st0["a"] * factor, st["a"], "a scale")
        close(st0["b"] * factor, st["b"], "b scale")


@pytest.mark.parametrize("units, input_dim", [(4, 5), (3, 3)])
def test_rwkv4_equals_paper_wkv_sum(units, input_dim):
    """The paper's eq. 14 as a plain sum over the past (short sequences, no stabiliser):
    wkv_t = (sum_{i<t} e^{-(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (same without v), with the
    token shift of eqs. 11-13 and o_t = W_o (sigmoid(r_t) * wkv_t) (eq. 15)."""
    rng = np.random.default_rng(200 + units)
    x, p = inputs(rng, input_dim), rwkv_params(rng, units, input_dim)
    out, _ = zoo.rwkv4(x, p)
    x_prev = np.concatenate([np.zeros((BATCH, 1, input_dim)), x[:, :-1]], axis=1)
    mix = lambda mu: x * mu[0] + x_prev * (1 - mu[0])
    r = mix(p["mu_r"]) @ p["W_r"][0].T
    k = mix(p["mu_k"]) @ p["W_k"][0].T
    v = mix(p["mu_v"]) @ p["W_v"][0].T
    w, u = p["w"][0], p["u"][0]
    os_ = []
    for t in range(T):
        num = np.exp(u + k[:, t]) * v[:, t]
        den = np.exp(u + k[:, t])
        for i in range(t):
            e = np.exp(-(t - 1 - i) * w + k[:, i])
            num, den = num + e * v[:, i], den + e
        os_.append((sigmoid(r[:, t]) * num / den) @ p["W_o"][0].T)
    close(out, np.stack(os_, axis=1), "o")


# ---------------------------------------------------------------- QRNN


@pytest.mark.parametrize("units", [3, 4])
def test_qrnn2_equals_paper_closed_form(units):
    """The paper's width-2 convolutions (z, f, o from x_{t-1} and x_t, x_0 = 0) and fo-pooling
    c_t = f_t c_{t-1} + (1 - f_t) z_t unrolled: c_t = prod_{r<=t} f_r c_0
    + sum_{s<=t} (prod_{s<r<=t} f_r)(1 - f_s) z_s; h_t = o_t c_t."""
    rng = np.random.default_rng(210 + units)
    x, p = inputs(rng), qrnn_params(rng, units)
    c0 = rng.standard_normal((BATCH, 1, units))
    out, st = zoo.qrnn2(x, p, initial_states={"c": c0})
    x_prev = np.concatenate([np.zeros((BATCH, 1, INPUT_DIM)), x[:, :-1]], axis=1)
    conv = lambda g: x_prev @ p[f"W_{g}1"][0].T + x @ p[f"W_{g}2"][0].T + p[f"b_{g}"][0]
    z, f, o = np.tanh(conv("z")), sigmoid(conv("f")), sigmoid(conv("o"))
    hs = []
    for t in range(T):
        c = np.prod(f[:, :t + 1], axis=1) * c0[:, 0]
        for s in range(t + 1):
            c = c + np.prod(f[:, s + 1:t + 1], axis=1) * (1 - f[:, s]) * z[:, s]
        hs.append(o[:, t] * c)
    close(out, np.stack(hs, axis=1), "h")
    close(st["c"][:, 0], c, "c_T")
    close(st["x_prev"][:, 0], x[:, -1], "x_prev")
