"""(b) The article's rewrite of first.py: keras.layers.RNN(SimpleRNNCell(1, activation=None)).

The cell is eqcell's SimpleRNNCell, generated from the shipped spec `simple_rnn` by `eqcell.load`
(the article used tf.keras.layers.SimpleRNNCell); `keras.layers.RNN` runs it over the sequence.
Same model, weights and training as examples/first.py. Keras 3 (`import keras`).

    python examples/rnn.py           # small: n=2048, 10 epochs, SGD lr 1e-2, batch 64, clipnorm 1
    python examples/rnn.py --full    # the article: n=51200, 100 epochs, SGD lr 1e-4, batch 512
"""
import _common

import eqcell
import keras


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    _common.describe(args, "rnn.py: keras.layers.RNN(generated SimpleRNNCell(1, activation=None), return_sequences=True)")
    _common.seed_everything(args.seed)
    SimpleRNNCell = eqcell.load("simple_rnn")
    cell = SimpleRNNCell(1, activation=None)
    model = _common.build_model(keras.layers.RNN(cell, return_sequences=True))
    history = _common.train(model, args)
    return _common.report(model, cell, history)


if __name__ == "__main__":
    main()
