"""The generated full-sequence layer equals `RNN(cell)`: outputs, final states and gradients,
for every shipped spec, with masks, go_backwards and dropout; the parallel scan equals the loop.

Backend-agnostic: tests/test_backends.py runs this file again under JAX and PyTorch. The classic
cells (tests/classic_references.py CLASSIC_SPECS) run one case of each test by default and every
case under `pytest -m slow`."""
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import eqcell  # noqa: E402
from eqcell.ir import LinearState  # noqa: E402
from helpers import REFERENCED_SPECS as CLASSIC_SPECS  # noqa: E402
from conftest import SHIPPED  # noqa: E402
from helpers import assert_close, loss_and_grads  # noqa: E402

SCAN_SPECS = [p.stem for p in SHIPPED if eqcell.analyze(p).scan is not None]


def slow_for_classic(spec, *rest, default=False, slow=False):
    """A parameter set: the classic cells (tests/test_zoo_classic.py checks them against their
    papers by default) run it only under `pytest -m slow`, unless it is their `default` case;
    every cell does when `slow`."""
    values = (spec, *rest)
    if slow or (spec in CLASSIC_SPECS and not default):
        return pytest.param(*values, marks=pytest.mark.slow)
    return pytest.param(*values)


def features(spec, wanted, units):
    """`wanted` input features, or `units` for a cell that needs input_dim == units (a highway term)."""
    return units if eqcell.analyze(spec).square_input else wanted


def size_args(spec):
    """Values for the spec's named sizes (`sizes: {r: proj_units}`), constructor arguments."""
    ir = eqcell.analyze(spec)
    return {**{name: 3 for name in ir.sizes}, **({ir.heads: 1} if ir.heads else {})}  # one head: any units


def classes(spec):
    cell = eqcell.load(spec)
    return cell, getattr(sys.modules[cell.__module__], eqcell.analyze(spec).layer)


def build_pair(spec, units, timesteps, features, masked, **rnn_kwargs):
    cell, layer = classes(spec)
    inputs = keras.Input((timesteps, features))
    seq = keras.layers.Masking(0.0)(inputs) if masked else inputs
    reference = keras.Model(inputs, keras.layers.RNN(cell(units, **size_args(spec)), return_sequences=True,
                                                     return_state=True, **rnn_kwargs)(seq))
    fast = keras.Model(inputs, layer(units, return_sequences=True, return_state=True, **size_args(spec),
                                     **rnn_kwargs)(seq))
    rng = np.random.default_rng(7)
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in reference.get_weights()]
    reference.set_weights(weights)
    fast.set_weights(weights)
    return reference, fast


def data(batch, timesteps, features, masked, seed=0):
    x = np.random.default_rng(seed).standard_normal((batch, timesteps, features)).astype("float32")
    if masked and timesteps > 4:  # trailing padding, leading padding, a hole in the middle
        x[0, -3:] = 0.0
        x[1, :2] = 0.0
        x[2, 4] = 0.0
    return x


# short T (unrolled on TF), long T (a loop), wide inputs (projected before the loop), masks,
# backwards; 20 units: from 16 units on, JAX's loop recomputes each step in the backward pass
VARIANTS = {"plain": (9, 4), "go_backwards": (9, 4), "masked": (9, 4), "long": (40, 4),
            "long_masked": (40, 4), "wide": (9, 40), "wide_masked_backwards": (40, 40),
            "many_units": (40, 4), "many_units_masked_backwards": (40, 4)}


@pytest.mark.parametrize(("spec", "variant"), [
    slow_for_classic(p.stem, variant, default=variant == "masked") for p in SHIPPED for variant in sorted(VARIANTS)])
def test_layer_equals_rnn_of_cell(spec, variant):
    masked = "masked" in variant
    ir = eqcell.analyze(spec)
    if masked and keras.backend.backend() == "jax" and ir.states[0].size != ir.output_size:
        pytest.skip("Keras's JAX loop outputs the first state at a masked step, which this cell's first state "
                    "(not shaped like its output) cannot stand in for: RNN(cell) fails there; the layer masks "
                    "itself, and `eqcell verify` checks it against the equations on JAX")
    if spec == "mamba_ssm" and "many_units" in variant:
        pytest.skip("A starts at zeros (no decay, as the spec says): over 40 steps the state and the gradients "
                    "grow to 1e22, where float32 rounding differs between paths; tests/test_zoo_tensor.py checks "
                    "Mamba against its reference with decaying A")
    kwargs = {"go_backwards": True} if "backwards" in variant else {}
    timesteps, wanted = VARIANTS[variant]
    units = 20 if "many_units" in variant else 5
    width = features(spec, wanted, units)
    reference, fast = build_pair(spec, units, timesteps, width, masked, **kwargs)
    x = data(3, timesteps, width, masked)
    for got, want in zip(fast(x), reference(x)):
        assert_close(ops.convert_to_numpy(got), ops.convert_to_numpy(want), f"{spec} {variant} forward")
    for got, want in zip(loss_and_grads(fast, x), loss_and_grads(reference, x)):
        # DeltaNet normalises its key, 0 / 0 at a masked (zero) input: RNN(cell) computes that step
        # and drops it, and its gradient is NaN; the parallel path zeroes masked steps first. Where
        # the reference is NaN the layer may be finite, never the other way round.
        got, want = np.asarray(got), np.asarray(want)
        finite = np.isfinite(want)
        assert np.all(np.isfinite(got[finite])), f"{spec} {variant}: gradient not finite where RNN(cell)'s is"
        assert_close(np.where(finite, got, 0.0), np.where(finite, want, 0.0), f"{spec} {variant} gradient")


@pytest.mark.parametrize("spec", [p.stem for p in SHIPPED])
def test_same_weights_and_config_as_rnn_of_cell(spec):
    reference, fast = build_pair(spec, 3, 4, features(spec, 2, 3), False)
    assert [w.shape for w in fast.get_weights()] == [w.shape for w in reference.get_weights()]
    layer = fast.layers[-1]
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    cell_config = {k: v for k, v in reference.layers[-1].cell.get_config().items() if k not in ("name", "trainable", "dtype")}
    assert {k: config[k] for k in cell_config} == cell_config


@pytest.mark.parametrize("spec", [p.stem for p in SHIPPED])
def test_dropout_in_training_uses_one_mask_per_sequence(spec):
    cell_cls, layer_cls = classes(spec)
    x = data(4, 6, features(spec, 3, 4), False)
    args = dict(return_sequences=True, dropout=0.5, recurrent_dropout=0.3, seed=11, **size_args(spec))
    reference = keras.layers.RNN(cell_cls(4, dropout=0.5, recurrent_dropout=0.3, seed=11, **size_args(spec)),
                                 return_sequences=True)
    fast = layer_cls(4, **args)
    reference(x)
    fast(x)
    fast.set_weights(reference.get_weights())
    want = ops.convert_to_numpy(reference(x, training=True))
    got = ops.convert_to_numpy(fast(x, training=True))
    assert_close(got, want, f"{spec} dropout")
    assert_close(ops.convert_to_numpy(fast(x)), ops.convert_to_numpy(reference(x)), f"{spec} inference")


@pytest.mark.skipif(not SCAN_SPECS, reason="no shipped spec is state-linear")
@pytest.mark.parametrize(("spec", "timesteps"), [
    slow_for_classic(spec, timesteps, default=timesteps == 7, slow=timesteps == 4096)
    for spec in SCAN_SPECS for timesteps in [1, 7, 300, 4096]])
def test_parallel_scan_equals_sequential_loop(spec, timesteps):
    _, layer_cls = classes(spec)
    masked = True  # on JAX the scan outputs what Keras's JAX loop does at a masked step (states[0])
    width = features(spec, 3, 6)
    inputs = keras.Input((timesteps, width))
    seq = keras.layers.Masking(0.0)(inputs) if masked else inputs
    outs = {}
    x = data(3, timesteps, width, masked, seed=timesteps)
    for scan in (True, False):
        for backwards in (False, True):
            layer = layer_cls(6, return_sequences=True, return_state=True, go_backwards=backwards,
                              parallel_scan=scan, seed=1, **size_args(spec))
            model = keras.Model(inputs, layer(seq))
            if not outs:
                weights = [np.random.default_rng(3).standard_normal(w.shape).astype("float32") * 0.5
                           for w in model.get_weights()]
                # Mamba's A is negative (mamba: A = -exp(A_log)); a positive one overflows by T = 300
                weights = [-np.abs(w) if v.path.endswith("/A") else w for w, v in zip(weights, model.weights)]
            model.set_weights(weights)
            outs[scan, backwards] = [ops.convert_to_numpy(t) for t in model(x)]
    # a max-plus stabiliser (RWKV-4's p, mLSTM's m) is a sum of T terms added in another order by
    # the scan: the states it scales (a = sum exp(k - p) v) carry its rounding, relative 1e-4 at
    # T = 300; the output (a ratio in which exp(-p) cancels) does not
    stabilised = any(isinstance(i, LinearState) and i.max_plus for i in eqcell.analyze(spec).scan)
    state_tol = 2e-5 * max(10, timesteps) if stabilised else 1e-5
    real = np.any(x != 0.0, axis=-1)  # the steps Masking keeps
    for backwards in (False, True):
        what = f"{spec} T={timesteps} go_backwards={backwards}"
        (got, *got_states), (want, *want_states) = outs[True, backwards], outs[False, backwards]
        steps = real[:, ::-1] if backwards else real
        assert_close(got[steps], want[steps], what)
        # at a masked step Keras's JAX loop outputs the first state (RWKV-4's a, scaled by exp(-p)),
        # which carries the stabiliser's rounding; the other backends repeat the last output
        if not steps.all():
            assert_close(got[~steps], want[~steps], what,
                         tol=1e-5 if keras.backend.backend() != "jax" else state_tol)
        for got_state, want_state in zip(got_states, want_states):
            assert_close(got_state, want_state, what, tol=state_tol)


def test_scan_reason_is_reported():
    assert eqcell.analyze("mingru").scan is not None
    assert "parallel scan" in eqcell.analyze("qrnn").scan_reason
    assert eqcell.analyze("slstm").scan is None
    assert "sequential" in eqcell.analyze("slstm").scan_reason


@pytest.mark.skipif(not SCAN_SPECS, reason="no shipped spec is state-linear")
@pytest.mark.parametrize(("spec", "timesteps", "jit_compile"), [
    slow_for_classic(spec, timesteps, jit, default=(timesteps, jit) == (5, False), slow=timesteps == 40)
    for spec in SCAN_SPECS for timesteps in [5, 40] for jit in [False, True]])
def test_scan_layer_trains_in_a_compiled_model(spec, timesteps, jit_compile):
    """The scan keeps static shapes (a Dense after it builds) and compiles under XLA."""
    if jit_compile and keras.backend.backend() == "torch":
        pytest.skip("jit_compile is not the torch backend's default path")
    _, layer_cls = classes(spec)
    keras.utils.set_random_seed(0)
    width = features(spec, 3, 4)
    model = keras.Sequential([keras.Input((timesteps, width)), layer_cls(4, **size_args(spec)), keras.layers.Dense(1)])
    # Adam: the size of a step does not follow the gradient's, which GLA's unnormalised state makes
    # huge at T = 40 (SGD diverged at 0.01 and 0.001, on either path)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit_compile)
    x, y = data(8, timesteps, width, False), np.ones((8, 1), "float32")
    losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert model.predict_on_batch(x).shape == (8, 1)


@pytest.mark.skipif(not SCAN_SPECS, reason="no shipped spec is state-linear")
@pytest.mark.parametrize("spec", SCAN_SPECS)
def test_parallel_scan_auto_picks_the_measured_faster_path(spec):
    """"auto" (the default) scans except on JAX's CPU backend; True and False force a path."""
    _, layer_cls = classes(spec)
    module = sys.modules[layer_cls.__module__]
    assert layer_cls(4, **size_args(spec)).parallel_scan == "auto"
    on_jax_cpu = False
    if keras.backend.backend() == "jax":
        import jax
        on_jax_cpu = jax.default_backend() == "cpu"
    assert module._scan_pays("auto") is (not on_jax_cpu)
    assert module._scan_pays("auto", 16 * 16) is (not on_jax_cpu)   # small matrices loop on JAX's CPU
    assert module._scan_pays("auto", 64 * 64) is True                # large ones are chunked everywhere
    assert module._scan_pays(True) is True and module._scan_pays(False) is False
    with pytest.raises(ValueError, match="parallel_scan"):
        layer_cls(4, parallel_scan="yes", **size_args(spec))


def test_step_is_rematerialized_on_jax_only():
    """On JAX the layer's step runs under jax.checkpoint (its backward recomputes the step) from
    16 units on; elsewhere, and for smaller cells, the step is used as it is."""
    _, layer_cls = classes("lstm")
    module = sys.modules[layer_cls.__module__]

    def step(x, states):
        return x * 2.0, [s + x for s in states]

    wrapped = module._rematerialized(step, 64)
    assert module._rematerialized(step, 8) is step  # small cells: recomputing costs more
    if keras.backend.backend() != "jax":
        assert wrapped is step
        return
    assert wrapped is not step
    x = ops.ones((2, 3))
    out, states = wrapped(x, [x])
    np.testing.assert_allclose(ops.convert_to_numpy(out), 2.0)
    np.testing.assert_allclose(ops.convert_to_numpy(states[0]), 2.0)


@pytest.mark.parametrize("spec", ["slstm", "mingru"])
def test_keras_file_round_trip(spec, tmp_path):
    """A model holding the generated layer and RNN(generated cell) saves to `.keras` and reloads to
    the same classes and outputs on whichever backend runs (tests/test_serialization.py reloads in
    fresh processes, on TensorFlow)."""
    cell, layer = classes(spec)
    inputs = keras.Input((6, 3))
    model = keras.Model(inputs, [layer(4, return_sequences=True, return_state=True)(inputs),
                                 keras.layers.RNN(cell(4, dropout=0.1, seed=2))(inputs)])
    rng = np.random.default_rng(5)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * 0.5 for w in model.get_weights()])
    x = data(2, 6, 3, False)
    want = [ops.convert_to_numpy(t) for t in keras.tree.flatten(model(x))]
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    assert {type(v) for v in reloaded.layers} >= {layer, keras.layers.RNN}
    assert any(isinstance(v, keras.layers.RNN) and type(v.cell) is cell for v in reloaded.layers)
    got = [ops.convert_to_numpy(t) for t in keras.tree.flatten(reloaded(x))]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w, f"{spec} reloaded")
