"""Independent float64 numpy references of recent recurrent cells, written from the AUTHORS' code.

These exist so that the cells eqcell generates from /work/tensor_specs_draft.md ("the draft") can be
tested against something that is not eqcell. Each function

    f(x, params, constants=None, *, initial_states=None) -> (outputs, final_states)

takes x (batch, T, input_dim) and `params`, a dict name -> array in the draft's interface: every
parameter has a LEADING HEAD AXIS H (the number of heads is read from it), matrices in paper
orientation (H, rows, columns) (`W x` reads x along the last axis), vectors (H, d), a scalar
gate's weight (H, 1, input_dim) and bias (H, 1). `outputs` is (batch, T, units) with the heads
concatenated head-major (head h owns units h*d .. (h+1)*d - 1); `final_states` maps each state's
draft name to an array (batch, H, ...) per head, matrix states (batch, H, rows, cols) in the
orientation the draft states (the authors' own orientation is converted at the end).
`initial_states` (same layout as `final_states`; any state left out starts at zero) lets a run
continue another one.

How they are written. The loop over time follows the authors' reference code, step for step:
their gate order and memory layout, their stabiliser, their state orientation, their einsums;
where their parameter layout differs from the draft's, the draft's parameters are converted into
theirs first (each function's docstring says how). Nothing here calls torch or eqcell.

Defaults are the draft's MEANING. Where the authors' code computes a (slightly) different
function from the draft (an eps in a denominator, a 1/sqrt(d) query scale, xlstm's first-step m),
the default is the draft's and a named entry of `constants` selects the authors' variant; the
tests in test_zoo_references.py set those entries to compare with the authors' code itself.

Numerics: sigmoid, log-sigmoid and softplus go through np.logaddexp, so no overflow warning is
raised for large pre-activations (the test suite turns warnings into errors).
"""
import numpy as np

__all__ = [
    "mlstm", "mlstm_unstabilised", "slstm_xlstm", "gla", "deltanet", "gated_deltanet",
    "mamba_ssm", "rwkv4", "qrnn2", "REFERENCES",
]


# ---------------------------------------------------------------- elementwise functions


def sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def logsigmoid(z):
    """log(sigmoid(z)) = -softplus(-z), as torch.nn.functional.logsigmoid."""
    return -np.logaddexp(0.0, -z)


def softplus(z):
    """log(1 + exp(z)), exactly (torch's F.softplus returns z itself above its threshold 20)."""
    return np.logaddexp(0.0, z)


# ---------------------------------------------------------------- shared plumbing


def _as64(x):
    return np.asarray(x, dtype=np.float64)


def _params64(params):
    return {name: _as64(value) for name, value in params.items()}


def _constants(constants, defaults):
    merged = dict(defaults)
    if constants:
        unknown = set(constants) - set(defaults)
        if unknown:
            raise ValueError(f"unknown constants {sorted(unknown)}; this reference knows {sorted(defaults)}")
        merged.update(constants)
    return merged


def _state(initial_states, name, shape):
    """The initial value of one state, (batch, H, ...): given, or zeros."""
    if initial_states is not None and name in initial_states:
        value = _as64(initial_states[name])
        if value.shape != shape:
            raise ValueError(f"initial state {name!r} has shape {value.shape}, expected {shape}")
        return value.copy()
    return np.zeros(shape)


def _proj(W, x_t, b=None):
    """W x_t (+ b) for every head: W (H, rows, input_dim), x_t (batch, input_dim) -> (batch, H, rows)."""
    out = np.einsum("hri,bi->bhr", W, x_t)
    return out if b is None else out + b


def _heads_out(outputs):
    """A list over time of (batch, H, d) -> (batch, T, H*d), heads concatenated head-major."""
    stacked = np.stack(outputs, axis=1)  # (batch, T, H, d)
    return stacked.reshape(stacked.shape[0], stacked.shape[1], -1)


def _single_head(params, names, cell):
    H = params[names[0]].shape[0]
    if H != 1:
        raise ValueError(f"{cell} has no heads: its parameters' leading axis must be 1, got {H}")


# ---------------------------------------------------------------- mLSTM


def mlstm(x, params, constants=None, *, initial_states=None):
    """mLSTM, stabilised (Beck et al. 2024, xLSTM, eqs. 19-27; stabilisation of the appendix).

    Follows NX-AI/xlstm, xlstm/blocks/mlstm/backends.py, `recurrent_step_stabilized_simple`,
    one call per time step (the recurrent form xlstm uses for generation), for the cell the draft
    writes (projections and sigmoid output gate of the paper's eqs. 22-27; xlstm's mLSTMCell
    instead feeds its i/f gates from concat(q, k, v) and normalises h~ with a multi-head LayerNorm,
    and its mLSTMLayer gates with SiLU(z) after a learnable skip, not with a sigmoid o; those
    belong to xlstm's block, not to the cell).

    params (draft): W_q, W_k (H, d_k, I), b_q, b_k (H, d_k); W_v, W_o (H, d_v, I), b_v, b_o (H, d_v);
    W_i, W_f (H, 1, I), b_i, b_f (H, 1).
    constants: d (default d_k): the key scale 1/sqrt(d); eps (default 0.0, the draft; xlstm: 1e-6):
    added to the denominator max(|n^T q|, exp(-m)) as xlstm does.
    states: C (batch, H, d_v, d_k) (draft orientation v k^T), n (batch, H, d_k), m (batch, H, 1).

    Conversions and differences from the draft, handled here:
    - xlstm keeps C as k v^T, (d_k, d_v), and reads h = q^T C; the loop does the same and C is
      transposed to the draft's (d_v, d_k) on the way in and out.
    - xlstm scales the WHOLE key, k_scaled = (W_k x + b_k) / sqrt(DH), inside the backend; the draft
      scales only W_k x (k = W_k x / sqrt(d) + b_k). The key handed to the authors' step is therefore
      W_k x + sqrt(d) b_k, whose scaled value is the draft's k.
    - xlstm's sqrt(DH) is the head dimension of q; the draft names it a constant d (default d_k).
    - xlstm adds eps = 1e-6 to the denominator; the draft has none (eps = 0 by default).
    - m starts at 0 as in xlstm's mLSTMCell.step (the draft: zeros initially), and h does not depend
      on it (C, n carry the same factor exp(-m)).
    """
    x = _as64(x)
    p = _params64(params)
    H, d_k, _ = p["W_q"].shape
    d_v = p["W_v"].shape[1]
    c = _constants(constants, {"d": d_k, "eps": 0.0})
    sqrt_d = np.sqrt(c["d"])
    batch, T, _ = x.shape

    # the authors' orientation: C_kv (batch, H, d_k, d_v), n (batch, H, d_k), m (batch, H, 1)
    C_kv = np.swapaxes(_state(initial_states, "C", (batch, H, d_v, d_k)), -1, -2).copy()
    n = _state(initial_states, "n", (batch, H, d_k))
    m = _state(initial_states, "m", (batch, H, 1))

    outputs = []
    for t in range(T):
        x_t = x[:, t]
        q = _proj(p["W_q"], x_t, p["b_q"])
        k = _proj(p["W_k"], x_t, sqrt_d * p["b_k"])  # the key xlstm receives, scaled below
        v = _proj(p["W_v"], x_t, p["b_v"])
        igate_preact = _proj(p["W_i"], x_t, p["b_i"])  # (batch, H, 1)
        fgate_preact = _proj(p["W_f"], x_t, p["b_f"])

        # --- recurrent_step_stabilized_simple
        log_fg_act = logsigmoid(fgate_preact)
        m_new = np.maximum(log_fg_act + m, igate_preact)
        fg_act = np.exp(log_fg_act + m - m_new)
        ig_act = np.exp(igate_preact - m_new)
        k_scaled = k / sqrt_d
        C_kv = fg_act[..., None] * C_kv + ig_act[..., None] * np.einsum("bhk,bhv->bhkv", k_scaled, v)
        n = fg_act * n + ig_act * k_scaled
        h_num = np.einsum("bhk,bhkv->bhv", q, C_kv)
        qn_dotproduct = np.einsum("bhk,bhk->bh", q, n)[..., None]
        max_val = np.exp(-m_new)
        h_denom = np.maximum(np.abs(qn_dotproduct), max_val) + c["eps"]
        h_tilde = h_num / h_denom
        m = m_new
        # ---
        o = sigmoid(_proj(p["W_o"], x_t, p["b_o"]))
        outputs.append(o * h_tilde)

    states = {"C": np.swapaxes(C_kv, -1, -2).copy(), "n": n, "m": m}
    return _heads_out(outputs), states


def mlstm_unstabilised(x, params, constants=None, *, initial_states=None):
    """mLSTM exactly as the paper writes it, without stabiliser (Beck et al. 2024, xLSTM, eqs. 19-27).

    The paper's own form, C_t = f_t C_{t-1} + i_t v_t k_t^T (eq. 19), n_t = f_t n_{t-1} + i_t k_t
    (eq. 20), h~_t = C_t q_t / max(|n_t^T q_t|, 1) (eq. 21), q/k/v of eqs. 22-24, i_t = exp(itilde_t)
    (eq. 25), f_t = sigmoid(ftilde_t) (eq. 26, the sigmoid choice, as in xlstm's code), o_t sigmoid
    (eq. 27); in the paper's orientation, C (d_v, d_k). There is no authors' code for this form
    (xlstm only ships stabilised kernels: NX-AI/xlstm, xlstm/blocks/mlstm/backends.py); it is the
    draft's "unstabilised form" and gives the same h as `mlstm` (C, n differ by the factor exp(m)).

    params: as `mlstm`. constants: d (default d_k). states: C (batch, H, d_v, d_k), n (batch, H, d_k).
    exp(itilde) overflows for itilde > ~709: use small weights.
    """
    x = _as64(x)
    p = _params64(params)
    H, d_k, _ = p["W_q"].shape
    d_v = p["W_v"].shape[1]
    c = _constants(constants, {"d": d_k})
    batch, T, _ = x.shape
    C = _state(initial_states, "C", (batch, H, d_v, d_k))
    n = _state(initial_states, "n", (batch, H, d_k))
    outputs = []
    for t in range(T):
        x_t = x[:, t]
        q = _proj(p["W_q"], x_t, p["b_q"])
        k = _proj(p["W_k"], x_t) / np.sqrt(c["d"]) + p["b_k"]
        v = _proj(p["W_v"], x_t, p["b_v"])
        i = np.exp(_proj(p["W_i"], x_t, p["b_i"]))  # (batch, H, 1)
        f = sigmoid(_proj(p["W_f"], x_t, p["b_f"]))
        o = sigmoid(_proj(p["W_o"], x_t, p["b_o"]))
        C = f[..., None] * C + i[..., None] * np.einsum("bhv,bhk->bhvk", v, k)
        n = f * n + i * k
        h_tilde = np.einsum("bhvk,bhk->bhv", C, q) / np.maximum(
            np.abs(np.einsum("bhk,bhk->bh", n, q))[..., None], 1.0)
        outputs.append(o * h_tilde)
    return _heads_out(outputs), {"C": C, "n": n}


# ---------------------------------------------------------------- sLSTM

_SLSTM_GATES = ("i", "f", "z", "o")  # xlstm's gate order in its raw pre-activations


def slstm_xlstm(x, params, constants=None, *, initial_states=None):
    """sLSTM of xLSTM with heads (Beck et al. 2024, eqs. 8-14, stabilised by eqs. 15-17).

    Follows NX-AI/xlstm, xlstm/blocks/slstm/src/vanilla/__init__.py, `slstm_forward` (the
    block-diagonal recurrent product Ry, head by head) and xlstm/blocks/slstm/src/vanilla/slstm.py,
    `slstm_forward_pointwise` (gates, stabiliser, states), in xlstm's internal layout: the
    pre-activations Wx + Ry + b are one vector gate-major [i, f, z, o], each gate head-major; the
    recurrent kernel is (H, 4*d, d) with R[h][g*d + j, l] the weight from h_{t-1, l} to unit j of
    gate g (what sLSTMCell_vanilla._recurrent_kernel_ext2int makes of its (H, d, 4, d) parameter).

    params (draft): W_i, W_f, W_z, W_o (H, d, I) (each head reads all of x; xlstm's headwise input
    projections are the block-diagonal special case); R_i, R_f, R_z, R_o (H, d, d) (paper
    orientation, rows = outputs); b_i, b_f, b_z, b_o (H, d).
    constants: xlstm_first_step (default False, the draft): True applies xlstm's rule
    `if torch.all(n == 0.0): mnew = iraw` (the whole batch's n zero, i.e. the first step from zero
    states), instead of m_t = max(logsigmoid(ftilde_t) + m_{t-1}, itilde_t).
    states: h, c, n, m, each (batch, H, d).

    Differences from the draft: only xlstm's first-step m (above). It changes m and, by the common
    factor exp(m_draft - m_xlstm), c and n for the whole sequence; h is the same. xlstm also clamps
    i_t, f_t to at most 1 (torch.minimum(..., 1)); kept here, it never acts when m_t is the max above.
    """
    x = _as64(x)
    p = _params64(params)
    c_ = _constants(constants, {"xlstm_first_step": False})
    H, d, _ = p["W_i"].shape
    batch, T, _ = x.shape
    hidden = H * d

    # the draft's parameters in xlstm's internal layout
    W_all = np.stack([p["W_" + g] for g in _SLSTM_GATES], axis=0)  # (4, H, d, I)
    R = np.stack([p["R_" + g] for g in _SLSTM_GATES], axis=1).reshape(H, 4 * d, d)  # (H, 4d, d)
    b = np.stack([p["b_" + g] for g in _SLSTM_GATES], axis=0).reshape(4 * hidden)  # gate-major

    # states [y, c, n, m], each (batch, H*d), heads concatenated
    states = [_state(initial_states, name, (batch, H, d)).reshape(batch, hidden) for name in "hcnm"]
    outputs = []
    for t in range(T):
        Wx = np.einsum("ghdi,bi->bghd", W_all, x[:, t]).reshape(batch, 4 * hidden)
        # --- slstm_forward: Ry, head by head (the same chain of reshapes)
        Ry = (states[0].reshape(batch, H, 1, d)
              @ np.swapaxes(R, 1, 2).reshape(1, H, d, 4 * d))  # (batch, H, 1, 4d)
        Ry = np.swapaxes(Ry.reshape(batch, H, 4, d), 1, 2).reshape(batch, 4 * hidden)
        # --- slstm_forward_pointwise
        raw = Wx + Ry + b
        y, c, n, m = states
        iraw, fraw, zraw, oraw = (raw.reshape(batch, 4, hidden)[:, g] for g in range(4))
        logfplusm = m + logsigmoid(fraw)
        if c_["xlstm_first_step"] and np.all(n == 0.0):
            mnew = iraw
        else:
            mnew = np.maximum(iraw, logfplusm)
        ogate = sigmoid(oraw)
        igate = np.minimum(np.exp(iraw - mnew), 1.0)
        fgate = np.minimum(np.exp(logfplusm - mnew), 1.0)
        cnew = fgate * c + igate * np.tanh(zraw)
        nnew = fgate * n + igate
        ynew = ogate * cnew / nnew
        states = [ynew, cnew, nnew, mnew]
        outputs.append(ynew.reshape(batch, H, d))
    final = {name: s.reshape(batch, H, d) for name, s in zip("hcnm", states)}
    return _heads_out(outputs), final


# ---------------------------------------------------------------- gated linear attention


def gla(x, params, constants=None, *, initial_states=None):
    """Gated linear attention, recurrent form (Yang et al. 2024, "Gated Linear Attention Transformers
    with Hardware-Efficient Training", section 4.1: S_t = diag(alpha_t) S_{t-1} + k_t v_t^T in column
    vectors, o_t = S_t^T q_t, alpha_t = sigmoid(W_alpha x_t + b_alpha)^(1/tau), tau = 16).

    Follows fla-org/flash-linear-attention, fla/ops/gla/naive.py, `naive_recurrent_gla`: state
    h (K, V) per head, h = h * exp(gk)[:, None] + k v^T, o = sum_K q_K h[K, :]. The log-decay gk is
    computed as fla's GLA layer does (fla/layers/gla.py): gk = logsigmoid(W_alpha x + b_alpha) / tau,
    i.e. log(alpha_t) of the draft, without forming the power.

    params (draft): W_q, W_k, W_alpha (H, d_k, I), b_alpha (H, d_k), W_v (H, d_v, I).
    constants: tau (default 16, fla's gate_logit_normalizer); scale (default 1.0, the draft):
    naive_recurrent_gla multiplies q by K**-0.5 (K = d_k per head) unconditionally, fla's chunk and
    fused kernels by their `scale` argument, default K**-0.5; scale = d_k**-0.5 reproduces them.
    states: S (batch, H, d_k, d_v) (fla's orientation, as the draft's k v^T).
    fla's layer also applies a low-rank gate projection, an output gate and a norm: not the cell.
    """
    x = _as64(x)
    p = _params64(params)
    c = _constants(constants, {"tau": 16.0, "scale": 1.0})
    H, d_k, _ = p["W_q"].shape
    d_v = p["W_v"].shape[1]
    batch, T, _ = x.shape
    h = _state(initial_states, "S", (batch, H, d_k, d_v))
    outputs = []
    for t in range(T):
        x_t = x[:, t]
        q_i = _proj(p["W_q"], x_t) * c["scale"]
        k_i = _proj(p["W_k"], x_t)
        v_i = _proj(p["W_v"], x_t)
        gk_i = np.exp(logsigmoid(_proj(p["W_alpha"], x_t, p["b_alpha"])) / c["tau"])
        kv_i = k_i[..., None] * v_i[..., None, :]
        h = h * gk_i[..., None] + kv_i
        outputs.append((q_i[..., None] * h).sum(-2))
    return _heads_out(outputs), {"S": h}


# ---------------------------------------------------------------- DeltaNet and Gated DeltaNet


def _l2_normalise(kraw, eps):
    """kraw / ||kraw||; with eps > 0, kraw / sqrt(||kraw||^2 + eps) as fla's l2norm (eps 1e-6)."""
    return kraw / np.sqrt(np.sum(kraw * kraw, axis=-1, keepdims=True) + eps)


def deltanet(x, params, constants=None, *, initial_states=None):
    """DeltaNet (Yang et al. 2024, "Parallelizing Linear Transformers with the Delta Rule over
    Sequence Length", the delta rule S_t = S_{t-1}(I - beta_t k_t k_t^T) + beta_t v_t k_t^T, o_t = S_t q_t).

    Follows fla-org/flash-linear-attention, fla/ops/delta_rule/naive.py, `delta_rule_recurrence`:
    state S (d_k, d_v) per head, v_new = beta (v - S^T k), S = S + k v_new^T, o = q^T S.

    params (draft): W_q, W_k (H, d_k, I); W_v (H, d_v, I); W_beta (H, 1, I), b_beta (H, 1).
    constants: scale (default 1.0, the draft; delta_rule_recurrence multiplies q by d_k**-0.5);
    eps (default 0.0, the draft): k = kraw / sqrt(||kraw||^2 + eps), fla's l2norm uses 1e-6.
    states: S (batch, H, d_v, d_k), the draft's orientation (v k^T); fla's (d_k, d_v) is transposed
    on the way in and out.
    Differences: fla's DeltaNet layer L2-normalises q as well as k (after a short convolution and
    SiLU), the draft normalises k only; those are the layer's input transforms, not the recurrence.
    """
    return _delta_rule(x, params, constants, initial_states, gated=False)


def gated_deltanet(x, params, constants=None, *, initial_states=None):
    """Gated DeltaNet (Yang, Kautz & Hatamizadeh 2025, "Gated Delta Networks: Improving Mamba2 with
    Delta Rule", the gated delta rule S_t = S_{t-1}(alpha_t (I - beta_t k_t k_t^T)) + beta_t v_t k_t^T).

    Follows fla-org/flash-linear-attention, fla/ops/gated_delta_rule/naive.py,
    `naive_recurrent_gated_delta_rule`: S = S * exp(g), then the delta rule as DeltaNet, with the
    log-decay g = log(alpha_t) = logsigmoid(W_alpha x + b_alpha).

    params: as `deltanet` plus W_alpha (H, 1, I), b_alpha (H, 1). constants, states: as `deltanet`
    (fla's naive function's `scale` defaults to d_k**-0.5).
    Differences: fla's GatedDeltaNet layer makes g Mamba-2 style, g = -exp(A_log) softplus(a x + dt_bias);
    the draft's alpha = sigmoid(W_alpha x + b_alpha) is another parametrisation of the same log-decay
    the recurrence reads.
    """
    return _delta_rule(x, params, constants, initial_states, gated=True)


def _delta_rule(x, params, constants, initial_states, gated):
    x = _as64(x)
    p = _params64(params)
    c = _constants(constants, {"scale": 1.0, "eps": 0.0})
    H, d_k, _ = p["W_q"].shape
    d_v = p["W_v"].shape[1]
    batch, T, _ = x.shape
    S = np.swapaxes(_state(initial_states, "S", (batch, H, d_v, d_k)), -1, -2).copy()  # fla's (d_k, d_v)
    outputs = []
    for t in range(T):
        x_t = x[:, t]
        _q = _proj(p["W_q"], x_t) * c["scale"]
        _k = _l2_normalise(_proj(p["W_k"], x_t), c["eps"])
        _v = _proj(p["W_v"], x_t)
        beta_i = sigmoid(_proj(p["W_beta"], x_t, p["b_beta"]))  # (batch, H, 1)
        if gated:
            g = logsigmoid(_proj(p["W_alpha"], x_t, p["b_alpha"]))  # (batch, H, 1)
            S = S * np.exp(g)[..., None]
        _v = _v - (S * _k[..., None]).sum(-2)
        _v = _v * beta_i
        S = S + _k[..., None] * _v[..., None, :]
        outputs.append(np.einsum("bhd,bhdm->bhm", _q, S))
    return _heads_out(outputs), {"S": np.swapaxes(S, -1, -2).copy()}


# ---------------------------------------------------------------- Mamba's selective SSM


def mamba_ssm(x, params, constants=None, *, initial_states=None):
    """Mamba's selective state space model (Gu & Dao 2023, Algorithm 2 (S6); recurrence eq. 2a-2b
    with the discretisation A-bar = exp(delta A), B-bar = delta B, as the authors' reference code).

    Follows state-spaces/mamba, mamba_ssm/ops/selective_scan_interface.py, `selective_scan_ref`
    with real A, variable B and C, delta_bias = b_delta and delta_softplus=True:
    deltaA = exp(einsum('bdl,dn->bdln', delta, A)), deltaB_u = einsum('bdl,bdnl,bdl->bdln', delta,
    B, u), x = deltaA x + deltaB_u, y = einsum('bdn,bdn->bd', x, C), out = y + D u.

    params (draft): W_delta (H, d, I), b_delta (H, d), W_B, W_C (H, d_state, I), A (H, d, d_state)
    (used directly: mamba stores A_log and uses A = -exp(A_log)), D (H, d). H = 1 is the draft's
    cell (units == input_dim, d = units). H > 1 is selective_scan_ref's grouped B, C
    ("B G N L -> B (G H) N L"): head g owns channels g*d .. (g+1)*d - 1 of x (x is the scanned u, so
    input_dim == units) and its own B_t, C_t; delta still reads all of x.
    states: h (batch, H, d, d_state) (selective_scan_ref's last_state, (dim, dstate)).
    Differences: softplus is exact here; torch's F.softplus returns its argument above 20 (a
    relative difference below 2e-9). Mamba's block around the scan (x_proj, the low-rank dt_proj,
    conv1d, the SiLU gate z) is not the cell.
    """
    x = _as64(x)
    p = _params64(params)
    H, d, _ = p["W_delta"].shape
    N = p["A"].shape[-1]
    batch, T, input_dim = x.shape
    if input_dim != H * d:
        raise ValueError(f"mamba_ssm needs input_dim == units, got {input_dim} and {H * d}")
    state = _state(initial_states, "h", (batch, H, d, N))
    outputs = []
    for t in range(T):
        x_t = x[:, t]
        u = x_t.reshape(batch, H, d)
        delta = softplus(_proj(p["W_delta"], x_t) + p["b_delta"])  # delta + delta_bias, softplus
        B_t = _proj(p["W_B"], x_t)  # (batch, H, N): one B per group
        C_t = _proj(p["W_C"], x_t)
        deltaA = np.exp(np.einsum("bhd,hdn->bhdn", delta, p["A"]))
        deltaB_u = np.einsum("bhd,bhn,bhd->bhdn", delta, B_t, u)
        state = deltaA * state + deltaB_u
        y = np.einsum("bhdn,bhn->bhd", state, C_t)
        outputs.append(y + u * p["D"])
    return _heads_out(outputs), {"h": state}


# ---------------------------------------------------------------- RWKV-4 time mixing


def rwkv4(x, params, constants=None, *, initial_states=None):
    """RWKV-4 time mixing with token shift (Peng et al. 2023, "RWKV: Reinventing RNNs for the
    Transformer Era", eqs. 11-13 (r, k, v with token shift), 14 (wkv), 15 (o); the numerically stable
    recurrence of the authors' code).

    Follows BlinkDL/RWKV-LM, RWKV-v4/src/model_run.py, `RWKV_TimeMix.forward` (token shift and
    mixing, sigmoid(r) * wkv, output projection) with the WKV of RWKV-v4/cuda/wkv_cuda.cu,
    `kernel_forward` (running p, q, o there, here a, b, p: numerator, denominator and their common
    log-scale), step for step as in the `rwkv` package's `RWKV.att_seq` (rwkv/model.py).

    params (draft, H = 1): mu_r, mu_k, mu_v (1, I); W_r, W_k, W_v (1, units, I); W_o (1, units, units);
    u, w (1, units) with w > 0 the decay rate (RWKV stores time_decay = w_raw and uses
    -exp(w_raw), so w = exp(w_raw); time_first = u).
    states: a, b, p (batch, 1, units); x_prev (batch, 1, I), the previous input (zeros before
    the first step, as RWKV's time_shift pads).
    Differences: the CUDA kernel starts from p = -1e38 (the rwkv package: -1e30); the draft's zero
    states start from p = 0. With a = b = 0 both give the same outputs (a, b carry the scale);
    the final a, b, p differ by that common scale. Pass initial_states={"p": ...} for the authors'.
    (With p = 0, an exp(u + k_1 - max(0, u + k_1)) below the float64 range would make the first
    wkv 0/0; not a concern at ordinary magnitudes.)
    """
    x = _as64(x)
    p = _params64(params)
    _constants(constants, {})
    _single_head(p, ["W_r"], "rwkv4")
    mu_r, mu_k, mu_v = p["mu_r"][0], p["mu_k"][0], p["mu_v"][0]
    W_r, W_k, W_v, W_o = p["W_r"][0], p["W_k"][0], p["W_v"][0], p["W_o"][0]
    time_first = p["u"][0]
    time_decay = -p["w"][0]  # what the kernel receives: -exp(w_raw)
    batch, T, input_dim = x.shape
    units = W_r.shape[0]
    aa = _state(initial_states, "a", (batch, 1, units))[:, 0]
    bb = _state(initial_states, "b", (batch, 1, units))[:, 0]
    pp = _state(initial_states, "p", (batch, 1, units))[:, 0]
    sx = _state(initial_states, "x_prev", (batch, 1, input_dim))[:, 0]
    outputs = []
    for t in range(T):
        xx = x[:, t]
        kx = xx * mu_k + sx * (1 - mu_k)
        vx = xx * mu_v + sx * (1 - mu_v)
        rx = xx * mu_r + sx * (1 - mu_r)
        r = sigmoid(rx @ W_r.T)
        kk = kx @ W_k.T
        vv = vx @ W_v.T
        # --- kernel_forward / att_seq, one step
        ww = time_first + kk
        q = np.maximum(pp, ww)
        e1 = np.exp(pp - q)
        e2 = np.exp(ww - q)
        wkv = (e1 * aa + e2 * vv) / (e1 * bb + e2)
        ww = time_decay + pp
        q = np.maximum(ww, kk)
        e1 = np.exp(ww - q)
        e2 = np.exp(kk - q)
        aa = e1 * aa + e2 * vv
        bb = e1 * bb + e2
        pp = q
        # ---
        outputs.append(((r * wkv) @ W_o.T)[:, None, :])
        sx = xx
    states = {"a": aa[:, None], "b": bb[:, None], "p": pp[:, None], "x_prev": sx[:, None]}
    return _heads_out(outputs), states


# ---------------------------------------------------------------- QRNN, filter width 2


def qrnn2(x, params, constants=None, *, initial_states=None):
    """QRNN with filter width 2 and fo-pooling (Bradbury et al. 2017, "Quasi-Recurrent Neural
    Networks", eqs. 1-2 with k = 2 (z, f, o from x_{t-1} and x_t) and fo-pooling, section 2.1).

    Follows salesforce/pytorch-qrnn, torchqrnn/qrnn.py, `QRNNLayer.forward` with window=2 and
    output_gate=True (one Linear over cat([x_t, x_{t-1}]), split into Z, F, O; zeros for x_{-1}) and
    torchqrnn/forget_mult.py, `CPUForgetMult.forward` (h_t = F_t * Z_t + (1 - F_t) * h_{t-1}).

    params (draft, H = 1): W_z1, W_z2, W_f1, W_f2, W_o1, W_o2 (1, units, I) (the "1" matrices read
    x_{t-1}, the "2" matrices x_t); b_z, b_f, b_o (1, units).
    states: c (batch, 1, units); x_prev (batch, 1, I).
    Conversions: pytorch-qrnn's weight is (3 units, 2 I) with rows [Z; F; O] and columns
    [x_t | x_{t-1}], so W = [[W_z2, W_z1], ...]. Its ForgetMult weighs the NEW value by F and the old
    state by 1 - F, the reverse of the paper's (and the draft's) c_t = f_t c_{t-1} + (1 - f_t) z_t:
    its F is the paper's 1 - f = sigmoid(-(W_f1 x_{t-1} + W_f2 x_t + b_f)), so the F rows and bias
    are the draft's negated.
    """
    x = _as64(x)
    p = _params64(params)
    _constants(constants, {})
    _single_head(p, ["W_z1"], "qrnn2")
    units = p["W_z1"].shape[1]
    batch, T, input_dim = x.shape
    weight = np.concatenate([
        np.concatenate([p["W_z2"][0], p["W_z1"][0]], axis=1),
        -np.concatenate([p["W_f2"][0], p["W_f1"][0]], axis=1),
        np.concatenate([p["W_o2"][0], p["W_o1"][0]], axis=1),
    ], axis=0)  # (3 units, 2 I)
    bias = np.concatenate([p["b_z"][0], -p["b_f"][0], p["b_o"][0]])
    prev_h = _state(initial_states, "c", (batch, 1, units))[:, 0]
    x_prev = _state(initial_states, "x_prev", (batch, 1, input_dim))[:, 0]
    outputs = []
    for t in range(T):
        source = np.concatenate([x[:, t], x_prev], axis=-1)
        Y = source @ weight.T + bias
        Z, F, O = np.split(Y, 3, axis=-1)
        Z = np.tanh(Z)
        F = sigmoid(F)
        h = F * Z + (1 - F) * prev_h  # CPUForgetMult
        prev_h = h
        outputs.append((sigmoid(O) * h)[:, None, :])
        x_prev = x[:, t]
    return _heads_out(outputs), {"c": prev_h[:, None], "x_prev": x_prev[:, None]}


REFERENCES = {
    "mlstm": mlstm,
    "mlstm_unstabilised": mlstm_unstabilised,
    "slstm_xlstm": slstm_xlstm,
    "gla": gla,
    "deltanet": deltanet,
    "gated_deltanet": gated_deltanet,
    "mamba_ssm": mamba_ssm,
    "rwkv4": rwkv4,
    "qrnn2": qrnn2,
}
