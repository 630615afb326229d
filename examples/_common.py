"""Shared code of the seed-article examples: arguments, data, training, printing.

The article trains on running sums: x = np.random.random((51200, 30, 1)), y = x.cumsum(axis=1),
SGD lr 1e-4, batch 512, 100 epochs, seeds 111; then prints the learned weights and the prediction on
np.ones((1, 30, 1)) * 0.5 (the ideal answer is 0.5, 1.0, ..., 15.0).

By default the examples run small, in a few seconds: 2048 sequences, 10 epochs, batch 64, SGD with
learning rate 1e-2 (with the article's 1e-4, 320 steps barely move the weights) and gradients
clipped to norm 1 (with a step that large, a linear recurrence over 30 steps blows up to nan
without clipping). `--full` restores the article's size and settings exactly (no clipping);
`--n`, `--epochs`, `--lr`, `--batch-size`, `--clipnorm` and `--seed` override one setting at a time.

Each script's `main(argv)` returns {"history": ..., "prediction": ..., "weights": ...}, and its last
printed line is machine-readable: `loss: first=<first epoch's loss> last=<last epoch's loss>`.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import keras  # noqa: E402

STEPS = 30  # sequence length, as in the article
SMALL = dict(n=2048, epochs=10, lr=1e-2, batch_size=64, clipnorm=1.0, seed=111)
FULL = dict(n=51200, epochs=100, lr=1e-4, batch_size=512, clipnorm=None, seed=111)


def parse_args(description: str, argv=None) -> argparse.Namespace:
    """`--full` for the article's settings; `--n`, `--epochs`, `--lr`, `--batch-size`, `--seed` override."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true",
                        help="the article's settings: n=51200, 100 epochs, SGD lr 1e-4, batch 512, seed 111")
    parser.add_argument("--n", type=int, help=f"number of sequences (default {SMALL['n']})")
    parser.add_argument("--epochs", type=int, help=f"epochs (default {SMALL['epochs']})")
    parser.add_argument("--lr", type=float, help=f"SGD learning rate (default {SMALL['lr']})")
    parser.add_argument("--batch-size", type=int, help=f"batch size (default {SMALL['batch_size']})")
    parser.add_argument("--seed", type=int, help=f"random seed (default {SMALL['seed']})")
    parser.add_argument("--clipnorm", type=float, help="clip each gradient to this norm; 0 for none (default "
                        f"{SMALL['clipnorm']}, none with --full)")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2),
                        help="Keras fit verbosity (default 0; 2 with --full)")
    args = parser.parse_args(argv)
    settings = dict(FULL if args.full else SMALL)
    for key in ("n", "epochs", "lr", "batch_size", "seed", "clipnorm"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if settings["clipnorm"] == 0:
        settings["clipnorm"] = None
    if args.verbose is None:
        args.verbose = 2 if args.full else 0
    for key, value in settings.items():
        setattr(args, key, value)
    return args


def seed_everything(seed: int) -> None:
    """The article's tf.random.set_seed(111); np.random.seed(111), for Keras 3 (also seeds `random`)."""
    keras.utils.set_random_seed(seed)


def cumsum_data(n: int, offset: float = 0.0):
    """The article's data, drawn from numpy's global generator: x uniform in [0, 1), y = running sum (+ offset)."""
    x = np.random.random((n, STEPS, 1))
    y = x.cumsum(axis=1) + offset
    return x.astype("float32"), y.astype("float32")


def build_model(layer) -> keras.Sequential:
    """Sequential([layer]) on inputs of shape (None, 1): the article's `input_shape=(None, 1)`."""
    return keras.Sequential([keras.Input((None, 1)), layer])


def train(model, args, offset: float = 0.0):
    """Compile with SGD and MSE as the article does, fit on fresh cumsum data; returns the History."""
    optimizer = keras.optimizers.SGD(learning_rate=args.lr, clipnorm=args.clipnorm)
    model.compile(optimizer=optimizer, loss="mean_squared_error")
    x, y = cumsum_data(args.n, offset)
    return model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=args.verbose)


def describe(args, title: str) -> None:
    clip = f", clipnorm {args.clipnorm}" if args.clipnorm else ""
    mode = "article's settings (--full)" if args.full else "small run (--full for the article's settings)"
    print(f"{title}\n{mode}: n={args.n}, {args.epochs} epochs, SGD lr {args.lr:g}, "
          f"batch {args.batch_size}{clip}, seed {args.seed}")


def report(model, cell, history) -> dict:
    """Prints the Keras weights, the paper's parameters, the prediction on 0.5 x 30, and the losses.

    The last line is machine-readable: `loss: first=<first epoch> last=<last epoch>`."""
    layer = model.layers[0]
    print("\nKeras weights:")
    for weight in layer.weights:
        value = keras.ops.convert_to_numpy(weight)
        print(f"  {weight.path} {tuple(value.shape)}: {np.array2string(value.ravel(), precision=7)}")
    print("paper's parameters (cell.symbol_weights()):")
    for name, value in cell.symbol_weights().items():
        print(f"  {name} {tuple(value.shape)}: {np.array2string(np.asarray(value).ravel(), precision=7)}")
    prediction = model.predict(np.ones((1, STEPS, 1), "float32") * 0.5, verbose=0).flatten()
    print("model.predict(np.ones((1, 30, 1)) * 0.5).flatten():")
    print(np.array2string(prediction, precision=4, max_line_width=80))
    losses = history.history["loss"]
    print(f"loss: first={losses[0]:.6g} last={losses[-1]:.6g}")
    sys.stdout.flush()
    return {"history": history.history, "prediction": prediction, "weights": cell.symbol_weights()}
