"""Float64 numpy references for the classic recurrent cells of specs/, one function per cell,
written step by step from each paper's equations (never from eqcell's specs or generated code).

Every function takes
  x        the input sequence, (batch, T, input_dim);
  p        the parameters, named as the paper names them and oriented as it writes them: a matrix
           W of `W x` has shape (rows, columns) = (output size, input size), a vector (size,);
  initial  optional start states {name: (batch, size)}; zeros where missing;
and returns (outputs, final_states): the outputs of every step, (batch, T, size), and a dict of
the final states by name. `W x_t` for a batch of row vectors is `x_t @ W.T` (`_mv` below).
Where a spec had to differ from its paper (its description says where and why), the function's
docstring says how it follows the spec (LN-LSTM's per-gate normalisation, eqcell's LN epsilon) or
builds the paper's form from the spec's parameters (MGU's concatenated matrices).
"""
import numpy as np

# The shipped specs (specs/<name>.yaml) that this module has a reference for, each checked against it
# by tests/test_zoo_classic.py in the default run. The exhaustive per-spec tests (test_fast_layer,
# test_verify, test_determinism) run these specs in full only under `pytest -m slow` (with one cheap
# case each by default), so that eleven more specs keep the default run short.
CLASSIC_SPECS = frozenset({"cifg_lstm", "indrnn", "janet", "ln_lstm", "mgu", "minlstm", "peephole_lstm",
                           "projection_lstm", "rg_lru", "sru", "ugrnn"})


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def relu(v):
    return np.maximum(v, 0.0)


def softplus(v):
    return np.logaddexp(0.0, v)


def _mv(W, v):
    """The matrix-vector product W v of the paper, for a batch of vectors v (batch, columns)."""
    W = np.asarray(W, dtype=np.float64)
    assert W.ndim == 2 and W.shape[1] == v.shape[-1], (W.shape, v.shape)
    return v @ W.T


def _vec(p, name):
    v = np.asarray(p[name], dtype=np.float64)
    assert v.ndim == 1, (name, v.shape)
    return v


def _diag(p, name):
    """The diagonal matrix whose diagonal is the vector p[name] (a peephole matrix of the papers)."""
    return np.diag(_vec(p, name))


def _start(initial, name, batch, size):
    if initial is not None and name in initial:
        return np.asarray(initial[name], dtype=np.float64).reshape(batch, size)
    return np.zeros((batch, size))


def _prepare(x, p):
    x = np.asarray(x, dtype=np.float64)
    assert x.ndim == 3, x.shape
    return x, {k: np.asarray(v, dtype=np.float64) for k, v in p.items()}


def peephole_lstm(x, p, initial=None):
    """Peephole LSTM (Gers, Schraudolph & Schmidhuber 2002), written as Graves (2013), eqs. (7)-(11):
        i_t = sigma(W_xi x_t + W_hi h_{t-1} + W_ci c_{t-1} + b_i)
        f_t = sigma(W_xf x_t + W_hf h_{t-1} + W_cf c_{t-1} + b_f)
        c_t = f_t c_{t-1} + i_t tanh(W_xc x_t + W_hc h_{t-1} + b_c)
        o_t = sigma(W_xo x_t + W_ho h_{t-1} + W_co c_t + b_o)
        h_t = o_t tanh(c_t)
    with the peephole matrices W_c* diagonal: their diagonals are the vectors w_ci, w_cf, w_co."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b_i"].shape[0]
    h, c = _start(initial, "h", batch, n), _start(initial, "c", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        i = sigmoid(_mv(p["W_xi"], xt) + _mv(p["W_hi"], h) + _mv(_diag(p, "w_ci"), c) + p["b_i"])
        f = sigmoid(_mv(p["W_xf"], xt) + _mv(p["W_hf"], h) + _mv(_diag(p, "w_cf"), c) + p["b_f"])
        c = f * c + i * np.tanh(_mv(p["W_xc"], xt) + _mv(p["W_hc"], h) + p["b_c"])
        o = sigmoid(_mv(p["W_xo"], xt) + _mv(p["W_ho"], h) + _mv(_diag(p, "w_co"), c) + p["b_o"])
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h, "c": c}


def cifg_lstm(x, p, initial=None):
    """CIFG LSTM (Greff et al. 2017): the vanilla LSTM forward pass of section II,
        z^t = g(W_z x^t + R_z y^{t-1} + b_z)                      block input
        i^t = sigma(W_i x^t + R_i y^{t-1} + p_i . c^{t-1} + b_i)   input gate
        f^t = sigma(W_f x^t + R_f y^{t-1} + p_f . c^{t-1} + b_f)   forget gate
        c^t = z^t . i^t + c^{t-1} . f^t                           cell
        o^t = sigma(W_o x^t + R_o y^{t-1} + p_o . c^t + b_o)       output gate
        y^t = h(c^t) . o^t                                        block output
    with g = h = tanh, and the CIFG variant's one change: f^t = 1 - i^t (no W_f, R_f, p_f, b_f)."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b_z"].shape[0]
    y, c = _start(initial, "y", batch, n), _start(initial, "c", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        z = np.tanh(_mv(p["W_z"], xt) + _mv(p["R_z"], y) + p["b_z"])
        i = sigmoid(_mv(p["W_i"], xt) + _mv(p["R_i"], y) + _vec(p, "p_i") * c + p["b_i"])
        f = 1.0 - i
        c = z * i + c * f
        o = sigmoid(_mv(p["W_o"], xt) + _mv(p["R_o"], y) + _vec(p, "p_o") * c + p["b_o"])
        y = np.tanh(c) * o
        outputs.append(y)
    return np.stack(outputs, axis=1), {"y": y, "c": c}


def sru(x, p, initial=None):
    """SRU (Lei et al. 2018), eqs. (1)-(4):
        f_t = sigma(W_f x_t + v_f . c_{t-1} + b_f)
        c_t = f_t . c_{t-1} + (1 - f_t) . (W x_t)
        r_t = sigma(W_r x_t + v_r . c_{t-1} + b_r)
        h_t = r_t . c_t + (1 - r_t) . x_t
    The highway term adds x_t itself: input_dim == d."""
    x, p = _prepare(x, p)
    batch, steps, features = x.shape
    n = p["b_f"].shape[0]
    assert features == n, "SRU's highway connection needs input_dim == hidden size"
    c = _start(initial, "c", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        f = sigmoid(_mv(p["W_f"], xt) + _vec(p, "v_f") * c + p["b_f"])
        r = sigmoid(_mv(p["W_r"], xt) + _vec(p, "v_r") * c + p["b_r"])  # reads c_{t-1}: before c is updated
        c = f * c + (1.0 - f) * _mv(p["W"], xt)
        h = r * c + (1.0 - r) * xt
        outputs.append(h)
    return np.stack(outputs, axis=1), {"c": c}


def indrnn(x, p, initial=None):
    """IndRNN (Li et al. 2018), eq. (2): h_t = sigma(W x_t + u . h_{t-1} + b), sigma = ReLU;
    each neuron n reads only its own past: h_{n,t} = sigma(w_n x_t + u_n h_{n,t-1} + b_n) (eq. 3)."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b"].shape[0]
    h = _start(initial, "h", batch, n)
    outputs = []
    for t in range(steps):
        h = relu(_mv(p["W"], x[:, t]) + _vec(p, "u") * h + p["b"])
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h}


def janet(x, p, initial=None, beta=1.0):
    """JANET (van der Westhuizen & Lasenby 2018), the forget-gate-only LSTM:
        s_t = U_f h_{t-1} + W_f x_t + b_f
        c~_t = tanh(U_c h_{t-1} + W_c x_t + b_c)
        c_t = sigma(s_t) . c_{t-1} + (1 - sigma(s_t - beta)) . c~_t
        h_t = c_t
    beta = 1 in the paper."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b_f"].shape[0]
    h, c = _start(initial, "h", batch, n), _start(initial, "c", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        s = _mv(p["U_f"], h) + _mv(p["W_f"], xt) + p["b_f"]
        c_tilde = np.tanh(_mv(p["U_c"], h) + _mv(p["W_c"], xt) + p["b_c"])
        c = sigmoid(s) * c + (1.0 - sigmoid(s - beta)) * c_tilde
        h = c
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h, "c": c}


def ugrnn(x, p, initial=None):
    """UGRNN (Collins, Sohl-Dickstein & Sussillo 2017):
        c_t = tanh(W^{cx} x_t + W^{ch} h_{t-1} + b^c)     candidate
        g_t = sigma(W^{gx} x_t + W^{gh} h_{t-1} + b^g)    update gate
        h_t = g_t . h_{t-1} + (1 - g_t) . c_t"""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b_c"].shape[0]
    h = _start(initial, "h", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        c = np.tanh(_mv(p["W_cx"], xt) + _mv(p["W_ch"], h) + p["b_c"])
        g = sigmoid(_mv(p["W_gx"], xt) + _mv(p["W_gh"], h) + p["b_g"])
        h = g * h + (1.0 - g) * c
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h}


def mgu(x, p, initial=None):
    """MGU (Zhou et al. 2016), with the paper's concatenations:
        f_t = sigma(W_f [h_{t-1}, x_t] + b_f)
        h~_t = tanh(W_h [f_t . h_{t-1}, x_t] + b_h)
        h_t = (1 - f_t) . h_{t-1} + f_t . h~_t
    The spec splits each concatenated matrix into its blocks, W_f [h, x] = U_f h + W_f x; here the
    paper's concatenated matrices are built from those blocks, [U_f | W_f], and multiply [h, x]."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b_f"].shape[0]
    Wf_cat = np.concatenate([p["U_f"], p["W_f"]], axis=1)  # (n, n + input_dim), acting on [h, x]
    Wh_cat = np.concatenate([p["U_h"], p["W_h"]], axis=1)
    h = _start(initial, "h", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        f = sigmoid(_mv(Wf_cat, np.concatenate([h, xt], axis=1)) + p["b_f"])
        h_tilde = np.tanh(_mv(Wh_cat, np.concatenate([f * h, xt], axis=1)) + p["b_h"])
        h = (1.0 - f) * h + f * h_tilde
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h}


def layer_norm(a, gain, bias, eps=1e-3):
    """Ba et al. (2016), eqs. (3)-(4): mu = mean of a over its H units, sigma = sqrt(mean((a - mu)^2)),
    LN(a) = gain / sigma . (a - mu) + bias. The paper has no eps; eqcell (and Keras's
    LayerNormalization) use sigma = sqrt(var + 1e-3)."""
    mu = a.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(((a - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    return gain / sigma * (a - mu) + bias


def ln_lstm(x, p, initial=None, eps=1e-3):
    """Layer-normalized LSTM (Ba, Kiros & Hinton 2016, supplementary material):
        (f_t; i_t; o_t; g_t) = LN(W_h h_{t-1}; alpha_1, beta_1) + LN(W_x x_t; alpha_2, beta_2) + b
        c_t = sigma(f_t) . c_{t-1} + sigma(i_t) . tanh(g_t)
        h_t = sigma(o_t) . tanh(LN(c_t; alpha_3, beta_3))
    The spec normalises each gate's products on their own (its description says why), so here
    W_h = [W_fh; W_ih; W_oh; W_gh] and W_x = [W_fx; ...] are applied gate by gate, each product with
    its own gain alpha_<gate><h|x> and bias beta_<gate><h|x>; the cell's LN has alpha_c, beta_c."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b_f"].shape[0]
    h, c = _start(initial, "h", batch, n), _start(initial, "c", batch, n)

    def ln(a, key):
        return layer_norm(a, p["alpha_" + key], p["beta_" + key], eps)

    outputs = []
    for t in range(steps):
        xt = x[:, t]
        pre = {g: ln(_mv(p[f"W_{g}h"], h), g + "h") + ln(_mv(p[f"W_{g}x"], xt), g + "x") + p["b_" + g]
               for g in "fiog"}
        c = sigmoid(pre["f"]) * c + sigmoid(pre["i"]) * np.tanh(pre["g"])
        h = sigmoid(pre["o"]) * np.tanh(ln(c, "c"))
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h, "c": c}


def projection_lstm(x, p, initial=None):
    """LSTMP (Sak, Senior & Beaufays 2014):
        i_t = sigma(W_ix x_t + W_ir r_{t-1} + W_ic c_{t-1} + b_i)
        f_t = sigma(W_fx x_t + W_fr r_{t-1} + W_fc c_{t-1} + b_f)
        c_t = f_t . c_{t-1} + i_t . g(W_cx x_t + W_cr r_{t-1} + b_c)
        o_t = sigma(W_ox x_t + W_or r_{t-1} + W_oc c_t + b_o)
        m_t = o_t . h(c_t)
        r_t = W_rm m_t
    g = h = tanh; the peephole matrices W_ic, W_fc, W_oc are diagonal (diagonals w_ic, w_fc, w_oc)."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n, n_r = p["W_rm"].shape[1], p["W_rm"].shape[0]
    r, c = _start(initial, "r", batch, n_r), _start(initial, "c", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        i = sigmoid(_mv(p["W_ix"], xt) + _mv(p["W_ir"], r) + _mv(_diag(p, "w_ic"), c) + p["b_i"])
        f = sigmoid(_mv(p["W_fx"], xt) + _mv(p["W_fr"], r) + _mv(_diag(p, "w_fc"), c) + p["b_f"])
        c = f * c + i * np.tanh(_mv(p["W_cx"], xt) + _mv(p["W_cr"], r) + p["b_c"])
        o = sigmoid(_mv(p["W_ox"], xt) + _mv(p["W_or"], r) + _mv(_diag(p, "w_oc"), c) + p["b_o"])
        m = o * np.tanh(c)
        r = _mv(p["W_rm"], m)
        outputs.append(r)
    return np.stack(outputs, axis=1), {"r": r, "c": c}


def minlstm(x, p, initial=None):
    """minLSTM (Feng et al. 2024, section 3.2), sequential mode:
        f_t = sigma(Linear_dh(x_t)),  i_t = sigma(Linear_dh(x_t)),  h~_t = Linear_dh(x_t)
        f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t)
        h_t = f'_t . h_{t-1} + i'_t . h~_t
    Linear_dh(x) = W x + b, a separate one for each of f, i, h~."""
    x, p = _prepare(x, p)
    batch, steps, _ = x.shape
    n = p["b_f"].shape[0]
    h = _start(initial, "h", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        f = sigmoid(_mv(p["W_f"], xt) + p["b_f"])
        i = sigmoid(_mv(p["W_i"], xt) + p["b_i"])
        h_tilde = _mv(p["W_h"], xt) + p["b_h"]
        f_prime, i_prime = f / (f + i), i / (f + i)
        h = f_prime * h + i_prime * h_tilde
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h}


def rg_lru(x, p, initial=None, c=8.0):
    """RG-LRU (De et al. 2024, Griffin), eqs. (1)-(4):
        r_t = sigma(W_a x_t + b_a)                                recurrence gate
        i_t = sigma(W_x x_t + b_x)                                input gate
        a_t = a^{c r_t},  a = sigma(Lambda)
        h_t = a_t . h_{t-1} + sqrt(1 - a_t^2) . (i_t . x_t)
    a_t computed in log space as the paper does: log a_t = -c r_t softplus(-Lambda); c = 8.
    i_t . x_t needs input_dim == hidden size."""
    x, p = _prepare(x, p)
    batch, steps, features = x.shape
    n = p["b_a"].shape[0]
    assert features == n, "RG-LRU gates x_t element-wise: input_dim == hidden size"
    h = _start(initial, "h", batch, n)
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        r = sigmoid(_mv(p["W_a"], xt) + p["b_a"])
        i = sigmoid(_mv(p["W_x"], xt) + p["b_x"])
        a_t = np.exp(-c * r * softplus(-_vec(p, "Lambda")))
        h = a_t * h + np.sqrt(1.0 - a_t ** 2) * (i * xt)
        outputs.append(h)
    return np.stack(outputs, axis=1), {"h": h}
