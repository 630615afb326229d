"""How low can minGRU's scan go? The floor under issue 4's "scan <= 0.25x its loop" target.

    KERAS_BACKEND=tensorflow python benchmarks/mingru_floor.py
    KERAS_BACKEND=jax python benchmarks/mingru_floor.py

At (batch, T, input, units) = (16, 1024, 32, 128), in one process, alternated rep by rep (process
CPU time, one pinned core, medians of 7 reps of 3 calls): the training step and inference of the
generated MinGRU layer with `parallel_scan=True`, with `parallel_scan=False` (its loop), and with
its scan replaced by one element-wise op over the same tensors: the floor, everything but the
recurrence (projection, gates, Dense, loss, optimizer). A scan cannot beat the floor."""
import os
import statistics
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})

import numpy as np  # noqa: E402
import keras  # noqa: E402

import eqcell  # noqa: E402

SHAPE = (16, 1024, 32, 128)  # batch, T, input_dim, units
REPS, CALLS = 7, 3


def floor_scan(decay, drive, initial, keep, frame):
    """Touches every element the scan would, with no recurrence at all."""
    return decay * keras.ops.expand_dims(initial, axis=1) + drive


def main():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
    module = sys.modules[eqcell.load("mingru").__module__]
    batch, steps, dim, units = SHAPE
    rng = np.random.default_rng(0)
    x = rng.random((batch, steps, dim), dtype=np.float32)
    y = x[:, :, :1].mean(axis=1)

    def model(layer):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((steps, dim)), layer, keras.layers.Dense(1)])
        m.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
        m.train_on_batch(x, y)
        m.predict_on_batch(x)
        return m

    models = {"scan (parallel_scan=True)": model(module.MinGRU(units, parallel_scan=True)),
              "loop (parallel_scan=False)": model(module.MinGRU(units, parallel_scan=False))}
    real_scan, module._linear_scan = module._linear_scan, floor_scan
    try:  # the scan is looked up when the model is traced, on its first call
        models["floor: scan replaced by one element-wise op"] = model(module.MinGRU(units, parallel_scan=True))
    finally:
        module._linear_scan = real_scan

    times = {name: {"train": [], "infer": []} for name in models}
    for rep in range(REPS + 1):  # rep 0 is untimed
        for name, m in models.items():
            for what, call in (("train", lambda: m.train_on_batch(x, y)), ("infer", lambda: m.predict_on_batch(x))):
                start = time.process_time()
                for _ in range(CALLS):
                    call()
                if rep:
                    times[name][what].append((time.process_time() - start) / CALLS * 1e3)
    loop = statistics.median(times["loop (parallel_scan=False)"]["train"])
    print(f"{keras.backend.backend()}, (batch, T, input, units) = {SHAPE}, process CPU ms, median of {REPS}:")
    for name, t in times.items():
        train, infer = statistics.median(t["train"]), statistics.median(t["infer"])
        print(f"  {name:<45} train {train:7.1f} ({train / loop:.2f}x the loop)   inference {infer:6.1f}")


if __name__ == "__main__":
    main()
