"""The generated cells inside Keras's RNN machinery: dropout, masking, go_backwards, return_state,
stateful, initial_state, unroll, Bidirectional, stacking, and the spec's `initial_state:` key.

The shipped LSTM / GRU given Keras's own weights (random, differing per gate) must behave as
`keras.layers.LSTM` / `keras.layers.GRU` do with the same weights (keras target, TF backend); the
tf-keras target is checked against `tf_keras.layers.*` wherever tf_keras offers the same feature.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":  # pragma: no cover - the suite runs on the TF backend
    pytest.skip("these checks compare against Keras on the TensorFlow backend", allow_module_level=True)

try:
    import tf_keras
except ImportError:  # pragma: no cover
    tf_keras = None

import eqcell  # noqa: E402

ATOL = RTOL = 1e-5
B, T, D, U = 3, 6, 4, 5
REFERENCE = {"lstm": "LSTM", "gru": "GRU"}
N_STATES = {"lstm": 2, "gru": 1}
# Keras's GRU/LSTM cells draw one dropout mask per gate when recurrent_dropout > 0 (implementation 1)
N_GATES = {"lstm": 4, "gru": 3}
BOTH = pytest.mark.parametrize("target", ["keras", "tf-keras"])


def _fw(target):
    if target == "keras":
        return keras
    if tf_keras is None:
        pytest.skip("tf_keras is not installed")
    return tf_keras


def _np(value):
    if isinstance(value, (list, tuple)):
        return [_np(v) for v in value]
    return np.asarray(value)


def _close(got, expected, what=""):
    got, expected = _np(got), _np(expected)
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), what
        for i, (g, e) in enumerate(zip(got, expected)):
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{what} [{i}]")
    else:
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def _tensors(arrays):
    """tf_keras's RNN wants tensors, not numpy arrays, for initial_state."""
    return [tf.constant(a) for a in arrays]


def _data(seed=0, batch=B, steps=T, dim=D):
    return np.random.default_rng(seed).standard_normal((batch, steps, dim)).astype("float32")


def _randomize(layer, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights([(rng.standard_normal(w.shape) * 0.5).astype("float32") for w in layer.get_weights()])


def _cell_class(spec, target):
    return eqcell.load(spec, target=target)


def _layer_class(cell_class):
    """The generated full-sequence layer of a cell class from eqcell.load (same module)."""
    module = sys.modules[cell_class.__module__]
    return getattr(module, cell_class.__name__[:-len("Cell")])


def _pair(spec, target, x, cell_kwargs=(), layer="rnn", **rnn_kwargs):
    """Keras's own layer with random weights and the generated one (RNN(cell) or the generated layer)."""
    fw = _fw(target)
    cell_kwargs = dict(cell_kwargs)
    reference = getattr(fw.layers, REFERENCE[spec])(U, **cell_kwargs, **rnn_kwargs)
    cell_class = _cell_class(spec, target)
    if layer == "rnn":
        generated = fw.layers.RNN(cell_class(U, **cell_kwargs), **rnn_kwargs)
    else:
        generated = _layer_class(cell_class)(U, **cell_kwargs, **rnn_kwargs)
    reference.build(x.shape)
    generated.build(x.shape)
    _randomize(reference)
    assert [w.shape for w in generated.get_weights()] == [w.shape for w in reference.get_weights()]
    generated.set_weights(reference.get_weights())
    return reference, generated


# ---------------------------------------------------------------------------------------------
# dropout / recurrent_dropout


@pytest.mark.parametrize("layer", ["rnn", "layer"])
@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_input_dropout_same_seed_equals_keras(spec, layer):
    """Same seed on both cells: Keras draws the same mask, so the outputs agree, call after call."""
    x = _data()
    kw = {"dropout": 0.3, "seed": 7}
    reference, generated = _pair(spec, "keras", x, kw, layer=layer, return_sequences=True, return_state=True)
    first = generated(x, training=True)
    _close(first, reference(x, training=True), f"{spec} dropout, first call")
    second = generated(x, training=True)
    _close(second, reference(x, training=True), f"{spec} dropout, second call")
    # a new mask per call (per sequence), and dropout really drops something
    assert not np.allclose(_np(first[0]), _np(second[0]), atol=1e-3)
    assert not np.allclose(_np(first[0]), _np(generated(x, training=False)[0]), atol=1e-3)


@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_recurrent_dropout_is_one_mask_per_operand_not_per_gate(spec):
    """A decision, not an accident: with recurrent_dropout > 0, Keras's LSTMCell / GRUCell switch
    to their unfused implementation 1 and draw one mask per gate (4 or 3 for the input, as many
    for the state). The generated cell keeps its single fused path (one matmul per operand) and
    draws one mask per operand, shared by all gates: the tied variational dropout that Keras's
    fused path uses for `dropout` alone. Same rates, same statistics, different random numbers;
    `test_one_dropout_mask_per_sequence_keras` checks that with our masks the output is Keras's."""
    x = _data()
    kw = {"dropout": 0.25, "recurrent_dropout": 0.4, "seed": 11}
    reference, generated = _pair(spec, "keras", x, kw, return_sequences=True, return_state=True)
    assert reference.cell.implementation == 1 and reference.cell.dropout_mask_count in (3, 4)
    assert getattr(generated.cell, "dropout_mask_count", None) is None
    ours, theirs = generated(x, training=True), reference(x, training=True)
    assert np.all(np.isfinite(_np(ours[0])))
    assert not np.allclose(_np(ours[0]), _np(theirs[0]), atol=1e-3)  # different draws, by design
    _close(generated(x, training=False), reference(x, training=False), f"{spec} inference")


def _record(cell, method):
    """Wraps cell.<method> on the instance; returns the list of masks it hands out."""
    seen = []
    original = getattr(cell, method)

    def wrapper(*args, **kwargs):
        mask = original(*args, **kwargs)
        seen.append(_np(mask))
        return mask

    setattr(cell, method, wrapper)
    return seen


def _all_equal(masks, what):
    assert masks, f"{what}: no mask was requested"
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0], err_msg=f"{what}: the mask changed between steps")


@pytest.mark.parametrize("spec", ["lstm", "gru"])
@pytest.mark.parametrize("layer,unroll", [("rnn", False), ("rnn", True), ("layer", False), ("layer", True)],
                         ids=["rnn-loop", "rnn-unroll", "layer-loop", "layer-unroll"])
def test_one_dropout_mask_per_sequence_keras(spec, layer, unroll):
    """One input mask and one state mask per sequence, reused at every step, redrawn per call;
    the output is Keras's with those masks applied (to every gate)."""
    x = _data(3)
    kw = {"dropout": 0.3, "recurrent_dropout": 0.4, "seed": 5}
    reference, generated = _pair(spec, "keras", x, kw, layer=layer, return_sequences=True, unroll=unroll)
    cell = generated.cell
    inputs_seen = _record(cell, "get_dropout_mask")
    states_seen = _record(cell, "get_recurrent_dropout_mask")
    got = generated(x, training=True)
    _all_equal(inputs_seen, "input mask")
    _all_equal(states_seen, "recurrent mask")
    # the state mask is asked for at every step (the generated layer applies the input mask to
    # the whole sequence at once, before its loop)
    assert len(states_seen) >= T and len(inputs_seen) >= (T if layer == "rnn" else 1)
    dp, rec = inputs_seen[0], states_seen[0]
    assert dp.shape == (B, D) and rec.shape == (B, U)
    for mask, rate in ((dp, 0.3), (rec, 0.4)):  # inverted dropout: 0 or 1 / (1 - rate)
        assert np.all(np.isclose(mask, 0.0) | np.isclose(mask, 1 / (1 - rate)))
        assert (mask == 0).any() and (mask != 0).any()

    # Keras (implementation 1 here) given the same masks for every gate computes the same
    gates = N_GATES[spec]
    reference.cell.get_dropout_mask = lambda step_input: [dp] * gates
    reference.cell.get_recurrent_dropout_mask = lambda step_input: [rec] * gates
    _close(got, reference(x, training=True), f"{spec}: generated vs Keras given the same masks")

    # a new sequence (a new call) draws new masks
    inputs_seen.clear()
    states_seen.clear()
    generated(x, training=True)
    assert not np.array_equal(inputs_seen[0], dp) or not np.array_equal(states_seen[0], rec)


@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_input_dropout_is_the_input_times_one_mask(spec):
    """RNN(generated, dropout)(x) == RNN(no dropout)(x * mask): the same mask at every step."""
    x = _data(4)
    reference, generated = _pair(spec, "keras", x, {"dropout": 0.5, "seed": 3}, return_sequences=True)
    seen = _record(generated.cell, "get_dropout_mask")
    got = generated(x, training=True)
    plain = keras.layers.RNN(_cell_class(spec, "keras")(U), return_sequences=True)
    plain.build(x.shape)
    plain.set_weights(generated.get_weights())
    _close(got, plain(x * seen[0][:, None, :]), f"{spec}: dropout = input times one mask")


@BOTH
@pytest.mark.parametrize("layer", ["rnn", "layer"])
@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_dropout_inactive_at_inference(spec, layer, target):
    x = _data(5)
    kw = {"dropout": 0.4, "recurrent_dropout": 0.3, "seed": 1}
    reference, generated = _pair(spec, target, x, kw, layer=layer, return_sequences=True, return_state=True)
    fw = _fw(target)
    plain = fw.layers.RNN(_cell_class(spec, target)(U), return_sequences=True, return_state=True)
    plain.build(x.shape)
    plain.set_weights(generated.get_weights())
    expected = plain(x)
    _close(generated(x, training=False), expected, f"{target} {spec}: training=False")
    _close(generated(x), expected, f"{target} {spec}: no training argument")
    _close(generated(x, training=False), reference(x, training=False), f"{target} {spec}: vs reference")
    assert not np.allclose(_np(generated(x, training=True)[0]), _np(expected[0]), atol=1e-3)


@pytest.mark.parametrize("layer", ["rnn", "layer"])
@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_dropout_tf_keras_one_mask_per_sequence(spec, layer):
    """tf-keras: two tf_keras layers with the same seed do not draw the same dropout masks (seen
    with tf_keras 2.21, even for a tf_keras LSTM against itself rebuilt), so compare given the same
    masks: tf_keras's LSTM/GRU (implementation 2) apply mask[0] of their masks to every gate, as
    the generated cell does with its one mask."""
    fw = _fw("tf-keras")
    x = _data(6)
    kw = {"dropout": 0.3, "recurrent_dropout": 0.4, "seed": 2}
    reference, generated = _pair(spec, "tf-keras", x, kw, layer=layer, return_sequences=True)
    cell = generated.cell
    inputs_seen = _record(cell, "get_dropout_mask_for_cell")
    states_seen = _record(cell, "get_recurrent_dropout_mask_for_cell")
    got = generated(x, training=True)
    _all_equal(inputs_seen, "input mask")
    _all_equal(states_seen, "recurrent mask")
    assert len(states_seen) >= T and len(inputs_seen) >= (T if layer == "rnn" else 1)
    dp, rec = inputs_seen[0], states_seen[0]
    assert dp.shape == (B, D) and rec.shape == (B, U)

    def same(mask):
        return lambda inputs, training, count=1: [fw.backend.constant(mask)] * count

    for holder in (reference, reference.cell):  # tf_keras's LSTM/GRU layer itself draws the input mask
        if hasattr(holder, "get_dropout_mask_for_cell"):
            holder.get_dropout_mask_for_cell = same(dp)
            holder.get_recurrent_dropout_mask_for_cell = same(rec)
    _close(got, reference(x, training=True), f"tf-keras {spec}: generated vs tf_keras given the same masks")
    inputs_seen.clear()
    generated(x, training=True)
    assert not np.array_equal(inputs_seen[0], dp)


# ---------------------------------------------------------------------------------------------
# masking


def _padded_data(seed=8):
    """x with trailing zero padding (lengths 6, 4, 2) and one zero step in the middle of sample 0."""
    x = _data(seed)
    lengths = [T, 4, 2]
    for i, n in enumerate(lengths):
        x[i, n:] = 0.0
    x[0, 2] = 0.0
    mask = np.any(x != 0.0, axis=-1)
    return x, mask, lengths


@BOTH
@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_masking_layer_and_explicit_mask(spec, target):
    fw = _fw(target)
    x, mask, lengths = _padded_data()
    reference, generated = _pair(spec, target, x, return_sequences=True, return_state=True)

    def model(rnn):
        inp = fw.Input((T, D))
        return fw.Model(inp, rnn(fw.layers.Masking(0.0)(inp)))

    expected = model(reference)(x)
    got = model(generated)(x)
    _close(got, expected, f"{target} {spec}: Masking layer")
    _close(generated(x, mask=mask), reference(x, mask=mask), f"{target} {spec}: mask=")
    _close(generated(x, mask=mask), got, f"{target} {spec}: mask= vs Masking")

    # padded steps carry the state through: the final state is that of the unpadded prefix
    seq, *states = _np(got)
    for i, n in enumerate(lengths[1:], start=1):
        alone = _np(generated(x[i:i + 1, :n]))
        for s, a in zip(states, alone[1:]):
            np.testing.assert_allclose(s[i], a[0], rtol=RTOL, atol=ATOL)
        # without zero_output_for_mask the output of a padded step repeats the last real one
        np.testing.assert_allclose(seq[i, n:], np.broadcast_to(seq[i, n - 1], seq[i, n:].shape), atol=ATOL)
    np.testing.assert_allclose(seq[0, 2], seq[0, 1], atol=ATOL)  # the masked middle step
    assert not np.allclose(seq[0, 3], seq[0, 2], atol=1e-4)


@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_masking_generated_layer_class(spec):
    """The generated full-sequence layer (not RNN(cell)) under a mask, as Keras's layer."""
    x, mask, _ = _padded_data(9)
    reference, generated = _pair(spec, "keras", x, layer="layer", return_sequences=True, return_state=True)
    _close(generated(x, mask=mask), reference(x, mask=mask), f"{spec} layer: mask=")


@BOTH
@pytest.mark.parametrize("parallel_scan", [False, True], ids=["loop", "parallel"])
def test_padding_never_reaches_a_normalising_cell(parallel_scan, target):
    """DeltaNet divides its key by its norm: computed from the zeros of padding it would be NaN, and
    so would every gradient (0 * NaN), on the loop and on the parallel path alike. What a masked
    step holds never changes the outputs, and the gradients stay finite."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 12, 4)).astype("float32")
    mask = np.ones((3, 12), bool)
    mask[0, -4:] = False   # trailing padding
    mask[1, :3] = False    # leading padding
    mask[2, 6] = False     # a hole
    layer = eqcell.load_layer("deltanet", target=target)(6, key_units=6, return_sequences=True,
                                                          parallel_scan=parallel_scan)
    padded = np.where(mask[..., None], x, 0.0).astype("float32")
    noise = np.where(mask[..., None], x, rng.standard_normal(x.shape)).astype("float32")
    inputs = tf.constant(padded)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = layer(inputs, mask=tf.constant(mask))
        loss = tf.reduce_sum(out * mask[..., None])
    grads = tape.gradient(loss, [inputs, *layer.trainable_weights])
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    np.testing.assert_allclose(out.numpy(), layer(noise, mask=mask).numpy(), rtol=1e-5, atol=1e-5)
    assert not np.any(grads[0].numpy()[~mask])   # nothing flows to what a masked step holds


# ---------------------------------------------------------------------------------------------
# go_backwards, return_state, initial_state, unroll, stateful


@BOTH
@pytest.mark.parametrize("layer", ["rnn", "layer"])
@pytest.mark.parametrize("options", [
    {"go_backwards": True, "return_sequences": True, "return_state": True},
    {"go_backwards": True},
    {"return_state": True},
    {"unroll": True, "return_sequences": True, "return_state": True},
    {"unroll": True, "go_backwards": True, "return_state": True},
], ids=["backwards_seq_state", "backwards", "return_state", "unroll", "unroll_backwards"])
def test_rnn_options_equal_keras(options, layer, target):
    x = _data(10)
    reference, generated = _pair("lstm", target, x, layer=layer, **options)
    expected, got = reference(x), generated(x)
    if options.get("return_state"):
        assert isinstance(_np(got), list) and len(got) == 3  # output, h, c
    _close(got, expected, f"{target} {layer} {options}")
    padded, mask, _ = _padded_data(31)
    _close(generated(padded, mask=mask), reference(padded, mask=mask), f"{target} {layer} {options}, mask=")


@BOTH
@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_initial_state_argument(spec, target):
    fw = _fw(target)
    x = _data(11)
    rng = np.random.default_rng(12)
    states = _tensors(rng.standard_normal((B, U)).astype("float32") for _ in range(N_STATES[spec]))
    reference, generated = _pair(spec, target, x, return_sequences=True, return_state=True)
    x = tf.constant(x)  # Keras refuses to mix numpy inputs with tensor states
    expected = reference(x, initial_state=states)
    _close(generated(x, initial_state=states), expected, f"{target} {spec}: initial_state=")
    assert not np.allclose(_np(generated(x)[0]), _np(expected[0]), atol=1e-3)
    # also as a functional-model input
    inp, *state_inputs = [fw.Input((T, D))] + [fw.Input((U,)) for _ in states]
    model = fw.Model([inp, *state_inputs], generated(inp, initial_state=state_inputs))
    _close(model([x, *states]), expected, f"{target} {spec}: initial_state= in a model")


@BOTH
@pytest.mark.parametrize("layer", ["rnn", "layer"])
def test_stateful_continues_and_resets(layer, target):
    x = _data(13, steps=8)
    x1, x2 = x[:, :4], x[:, 4:]
    reference, generated = _pair("lstm", target, x1, layer=layer, stateful=True,
                                 return_sequences=True, return_state=True)
    expected1, got1 = reference(x1), generated(x1)
    _close(got1, expected1, f"{target} {layer}: stateful first call")
    expected2, got2 = reference(x2), generated(x2)
    _close(got2, expected2, f"{target} {layer}: stateful second call")
    # the second call continues the first: as one call over the whole sequence
    whole = _fw(target).layers.RNN(_cell_class("lstm", target)(U), return_sequences=True, return_state=True)
    whole.build(x.shape)
    whole.set_weights(generated.get_weights())
    full = _np(whole(x))
    _close(got2[0], full[0][:, 4:], "second call continues the first")
    _close(got2[1:], full[1:], "final states")
    # reset_states() restarts from the initial (zero) state
    generated.reset_states()
    reference.reset_states()
    _close(generated(x1), got1, f"{target} {layer}: after reset_states")
    _close(reference(x1), expected1, "reference after reset_states")


# ---------------------------------------------------------------------------------------------
# Bidirectional and stacking


@BOTH
@pytest.mark.parametrize("layer", ["rnn", "layer"])
@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_bidirectional_equals_keras(merge_mode, layer, target):
    fw = _fw(target)
    x, mask, _ = _padded_data(14)
    cell_class = _cell_class("lstm", target)
    if layer == "rnn":
        inner = fw.layers.RNN(cell_class(U), return_sequences=True, return_state=True)
    else:
        inner = _layer_class(cell_class)(U, return_sequences=True, return_state=True)
    generated = fw.layers.Bidirectional(inner, merge_mode=merge_mode)
    reference = fw.layers.Bidirectional(fw.layers.LSTM(U, return_sequences=True, return_state=True),
                                        merge_mode=merge_mode)
    reference(x)
    generated(x)
    _randomize(reference, seed=15)
    generated.set_weights(reference.get_weights())
    _close(generated(x), reference(x), f"{target} {layer} Bidirectional({merge_mode})")
    _close(generated(x, mask=mask), reference(x, mask=mask), f"{target} {layer} Bidirectional({merge_mode}), mask=")


@BOTH
def test_stacked_rnn_cells_equal_keras(target):
    fw = _fw(target)
    x = _data(16)
    lstm_cell, gru_cell = _cell_class("lstm", target), _cell_class("gru", target)
    reference = fw.layers.RNN(fw.layers.StackedRNNCells([fw.layers.LSTMCell(U), fw.layers.GRUCell(3)]),
                              return_sequences=True, return_state=True)
    generated = fw.layers.RNN(fw.layers.StackedRNNCells([lstm_cell(U), gru_cell(3)]),
                              return_sequences=True, return_state=True)
    reference(x)
    generated(x)
    _randomize(reference, seed=17)
    generated.set_weights(reference.get_weights())
    expected, got = reference(x), generated(x)
    assert np.asarray(got[0]).shape == (B, T, 3)
    _close(got[0], expected[0], f"{target} StackedRNNCells output")
    flat = [np.asarray(s) for s in tf.nest.flatten(list(got[1:]))]
    _close(flat, [np.asarray(s) for s in tf.nest.flatten(list(expected[1:]))], f"{target} StackedRNNCells states")


@BOTH
def test_single_state_structure_in_a_stack_as_keras(target):
    """A one-state cell (GRU) returns its state in the same structure as Keras's own GRUCell, so
    `output, (h1, c1), h2 = RNN(StackedRNNCells([...]), return_state=True)(x)` unpacks alike."""
    fw = _fw(target)
    x = _data(30)
    structures = []
    for gru_cell in (fw.layers.GRUCell, _cell_class("gru", target)):
        rnn = fw.layers.RNN(fw.layers.StackedRNNCells([fw.layers.LSTMCell(2), gru_cell(3)]), return_state=True)
        structures.append(tf.nest.map_structure(lambda t: tuple(t.shape), list(rnn(x))))
    assert structures[1] == structures[0], f"{target}: generated {structures[1]} vs Keras {structures[0]}"


@pytest.mark.parametrize("spec", ["lstm", "gru"])
def test_stacked_cells_dropout_same_seed_equals_keras(spec):
    """Keras prepares the dropout masks of every cell of a StackedRNNCells (keras target)."""
    x = _data(18)
    ref_cell, gen_cell = getattr(keras.layers, REFERENCE[spec] + "Cell"), _cell_class(spec, "keras")
    kw = [{"dropout": 0.3, "seed": 21}, {"dropout": 0.2, "seed": 22}]
    reference = keras.layers.RNN(keras.layers.StackedRNNCells([ref_cell(U, **kw[0]), ref_cell(U, **kw[1])]),
                                 return_sequences=True)
    generated = keras.layers.RNN(keras.layers.StackedRNNCells([gen_cell(U, **kw[0]), gen_cell(U, **kw[1])]),
                                 return_sequences=True)
    reference.build(x.shape)
    generated.build(x.shape)
    _randomize(reference, seed=19)
    generated.set_weights(reference.get_weights())
    _close(generated(x, training=True), reference(x, training=True), f"stacked {spec} with dropout")


@BOTH
@pytest.mark.parametrize("layer", ["rnn", "layer"])
def test_two_stacked_rnn_layers_equal_keras(layer, target):
    fw = _fw(target)
    x, mask, _ = _padded_data(20)
    cell_class = _cell_class("lstm", target)

    def generated_layer(units, **kwargs):
        if layer == "rnn":
            return fw.layers.RNN(cell_class(units), **kwargs)
        return _layer_class(cell_class)(units, **kwargs)

    def model(first, second):
        inp = fw.Input((T, D))
        return fw.Model(inp, second(first(fw.layers.Masking(0.0)(inp))))

    reference = model(fw.layers.LSTM(U, return_sequences=True), fw.layers.LSTM(3, return_state=True))
    generated = model(generated_layer(U, return_sequences=True), generated_layer(3, return_state=True))
    _randomize(reference, seed=23)
    generated.set_weights(reference.get_weights())
    _close(generated(x), reference(x), f"{target} two {layer} layers, masked")


# ---------------------------------------------------------------------------------------------
# the spec's `initial_state:` key

_LSTM_EQUATIONS = """\
equations: |
  i_t = sigmoid(W_i x_t + U_i h_{t-1} + b_i)
  f_t = sigmoid(W_f x_t + U_f h_{t-1} + b_f)
  c_t = f_t * c_{t-1} + i_t * tanh(W_c x_t + U_c h_{t-1} + b_c)
  o_t = sigmoid(W_o x_t + U_o h_{t-1} + b_o)
  h_t = o_t * tanh(c_t)
"""


def _lstm_spec(name, initial_state=None):
    text = f"name: {name}Cell\nlayer: {name}\n" + _LSTM_EQUATIONS
    if initial_state:
        text += "initial_state:\n" + "".join(f"  {k}: {v}\n" for k, v in initial_state.items())
    return text


CONSTANT_INITIAL = {
    "default": (None, 0.0, 0.0),
    "zeros": ({"h": "zeros", "c": "zeros"}, 0.0, 0.0),
    "ones": ({"h": "ones", "c": "ones"}, 1.0, 1.0),
    "half": ({"h": 0.5}, 0.5, 0.0),
    "mixed": ({"c": "ones", "h": -0.25}, -0.25, 1.0),
}


@BOTH
@pytest.mark.parametrize("case", sorted(CONSTANT_INITIAL))
def test_initial_state_key_constants(case, target):
    """zeros (default) | ones | a number: the RNN starts from that state, as Keras's LSTM given it."""
    fw = _fw(target)
    initial, h0, c0 = CONSTANT_INITIAL[case]
    cell_class = eqcell.load(_lstm_spec(f"InitConst{case.title()}LSTM", initial), target=target)
    x = _data(24)
    generated = fw.layers.RNN(cell_class(U), return_sequences=True, return_state=True)
    reference = fw.layers.LSTM(U, return_sequences=True, return_state=True)
    reference.build(x.shape)
    generated.build(x.shape)
    _randomize(reference, seed=25)
    generated.set_weights(reference.get_weights())
    if target == "keras":
        start = generated.cell.get_initial_state(batch_size=B)
    else:
        start = generated.cell.get_initial_state(batch_size=B, dtype="float32")
    _close(start, [np.full((B, U), h0, "float32"), np.full((B, U), c0, "float32")], f"{case}: get_initial_state")
    expected = reference(x, initial_state=_tensors([np.full((B, U), h0, "float32"), np.full((B, U), c0, "float32")]))
    _close(generated(x), expected, f"{target} initial_state {case}")
    # in a model with an unknown batch size
    inp = fw.Input((T, D))
    _close(fw.Model(inp, generated(inp))(x), expected, f"{target} initial_state {case}, in a model")


@BOTH
def test_initial_state_ones_after_reset_states(target):
    """A stateful generated layer whose spec says `initial_state: ones` must start from ones after
    reset_states() as it did on its first call (Keras's and tf_keras's RNN.reset_states assign
    zeros, so the generated full-sequence layer has to restore the spec's initial state itself)."""
    cell_class = eqcell.load(_lstm_spec("InitOnesStatefulLSTM", {"h": "ones", "c": "ones"}), target=target)
    x = _data(26)
    layer = _layer_class(cell_class)(U, stateful=True, return_sequences=True)
    layer.build(x.shape)
    first = _np(layer(x))
    layer(x)
    layer.reset_states()
    _close(layer(x), first, "stateful, initial_state ones: after reset_states")


def _learned_spec(name):
    return _lstm_spec(name, {"h": "learned", "c": "learned"})


@BOTH
def test_initial_state_learned(target, tmp_path):
    """`learned`: a trainable weight broadcast over the batch; it gets a gradient, changes with a
    training step, and its value survives a .keras save and reload."""
    fw = _fw(target)
    cell_class = eqcell.load(_learned_spec("InitLearnedLSTM"), target=target)
    x = _data(27)
    y = np.random.default_rng(28).standard_normal((B, U)).astype("float32")
    inp = fw.Input((T, D))
    rnn = fw.layers.RNN(cell_class(U), return_state=True)
    out, h, c = rnn(inp)
    model = fw.Model(inp, out)
    cell = rnn.cell
    names = [w.name.split("/")[-1].split(":")[0] for w in cell.trainable_weights]
    assert "initial_h" in names and "initial_c" in names, names
    initial = {n: w for n, w in zip(names, cell.trainable_weights) if n.startswith("initial_")}
    assert all(tuple(w.shape) == (U,) for w in initial.values())
    assert all(np.allclose(_np(w), 0.0) for w in initial.values())  # default initializer: zeros

    # set distinct values: the RNN starts from them, broadcast over the batch
    rng = np.random.default_rng(29)
    values = {n: rng.standard_normal(U).astype("float32") for n in initial}
    for n, w in initial.items():
        w.assign(values[n])
    broadcast = _tensors([np.broadcast_to(values["initial_h"], (B, U)), np.broadcast_to(values["initial_c"], (B, U))])
    _close(model(x), rnn(x, initial_state=broadcast)[0], f"{target}: learned initial state is used")

    # a gradient reaches it
    xs = tf.constant(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(xs) - y) ** 2)
    grads = tape.gradient(loss, [initial["initial_h"], initial["initial_c"]])
    for n, g in zip(["initial_h", "initial_c"], grads):
        assert g is not None, f"no gradient for {n}"
        assert np.abs(_np(g)).max() > 0, f"zero gradient for {n}"

    # a training step changes it
    model.compile(optimizer=fw.optimizers.SGD(learning_rate=0.5), loss="mse")
    model.fit(x, y, batch_size=B, epochs=1, verbose=0)
    for n, w in initial.items():
        assert not np.allclose(_np(w), values[n], atol=1e-6), f"{n} did not change with training"

    # .keras save / reload keeps the learned value (and the outputs)
    path = tmp_path / "learned.keras"
    model.save(path)
    reloaded = fw.models.load_model(path)
    reloaded_cell = [layer for layer in reloaded.layers if isinstance(layer, fw.layers.RNN)][0].cell
    again = {w.name.split("/")[-1].split(":")[0]: w for w in reloaded_cell.trainable_weights}
    for n, w in initial.items():
        np.testing.assert_array_equal(_np(again[n]), _np(w), err_msg=f"{target}: {n} after reload")
    _close(reloaded(x), model(x), f"{target}: reloaded model with a learned initial state")
