"""Training step of eqcell's generated sLSTM, mLSTM and GLA layers against the same cells hand-written.

    python benchmarks/bench_tensor_cells.py                          # TensorFlow, then JAX
    python benchmarks/bench_tensor_cells.py --backend jax --repeats 5

For each cell (sLSTM, mLSTM, GLA: the specs below) and heads (1 and 4), three contenders:

    generated layer       eqcell.load_layer(SPEC)(units, ..., num_heads=heads)   (e.g. XSLSTM)
    RNN(generated cell)   keras.layers.RNN(eqcell.load(SPEC)(units, ...))
    RNN(hand-written)     keras.layers.RNN(handwritten_tensor_cells.<Cell>(units, ...))

each in the same model, at (batch, T, input, units) = (16, 256, 64, 64), key size = units:

    model = keras.Sequential([keras.Input((T, input)), <layer, return_sequences=True>, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")

A training step is `model.train_on_batch(x, y)` (forward, backward, SGD update; one compiled
function, traced and compiled by the first call, which is not timed).

Same function first: before timing, every configuration sets the hand-written cell's weights (its
initialisers, plus random biases), maps them into both generated cells with `set_symbol_weights`
(the parameters in the paper's orientation), copies the Dense head, and checks (1) the outputs of
the three models on the same input and (2) the weight update of one training step (SGD with
learning rate 1, so the update is the gradient): every parameter's update, mapped back with
`symbol_weights`, must match the hand-written cell's. Then the weights are restored.

Timing: process CPU time (`time.process_time`), single-threaded, the process pinned to one CPU
(as bench_layers.py). After 2 warm-up steps, the repeats run round-robin: in every repeat each
configuration times its three contenders one after the other (the order rotates from repeat to
repeat), `--calls` steps each; per contender the median over repeats, and per pair the median of
the per-repeat ratios (contenders measured next to each other in time).

`--variants` adds, per configuration, the generated layer with one line of its module replaced
(VARIANTS below: text substitutions on `eqcell.generate`'s output; checked like the others): what
that line costs, e.g. sLSTM's recurrent `einsum("...hi,hij->...hj")`, GLA's `swapaxes`, JAX's
`jax.checkpoint` of the step.

Each backend runs in its own subprocess (KERAS_BACKEND set before Keras is imported), one after
the other. Writes benchmarks/results/tensor_cells_<backend>.txt (the tables) and .json (every rep).
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

BATCH, T, INPUT, UNITS = 16, 256, 64, 64
HEADS = (1, 4)

SPECS = {
    "sLSTM": """
name: XSLSTMCell
heads: {arg: num_heads, default: 4}
states: [h, c, n, m]
equations: |
  itilde_t = W_i x_t + R_i h_{t-1} + b_i
  ftilde_t = W_f x_t + R_f h_{t-1} + b_f
  z_t = tanh(W_z x_t + R_z h_{t-1} + b_z)
  o_t = sigmoid(W_o x_t + R_o h_{t-1} + b_o)
  m_t = max(logsigmoid(ftilde_t) + m_{t-1}, itilde_t)
  i_t = exp(itilde_t - m_t)
  f_t = exp(logsigmoid(ftilde_t) + m_{t-1} - m_t)
  c_t = f_t * c_{t-1} + i_t * z_t
  n_t = f_t * n_{t-1} + i_t
  h_t = o_t * c_t / n_t
""",
    "mLSTM": """
name: MLSTMCell
heads: {arg: num_heads, default: 4}
sizes: {q: key_units, k: key_units, itilde: 1, ftilde: 1, m: 1}
constants: {d: 16}
states: [C, n, m]
equations: |
  q_t = W_q x_t + b_q
  k_t = (W_k x_t) / sqrt(d) + b_k
  v_t = W_v x_t + b_v
  itilde_t = W_i x_t + b_i
  ftilde_t = W_f x_t + b_f
  o_t = sigmoid(W_o x_t + b_o)
  m_t = max(logsigmoid(ftilde_t) + m_{t-1}, itilde_t)
  i_t = exp(itilde_t - m_t)
  f_t = exp(logsigmoid(ftilde_t) + m_{t-1} - m_t)
  C_t = f_t C_{t-1} + i_t v_t k_t^T
  n_t = f_t n_{t-1} + i_t k_t
  htilde_t = C_t q_t / max(|n_t^T q_t|, exp(-m_t))
  h_t = o_t * htilde_t
""",
    "GLA": """
name: GLACell
heads: {arg: num_heads, default: 4}
sizes: {q: key_units, k: key_units, alpha: key_units}
constants: {tau: 16}
output: o
equations: |
  q_t = W_q x_t
  k_t = W_k x_t
  v_t = W_v x_t
  alpha_t = sigmoid(W_alpha x_t + b_alpha)^(1/tau)
  S_t = diag(alpha_t) S_{t-1} + k_t v_t^T
  o_t = S_t^T q_t
""",
}
CELLS = list(SPECS)
CONTENDERS = [("layer", "generated layer"), ("rnn_gen", "RNN(generated cell)"), ("hand", "RNN(hand-written)")]

# --variants: the generated layer with one line of its module replaced (text substitution on
# eqcell.generate's output), to measure what that line costs. A variant whose line is not in the
# generated module any more is skipped with a note. (backends: where it means something)
_SLSTM_RH = 'ops.einsum("...hi,hij->...hj", h_tm1_dp, self.recurrent_kernel)'
_GLA_STQ = 'ops.einsum("...ij,...j->...i", ops.swapaxes(S, -1, -2), q)'
_REMAT = "step = _rematerialized(step, cell.units)"
VARIANTS = {
    "sLSTM": [
        ("R h: einsum bhi,hij->bhj", [(_SLSTM_RH, 'ops.einsum("bhi,hij->bhj", h_tm1_dp, self.recurrent_kernel)')],
         ("tensorflow", "jax")),
        ("R h: heads-major matmul", [(_SLSTM_RH, "ops.swapaxes(ops.matmul(ops.swapaxes(h_tm1_dp, 0, 1), "
                                                 "self.recurrent_kernel), 0, 1)")], ("tensorflow", "jax")),
        ("no jax.checkpoint", [(_REMAT, "pass")], ("jax",)),
    ],
    "mLSTM": [],
    "GLA": [
        ("S^T q: no swapaxes", [(_GLA_STQ, 'ops.einsum("...ij,...i->...j", S, q)')], ("tensorflow", "jax")),
    ],
}
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
TOLERANCE = 1e-4  # max |difference| / max |value|, float32 through 256 steps


# --------------------------------------------------------------------------------------------
# The worker: one backend, in its own process.
# --------------------------------------------------------------------------------------------

def _set_threads(backend: str, pin: str) -> dict:
    threads = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    if pin != "none" and hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {allowed[-1] if pin == "auto" else int(pin)})
        threads["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    else:
        threads["cpu_affinity"] = "not pinned"
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.get_logger().setLevel("ERROR")
        threads["tf intra/inter op"] = (tf.config.threading.get_intra_op_parallelism_threads(),
                                        tf.config.threading.get_inter_op_parallelism_threads())
    else:
        threads["XLA_FLAGS"] = os.environ.get("XLA_FLAGS")
    return threads


def _versions(backend: str) -> dict:
    import keras
    versions = {"python": platform.python_version(), "keras": keras.__version__}
    if backend == "tensorflow":
        import tensorflow as tf
        versions["tensorflow"] = tf.__version__
    else:
        import jax
        versions["jax"] = jax.__version__
    return versions


def _relative_difference(a, b) -> float:
    import numpy as np
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-30)
    return float(np.abs(a - b).max() / scale)


class Config:
    """One (cell, heads): the three models (and the --variants), built and checked."""

    def __init__(self, cell: str, heads: int, x, y, rng, variants: bool = False):
        import keras
        import eqcell
        import handwritten_tensor_cells as hand

        self.cell, self.heads, self.x, self.y = cell, heads, x, y
        spec = SPECS[cell]
        gen_cell_cls, gen_layer_cls = eqcell.load(spec), eqcell.load_layer(spec)
        self.generated_sha1 = hashlib.sha1(eqcell.generate(spec).encode()).hexdigest()[:12]
        kwargs = {"num_heads": heads} if cell == "sLSTM" else {"key_units": UNITS, "num_heads": heads}
        hand_cls = {"sLSTM": hand.SLSTMCell, "mLSTM": hand.MLSTMCell, "GLA": hand.GLACell}[cell]

        layers = {
            "layer": gen_layer_cls(UNITS, return_sequences=True, **kwargs),
            "rnn_gen": keras.layers.RNN(gen_cell_cls(UNITS, **kwargs), return_sequences=True),
            "hand": keras.layers.RNN(hand_cls(UNITS, **kwargs), return_sequences=True),
        }
        self.variant_notes = []
        if variants:
            source = eqcell.generate(spec)
            for number, (label, substitutions, backends) in enumerate(VARIANTS[cell]):
                if keras.backend.backend() not in backends:
                    continue
                missing = [old for old, _ in substitutions if old not in source]
                if missing:
                    self.variant_notes.append(f"{label}: skipped, not in the generated module: {missing}")
                    continue
                text = source.replace('package="eqcell"', f'package="eqcell_variant{number}"')
                for old, new in substitutions:
                    text = text.replace(old, new)
                module = {"__name__": f"eqcell_variant_{cell}_{number}"}
                exec(compile(text, module["__name__"], "exec"), module)
                layers["variant: " + label] = module[gen_layer_cls.__name__](UNITS, return_sequences=True, **kwargs)
        self.models = {}
        for key, layer in layers.items():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((T, INPUT)), layer, keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
            self.models[key] = model
        self.cells = {key: model.layers[0].cell for key, model in self.models.items()}

        # The same weights everywhere: the hand-written cell's initial weights with random biases
        # (so that no gate sits at its zero-bias value), mapped into the generated cells.
        hand_cell = self.cells["hand"]
        for var in hand_cell.weights:
            if var.name.startswith("b_"):
                var.assign(rng.normal(0.0, 0.5, var.shape).astype("float32"))
        paper = hand_cell.paper_weights()
        dense = self.models["hand"].layers[-1].get_weights()
        for key in self.models:
            if key == "hand":
                continue
            self.cells[key].set_symbol_weights(paper)
            self.models[key].layers[-1].set_weights(dense)
        self.check = self._check()

    def _check(self) -> dict:
        """Same outputs, same update of every parameter in one training step (learning rate 1)."""
        import keras
        import numpy as np
        outputs = {key: np.asarray(m.predict_on_batch(self.x)) for key, m in self.models.items()}
        # The RNN layer's own outputs (before the Dense head), the stronger check.
        seqs = {key: keras.ops.convert_to_numpy(m.layers[0](self.x)) for key, m in self.models.items()}
        saved = {key: m.get_weights() for key, m in self.models.items()}
        before = {key: self._params(key) for key in self.models}
        for m in self.models.values():
            m.optimizer.learning_rate.assign(1.0)
            m.train_on_batch(self.x, self.y)  # also the first (compiling) call of the train step
            m.optimizer.learning_rate.assign(1e-4)
        after = {key: self._params(key) for key in self.models}
        for key, m in self.models.items():
            m.set_weights(saved[key])
        result = {}
        for key in [key for key in self.models if key != "hand"]:
            update = {name: _relative_difference(after[key][name] - before[key][name],
                                                 after["hand"][name] - before["hand"][name])
                      for name in before["hand"]}
            worst = max(update, key=update.get)
            result[key] = {
                "rnn_outputs": _relative_difference(seqs[key], seqs["hand"]),
                "model_outputs": _relative_difference(outputs[key], outputs["hand"]),
                "update_worst": update[worst], "update_worst_param": worst,
                "output_scale": float(np.abs(seqs["hand"]).max()),
            }
            result[key]["ok"] = max(result[key]["rnn_outputs"], result[key]["model_outputs"], update[worst]) <= TOLERANCE
        return result

    def _params(self, key) -> dict:
        import numpy as np
        cell = self.cells[key]
        params = cell.paper_weights() if key == "hand" else cell.symbol_weights()
        kernel, bias = self.models[key].layers[-1].get_weights()
        params = {name: np.array(value) for name, value in params.items()}
        params["Dense.kernel"], params["Dense.bias"] = kernel, bias
        return params


def worker(backend: str, repeats: int, calls: int, cells: list[str], heads: list[int], pin: str, out_path: str,
           variants: bool):
    threads = _set_threads(backend, pin)
    sys.path.insert(0, HERE)
    import numpy as np
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (BATCH, T, INPUT)).astype("float32")
    y = rng.normal(0.0, 1.0, (BATCH, T, 1)).astype("float32")

    configs = []
    for cell in cells:
        for h in heads:
            t0 = time.perf_counter()
            config = Config(cell, h, x, y, rng, variants)
            for m in config.models.values():  # warm-up (the check's step compiled it)
                for _ in range(2):
                    m.train_on_batch(x, y)
            configs.append(config)
            print(f"  {cell} heads={h}: built, checked, warmed up in {time.perf_counter() - t0:.0f} s; "
                  + "; ".join(f"{k}: outputs {c['rnn_outputs']:.1e}, update {c['update_worst']:.1e} "
                              f"({c['update_worst_param']}) {'OK' if c['ok'] else 'DIFFERENT'}"
                              for k, c in config.check.items()), flush=True)
            for note in config.variant_notes:
                print(f"  {cell} heads={h}: variant {note}", flush=True)

    times = {(c.cell, c.heads): {key: {"cpu": [], "wall": []} for key in c.models} for c in configs}
    gc.collect()
    gc.disable()
    t_start = time.perf_counter()
    for rep in range(repeats + 1):  # rep 0 is untimed
        for config in configs:
            keys = list(config.models)
            order = keys[rep % len(keys):] + keys[:rep % len(keys)]
            for key in order:
                model = config.models[key]
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(calls):
                    model.train_on_batch(x, y)
                c1, w1 = time.process_time(), time.perf_counter()
                if rep:
                    times[(config.cell, config.heads)][key]["cpu"].append((c1 - c0) / calls * 1e3)
                    times[(config.cell, config.heads)][key]["wall"].append((w1 - w0) / calls * 1e3)
        if rep:
            print(f"  repeat {rep}/{repeats} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
    gc.enable()

    runs = []
    for config in configs:
        t = times[(config.cell, config.heads)]
        runs.append({"cell": config.cell, "heads": config.heads, "check": config.check,
                     "generated_sha1": config.generated_sha1, "variant_notes": config.variant_notes, "times_ms": t})
    with open(out_path, "w") as f:
        json.dump({"backend": backend, "threads": threads, "versions": _versions(backend),
                   "jit_compile": {key: str(m.jit_compile) for key, m in configs[0].models.items()} if configs else {},
                   "repeats": repeats, "calls": calls, "runs": runs}, f, indent=1)


# --------------------------------------------------------------------------------------------
# The driver.
# --------------------------------------------------------------------------------------------

def _ratios(num: list[float], den: list[float]) -> dict:
    paired = sorted(a / b for a, b in zip(num, den))
    return {"of_medians": statistics.median(num) / statistics.median(den), "paired_median": statistics.median(paired),
            "paired_min": paired[0], "paired_max": paired[-1]}


def format_report(result: dict, meta: dict) -> str:
    lines = [
        f"bench_tensor_cells.py, backend {result['backend']}, {meta['date']}, "
        f"host {meta['host']} ({meta['cpu_count']} CPUs)",
        f"versions {result['versions']}; threads {result['threads']}; jit_compile {result['jit_compile']}",
        f"git {meta['git']}",
        f"(batch, T, input, units) = ({BATCH}, {T}, {INPUT}, {UNITS}), key units = units; "
        f"model Input -> layer(return_sequences=True) -> Dense(1), SGD, mse",
        f"training step = model.train_on_batch(x, y); process CPU ms per step, median of {result['repeats']} repeats "
        f"of {result['calls']} steps, contenders alternated",
        "",
        "Same function (max |difference| / max |value| against RNN(hand-written), same weights mapped by "
        "set_symbol_weights;",
        "RNN outputs over all 256 steps; update = one SGD step with learning rate 1, every parameter, worst one named):",
        f"{'cell':6} {'heads':>5}  {'contender':35} {'RNN outputs':>11} {'model out':>10} {'update':>9}  "
        f"{'worst param':12} verdict",
    ]
    for run in result["runs"]:
        for key, check in run["check"].items():
            label = dict(CONTENDERS).get(key, key)
            lines.append(f"{run['cell']:6} {run['heads']:>5}  {label:35} {check['rnn_outputs']:11.1e} "
                         f"{check['model_outputs']:10.1e} {check['update_worst']:9.1e}  {check['update_worst_param']:12} "
                         f"{'SAME' if check['ok'] else 'DIFFERENT'}")
    lines += [
        "",
        "Training step, process CPU ms (median); ratios: generated / hand-written, median of the per-repeat ratios "
        "[min-max], ratio of medians in ( ):",
        f"{'cell':6} {'heads':>5} {'gen layer':>10} {'RNN(gen)':>9} {'hand':>9}   {'gen layer / hand':>26}   "
        f"{'RNN(gen cell) / hand':>26}   {'wall layer/hand':>15}",
    ]
    for run in result["runs"]:
        t = run["times_ms"]
        med = {key: statistics.median(t[key]["cpu"]) for key, _ in CONTENDERS}
        r_layer = _ratios(t["layer"]["cpu"], t["hand"]["cpu"])
        r_cell = _ratios(t["rnn_gen"]["cpu"], t["hand"]["cpu"])
        r_wall = _ratios(t["layer"]["wall"], t["hand"]["wall"])
        run["ratios"] = {"layer_hand_cpu": r_layer, "rnn_gen_hand_cpu": r_cell, "layer_hand_wall": r_wall}

        def fmt(r):
            return f"{r['paired_median']:.2f} [{r['paired_min']:.2f}-{r['paired_max']:.2f}] ({r['of_medians']:.2f})"

        lines.append(f"{run['cell']:6} {run['heads']:>5} {med['layer']:10.1f} {med['rnn_gen']:9.1f} {med['hand']:9.1f}   "
                     f"{fmt(r_layer):>26}   {fmt(r_cell):>26}   {r_wall['paired_median']:15.2f}")
    variant_rows = []
    for run in result["runs"]:
        t = run["times_ms"]
        for key in [key for key in t if key.startswith("variant: ")]:
            r_hand, r_layer = _ratios(t[key]["cpu"], t["hand"]["cpu"]), _ratios(t[key]["cpu"], t["layer"]["cpu"])
            run["ratios"][key] = {"hand_cpu": r_hand, "layer_cpu": r_layer}
            variant_rows.append(f"{run['cell']:6} {run['heads']:>5}  {key[9:]:26} {statistics.median(t[key]['cpu']):9.1f} "
                                f"{r_hand['paired_median']:12.2f} {r_layer['paired_median']:15.2f}")
        variant_rows += [f"{run['cell']:6} {run['heads']:>5}  {note}" for note in run.get("variant_notes", [])]
    if variant_rows:
        lines += ["", "Variants (--variants): the generated layer with one line of its module replaced, same weights "
                  "(checked above); median of the per-repeat ratios:",
                  f"{'cell':6} {'heads':>5}  {'variant':26} {'CPU ms':>9} {'/ hand':>12} {'/ gen layer':>15}"] + variant_rows
    return "\n".join(lines) + "\n"


def _git_state() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout
    try:
        diff = git("diff", "HEAD", "--", "eqcell", "templates")
        return {"commit": git("rev-parse", "--short", "HEAD").strip(), "eqcell_dirty": bool(diff),
                "eqcell_diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else None}
    except OSError as err:
        return {"error": str(err)}


def backend_env(backend: str) -> dict:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = backend
    env["OMP_NUM_THREADS"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONUNBUFFERED"] = "1"
    if backend == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_SINGLE_THREAD).strip()
        env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="tensorflow,jax", help="tensorflow, jax or both comma-separated (default both)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per contender (default 15)")
    parser.add_argument("--calls", type=int, default=3, help="training steps per repeat (default 3)")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated, from " + ", ".join(CELLS))
    parser.add_argument("--heads", default=",".join(map(str, HEADS)), help="comma-separated (default 1,4)")
    parser.add_argument("--variants", action="store_true",
                        help="also time the generated layer with single lines replaced (see VARIANTS): what they cost")
    parser.add_argument("--pin", default="auto", help="pin the worker to one CPU: auto (the last allowed), a number, none")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_worker-out", dest="worker_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    heads = [int(h) for h in args.heads.split(",")]
    if bad := [c for c in cells if c not in SPECS]:
        parser.error(f"unknown cells {bad}; choose from {CELLS}")

    if args._worker:
        worker(args._worker, args.repeats, args.calls, cells, heads, args.pin, args.worker_out, args.variants)
        return 0

    os.makedirs(args.out, exist_ok=True)
    status = 0
    for backend in [b.strip() for b in args.backend.split(",") if b.strip()]:
        env = backend_env(backend)
        print(f"=== {backend}: subprocess with KERAS_BACKEND={backend}", flush=True)
        meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "host": platform.node(), "cpu_count": os.cpu_count(),
                "git": _git_state(), "argv": sys.argv[1:] if argv is None else list(argv)}
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            tmp_path = tmp.name
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", backend, "--_worker-out", tmp_path,
               "--repeats", str(args.repeats), "--calls", str(args.calls), "--cells", ",".join(cells),
               "--heads", ",".join(map(str, heads)), "--pin", args.pin] + (["--variants"] if args.variants else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env)
        try:
            if proc.returncode != 0:
                print(f"=== {backend}: worker failed with status {proc.returncode}", flush=True)
                status = 1
                continue
            with open(tmp_path) as f:
                result = json.load(f)
        finally:
            os.unlink(tmp_path)
        meta["elapsed_s"] = round(time.perf_counter() - t0)
        report = format_report(result, meta) + f"({meta['elapsed_s']} s in all)\n"
        print(report, flush=True)
        base = os.path.join(args.out, f"tensor_cells_{backend}")
        with open(base + ".txt", "w") as f:
            f.write(report)
        with open(base + ".json", "w") as f:
            json.dump({"meta": meta, **result}, f, indent=1)
        print(f"wrote {base}.txt and .json", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
