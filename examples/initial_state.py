"""(e) The article's last experiment: S-LSTM starting from h_0 = 1, c_0 = 0, trained on running sum + 1.

The article overrode get_initial_state() by hand. Here the state's start is part of the spec:
examples/slstm_h1.yaml is specs/slstm.yaml with

    initial_state:
      h: ones
      c: zeros

(and the class renamed SLSTMH1Cell / SLSTMH1), and the cell is generated from it by `eqcell.load`,
whose get_initial_state returns [ones, zeros]. Activation None, recurrent activation hard_sigmoid,
targets y = x.cumsum(axis=1) + 1. Keras 3 (`import keras`).

    python examples/initial_state.py           # small: n=2048, 10 epochs, SGD lr 1e-2, batch 64, clipnorm 1
    python examples/initial_state.py --full    # the article: n=51200, 100 epochs, SGD lr 1e-4, batch 512
"""
import sys
from pathlib import Path

import _common

import eqcell
import keras

SPEC = Path(__file__).resolve().parent / "slstm_h1.yaml"


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    _common.describe(args, f"initial_state.py: generated SLSTMH1(1, activation=None) from {SPEC.name}, "
                           "h_0 = 1, c_0 = 0, targets cumsum + 1")
    _common.seed_everything(args.seed)
    Cell = eqcell.load(SPEC)
    Layer = sys.modules[Cell.__module__].SLSTMH1
    model = _common.build_model(Layer(1, activation=None, return_sequences=True))
    cell = model.layers[0].cell
    print("initial state [h_0, c_0]:", [keras.ops.convert_to_numpy(s).ravel().tolist()
                                      for s in cell.get_initial_state(batch_size=1)])
    history = _common.train(model, args, offset=1.0)
    return _common.report(model, cell, history)


if __name__ == "__main__":
    main()
