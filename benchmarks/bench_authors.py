"""eqcell's generated mLSTM and GLA layers beside their authors' own PyTorch code, on CPU.

    python benchmarks/bench_authors.py                       # T = 256 and 2048, heads 1 and 4
    python benchmarks/bench_authors.py --steps 1024 --repeats 5

The authors' code that runs on a CPU here (the fast kernels need triton or CUDA):

    xlstm parallel    NX-AI/xlstm 2.0.6, xlstm/blocks/mlstm/backends.py `parallel_stabilized_simple`
                      (the T x T parallel form its simple backend trains with)
    xlstm chunkwise   the same file's `chunkwise_simple` (chunk 64), inference only: its backward
                      fails (it writes its running maximum m in place: "one of the variables needed
                      for gradient computation has been modified by an inplace operation")
    xlstm recurrent   the same file's `recurrent_step_stabilized_simple`, called once per step
    fla recurrent     fla-core 0.6.0, fla/ops/gla/naive.py `naive_recurrent_gla` (fla's chunk kernels are
                      triton only)

each inside the layer a PyTorch user writes around it: one fused nn.Linear for every projection
of x_t, the authors' function for the recurrence, the output gate (mLSTM), then nn.Linear(units, 1).
Against it, the generated layer in the same model (input -> layer -> Dense(1)):

    eqcell keras-torch   eqcell.load_layer(SPEC) on Keras 3's torch backend, parallel_scan=True / False
    eqcell tf-keras      eqcell.load_layer(SPEC, target="tf-keras") on TensorFlow, parallel_scan=True / False

All in one process, at (batch, input, units) = (8, 64, 64), key size = units: a training step
(forward, backward, SGD update) and inference, process CPU time, one thread for each framework,
contenders alternated (the order flips every repeat), the median per contender. Ratios are to
the authors' fastest code at that size (training: of the forms that train). Writes benchmarks/results/authors.txt/.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

BATCH, INPUT, UNITS = 8, 64, 64


def _fla_naive_gla():
    """fla/ops/gla/naive.py loaded by its path: `import fla.ops` runs fla/ops/__init__.py, which
    needs triton; the naive file needs torch only."""
    import importlib.metadata
    import importlib.util
    path = importlib.metadata.distribution("fla-core").locate_file("fla/ops/gla/naive.py")
    spec = importlib.util.spec_from_file_location("_fla_gla_naive", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _AuthorsModel:
    """x -> fused nn.Linear -> the authors' recurrence -> nn.Linear(units, 1), trained by SGD on MSE."""

    def __init__(self, cell, heads, form):
        import torch
        self.torch, self.cell, self.heads, self.form = torch, cell, heads, form
        gates = 2 * heads if cell == "mlstm" else UNITS   # mLSTM: itilde, ftilde per head; GLA: alpha per key
        extra = UNITS if cell == "mlstm" else 0            # mLSTM's output gate
        self.projection = torch.nn.Linear(INPUT, 3 * UNITS + gates + extra)
        self.readout = torch.nn.Linear(UNITS, 1)
        self.parameters = [*self.projection.parameters(), *self.readout.parameters()]
        self.optimizer = torch.optim.SGD(self.parameters, lr=1e-4)

    def forward(self, x):
        torch, heads = self.torch, self.heads
        batch, steps, _ = x.shape
        dh = UNITS // heads
        projected = self.projection(x)
        q, k, v = (projected[..., i * UNITS:(i + 1) * UNITS].reshape(batch, steps, heads, dh) for i in range(3))
        rest = projected[..., 3 * UNITS:]
        if self.cell == "gla":
            gk = torch.nn.functional.logsigmoid(rest).reshape(batch, steps, heads, dh) / 16
            h, _ = _fla_naive_gla().naive_recurrent_gla(q, k, v, gk)
            return self.readout(h.reshape(batch, steps, UNITS))
        from xlstm.blocks.mlstm import backends
        itilde, ftilde, o = rest[..., :heads], rest[..., heads:2 * heads], rest[..., 2 * heads:]
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))             # (B, NH, S, DH)
        itilde, ftilde = itilde.transpose(1, 2), ftilde.transpose(1, 2)  # (B, NH, S)
        if self.form == "parallel":
            h = backends.parallel_stabilized_simple(q, k, v, itilde[..., None], ftilde[..., None])
        elif self.form == "chunkwise":
            h = backends.chunkwise_simple(q, k, v, itilde, ftilde, chunk_size=64)
        else:
            c = torch.zeros(batch, heads, dh, dh)
            n = torch.zeros(batch, heads, dh, 1)
            m = torch.zeros(batch, heads, 1, 1)
            outputs = []
            for t in range(steps):
                # copies: the step squeezes its q, k, v in place (squeeze_), which autograd refuses on views
                h_t, (c, n, m) = backends.recurrent_step_stabilized_simple(
                    c, n, m, *(a[:, :, t:t + 1].clone() for a in (q, k, v)),
                    itilde[:, :, t, None, None], ftilde[:, :, t, None, None])
                outputs.append(h_t)
            h = torch.cat(outputs, dim=2)
        h = h.transpose(1, 2).reshape(batch, steps, UNITS) * torch.sigmoid(o)
        return self.readout(h)

    def train(self, x, y):
        if self.form == "chunkwise":   # not differentiable (see the module's docstring)
            return
        self.optimizer.zero_grad()
        loss = ((self.forward(x) - y) ** 2).mean()
        loss.backward()
        self.optimizer.step()

    def infer(self, x):
        with self.torch.no_grad():
            self.forward(x)


class _EqcellModel:
    def __init__(self, cell, heads, steps, parallel, target):
        import eqcell
        import numpy as np
        if target == "tf-keras":
            import tf_keras as lib
        else:
            import keras as lib
        ir = eqcell.analyze(cell)
        args = {size: UNITS for size in ir.sizes if size != ir.heads}
        args[ir.heads] = heads
        layer = eqcell.load_layer(cell, target="tf-keras" if target == "tf-keras" else "keras")(UNITS, return_sequences=True, parallel_scan=parallel, **args)
        self.model = lib.Sequential([lib.Input((steps, INPUT)), layer, lib.layers.Dense(1)])
        self.model.compile(optimizer=lib.optimizers.SGD(1e-4), loss="mse")
        rng = np.random.default_rng(0)
        self.model.set_weights([rng.standard_normal(w.shape).astype("float32") * (0.3 if w.ndim > 1 else 0.1)
                                for w in self.model.get_weights()])

    def train(self, x, y):
        self.model.train_on_batch(x, y)

    def infer(self, x):
        self.model.predict_on_batch(x)


def _set_threads():
    import tensorflow as tf
    import torch
    torch.set_num_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})


def _time(fn, calls=1):
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls


def run(steps_list, heads_list, repeats):
    import numpy as np
    import torch
    rows = []
    for cell in ("mlstm", "gla"):
        for heads in heads_list:
            for steps in steps_list:
                rng = np.random.default_rng(1)
                x = rng.standard_normal((BATCH, steps, INPUT)).astype("float32")
                y = rng.standard_normal((BATCH, steps, 1)).astype("float32")
                xt, yt = torch.from_numpy(x), torch.from_numpy(y)
                authors = ({f"xlstm {form}": _AuthorsModel(cell, heads, form)
                            for form in ("parallel", "chunkwise", "recurrent")} if cell == "mlstm"
                           else {"fla recurrent": _AuthorsModel(cell, heads, "recurrent")})
                ours = {f"eqcell {target} {'parallel' if parallel else 'loop'}":
                        _EqcellModel(cell, heads, steps, parallel, target)
                        for target in ("keras-torch", "tf-keras") for parallel in (True, False)}
                contenders = {**authors, **ours}
                feeds = {name: ((xt, yt) if name in authors else (x, y)) for name in contenders}
                for name, model in contenders.items():   # build, trace, compile
                    model.train(*feeds[name])
                    model.infer(feeds[name][0])
                times = {(name, kind): [] for name in contenders for kind in ("train", "infer")}
                names = list(contenders)
                for rep in range(repeats):
                    for name in (names if rep % 2 == 0 else names[::-1]):
                        model, (a, b) = contenders[name], feeds[name]
                        times[name, "train"].append(_time(lambda: model.train(a, b)))
                        times[name, "infer"].append(_time(lambda: model.infer(a)))
                trainable = [n for n in authors if n != "xlstm chunkwise"]
                fastest = {"train": min(trainable, key=lambda n: statistics.median(times[n, "train"])),
                           "infer": min(authors, key=lambda n: statistics.median(times[n, "infer"]))}
                for name in names:
                    row = {"cell": cell, "heads": heads, "T": steps, "contender": name,
                           "baseline_train": fastest["train"], "baseline_infer": fastest["infer"]}
                    for kind in ("train", "infer"):
                        base = fastest[kind]
                        row[f"{kind}_s"] = statistics.median(times[name, kind])
                        row[f"{kind}_ratio"] = statistics.median(
                            p / q for p, q in zip(times[name, kind], times[base, kind]))
                    if name == "xlstm chunkwise":
                        row["train_s"] = row["train_ratio"] = float("nan")
                    rows.append(row)
                    print(f"{cell:6} heads={heads} T={steps:5} {name:30} train {row['train_s']:.3f} s "
                          f"({row['train_ratio']:.2f}x)  infer {row['infer_s']:.3f} s ({row['infer_ratio']:.2f}x)",
                          flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="256,2048")
    parser.add_argument("--heads", default="1,4")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import keras
    if keras.backend.backend() != "torch":
        raise SystemExit("run with KERAS_BACKEND=torch (the default of this script)")
    _set_threads()
    rows = run([int(s) for s in args.steps.split(",")], [int(h) for h in args.heads.split(",")], args.repeats)
    import torch
    import tensorflow as tf
    header = (f"# bench_authors.py, {platform.processor() or platform.machine()}, python {platform.python_version()}, "
              f"torch {torch.__version__}, tensorflow {tf.__version__}, keras {keras.__version__}\n"
              f"# (batch, input, units) = ({BATCH}, {INPUT}, {UNITS}); process CPU s per call, median of "
              f"{args.repeats}; ratio to the authors' fastest code at that size (training: of the forms that train; xlstm chunkwise does not)\n")
    lines = ["| cell | heads | T | contender | training step (s) | / authors | inference (s) | / authors |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['cell']} | {r['heads']} | {r['T']} | {r['contender']} | {r['train_s']:.3f} | "
                     f"{r['train_ratio']:.2f} | {r['infer_s']:.3f} | {r['infer_ratio']:.2f} |")
    out = os.path.join(HERE, "results", "authors")
    with open(out + ".txt", "w") as f:
        f.write(header + "\n".join(lines) + "\n")
    with open(out + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    print(header + "\n".join(lines))


if __name__ == "__main__":
    main()
