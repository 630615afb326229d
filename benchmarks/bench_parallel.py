"""The generated layers' parallel path (scans, chunkwise form) against their own step loop.

    python benchmarks/bench_parallel.py                                   # TensorFlow, then JAX
    python benchmarks/bench_parallel.py --backend jax --cells gla --steps 256,2048
    python benchmarks/bench_parallel.py --chunks 16,32,64 --steps 2048   # the chunk size's default
    python benchmarks/bench_parallel.py --backend pytorch                 # the torch target (nn.Module)

For each shipped cell (GLA, mLSTM, DeltaNet, minGRU, RG-LRU; --cells may add gated_deltanet, rwkv4), heads (1 and 4 where the cell has heads) and
T (256, 1024, 2048, 4096), two contenders, the same generated layer with the same weights:

    loop       eqcell.load_layer(SPEC)(units, ..., parallel_scan=False)
    parallel   eqcell.load_layer(SPEC)(units, ..., parallel_scan=True)   (chunk_size=C where chunked)

in the same model, at (batch, input, units) = (8, 64, 64), key size = units:

    model = keras.Sequential([keras.Input((T, input)), <layer, return_sequences=True>, keras.layers.Dense(1)])

Training step: `model.train_on_batch(x, y)` (forward, backward, SGD update; one compiled function);
inference: `model.predict_on_batch(x)`. The first call of each (tracing, compiling) is not timed.
`--backend pytorch` times the torch target's layer (eqcell.load_layer(SPEC, target="torch"),
batch_first, parallel_scan False / True) followed by nn.Linear(units, 1) the same way, in eager
PyTorch: forward, mean squared error, backward, torch.optim.SGD step; inference under no_grad.
Before timing, the two contenders' outputs are compared (they must agree to float32 rounding).

Timing: process CPU time, single-threaded, the process pinned to one CPU. The repeats run
round-robin, contenders alternated (the order flips every repeat); per pair the median of the
per-repeat ratios parallel / loop. Peak memory: `--memory` runs each contender's training step at
the largest T in a fresh process and reports its peak RSS (ru_maxrss) above the process's RSS
before the model was built.

Each backend runs in its own subprocess. Writes benchmarks/results/parallel_<backend>.txt and .json,
and with --plot benchmarks/results/parallel.png (needs matplotlib).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

BATCH, INPUT, UNITS = 8, 64, 64   # --batch and --units change BATCH and UNITS (and the key size with them)
CELLS = {"gla": True, "mlstm": True, "deltanet": False, "mingru": False, "rg_lru": False}   # spec -> has heads
EXTRA_CELLS = {"gated_deltanet": False, "rwkv4": False}          # --cells may name these too
STEPS = (256, 1024, 2048, 4096)
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _set_threads(backend: str) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    if backend == "pytorch":
        import torch
        torch.set_num_threads(1)
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.get_logger().setLevel("ERROR")


def _layer(cell: str, heads: int, parallel: bool, chunk: int | None):
    import eqcell
    layer = eqcell.load_layer(cell)
    args = {"return_sequences": True, "parallel_scan": parallel}
    ir = eqcell.analyze(cell)
    args.update({size: UNITS for size in ir.sizes if size != ir.heads})
    if ir.heads:
        args[ir.heads] = heads
    if chunk and parallel and "chunk_size" in layer(UNITS, **args).get_config():
        args["chunk_size"] = chunk
    return layer(UNITS, **args)


class _TorchModel:
    """The torch target's layer and a Linear head, with the two calls the worker times."""

    def __init__(self, cell, heads, parallel, chunk, seed):
        import numpy as np
        import torch

        import eqcell
        ir = eqcell.analyze(cell)
        args = {size: UNITS for size in ir.sizes if size != ir.heads}
        if ir.heads:
            args[ir.heads] = heads
        if chunk and parallel and ir.scan is not None and any(type(i).__name__ == "ChunkedState" for i in ir.scan):
            args["chunk_size"] = chunk
        width = _width(cell)
        self.layer = eqcell.load_layer(cell, target="torch")(width, UNITS, batch_first=True, parallel_scan=parallel,
                                                              **args)
        self.head = torch.nn.Linear(UNITS, 1)
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            for p in [*self.layer.parameters(), *self.head.parameters()]:
                p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype("float32")
                                         * (0.3 if p.dim() > 1 else 0.1)))
        self.optimizer = torch.optim.SGD([*self.layer.parameters(), *self.head.parameters()], lr=1e-4)

    def _forward(self, x):
        import torch
        return self.head(self.layer(torch.as_tensor(x))[0])

    def predict_on_batch(self, x):
        import torch
        with torch.no_grad():
            return self._forward(x).numpy()

    def train_on_batch(self, x, y):
        import torch
        self.optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(self._forward(x), torch.as_tensor(y))
        loss.backward()
        self.optimizer.step()


def _model(cell, heads, steps, parallel, chunk, seed=0):
    if os.environ.get("EQCELL_BENCH_TARGET") == "torch":
        return _TorchModel(cell, heads, parallel, chunk, seed)
    import keras
    import numpy as np
    model = keras.Sequential([keras.Input((steps, _width(cell))), _layer(cell, heads, parallel, chunk),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype("float32") * (0.3 if w.ndim > 1 else 0.1)
                       for w in model.get_weights()])
    return model


def _width(cell):
    """The input's features: INPUT, or UNITS for a cell that combines its input element-wise with its state."""
    import eqcell
    return UNITS if eqcell.analyze(cell).square_input else INPUT


def _data(steps, cell, seed=1):
    import numpy as np
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((BATCH, steps, _width(cell))).astype("float32"),
            rng.standard_normal((BATCH, steps, 1)).astype("float32"))


def _time(fn, calls):
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def worker(backend, cells, heads_list, steps_list, chunks, repeats, calls, out_path):
    _set_threads(backend)
    import numpy as np
    rows = []
    for cell in cells:
        for heads in (heads_list if {**CELLS, **EXTRA_CELLS}[cell] else [1]):
            for steps in steps_list:
                x, y = _data(steps, cell)
                contenders = {"loop": _model(cell, heads, steps, False, None)}
                for chunk in chunks:
                    contenders[f"parallel C={chunk}" if len(chunks) > 1 else "parallel"] = \
                        _model(cell, heads, steps, True, chunk)
                reference = None
                for name, model in contenders.items():
                    out = np.asarray(model.predict_on_batch(x))
                    reference = out if reference is None else reference
                    err = float(np.max(np.abs(out - reference)) / max(1.0, float(np.max(np.abs(reference)))))
                    assert err < 1e-3, (cell, heads, steps, name, err)
                    model.train_on_batch(x, y)   # compile the training step
                times = {(name, kind): [] for name in contenders for kind in ("train", "infer")}
                names = list(contenders)
                for rep in range(repeats):
                    for name in (names if rep % 2 == 0 else names[::-1]):
                        model = contenders[name]
                        times[name, "train"].append(_time(lambda: model.train_on_batch(x, y), calls))
                        times[name, "infer"].append(_time(lambda: model.predict_on_batch(x), calls))
                for name in names[1:]:
                    row = {"cell": cell, "heads": heads, "T": steps, "contender": name}
                    for kind in ("train", "infer"):
                        ratios = [p / q for p, q in zip(times[name, kind], times["loop", kind])]
                        row[f"{kind}_ratio"] = statistics.median(ratios)
                        row[f"{kind}_s"] = statistics.median(times[name, kind])
                        row[f"loop_{kind}_s"] = statistics.median(times["loop", kind])
                    rows.append(row)
                    print(f"{backend:10} {cell:7} heads={heads} T={steps:5} {name:14} "
                          f"train {row['train_ratio']:.3f}x ({row['train_s']:.3f} s vs {row['loop_train_s']:.3f} s)  "
                          f"infer {row['infer_ratio']:.3f}x ({row['infer_s']:.3f} s vs {row['loop_infer_s']:.3f} s)",
                          flush=True)
    with open(out_path, "w") as f:
        json.dump(rows, f)


def memory_worker(backend, cell, heads, steps, parallel, chunk, out_path):
    _set_threads(backend)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = _model(cell, heads, steps, parallel, chunk)
    x, y = _data(steps, cell)
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(out_path, "w") as f:
        json.dump({"peak_mib": peak / 1024, "above_start_mib": (peak - before) / 1024}, f)


def backend_env(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if backend == "pytorch":  # the torch target: no Keras at all
        env.update(KERAS_BACKEND="torch", EQCELL_BENCH_TARGET="torch")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if backend == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_SINGLE_THREAD).strip()
        env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _subprocess(backend, args) -> dict | list:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = tmp.name
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), *args, "--_out", path],
                              env=backend_env(backend))
        if proc.returncode != 0:
            raise SystemExit(f"{backend} worker failed with status {proc.returncode}")
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def _table(rows) -> str:
    lines = ["| cell | heads | T | contender | training step / loop | inference / loop | training step (s) | loop (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['heads']} | {r['T']} | {r['contender']} | {r['train_ratio']:.3f} | "
                     f"{r['infer_ratio']:.3f} | {r['train_s']:.3f} | {r['loop_train_s']:.3f} |")
    return "\n".join(lines)


def _plot(results: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    backends = list(results)
    fig, axes = plt.subplots(1, len(backends), figsize=(6 * len(backends), 4), squeeze=False)
    for ax, backend in zip(axes[0], backends):
        series = {}
        for r in results[backend]["rows"]:
            series.setdefault(f"{r['cell']} h={r['heads']}", []).append((r["T"], r["train_ratio"]))
        for label, points in sorted(series.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("T")
        ax.set_ylabel("training step: parallel / loop")
        ax.set_title(backend)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    global BATCH, UNITS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="tensorflow,jax")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--heads", default="1,4")
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--chunks", default="", help="chunk sizes to compare (default: the layer's own)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--units", type=int, default=UNITS)
    parser.add_argument("--tag", default="", help="appended to the results' file names (parallel_<backend><tag>.txt)")
    parser.add_argument("--memory", action="store_true", help="peak RSS of a training step at the largest T")
    parser.add_argument("--plot", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_memory", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    BATCH, UNITS = args.batch, args.units
    sizes = ["--batch", str(BATCH), "--units", str(UNITS)]
    cells = [c for c in args.cells.split(",") if c]
    heads = [int(h) for h in args.heads.split(",")]
    steps = [int(t) for t in args.steps.split(",")]
    chunks = [int(c) for c in args.chunks.split(",") if c] or [None]
    if args._worker:
        worker(args._worker, cells, heads, steps, chunks, args.repeats, args.calls, args._out)
        return 0
    if args._memory:
        cell, head, t, parallel = args._memory.split(":")
        memory_worker(args._worker or os.environ["KERAS_BACKEND"], cell, int(head), int(t), parallel == "1",
                      chunks[0], args._out)
        return 0
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for backend in [b for b in args.backend.split(",") if b]:
        t0 = time.perf_counter()
        rows = _subprocess(backend, ["--_worker", backend, "--cells", ",".join(cells), "--heads", args.heads,
                                     "--steps", args.steps, "--chunks", args.chunks, "--repeats", str(args.repeats),
                                     "--calls", str(args.calls), *sizes])
        memory = []
        if args.memory:
            for cell in cells:
                for head in (heads if {**CELLS, **EXTRA_CELLS}[cell] else [1]):
                    for parallel in ("0", "1"):
                        got = _subprocess(backend, ["--_memory", f"{cell}:{head}:{max(steps)}:{parallel}",
                                                    "--chunks", args.chunks, *sizes])
                        memory.append({"cell": cell, "heads": head, "T": max(steps),
                                       "contender": "parallel" if parallel == "1" else "loop", **got})
                        print(f"{backend:10} {cell:7} heads={head} T={max(steps)} "
                              f"{memory[-1]['contender']:8} peak RSS {got['peak_mib']:.0f} MiB "
                              f"({got['above_start_mib']:.0f} MiB above the start)", flush=True)
        results[backend] = {"rows": rows, "memory": memory, "elapsed_s": round(time.perf_counter() - t0),
                            "date": time.strftime("%Y-%m-%d %H:%M"), "host": platform.node(),
                            "batch": BATCH, "input": INPUT, "units": UNITS}
        with open(os.path.join(args.out, f"parallel_{backend}{args.tag}.json"), "w") as f:
            json.dump(results[backend], f, indent=1)
        with open(os.path.join(args.out, f"parallel_{backend}{args.tag}.txt"), "w") as f:
            f.write(f"# {backend}, (batch, input, units) = ({BATCH}, {INPUT}, {UNITS}), process CPU time, one "
                    f"thread, median of {args.repeats} alternated repeats\n\n{_table(rows)}\n")
            for m in memory:
                f.write(f"\npeak RSS {m['cell']} heads={m['heads']} T={m['T']} {m['contender']}: "
                        f"{m['peak_mib']:.0f} MiB ({m['above_start_mib']:.0f} MiB above the start)")
    if args.plot:
        _plot(results, os.path.join(args.out, "parallel.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
