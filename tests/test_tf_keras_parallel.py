"""The tf-keras target's parallel path (scans, chunkwise forms) equals its own step loop, the
`tf_keras.layers.RNN` loop the layer falls back to: outputs, final states and gradients, with
masks, go_backwards, initial states, stateful carries, and the loop kept where it must be (an
unknown length, `parallel_scan=False`). tests/test_chunkwise.py checks the same on the keras
target; the loop itself is checked against the authors' references elsewhere."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tf_keras = pytest.importorskip("tf_keras")

import eqcell  # noqa: E402
from helpers import assert_close  # noqa: E402

# the shipped linear cells, one of each kind of path, and two with matrix states of other shapes
SPECS = ["mingru", "rg_lru", "qrnn2", "mlstm", "gla", "deltanet", "gated_deltanet", "rwkv4", "mamba_ssm"]
MORE = {
    "left_delta_rule_heads": b"""eqcell: 2
name: LeftDeltaCell
heads: 2
sizes: {q: key_units, k: key_units, beta: 1, a: 1}
equations: |
  q_t = W_q x_t
  k_t = W_k x_t / \xe2\x80\x96W_k x_t\xe2\x80\x96
  v_t = W_v x_t
  beta_t = sigmoid(W_beta x_t + b_beta)
  a_t = exp(-softplus(W_a x_t + b_a))
  S_t = a_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
  o_t = q_t^T S_t
""",
    "columns_decay": b"""eqcell: 2
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
}
UNITS, STEPS, BATCH = 8, 13, 3


def spec_of(name):
    return MORE.get(name, name)


def build(name, timesteps=STEPS, **kwargs):
    """(model, layer, input width, number of states) of the layer on inputs, a mask and initial states."""
    spec = spec_of(name)
    ir = eqcell.analyze(spec)
    args = {size: 4 for size in ir.sizes if size != ir.heads}
    if ir.heads:
        args[ir.heads] = 2
    if ir.chunk_size:
        args["chunk_size"] = 4
    width = UNITS if ir.square_input else 5
    layer = eqcell.load_layer(spec, target="tf-keras")(UNITS, return_sequences=True, return_state=True,
                                                      **args, **kwargs)
    inputs = tf_keras.Input((timesteps, width))
    mask = tf_keras.Input((timesteps,), dtype="bool")
    sizes = layer.cell.state_size if isinstance(layer.cell.state_size, (list, tuple)) else [layer.cell.state_size]
    states = [tf_keras.Input((width if size is None else size,)) for size in sizes]
    model = tf_keras.Model([inputs, mask, *states], layer(inputs, mask=mask, initial_state=states))
    return model, layer, width, len(states)


def feed(width, states, timesteps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, timesteps, width)).astype("float32")
    mask = np.ones((BATCH, timesteps), bool)
    mask[0, 4:6] = False   # a hole
    mask[1, -3:] = False   # trailing padding
    mask[2, :2] = False    # leading padding
    initial = [rng.standard_normal((BATCH, s.shape[-1])).astype("float32") * 0.5 for s in states]
    return [x, mask, *initial]


def weights_for(model, seed=3):
    """Random normal, every gate's own; Mamba's A negative (mamba: A = -exp(A_log))."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.weights]
    return [-np.abs(v) if w.name.split("/")[-1].split(":")[0] == "A" else v for v, w in zip(values, model.weights)]


def run(model, inputs):
    with tf.GradientTape() as tape:
        outputs = model(inputs)
        loss = tf.reduce_sum(outputs[0] ** 2) + sum(tf.reduce_sum(s) for s in outputs[1:])
    return [t.numpy() for t in outputs], [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]


# one cell of each kind of path in the default run (a vector scan, max-plus stabiliser and scalar
# decay, a decay per row, the delta rule, a scan of every entry); the others with -m slow
DEFAULT = {"mingru", "mlstm", "gla", "deltanet", "mamba_ssm", "left_delta_rule_heads"}


@pytest.mark.parametrize("backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("name", [name if name in DEFAULT else pytest.param(name, marks=pytest.mark.slow)
                                  for name in SPECS + sorted(MORE)])
def test_parallel_path_equals_loop(name, backwards):
    results = []
    for parallel in (False, True):
        model, _, width, n_states = build(name, parallel_scan=parallel, go_backwards=backwards)
        if not results:
            weights, inputs = weights_for(model), feed(width, model.inputs[2:])
        model.set_weights(weights)
        results.append(run(model, inputs))
    (want, want_grads), (got, got_grads) = results
    assert len(got) == 1 + n_states
    for i, (a, b) in enumerate(zip(got, want)):
        assert_close(a, b, f"{name}: output {i}", tol=2e-5)
    for i, (a, b) in enumerate(zip(got_grads, want_grads)):
        assert_close(a, b, f"{name}: gradient {i}", tol=1e-4)


def test_the_path_is_taken_only_where_it_applies():
    """The parallel path runs with a known length; an unknown one, or `parallel_scan=False`, loops."""
    calls = []
    layer_class = eqcell.load_layer("mlstm", target="tf-keras")
    original = layer_class._scan
    layer_class._scan = lambda self, *args: calls.append(1) or original(self, *args)
    try:
        for shape, parallel, scans in [((7, 5), "auto", True), ((None, 5), "auto", False), ((7, 5), False, False)]:
            calls.clear()
            layer_class(8, key_units=4, parallel_scan=parallel)(tf_keras.Input(shape))
            assert bool(calls) == scans, (shape, parallel)
    finally:
        layer_class._scan = original


def test_stateful_carries_the_state_across_calls():
    """Two calls of 6 steps on the parallel path equal one loop over 12 steps."""
    layer_class = eqcell.load_layer("gla", target="tf-keras")
    x = np.random.default_rng(1).standard_normal((2, 12, 5)).astype("float32")
    loop = layer_class(8, key_units=4, return_sequences=True, parallel_scan=False)
    want = loop(x).numpy()
    stateful = layer_class(8, key_units=4, return_sequences=True, stateful=True, chunk_size=4)
    stateful.build((2, 6, 5))
    stateful.set_weights(loop.get_weights())
    got = np.concatenate([stateful(x[:, :6]).numpy(), stateful(x[:, 6:]).numpy()], axis=1)
    assert_close(got, want, "gla stateful")
    stateful.reset_states()
    assert_close(stateful(x[:, :6]).numpy(), want[:, :6], "gla after reset_states")


def test_config_round_trip_keeps_the_parallel_arguments():
    layer_class = eqcell.load_layer("mlstm", target="tf-keras")
    layer = layer_class(8, key_units=4, parallel_scan=False, chunk_size=16)
    config = layer.get_config()
    assert (config["parallel_scan"], config["chunk_size"]) == (False, 16)
    clone = layer_class.from_config(config)
    assert (clone.parallel_scan, clone.chunk_size) == (False, 16)
    with pytest.raises(ValueError, match="parallel_scan"):
        layer_class(8, key_units=4, parallel_scan="sometimes")
