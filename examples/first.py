"""(a) The article's first.py: SimpleRNN(1, activation=None) learns running sums.

The SimpleRNN layer is eqcell's, generated from the shipped spec `simple_rnn`
(h_t = tanh(W x_t + U h_{t-1} + b), the article's equation (1) with f = identity here) by
`eqcell.load`; the article used tf.keras.layers.SimpleRNN. Keras 3 (`import keras`).

    python examples/first.py           # small: n=2048, 10 epochs, SGD lr 1e-2, batch 64, clipnorm 1
    python examples/first.py --full    # the article: n=51200, 100 epochs, SGD lr 1e-4, batch 512

The ideal weights are 1, 1 and 0. After --full the article (TF 2.1) got kernel 0.602, recurrent_kernel
1.005, bias 0.207; this script (Keras 3.15, TF backend) gets 0.818, 0.990, 0.100. Beware the names:
the spec calls the input matrix W and the recurrent one U (keras's kernel / recurrent_kernel), the
article's equation (1) the reverse, s_t = f(U x_t + W s_{t-1} + b).
"""
import sys

import _common

import eqcell


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    _common.describe(args, "first.py: generated SimpleRNN(1, activation=None, return_sequences=True)")
    _common.seed_everything(args.seed)
    SimpleRNNCell = eqcell.load("simple_rnn")
    SimpleRNN = sys.modules[SimpleRNNCell.__module__].SimpleRNN
    model = _common.build_model(SimpleRNN(1, activation=None, return_sequences=True))
    history = _common.train(model, args)
    return _common.report(model, model.layers[0].cell, history)


if __name__ == "__main__":
    main()
