"""sLSTM, mLSTM and GLA cells written by hand, the way a careful Keras 3 user writes them.

The contenders of `bench_tensor_cells.py`: each is a `keras.layers.Layer` with `state_size`,
`output_size`, `build` and `call`, meant to be wrapped in `keras.layers.RNN`. They are written the
way the papers write the cells:

- one `add_weight` per parameter of the paper: a Dense-style kernel `(input_dim, size)` per gate or
  projection (`x @ W`), its own bias, and for sLSTM one block-diagonal recurrent matrix per gate,
  stored as its diagonal blocks `(heads, units/heads, units/heads)`;
- one line per equation, in the papers' order;
- `ops.einsum` for the per-head products and the matrix states.

Keras 3's `RNN` only takes integer state sizes, so matrix states travel flattened,
`(batch, heads * rows * columns)`, and `call` reshapes them on the way in and out; that is the
usual way to carry them.

With heads, everything but the input is per head: `units / heads` values per head, and the matrix
states are per head. The key size per head is `key_units / heads`.

The cells compute exactly the equations of the specs in `bench_tensor_cells.py` (the benchmark
checks this against the generated cells on the same weights, see `paper_weights` on each class).
"""
import math

import keras
from keras import ops


def _split_heads(x, heads):
    """(batch, heads * size) -> (batch, heads, size)."""
    return ops.reshape(x, (-1, heads, x.shape[-1] // heads))


def _merge_heads(x):
    """(batch, heads, ...) -> (batch, heads * ...)."""
    return ops.reshape(x, (-1, math.prod(x.shape[1:])))


class SLSTMCell(keras.layers.Layer):
    """sLSTM (Beck et al. 2024, xLSTM), stabilised exponential gating, block-diagonal recurrence:

        itilde_t = W_i x_t + R_i h_{t-1} + b_i
        ftilde_t = W_f x_t + R_f h_{t-1} + b_f
        z_t = tanh(W_z x_t + R_z h_{t-1} + b_z)
        o_t = sigmoid(W_o x_t + R_o h_{t-1} + b_o)
        m_t = max(logsigmoid(ftilde_t) + m_{t-1}, itilde_t)
        i_t = exp(itilde_t - m_t)
        f_t = exp(logsigmoid(ftilde_t) + m_{t-1} - m_t)
        c_t = f_t * c_{t-1} + i_t * z_t
        n_t = f_t * n_{t-1} + i_t
        h_t = o_t * c_t / n_t

    The recurrent matrices R_* are block-diagonal, one (units/heads, units/heads) block per head
    (heads do not mix through the recurrence); everything else is element-wise. States h, c, n, m
    (units each, zeros first); output h.
    """

    GATES = ("i", "f", "z", "o")

    def __init__(self, units, num_heads=4, **kwargs):
        super().__init__(**kwargs)
        if units % num_heads:
            raise ValueError(f"units={units} is not a multiple of num_heads={num_heads}")
        self.units = units
        self.num_heads = num_heads
        self.head_units = units // num_heads
        self.state_size = [units, units, units, units]
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        heads, size = self.num_heads, self.head_units
        self.W_i = self.add_weight(shape=(input_dim, self.units), initializer="glorot_uniform", name="W_i")
        self.W_f = self.add_weight(shape=(input_dim, self.units), initializer="glorot_uniform", name="W_f")
        self.W_z = self.add_weight(shape=(input_dim, self.units), initializer="glorot_uniform", name="W_z")
        self.W_o = self.add_weight(shape=(input_dim, self.units), initializer="glorot_uniform", name="W_o")
        self.R_i = self.add_weight(shape=(heads, size, size), initializer="orthogonal", name="R_i")
        self.R_f = self.add_weight(shape=(heads, size, size), initializer="orthogonal", name="R_f")
        self.R_z = self.add_weight(shape=(heads, size, size), initializer="orthogonal", name="R_z")
        self.R_o = self.add_weight(shape=(heads, size, size), initializer="orthogonal", name="R_o")
        self.b_i = self.add_weight(shape=(self.units,), initializer="zeros", name="b_i")
        self.b_f = self.add_weight(shape=(self.units,), initializer="zeros", name="b_f")
        self.b_z = self.add_weight(shape=(self.units,), initializer="zeros", name="b_z")
        self.b_o = self.add_weight(shape=(self.units,), initializer="zeros", name="b_o")

    def _recurrent(self, h, R):
        """R h for a block-diagonal R: each head's block times that head's part of h."""
        return _merge_heads(ops.einsum("bhi,hij->bhj", _split_heads(h, self.num_heads), R))

    def call(self, inputs, states):
        x = inputs
        h_tm1, c_tm1, n_tm1, m_tm1 = states
        itilde = ops.matmul(x, self.W_i) + self._recurrent(h_tm1, self.R_i) + self.b_i
        ftilde = ops.matmul(x, self.W_f) + self._recurrent(h_tm1, self.R_f) + self.b_f
        z = ops.tanh(ops.matmul(x, self.W_z) + self._recurrent(h_tm1, self.R_z) + self.b_z)
        o = ops.sigmoid(ops.matmul(x, self.W_o) + self._recurrent(h_tm1, self.R_o) + self.b_o)
        m = ops.maximum(ops.log_sigmoid(ftilde) + m_tm1, itilde)
        i = ops.exp(itilde - m)
        f = ops.exp(ops.log_sigmoid(ftilde) + m_tm1 - m)
        c = f * c_tm1 + i * z
        n = f * n_tm1 + i
        h = o * c / n
        return h, [h, c, n, m]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_heads": self.num_heads}

    def paper_weights(self):
        """The parameters in the paper's orientation (rows, columns of `W x`), with a leading head
        axis: W_* (heads, units/heads, input_dim), R_* (heads, units/heads, units/heads),
        b_* (heads, units/heads)."""
        heads, size = self.num_heads, self.head_units
        weights = {}
        for g in self.GATES:
            W = ops.convert_to_numpy(getattr(self, f"W_{g}"))
            weights[f"W_{g}"] = W.T.reshape(heads, size, -1)
            weights[f"R_{g}"] = ops.convert_to_numpy(getattr(self, f"R_{g}")).transpose(0, 2, 1)
            weights[f"b_{g}"] = ops.convert_to_numpy(getattr(self, f"b_{g}")).reshape(heads, size)
        return weights


class MLSTMCell(keras.layers.Layer):
    """mLSTM (Beck et al. 2024, xLSTM): a matrix memory per head, scalar gates per head:

        q_t = W_q x_t + b_q
        k_t = (W_k x_t) / sqrt(d) + b_k
        v_t = W_v x_t + b_v
        itilde_t = W_i x_t + b_i                       (one value per head)
        ftilde_t = W_f x_t + b_f                       (one value per head)
        o_t = sigmoid(W_o x_t + b_o)
        m_t = max(logsigmoid(ftilde_t) + m_{t-1}, itilde_t)
        i_t = exp(itilde_t - m_t)
        f_t = exp(logsigmoid(ftilde_t) + m_{t-1} - m_t)
        C_t = f_t C_{t-1} + i_t v_t k_t^T              (units/heads, key_units/heads) per head
        n_t = f_t n_{t-1} + i_t k_t
        htilde_t = C_t q_t / max(|n_t^T q_t|, exp(-m_t))
        h_t = o_t * htilde_t

    `d` is the key scale's constant (the spec's `d`, 16). States C, n, m (flattened, zeros first);
    output h (units).
    """

    def __init__(self, units, key_units, num_heads=4, d=16, **kwargs):
        super().__init__(**kwargs)
        if units % num_heads or key_units % num_heads:
            raise ValueError(f"units={units} and key_units={key_units} must be multiples of num_heads={num_heads}")
        self.units = units
        self.key_units = key_units
        self.num_heads = num_heads
        self.d = d
        self.dv = units // num_heads
        self.dk = key_units // num_heads
        self.state_size = [num_heads * self.dv * self.dk, key_units, num_heads]
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        heads = self.num_heads

        def dense(name, size):
            kernel = self.add_weight(shape=(input_dim, size), initializer="glorot_uniform", name=f"W_{name}")
            bias = self.add_weight(shape=(size,), initializer="zeros", name=f"b_{name}")
            return kernel, bias

        self.W_q, self.b_q = dense("q", self.key_units)
        self.W_k, self.b_k = dense("k", self.key_units)
        self.W_v, self.b_v = dense("v", self.units)
        self.W_i, self.b_i = dense("i", heads)
        self.W_f, self.b_f = dense("f", heads)
        self.W_o, self.b_o = dense("o", self.units)

    def call(self, inputs, states):
        x, heads = inputs, self.num_heads
        C_tm1 = ops.reshape(states[0], (-1, heads, self.dv, self.dk))
        n_tm1 = ops.reshape(states[1], (-1, heads, self.dk))
        m_tm1 = states[2]                                                    # (batch, heads)
        q = _split_heads(ops.matmul(x, self.W_q) + self.b_q, heads)
        k = _split_heads(ops.matmul(x, self.W_k) / math.sqrt(self.d) + self.b_k, heads)
        v = _split_heads(ops.matmul(x, self.W_v) + self.b_v, heads)
        itilde = ops.matmul(x, self.W_i) + self.b_i                          # (batch, heads)
        ftilde = ops.matmul(x, self.W_f) + self.b_f
        o = ops.sigmoid(ops.matmul(x, self.W_o) + self.b_o)
        m = ops.maximum(ops.log_sigmoid(ftilde) + m_tm1, itilde)
        i = ops.exp(itilde - m)
        f = ops.exp(ops.log_sigmoid(ftilde) + m_tm1 - m)
        C = f[:, :, None, None] * C_tm1 + i[:, :, None, None] * ops.einsum("bhi,bhj->bhij", v, k)
        n = f[:, :, None] * n_tm1 + i[:, :, None] * k
        normalizer = ops.maximum(ops.abs(ops.einsum("bhj,bhj->bh", n, q)), ops.exp(-m))
        htilde = ops.einsum("bhij,bhj->bhi", C, q) / normalizer[:, :, None]
        h = o * _merge_heads(htilde)
        return h, [_merge_heads(C), _merge_heads(n), m]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "key_units": self.key_units,
                "num_heads": self.num_heads, "d": self.d}

    def paper_weights(self):
        """The parameters in the paper's orientation with a leading head axis: W_* (heads, rows
        per head, input_dim), b_* (heads, rows per head); W_i, W_f have one row per head."""
        heads = self.num_heads
        weights = {}
        for g in ("q", "k", "v", "i", "f", "o"):
            W = ops.convert_to_numpy(getattr(self, f"W_{g}"))
            weights[f"W_{g}"] = W.T.reshape(heads, -1, W.shape[0])
            weights[f"b_{g}"] = ops.convert_to_numpy(getattr(self, f"b_{g}")).reshape(heads, -1)
        return weights


class GLACell(keras.layers.Layer):
    """Gated linear attention (Yang et al. 2024), recurrent form, a matrix state per head:

        q_t = W_q x_t
        k_t = W_k x_t
        v_t = W_v x_t
        alpha_t = sigmoid(W_alpha x_t + b_alpha)^(1/tau)
        S_t = diag(alpha_t) S_{t-1} + k_t v_t^T        (key_units/heads, units/heads) per head
        o_t = S_t^T q_t

    State S (flattened, zeros first); output o (units).
    """

    def __init__(self, units, key_units, num_heads=4, tau=16, **kwargs):
        super().__init__(**kwargs)
        if units % num_heads or key_units % num_heads:
            raise ValueError(f"units={units} and key_units={key_units} must be multiples of num_heads={num_heads}")
        self.units = units
        self.key_units = key_units
        self.num_heads = num_heads
        self.tau = tau
        self.dv = units // num_heads
        self.dk = key_units // num_heads
        self.state_size = [num_heads * self.dk * self.dv]
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        self.W_q = self.add_weight(shape=(input_dim, self.key_units), initializer="glorot_uniform", name="W_q")
        self.W_k = self.add_weight(shape=(input_dim, self.key_units), initializer="glorot_uniform", name="W_k")
        self.W_v = self.add_weight(shape=(input_dim, self.units), initializer="glorot_uniform", name="W_v")
        self.W_alpha = self.add_weight(shape=(input_dim, self.key_units), initializer="glorot_uniform", name="W_alpha")
        self.b_alpha = self.add_weight(shape=(self.key_units,), initializer="zeros", name="b_alpha")

    def call(self, inputs, states):
        x, heads = inputs, self.num_heads
        S_tm1 = ops.reshape(states[0], (-1, heads, self.dk, self.dv))
        q = _split_heads(ops.matmul(x, self.W_q), heads)
        k = _split_heads(ops.matmul(x, self.W_k), heads)
        v = _split_heads(ops.matmul(x, self.W_v), heads)
        alpha = _split_heads(ops.sigmoid(ops.matmul(x, self.W_alpha) + self.b_alpha) ** (1 / self.tau), heads)
        S = alpha[:, :, :, None] * S_tm1 + ops.einsum("bhi,bhj->bhij", k, v)
        o = _merge_heads(ops.einsum("bhij,bhi->bhj", S, q))
        return o, [_merge_heads(S)]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "key_units": self.key_units,
                "num_heads": self.num_heads, "tau": self.tau}

    def paper_weights(self):
        """The parameters in the paper's orientation with a leading head axis: W_* (heads, rows
        per head, input_dim), b_alpha (heads, key_units/heads)."""
        heads = self.num_heads
        weights = {}
        for g in ("q", "k", "v", "alpha"):
            W = ops.convert_to_numpy(getattr(self, f"W_{g}"))
            weights[f"W_{g}"] = W.T.reshape(heads, -1, W.shape[0])
        weights["b_alpha"] = ops.convert_to_numpy(self.b_alpha).reshape(heads, -1)
        return weights
