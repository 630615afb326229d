"""The classic recurrent cells shipped in specs/ (peephole LSTM, CIFG, SRU, IndRNN, JANET, UGRNN,
MGU, LN-LSTM, LSTMP, minLSTM, RG-LRU) equal float64 numpy references written from their papers
(tests/classic_references.py, never from eqcell's specs or generated code).

Each cell is the generated full-sequence layer (`eqcell.load_layer("specs/<name>.yaml")`) with
different random weights for every parameter, set in the paper's orientation with
`cell.set_symbol_weights`; it runs `return_sequences=True, return_state=True` on random inputs
from zeros and from random initial states, and every output and final state must equal the
reference's to float32 precision. Scan-capable cells (minLSTM, RG-LRU) run both the parallel
scan and the loop. TensorFlow backend (the default run); about 15 s here."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

import eqcell  # noqa: E402
import classic_references as refs  # noqa: E402
from conftest import SPECS  # noqa: E402
from helpers import assert_close  # noqa: E402

UNITS, FEATURES, PROJ, BATCH, STEPS = 5, 3, 3, 2, 9


# name -> (the reference, the layer's state list in order, renames spec symbol -> reference name)
def _ln_names():
    # each LN(...) owns ln<k>_gain / ln<k>_bias, numbered in the order they are written in the spec
    places = ["fh", "fx", "ih", "ix", "oh", "ox", "gh", "gx", "c"]
    names = {}
    for k, place in enumerate(places, start=1):
        names[f"ln{k}_gain"] = f"alpha_{place}"
        names[f"ln{k}_bias"] = f"beta_{place}"
    return names


CELLS = {
    "peephole_lstm": (refs.peephole_lstm, ("h", "c"), {}),
    "cifg_lstm": (refs.cifg_lstm, ("y", "c"), {}),
    "sru": (refs.sru, ("c",), {}),
    "indrnn": (refs.indrnn, ("h",), {}),
    "janet": (refs.janet, ("h", "c"), {}),
    "ugrnn": (refs.ugrnn, ("h",), {}),
    "mgu": (refs.mgu, ("h",), {}),
    "ln_lstm": (refs.ln_lstm, ("h", "c"), _ln_names()),
    "projection_lstm": (refs.projection_lstm, ("r", "c"), {}),
    "minlstm": (refs.minlstm, ("h",), {}),
    "rg_lru": (refs.rg_lru, ("h",), {}),
}
STATE_SIZES = {"r": PROJ}  # every other state has UNITS features


def _layer(name, **kwargs):
    spec = SPECS / f"{name}.yaml"
    if "proj_units" in spec.read_text(encoding="utf-8"):
        kwargs["proj_units"] = PROJ
    return eqcell.load_layer(spec)(UNITS, return_sequences=True, return_state=True, **kwargs)


def _features(name):
    return UNITS if eqcell.analyze(SPECS / f"{name}.yaml").square_input else FEATURES


def _random_params(cell, seed):
    """A different random draw for every parameter (a swapped gate cannot pass), in the paper's
    orientation, shaped as the cell reports them."""
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0.0, 0.6, np.shape(v)) for k, v in sorted(cell.symbol_weights().items())}


def _run(name, seed, constants=None, **layer_kwargs):
    """(the layer's [outputs, *states], the reference's) from zeros and from random states."""
    reference, state_names, renames = CELLS[name]
    constants = constants or {}
    layer = _layer(name, **constants, **layer_kwargs)
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((BATCH, STEPS, _features(name)))
    layer(x.astype("float32"))
    params = _random_params(layer.cell, seed)
    layer.cell.set_symbol_weights(params)
    # the weights went in as set: symbol_weights gives them back
    for key, value in layer.cell.symbol_weights().items():
        np.testing.assert_allclose(np.asarray(value), params[key], rtol=1e-6, atol=1e-6, err_msg=key)
    paper_params = {renames.get(k, k): v for k, v in params.items()}
    starts = {s: rng.standard_normal((BATCH, STATE_SIZES.get(s, UNITS))) for s in state_names}
    runs = []
    for initial in (None, starts):
        kwargs = {} if initial is None else {"initial_state": [initial[s].astype("float32") for s in state_names]}
        got = [ops.convert_to_numpy(t) for t in layer(x.astype("float32"), **kwargs)]
        outputs, final = reference(x, paper_params, initial, **constants)
        runs.append((got, [outputs] + [final[s] for s in state_names]))
    return runs


def _compare(name, runs, what=""):
    _, state_names, _ = CELLS[name]
    for start, (got, want) in zip(("zeros", "random"), runs):
        assert len(got) == len(want) == 1 + len(state_names), (name, len(got))
        for label, g, w in zip(("outputs",) + state_names, got, want):
            assert np.all(np.isfinite(w)) and np.std(w) > 1e-3, f"{name}: a degenerate reference {label}"
            assert_close(g, w, f"{name}{what} {label} from {start} initial states")


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_equals_its_paper_reference(name):
    kwargs = {"parallel_scan": True} if eqcell.analyze(SPECS / f"{name}.yaml").scan is not None else {}
    _compare(name, _run(name, seed=sorted(CELLS).index(name), **kwargs))


@pytest.mark.parametrize("name", ["minlstm", "rg_lru"])
def test_scan_cells_loop_equals_the_reference_too(name):
    assert eqcell.analyze(SPECS / f"{name}.yaml").scan is not None, f"{name} should be a parallel scan"
    _compare(name, _run(name, seed=40, parallel_scan=False), " (loop)")


@pytest.mark.parametrize(("name", "constants"), [("janet", {"beta": 2.5}), ("rg_lru", {"c": 3.0})])
def test_constants_are_constructor_arguments(name, constants):
    """JANET's beta and RG-LRU's c reach the step: a non-default value still equals the paper."""
    _compare(name, _run(name, seed=50, constants=constants), f" {constants}")


def test_every_classic_spec_is_tested_and_cited():
    """Each spec here is shipped, and `eqcell list`'s line (the description's first) cites equations."""
    assert set(CELLS) == refs.CLASSIC_SPECS
    for name in CELLS:
        spec = eqcell.analyze(SPECS / f"{name}.yaml")
        first = spec.description.splitlines()[0]
        assert any(word in first for word in ("eq.", "eqs.", "section")), first
        assert any(ch.isdigit() for ch in first), first


def test_square_input_cells_refuse_other_widths():
    """SRU's highway term and RG-LRU's i_t * x_t need input_dim == units."""
    for name in ("sru", "rg_lru"):
        with pytest.raises(ValueError, match="input_dim"):
            _layer(name)(np.zeros((1, 3, UNITS + 1), "float32"))
