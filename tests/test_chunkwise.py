"""The parallel path of linear recurrences (matrix states chunkwise, max-plus stabilisers, token
shift) equals the step loop: outputs, final states and gradients, with masks, go_backwards,
initial states, heads and every chunk size.

The loop is the reference here because it is the cell's own step, itself checked against the
authors' code (tests/test_zoo_tensor.py, tests/test_zoo_token_shift.py); `eqcell verify` checks
the same equality on any spec. Backend-agnostic: tests/test_backends.py can rerun it under JAX and
PyTorch."""
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import eqcell  # noqa: E402
from eqcell.ir import ChunkedState, LinearState  # noqa: E402
from helpers import assert_close, loss_and_grads  # noqa: E402

# Linear matrix-state cells beyond the shipped ones: each decay axis against each readout, a
# scalar decay shared by a matrix and a vector state, a readout inside a weight's operand
CELLS = {
    "columns_decay": """eqcell: 2
name: ColumnDecayCell
sizes: {q: key_units, k: key_units, a: key_units}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  a_t = sigmoid(W_a x_t + b_a)
  S_t = S_{t-1} diag(a_t) + v_t k_t^T
  o_t = tanh(S_t q_t)
""",
    "rows_decay_heads": """eqcell: 2
name: RowDecayCell
heads: 2
sizes: {q: key_units, k: key_units}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  a_t = exp(-softplus(W_a x_t + b_a))
  S_t = diag(a_t) S_{t-1} + v_t k_t^T
  o_t = S_t q_t
""",
    "scalar_decay_normalised": """eqcell: 2
name: ScalarDecayCell
sizes: {q: key_units, k: key_units, g: 1}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  g_t = sigmoid(W_g x_t + b_g)
  S_t = g_t S_{t-1} + (1 - g_t) k_t v_t^T
  n_t = g_t n_{t-1} + (1 - g_t) k_t
  y_t = q_t^T S_t
  o_t = W_o y_t / (1 + |n_t^T q_t|)
""",
    "left_delta_rule_heads": """eqcell: 2
name: LeftDeltaCell
heads: 2
sizes: {q: key_units, k: key_units, beta: 1, a: 1}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t / ‖W_k x_t‖
  v_t = W_v x_t
  beta_t = sigmoid(W_beta x_t + b_beta)
  a_t = exp(-softplus(W_a x_t + b_a))
  S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
  o_t = q_t^T S_t
""",
    # matrix states scaled element by element: every entry scanned, each step's matrix read
    "entry_decay_heads": """eqcell: 2
name: EntryDecayCell
heads: 2
sizes: {q: key_units, k: key_units}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  d_t = softplus(W_d x_t + b_d)
  S_t = exp(-diag(d_t) A) * S_{t-1} + v_t k_t^T
  o_t = S_t q_t
""",
    "both_axes_two_drives": """eqcell: 2
name: BothAxesCell
sizes: {q: key_units, k: key_units, b: key_units}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  u_t = W_u x_t
  a_t = sigmoid(W_a x_t + b_a)
  b_t = sigmoid(W_b x_t)
  S_t = diag(a_t) S_{t-1} diag(b_t) + v_t k_t^T + u_t q_t^T
  n_t = b_t * n_{t-1} + k_t
  o_t = tanh(S_t q_t) + v_t * (n_t^T q_t)
""",
    # read at t-1 (which the chunkwise form does not give): every entry scanned instead
    "previous_state_readout": """eqcell: 2
name: PrevReadCell
sizes: {q: key_units, k: key_units}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  g_t = sigmoid(W_g x_t + b_g)
  S_t = diag(g_t) S_{t-1} + v_t k_t^T
  o_t = tanh(S_{t-1} q_t) + S_t q_t
""",
    # S^T q is read as q^T S: chunkwise
    "transposed_readout_heads": """eqcell: 2
name: TransposedReadCell
heads: 2
sizes: {q: key_units, k: key_units, g: 1}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  g_t = sigmoid(W_g x_t + b_g)
  S_t = g_t S_{t-1} + k_t v_t^T
  o_t = S_t^T q_t
""",
    # 1 - sigmoid(g) as the decay: its log is logsigmoid(-g), finite where 1 - sigmoid(g) rounds to 0
    "one_minus_sigmoid_decay": """eqcell: 2
name: OneMinusCell
sizes: {q: key_units, k: key_units, g: 1}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  g_t = W_g x_t + b_g
  S_t = (1 - sigmoid(g_t)) S_{t-1} + v_t k_t^T
  o_t = S_t q_t
""",
}
SHIPPED = ["mlstm", "gla", "rwkv4", "deltanet", "gated_deltanet", "mamba_ssm"]
SPECS = SHIPPED + sorted(CELLS)


def spec_of(name):
    return CELLS[name].encode() if name in CELLS else name


def layer_class(name):
    cell = eqcell.load(spec_of(name))
    return getattr(sys.modules[cell.__module__], eqcell.analyze(spec_of(name)).layer)


def arguments(name, heads):
    ir = eqcell.analyze(spec_of(name))
    args = {size: 4 for size in ir.sizes if size != ir.heads}
    if ir.heads:
        args[ir.heads] = heads
    return args


def pair(name, units, heads=2, chunk_size=4, **kwargs):
    """The layer looping and the layer on its parallel path."""
    layer = layer_class(name)
    args = arguments(name, heads)
    if "chunk_size" in layer(units, **args).get_config():
        args["chunk_size"] = chunk_size
    return [layer(units, return_sequences=True, return_state=True, parallel_scan=parallel, **args, **kwargs)
            for parallel in (False, True)]


def random_weights(model, seed=3, scale=0.5):
    """Random normal, every gate's own; Mamba's A negative (mamba: A = -exp(A_log): a positive A
    grows the state past float32 within a few dozen steps)."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(w.shape).astype("float32") * scale for w in model.get_weights()]
    return [-np.abs(v) if w.path.endswith("/A") else v for v, w in zip(values, model.weights)]


def run_both(name, timesteps, masked=False, go_backwards=False, chunk_size=4, heads=2, initial=False,
             units=8, features=5, batch=3, scale=0.5, seed=0, grads=True):
    """[(outputs, gradients)] of the loop, then of the parallel path, with the same weights
    (random normal: every gate's differ) and the same initial states."""
    if eqcell.analyze(spec_of(name)).square_input:  # Mamba scans x_t itself
        features = units
    loop, parallel = pair(name, units, heads, chunk_size, go_backwards=go_backwards)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, timesteps, features)).astype("float32")
    mask = None
    if masked:  # a hole, trailing padding, leading padding
        mask = np.ones((batch, timesteps), bool)
        mask[0, timesteps // 3: timesteps // 3 + 2] = False
        mask[1, -3:] = False
        mask[2, :2] = False
    results = []
    for layer in (loop, parallel):
        inputs = keras.Input((timesteps, features))
        states = None
        if initial:
            sizes = layer.cell.state_size if isinstance(layer.cell.state_size, list) else [layer.cell.state_size]
            states = [keras.Input((features if size is None else size,)) for size in sizes]  # None: x_{t-1}
        mask_input = keras.Input((timesteps,), dtype="bool") if masked else None
        out = layer(inputs, initial_state=states, mask=mask_input)
        model = keras.Model([inputs] + (states or []) + ([mask_input] if masked else []), out)
        if not results:
            weights = random_weights(model, scale=scale)
            init_values = [rng.standard_normal((batch, s.shape[-1])).astype("float32") * 0.5 for s in states or []]
        model.set_weights(weights)
        feed = [x] + init_values + ([mask] if masked else [])
        outputs = [ops.convert_to_numpy(t) for t in model(feed)]
        results.append((outputs, loss_and_grads(model, feed) if grads else None))
    return results


def test_the_linear_cells_take_the_parallel_path():
    for name in SPECS:
        ir = eqcell.analyze(spec_of(name))
        assert ir.scan is not None, (name, ir.scan_reason)
    kinds = {name: {type(i).__name__ + ("+max" if isinstance(i, LinearState) and i.max_plus else "")
                    for i in eqcell.analyze(spec_of(name)).scan if isinstance(i, (LinearState, ChunkedState))}
             for name in SPECS}
    assert kinds["mlstm"] == {"ChunkedState", "LinearState", "LinearState+max"}
    assert kinds["gla"] == {"ChunkedState"}
    assert kinds["rwkv4"] == {"LinearState", "LinearState+max"}
    assert kinds["deltanet"] == kinds["gated_deltanet"] == {"ChunkedState"}
    assert kinds["mamba_ssm"] == kinds["entry_decay_heads"] == kinds["both_axes_two_drives"] == {"LinearState"}
    assert kinds["previous_state_readout"] == {"LinearState"}
    one_minus = next(i for i in eqcell.analyze(spec_of("one_minus_sigmoid_decay")).scan if isinstance(i, ChunkedState))
    assert str(one_minus.log_decay).startswith("logsigmoid(-"), one_minus.log_decay   # never log(1 - sigmoid(g))
    assert kinds["transposed_readout_heads"] == {"ChunkedState"}
    rules = {name: [(i.strength is not None, i.left) for i in eqcell.analyze(spec_of(name)).scan
                    if isinstance(i, ChunkedState)] for name in SPECS}
    assert rules["deltanet"] == rules["gated_deltanet"] == [(True, False)]
    assert rules["left_delta_rule_heads"] == [(True, True)]
    assert rules["gla"] == rules["mlstm"] == [(False, False)]
    axes = {name: next(i.decay_axis for i in eqcell.analyze(spec_of(name)).scan if isinstance(i, ChunkedState))
            for name in ("mlstm", "gla", "columns_decay", "rows_decay_heads", "scalar_decay_normalised")}
    assert axes == {"mlstm": "scalar", "gla": "rows", "columns_decay": "columns", "rows_decay_heads": "rows",
                    "scalar_decay_normalised": "scalar"}


MISMATCHED_DELTA = b"""eqcell: 2
name: MismatchCell
sizes: {q: key_units, k: key_units}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  S_t = S_{t-1} (I - q_t q_t^T) + v_t k_t^T
  o_t = S_t q_t
"""
NONLINEAR_MATRIX = b"""eqcell: 2
name: SquashedCell
sizes: {q: key_units, k: key_units}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  S_t = tanh(S_{t-1}) + v_t k_t^T
  o_t = S_t q_t
"""


@pytest.mark.parametrize(("spec", "reason"), [
    (NONLINEAR_MATRIX, "through a function"),
    ("lstm", "matrix product in the step reads h_{t-1}"),
    (MISMATCHED_DELTA, "other than as a delta rule"),  # the rank-one transition's key is not the drive's
])
def test_what_stays_sequential_says_why(spec, reason):
    ir = eqcell.analyze(spec)
    assert ir.scan is None and reason in ir.scan_reason and ir.scan_reason.endswith("sequential")


CASES = [  # (timesteps, masked, go_backwards, chunk_size, heads, initial)
    pytest.param(13, False, False, 4, 2, False, id="T13-chunk4"),
    pytest.param(17, True, True, 5, 2, True, id="T17-chunk5-masked-backwards-initial"),
    pytest.param(9, True, False, 1, 1, False, id="T9-chunk1-one-head"),
    pytest.param(6, False, True, 32, 2, True, id="T6-chunk-beyond-T"),
]


# a chunk of four sub-chunks (the secondary chunking of a decay per row or column): those cells in
# the default run, the others with -m slow
SUB_CHUNKS = pytest.param(37, True, False, 16, 2, True, id="T37-chunk16-four-sub-chunks-masked-initial")
PER_FEATURE_DECAY = {"gla", "rows_decay_heads", "columns_decay"}


@pytest.mark.parametrize(("spec", "timesteps", "masked", "backwards", "chunk", "heads", "initial"), [
    *(pytest.param(spec, *case.values, id=f"{case.id}-{spec}") for case in CASES for spec in SPECS),
    *(pytest.param(spec, *SUB_CHUNKS.values, id=f"{SUB_CHUNKS.id}-{spec}",
                   marks=() if spec in PER_FEATURE_DECAY else pytest.mark.slow) for spec in SPECS)])
def test_parallel_path_equals_loop(spec, timesteps, masked, backwards, chunk, heads, initial):
    (want, want_grads), (got, got_grads) = run_both(spec, timesteps, masked, backwards, chunk, heads, initial)
    for i, (a, b) in enumerate(zip(got, want)):
        assert_close(a, b, f"{spec}: output {i}", tol=2e-5)
    for i, (a, b) in enumerate(zip(got_grads, want_grads)):
        assert_close(a, b, f"{spec}: gradient {i}", tol=1e-4)


@pytest.mark.slow  # about 40 s each here
@pytest.mark.parametrize("spec", ["mlstm", "gla"])
def test_long_sequences_with_large_gates_stay_finite_and_equal(spec):
    """T = 4096 with gate pre-activations of magnitude about 10: the decays' logs are summed inside a
    chunk only and every exponential is of a later step's log minus an earlier one's."""
    (want, _), (got, _) = run_both(spec, 4096, chunk_size=64, batch=2, scale=3.0, grads=False)
    for a, b in zip(got, want):
        assert np.all(np.isfinite(a))
        assert_close(a, b, f"{spec} at T=4096", tol=1e-3)


def test_chunk_size_is_an_argument_saved_in_the_config():
    layer = layer_class("mlstm")(8, key_units=4, num_heads=2, chunk_size=16)
    config = layer.get_config()
    assert config["chunk_size"] == 16
    assert type(layer).from_config(config).chunk_size == 16
    with pytest.raises(ValueError, match="chunk_size"):
        layer_class("mlstm")(8, key_units=4, num_heads=2, chunk_size=0)
