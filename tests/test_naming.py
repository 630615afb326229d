"""Renaming a spec's names never changes what the cell computes (the naming stage's contract).

Every identifier a generated module binds or reads (collected with `ast` from the golden files),
every name the templates write, and every attribute a Keras layer inherits is used as an
intermediate, as a state and as a parameter stored as its own weight; the cell computes exactly
what the same cell with neutral names computes, on every path of the layer: the scan, the loop
with the input projection hoisted and not, `RNN(cell)`, the tf-keras target, and (in a JAX
subprocess) the rematerialized step. A handful of specs hold all the names at once: each spec
gives one third of them each role."""
import ast
import json
import keyword
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import eqcell
from helpers import REFERENCED_SPECS as CLASSIC_SPECS
from conftest import GOLDEN, ROOT
from eqcell.analysis.keras_names import INHERITED_ATTRIBUTES
from eqcell.render import module_names

keras = pytest.importorskip("keras")

NEUTRAL = ("zqa", "zqs", "zqp")  # intermediates, states, parameters: zqa0, zqa1, ...


def _golden_identifiers(classic: bool = False) -> set[str]:
    """The names in the golden files; `classic`: only the classic cells' (CLASSIC_SPECS), else the others'."""
    names = set()
    for path in GOLDEN.glob("*.py"):
        if (path.name.split(".")[0] in CLASSIC_SPECS) != classic:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return names


def _spec_names(names) -> list[str]:
    """Names a spec can write: not keywords, letters and digits in parts joined by single
    underscores (in an equation a leading, trailing or doubled '_' reads as a subscript mark, and
    a last part `_t` or `_tm1` as a time index: `c_tm1` is c at t-1)."""
    return sorted(n for n in names if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*", n)
                  and not re.search(r"_t([mp][0-9]+)?$", n) and not keyword.iskeyword(n))


IDENTIFIERS = _spec_names(_golden_identifiers() | INHERITED_ATTRIBUTES | module_names().names
                          | module_names().attributes)
CHUNKS = 3
SIZE = -(-len(IDENTIFIERS) // CHUNKS)
CHUNK = [IDENTIFIERS[i * SIZE:(i + 1) * SIZE] for i in range(CHUNKS)]
# The classic cells' golden files (tests/classic_references.py) add about 200 names of their own,
# mostly their parameters' <name>_initializer, _regularizer and _constraint; with them every probe
# cell grows by half and this file's default run from 77 s to 124 s, so they are renamed in probes
# of their own under `pytest -m slow` only.
CLASSIC_IDENTIFIERS = sorted(set(_spec_names(_golden_identifiers(classic=True))) - set(IDENTIFIERS))
CLASSIC_SIZE = -(-len(CLASSIC_IDENTIFIERS) // CHUNKS)
CLASSIC_CHUNK = [CLASSIC_IDENTIFIERS[i * CLASSIC_SIZE:(i + 1) * CLASSIC_SIZE] for i in range(CHUNKS)]


def probe_spec(intermediates, states, params, loop: bool) -> str:
    """One gated state per slot: s_t = a_t * s_{t-1} + (1 - a_t) * tanh(Wc x_t) * p. `loop`: the
    gate also reads the first state at t-1, so the cell is not a scan and its products are split."""
    lines = []
    for i, (a, s, p) in enumerate(zip(intermediates, states, params)):
        recurrent = f" + Ua{i} {states[0]}_{{t-1}}" if loop else ""
        lines.append(f"{a}_t = sigmoid(Wa{i} zqx_t{recurrent})")
        lines.append(f"{s}_t = {a}_t * {s}_{{t-1}} + (1 - {a}_t) * tanh(Wc{i} zqx_t) * {p}")
    return "name: ProbeCell\ninput: zqx\nequations: |\n" + "".join(f"  {line}\n" for line in lines)


def roles(j: int, chunks=CHUNK, size=SIZE):
    """Spec j: chunk j as intermediates, chunk j+1 as states, chunk j+2 as parameters."""
    def names(chunk, neutral):
        return chunk + [f"{neutral}{i}" for i in range(len(chunk), size)]
    return (names(chunks[j % CHUNKS], NEUTRAL[0]), names(chunks[(j + 1) % CHUNKS], NEUTRAL[1]),
            names(chunks[(j + 2) % CHUNKS], NEUTRAL[2]))


def neutral_roles(size=SIZE):
    return tuple([f"{n}{i}" for i in range(size)] for n in NEUTRAL)


def symbol_weights(params, loop, units, features, seed=3):
    """Different values per parameter, by position, so the same numbers go to the same slot."""
    rng = np.random.default_rng(seed)
    weights = {}
    for i, p in enumerate(params):
        weights[f"Wa{i}"] = rng.standard_normal((units, features)) * 0.5
        weights[f"Wc{i}"] = rng.standard_normal((units, features)) * 0.5
        if loop:
            weights[f"Ua{i}"] = rng.standard_normal((units, units)) * 0.5
        weights[p] = rng.standard_normal((units,))
    return weights


def test_identifiers_cover_the_generated_modules():
    assert not set(IDENTIFIERS) & {f"{n}{i}" for n in NEUTRAL for i in range(SIZE)}
    assert not set(CLASSIC_IDENTIFIERS) & {f"{n}{i}" for n in NEUTRAL for i in range(CLASSIC_SIZE)}
    for must in ("frame", "keep", "inputs", "states", "self", "ops", "kernel", "weights", "name", "dtype",
                 "units", "cell", "step", "mask", "training", "projected", "np", "keras", "rnn", "outputs"):
        assert must in IDENTIFIERS, must
    assert len(IDENTIFIERS) > 300


def _paths(spec_text, params, target, loop):
    cell_class = eqcell.load(spec_text, target)
    layer_class = eqcell.load_layer(spec_text, target)
    lib = keras if target == "keras" else pytest.importorskip("tf_keras")
    units, out = 2, {}
    features_cases = {"projected per step": 3, "hoisted": 1000}
    if target == "tf-keras":
        features_cases = {"projected per step": 3}
    for case, features in features_cases.items():
        x = np.random.default_rng(0).standard_normal((2, 5, features)).astype("float32")
        weights = symbol_weights(params, loop, units, features)
        variants = {"layer": {}, "RNN(cell)": None}
        if target == "keras" and not loop:
            variants = {"layer scan": {"parallel_scan": True}, "layer loop": {"parallel_scan": False},
                        "RNN(cell)": None}
        for name, kwargs in variants.items():
            if kwargs is None:
                cell = cell_class(units)
                layer = lib.layers.RNN(cell, return_sequences=True, return_state=True)
            else:
                layer = layer_class(units, return_sequences=True, return_state=True, **kwargs)
                cell = layer.cell
            layer.build((None, 5, features))
            cell.set_symbol_weights(weights)
            out[f"{case}, {name}"] = [np.asarray(v) for v in layer(x)]
    return out


# the default run keeps the loop cell on the keras target with the first third of the identifiers
# (about 13 s here); the other thirds and the other cells and targets under -m slow
@pytest.mark.parametrize(("loop", "target", "chunks"), [
    pytest.param(True, "keras", (0,), id="loop cell-keras-first third"),
    pytest.param(True, "keras", tuple(range(1, CHUNKS)), id="loop cell-keras-other thirds", marks=pytest.mark.slow),
    pytest.param(False, "keras", tuple(range(CHUNKS)), id="scan cell-keras", marks=pytest.mark.slow),
    pytest.param(True, "tf-keras", tuple(range(CHUNKS)), id="loop cell-tf-keras", marks=pytest.mark.slow),
    pytest.param(False, "tf-keras", tuple(range(CHUNKS)), id="scan cell-tf-keras", marks=pytest.mark.slow)])
def test_renaming_never_changes_the_numbers(loop, target, chunks):
    _check_renaming(loop, target, CHUNK, SIZE, chunks)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["keras", "tf-keras"])
@pytest.mark.parametrize("loop", [False, True], ids=["scan cell", "loop cell"])
def test_renaming_to_the_classic_cells_names_never_changes_the_numbers(loop, target):
    _check_renaming(loop, target, CLASSIC_CHUNK, CLASSIC_SIZE)


def _check_renaming(loop, target, chunks, size, which=tuple(range(CHUNKS))):
    neutral_names = neutral_roles(size)
    neutral = _paths(probe_spec(*neutral_names, loop), neutral_names[2], target, loop)
    assert (eqcell.analyze(probe_spec(*neutral_names, loop)).scan is None) == loop
    for j in which:
        names = roles(j, chunks, size)
        got = _paths(probe_spec(*names, loop), names[2], target, loop)
        assert got.keys() == neutral.keys()
        for path, values in neutral.items():
            for i, (a, b) in enumerate(zip(got[path], values)):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f"spec {j}, {path}, output {i}")


JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    import eqcell
    sys.path.insert(0, "tests")
    from test_naming import probe_spec, roles, neutral_roles, symbol_weights, CHUNKS
    assert keras.backend.backend() == "jax"
    units, features = 16, 3   # from 16 units the JAX layer rematerializes its step
    x = np.random.default_rng(0).standard_normal((2, 4, features)).astype("float32")
    outputs = []
    for names in [neutral_roles()] + [roles(j) for j in range(CHUNKS)]:
        text = probe_spec(*names, True)
        layer = eqcell.load_layer(text)(units, return_sequences=True, return_state=True)
        layer.build((None, 4, features))
        layer.cell.set_symbol_weights(symbol_weights(names[2], True, units, features))
        outputs.append([np.asarray(v).tolist() for v in layer(x)])
    print(json.dumps(outputs))
""")


@pytest.mark.slow
def test_renaming_never_changes_the_numbers_on_jax_rematerialized():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    neutral, *others = json.loads(done.stdout.strip().splitlines()[-1])
    for j, got in enumerate(others):
        for i, (a, b) in enumerate(zip(got, neutral)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"spec {j}, output {i}")


def test_inherited_attributes_cover_installed_keras():
    """eqcell keeps the attribute names it must not use as text (generation imports no
    framework); they must cover what the installed Keras and tf_keras cells and RNN layers have."""
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell
    found = set()
    for cls in (keras.layers.Layer, keras.layers.RNN, DropoutRNNCell):
        found |= set(dir(cls))
    cell = eqcell.load("gru")(3)
    rnn = keras.layers.RNN(cell)
    rnn(np.zeros((2, 4, 3), "float32"))
    found |= set(vars(cell)) | set(vars(rnn))
    try:
        import tf_keras
    except ImportError:
        tf_keras = None
    if tf_keras is not None:
        from tf_keras.src.layers.rnn.dropout_rnn_cell_mixin import DropoutRNNCellMixin
        for cls in (tf_keras.layers.AbstractRNNCell, tf_keras.layers.RNN, DropoutRNNCellMixin):
            found |= set(dir(cls))
        cell = eqcell.load("gru", "tf-keras")(3)
        rnn = tf_keras.layers.RNN(cell)
        rnn(np.zeros((2, 4, 3), "float32"))
        found |= set(vars(cell)) | set(vars(rnn))
    ours = {a for w in eqcell.analyze("gru").weights for a in (w.name,)} | {
        "units", "use_bias", "dropout", "recurrent_dropout", "seed", "seed_generator", "state_size",
        "output_size", "activation", "recurrent_activation", "_random_generator"}
    ours |= {f"{w.arg}_{kind}" for w in eqcell.analyze("gru").weights
             for kind in ("initializer", "regularizer", "constraint")}
    missing = {n for n in found - ours - INHERITED_ATTRIBUTES - module_names().attributes
               if not (n.startswith("__") and n.endswith("__"))}
    assert not missing, f"add to eqcell/analysis/keras_names.py: {sorted(missing)}"


def test_layer_norm_weights_never_merge_with_a_written_parameter():
    """layer_norm's own gain and bias are named ln1_gain, ln1_bias; a spec parameter of that name
    stays a parameter of its own."""
    ir = eqcell.analyze("name: T\nequations: |\n  h_t = layer_norm(W x_t + U h_{t-1}) * ln1_gain\n")
    roles = {p.name: p.role for p in ir.params}
    assert roles == {"W": "matrix", "U": "matrix", "ln1_gain_": "gain", "ln1_bias": "vector", "ln1_gain": "vector"}


def test_a_constant_computes_what_its_value_written_out_computes():
    """`constants: {beta: b}` with the constructor's beta = v equals the same cell with v written in."""
    keras_ = pytest.importorskip("keras")
    named = ("name: J\nconstants: {beta: 1.0}\nequations: |\n"
             "  h_t = sigmoid(W x_t + U h_{t-1}) * h_{t-1} + (1 - sigmoid(V x_t - beta)) * tanh(R x_t)\n")
    written = named.replace("constants: {beta: 1.0}\n", "").replace("- beta", "- 2.5")
    rng = np.random.default_rng(5)
    weights = {k: rng.standard_normal(shape) for k, shape in
               {"W": (3, 4), "U": (3, 3), "V": (3, 4), "R": (3, 4)}.items()}
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    outs = []
    for text, kwargs in ((named, {"beta": 2.5}), (written, {})):
        layer = eqcell.load_layer(text)(3, return_sequences=True, **kwargs)
        layer.build((None, 5, 4))
        layer.cell.set_symbol_weights(weights)
        outs.append(np.asarray(layer(x)))
        assert layer.get_config().get("beta", 2.5) == 2.5
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-6)


def test_shipped_constructor_arguments_keep_the_specs_names():
    """A name the templates use never renames a shipped spec's constants, sizes or activation
    arguments: they are the generated constructors' API (a helper's loop variable `d` once made
    mLSTM's constant `d` an argument `d_`)."""
    import yaml
    from conftest import SHIPPED
    for path in SHIPPED:
        ir = eqcell.analyze(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert [k.arg for k in ir.constants] == list((raw.get("constants") or {})), path.stem
        sizes = sorted(set((raw.get("sizes") or {}).values()) - {1, "1"})
        assert sorted(s for s in ir.sizes if s != ir.heads) == sizes, path.stem
        assert [a.arg for a in ir.activations] == list((raw.get("activations") or {})), path.stem
