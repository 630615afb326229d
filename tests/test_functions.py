"""Every element-wise function of the language computes what it names, called directly or
exposed as a constructor argument, in the cell's step, in the layer's loop and in its scan, on
both targets; checked against a numpy loop written here from the equations, not from eqcell."""
import math

import numpy as np
import pytest

import eqcell
from eqcell import nodes

keras = pytest.importorskip("keras")

FUNCTIONS = sorted(set(nodes.FUNCTIONS) - {"identity", "layer_norm"})
UNARY = [f for f in FUNCTIONS if nodes.FUNCTIONS[f] == 1]  # only these can be exposed as an activation
# the Keras activation an exposed function defaults to in this test (log, abs, sqrt have none)
DEFAULT = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "hard_sigmoid": "hard_sigmoid",
           "softplus": "softplus", "softsign": "softsign", "exp": "exponential", "silu": "silu",
           "gelu": "gelu", "elu": "elu", "log": "linear", "abs": "linear", "sqrt": "linear",
           "logsigmoid": "linear"}
OFFSET = {"log": 3, "sqrt": 3}  # keeps their argument positive (|V x| < 3 here); the others see both signs
_erf = np.vectorize(math.erf)


def numpy_function(name: str, target: str):
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    table = {
        "sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
        # Keras 3: relu6(x + 3) / 6; tf_keras (Keras 2): clip(0.2 x + 0.5, 0, 1)
        "hard_sigmoid": (lambda v: np.clip(v + 3, 0, 6) / 6) if target == "keras" else
                        (lambda v: np.clip(0.2 * v + 0.5, 0, 1)),
        "softplus": lambda v: np.log1p(np.exp(v)), "softsign": lambda v: v / (1 + np.abs(v)),
        "exp": np.exp, "exponential": np.exp, "log": np.log, "abs": np.abs, "sqrt": np.sqrt,
        "silu": lambda v: v * sigmoid(v), "gelu": lambda v: 0.5 * v * (1 + _erf(v / math.sqrt(2))),
        "elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0))), "linear": lambda v: v,
        "logsigmoid": lambda v: -np.log1p(np.exp(-v)), "max": np.maximum, "min": np.minimum,
    }
    return table[name]


def spec_text(exposed: bool, loop: bool) -> str:
    """For each function f: a gate, f of a positive value, and a state mixing them."""
    lines = []
    for i, f in enumerate(FUNCTIONS):
        recurrent = f" + U{i} h0_{{t-1}}" if loop else ""
        second = ", a{i}_t - 0.5".format(i=i) if nodes.FUNCTIONS[f] == 2 else ""
        lines += [f"a{i}_t = sigmoid(W{i} x_t{recurrent})",
                  f"g{i}_t = {f}(V{i} x_t * a{i}_t + {OFFSET.get(f, 0)}{second})",
                  f"h{i}_t = a{i}_t * h{i}_{{t-1}} + (1 - a{i}_t) * g{i}_t"]
    text = "name: FunctionsCell\nequations: |\n" + "".join(f"  {line}\n" for line in lines)
    if exposed:
        text += "activations:\n" + "".join(f"  act_{f}: {{symbol: {f}, default: {DEFAULT[f]}}}\n" for f in UNARY)
    return text


def reference(weights, x, exposed: bool, loop: bool, target: str):
    """The equations above in numpy (float64), step by step; outputs of h_last and final states."""
    batch, steps, _ = x.shape
    units = weights["W0"].shape[0]
    h = [np.zeros((batch, units)) for _ in FUNCTIONS]
    outputs = []
    sigmoid = numpy_function("sigmoid", target)
    for t in range(steps):
        previous = [v.copy() for v in h]
        for i, f in enumerate(FUNCTIONS):
            pre = x[:, t] @ weights[f"W{i}"].T + (previous[0] @ weights[f"U{i}"].T if loop else 0)
            a = sigmoid(pre)
            args = [x[:, t] @ weights[f"V{i}"].T * a + OFFSET.get(f, 0)] + ([a - 0.5] if nodes.FUNCTIONS[f] == 2 else [])
            g = numpy_function(DEFAULT[f] if exposed and f in UNARY else f, target)(*args)
            h[i] = a * previous[i] + (1 - a) * g
        outputs.append(h[-1])
    return np.stack(outputs, axis=1), h


def state_order(ir) -> list[int]:
    """Positions in FUNCTIONS of the cell's states, in the cell's state-list order."""
    return [int(s.name[1:]) for s in ir.states]


@pytest.mark.parametrize("target", ["keras", "tf-keras"])
@pytest.mark.parametrize("loop", [False, True], ids=["scan cell", "loop cell"])
@pytest.mark.parametrize("exposed", [False, True], ids=["called", "exposed"])
def test_functions_compute_what_they_name(exposed, loop, target):
    text = spec_text(exposed, loop)
    ir = eqcell.analyze(text)
    assert (ir.scan is None) == loop
    lib = keras if target == "keras" else pytest.importorskip("tf_keras")
    units, features = 3, 4
    rng = np.random.default_rng(11)
    weights = {}
    for i in range(len(FUNCTIONS)):
        weights[f"W{i}"] = rng.standard_normal((units, features)) * 0.5
        weights[f"V{i}"] = np.clip(rng.standard_normal((units, features)), -1, 1) * 0.5
        if loop:
            weights[f"U{i}"] = rng.standard_normal((units, units)) * 0.5
    x = np.clip(rng.standard_normal((2, 6, features)), -1.4, 1.4)
    expected_out, expected_states = reference(weights, x, exposed, loop, target)
    cell_class, layer_class = eqcell.load(text, target), eqcell.load_layer(text, target)
    paths = {"RNN(cell)": None, "layer": {}}
    if target == "keras" and not loop:
        paths = {"RNN(cell)": None, "layer scan": {"parallel_scan": True}, "layer loop": {"parallel_scan": False}}
    for path, kwargs in paths.items():
        if kwargs is None:
            layer = lib.layers.RNN(cell_class(units), return_sequences=True, return_state=True)
        else:
            layer = layer_class(units, return_sequences=True, return_state=True, **kwargs)
        layer.build((None, 6, features))
        layer.cell.set_symbol_weights(weights)
        out, *states = layer(x.astype("float32"))
        np.testing.assert_allclose(np.asarray(out), expected_out, rtol=2e-5, atol=2e-5, err_msg=path)
        for position, state in zip(state_order(ir), states):
            np.testing.assert_allclose(np.asarray(state), expected_states[position], rtol=2e-5, atol=2e-5,
                                       err_msg=f"{path}: state h{position}")
