"""The cells that read the previous input (x_{t-1}, token shift): QRNN with filter width 2 and
RWKV-4's time mixing, against references written from the authors' code (tests/zoo_references.py:
salesforce/pytorch-qrnn's QRNNLayer and ForgetMult; BlinkDL/RWKV-LM's RWKV_TimeMix and WKV kernel),
and the property that makes x_{t-1} a state: two halves run statefully equal the whole sequence."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import eqcell  # noqa: E402
from zoo_references import qrnn2, rwkv4  # noqa: E402

REFERENCES = {"qrnn2": qrnn2, "rwkv4": rwkv4}
STATES = {"qrnn2": ["c", "x_prev"], "rwkv4": ["a", "b", "p", "x_prev"]}


def _layer(name, units, **kwargs):
    return eqcell.load_layer(name)(units, return_sequences=True, return_state=True, **kwargs)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_equals_the_authors_reference(name):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 9, 4))
    layer = _layer(name, 5)
    layer(x.astype("float32"))
    weights = {k: 0.5 * rng.standard_normal(v.shape) for k, v in layer.cell.symbol_weights().items()}
    if name == "rwkv4":
        weights["w"] = np.abs(weights["w"]) + 0.1  # a decay rate
    layer.cell.set_symbol_weights(weights)
    outputs, *states = [np.asarray(v) for v in layer(x.astype("float32"))]
    want, want_states = REFERENCES[name](x, {k: v[None] for k, v in weights.items()})
    np.testing.assert_allclose(outputs, want, rtol=1e-5, atol=1e-5)
    for got, state in zip(states, STATES[name]):
        if name == "rwkv4" and state in ("a", "b", "p"):
            continue  # the same up to the stabiliser's common scale (the reference starts p at 0 too)
        np.testing.assert_allclose(got, want_states[state][:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(states[-1], x[:, -1], atol=1e-6)  # the last state is the last input


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_stateful_halves_equal_the_whole(name):
    """x_{t-1} at the first step of the second half is the first half's last input."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 8, 4)).astype("float32")
    whole = _layer(name, 5)
    whole(x)
    weights = {k: 0.5 * rng.standard_normal(v.shape) for k, v in whole.cell.symbol_weights().items()}
    if name == "rwkv4":
        weights["w"] = np.abs(weights["w"]) + 0.1
    whole.cell.set_symbol_weights(weights)
    want = np.asarray(whole(x)[0])
    halves = eqcell.load_layer(name)(5, return_sequences=True, stateful=True)
    halves.build((2, 4, 4))
    halves.cell.set_symbol_weights(weights)
    got = np.concatenate([np.asarray(halves(x[:, :4])), np.asarray(halves(x[:, 4:]))], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
