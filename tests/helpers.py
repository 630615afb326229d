"""Helpers shared by test modules (import them from here, never from another test module)."""
import numpy as np
import pytest


def assert_close(a, b, what, tol=1e-5):
    """Equal to `tol`, relative, and absolute on the scale of `b` (at least 1)."""
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale, err_msg=what)


def loss_and_grads(model, x):
    """d(sum(outputs**2) + sum(states))/d(weights), on whichever backend Keras runs."""
    import keras
    from keras import ops

    backend = keras.backend.backend()

    def loss_of(outputs):
        return ops.sum(outputs[0] ** 2) + sum(ops.sum(s) for s in outputs[1:])

    if backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = loss_of(model(x))
        return [np.asarray(g) for g in tape.gradient(loss, model.trainable_weights)]
    if backend == "jax":
        import jax
        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def f(values):
            outputs, _ = model.stateless_call(values, frozen, x)
            return loss_of(outputs)
        return [np.asarray(g) for g in jax.grad(f)(trainable)]
    if backend == "torch":
        loss = loss_of(model(x))
        loss.backward()
        return [v.value.grad.detach().cpu().numpy() for v in model.trainable_weights]
    pytest.skip(f"no gradient helper for backend {backend}")


# Cells beyond the shipped specs, as papers write them (tests/test_more_cells.py, tests/test_verify.py)
PAPER_CELLS = {
    "peephole_lstm": """name: PeepholeLSTMCell
equations: |
  i_t = sigmoid(W_i x_t + U_i h_{t-1} + p_i * c_{t-1} + b_i)
  f_t = sigmoid(W_f x_t + U_f h_{t-1} + p_f * c_{t-1} + b_f)
  c_t = f_t * c_{t-1} + i_t * tanh(W_c x_t + U_c h_{t-1} + b_c)
  o_t = sigmoid(W_o x_t + U_o h_{t-1} + p_o * c_t + b_o)
  h_t = o_t * tanh(c_t)
""",
    "sru": """name: SRUCell
equations: |
  f_t = sigmoid(W_f x_t + v_f * c_{t-1} + b_f)
  r_t = sigmoid(W_r x_t + v_r * c_{t-1} + b_r)
  c_t = f_t * c_{t-1} + (1 - f_t) * (W x_t)
  h_t = r_t * c_t + (1 - r_t) * x_t
""",
    "gru_reset_before": """name: GRUBeforeCell
equations: |
  z_t = sigmoid(W_z x_t + U_z h_{t-1} + b_z)
  r_t = sigmoid(W_r x_t + U_r h_{t-1} + b_r)
  n_t = tanh(W_n x_t + U_n(r_t * h_{t-1}) + b_n)
  h_t = (1 - z_t) * h_{t-1} + z_t * n_t
""",
    "indrnn": """name: IndRNNCell
equations: |
  h_t = relu(W x_t + u * h_{t-1} + b)
""",
    "layer_norm_lstm": """name: LNLSTMCell
equations: |
  i_t = sigmoid(LN(W_i x_t) + LN(U_i h_{t-1}) + b_i)
  f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)
  c_t = f_t * c_{t-1} + i_t * tanh(W_c x_t + U_c h_{t-1} + b_c)
  h_t = tanh(LN(c_t))
""",
    "diagonal_linear": """name: DiagLinearCell
output: y
equations: |
  h_t = a * h_{t-1} + B x_t
  y_t = tanh(C h_t + d)
""",
    "mgu_latex": r"""name: MGUCell
equations: |
  f_t &= \sigma(W_f x_t + U_f h_{t-1} + b_f) \\
  \tilde{h}_t &= \tanh(W_h x_t + U_h (f_t \odot h_{t-1}) + b_h) \\
  h_t &= (1 - f_t) \odot h_{t-1} + f_t \odot \tilde{h}_t
""",
    "projection_lstm": """name: ProjLSTMCell
sizes: {r: proj_units}
equations: |
  i_t = sigmoid(W_i x_t + U_i r_{t-1} + b_i)
  f_t = sigmoid(W_f x_t + U_f r_{t-1} + b_f)
  c_t = f_t * c_{t-1} + i_t * tanh(W_c x_t + U_c r_{t-1} + b_c)
  o_t = sigmoid(W_o x_t + U_o r_{t-1} + b_o)
  h_t = o_t * tanh(c_t)
  r_t = P h_t
""",
    "running_sum_learned_start": """name: RunningSumCell
initial_state: {s: learned}
equations: |
  s_t = s_{t-1} + W x_t
""",
    "two_biases_per_gate": """name: TwoBiasCell
equations: |
  f_t = sigmoid(W_f x_t + b_f + U_f h_{t-1} + c_f)
  g_t = tanh(W_g x_t + b_g + U_g h_{t-1} + c_g)
  h_t = f_t * h_{t-1} + (1 - f_t) * g_t
""",
    "many_functions": """name: ManyFunctionsCell
output: y
equations: |
  a_t = exp(-abs(W_a x_t)) / (1 + softplus(U_a h_{t-1}))
  h_t = a_t * h_{t-1} + sqrt(1 - a_t * a_t + 0.01) * tanh(W_h x_t)
  y_t = gelu(h_t) - 0.5 * silu(h_t) + elu(h_t) * softsign(h_t) + hard_sigmoid(h_t) * log(1 + exp(h_t))
""",
}


# Shipped specs with reference tests of their own (test_zoo_classic, test_zoo_tensor, test_zoo_token_shift):
# the tests that loop over every shipped spec run one case of each by default, the rest under -m slow
from classic_references import CLASSIC_SPECS  # noqa: E402

REFERENCED_SPECS = CLASSIC_SPECS | {"mlstm", "xlstm_slstm", "gla", "deltanet", "gated_deltanet", "mamba_ssm",
                                    "qrnn2", "rwkv4"}
VERIFIED_BY_DEFAULT = {"rg_lru", "mlstm", "rwkv4"}  # of those, `eqcell verify` by default (keras target)
