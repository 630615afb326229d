"""Run a generated cell module: build it in keras.layers.RNN, predict, train a few steps.

    eqcell generate slstm -o slstm_cell.py
    python examples/run_cell.py slstm_cell.py
"""
import importlib.util
import inspect
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def main(path: str) -> None:
    module_path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cells = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, keras.layers.Layer) and hasattr(v, "symbol_weights")]
    Cell = cells[0]
    print(f"{module_path.name}: {Cell.__name__}")
    print((Cell.__doc__ or "").split("Args:")[0].rstrip())

    keras.utils.set_random_seed(111)
    # as the article: no output squashing (activation=None), so the state can hold a running sum
    linear = {"activation": None} if "activation" in inspect.signature(Cell).parameters else {}
    model = keras.Sequential([keras.Input((None, 1)),
                              keras.layers.RNN(Cell(8, **linear), return_sequences=True),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x = np.random.random((1024, 30, 1)).astype("float32")
    y = x.cumsum(axis=1)  # the seed article's task: running sums
    history = model.fit(x, y, batch_size=64, epochs=15, verbose=0)
    losses = history.history["loss"]
    print(f"\ncumulative-sum task, 15 epochs: loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    prediction = model.predict(np.ones((1, 30, 1), "float32") * 0.5, verbose=0).ravel()
    print("prediction on 0.5 x 30 (target 0.5, 1.0, ..., 15.0):")
    print(np.array2string(prediction, precision=2, max_line_width=100))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "slstm_cell.py")
