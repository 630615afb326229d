"""(c) The article's lstm.py: LSTM(1, activation=None) learns running sums.

The LSTM layer is eqcell's, generated from the shipped spec `lstm` by `eqcell.load` (gates i, f, c, o
as keras.layers.LSTM orders them; recurrent activation sigmoid, b_f initialized to ones); the article
used tf.keras.layers.LSTM. `activation=None` replaces both tanh's of the equations, as in Keras.
Keras 3 (`import keras`).

    python examples/lstm.py           # small: n=2048, 10 epochs, SGD lr 1e-2, batch 64, clipnorm 1
    python examples/lstm.py --full    # the article: n=51200, 100 epochs, SGD lr 1e-4, batch 512
"""
import sys

import _common

import eqcell


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    _common.describe(args, "lstm.py: generated LSTM(1, activation=None, return_sequences=True)")
    _common.seed_everything(args.seed)
    LSTMCell = eqcell.load("lstm")
    LSTM = sys.modules[LSTMCell.__module__].LSTM
    model = _common.build_model(LSTM(1, activation=None, return_sequences=True))
    history = _common.train(model, args)
    return _common.report(model, model.layers[0].cell, history)


if __name__ == "__main__":
    main()
