"""The seed article's experiment, small: generated cells in keras.layers.RNN learn a cumulative sum."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import eqcell  # noqa: E402

N, STEPS, EPOCHS = 512, 30, 4


def _cumsum_data(seed):
    rng = np.random.default_rng(seed)
    x = rng.random((N, STEPS, 1)).astype("float32")
    y = x.cumsum(axis=1)
    return x, y


@pytest.mark.parametrize("spec", ["slstm", "simple_rnn"])
def test_generated_cell_learns_cumulative_sum(spec):
    keras.utils.set_random_seed(0)
    x, y = _cumsum_data(0)
    cell = eqcell.load(spec, target="keras")(16)
    model = keras.Sequential([
        keras.Input((STEPS, 1)),
        keras.layers.RNN(cell, return_sequences=True),
        keras.layers.Dense(1),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    before = model.evaluate(x, y, batch_size=128, verbose=0)
    history = model.fit(x, y, batch_size=32, epochs=EPOCHS, verbose=0, shuffle=True)
    after = model.evaluate(x, y, batch_size=128, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)), losses
    # typical (seeds 0-2): last epoch / first epoch 0.2-0.35, after / before 0.15-0.2
    assert losses[-1] < 0.6 * losses[0], (spec, losses)
    assert after < 0.5 * before, (spec, before, after)
    assert len(cell.trainable_weights) == 3  # kernel, recurrent_kernel, bias
