"""(d) The article's slstm.py: the simplified LSTM (S-LSTM) of Wu & King (2016) on running sums.

    f_t = sigmoid(W_f x_t + R_f h_{t-1} + b_f)
    c_t = f_t * c_{t-1} + (1 - f_t) * tanh(W_c x_t + R_c h_{t-1} + b_c)
    h_t = tanh(c_t)

The article wrote SLSTMCell by hand; here it is generated from the shipped spec `slstm` by
`eqcell.load`, and its full-sequence layer SLSTM is used. The article's defaults: recurrent
activation hard_sigmoid (the spec's default; note that Keras 3's hard_sigmoid is
clip(x / 6 + 1/2, 0, 1), TF 2.1's was clip(0.2 x + 1/2, 0, 1)) and activation=None (both tanh's
become the identity). Keras 3 (`import keras`).

    python examples/slstm.py           # small: n=2048, 10 epochs, SGD lr 1e-2, batch 64, clipnorm 1
    python examples/slstm.py --full    # the article: n=51200, 100 epochs, SGD lr 1e-4, batch 512
"""
import sys

import _common

import eqcell


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    _common.describe(args, "slstm.py: generated SLSTM(1, activation=None, return_sequences=True), "
                           "recurrent_activation hard_sigmoid")
    _common.seed_everything(args.seed)
    SLSTMCell = eqcell.load("slstm")
    SLSTM = sys.modules[SLSTMCell.__module__].SLSTM
    model = _common.build_model(SLSTM(1, activation=None, return_sequences=True))
    history = _common.train(model, args)
    return _common.report(model, model.layers[0].cell, history)


if __name__ == "__main__":
    main()
