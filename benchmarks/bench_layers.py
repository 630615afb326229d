"""Layer benchmark: generated eqcell layers against Keras's own RNN layers and the article's cell.

    python benchmarks/bench_layers.py                      # full run, TensorFlow then JAX
    python benchmarks/bench_layers.py --quick              # a couple of minutes: 2 shapes + minGRU at T=1024
    python benchmarks/bench_layers.py --backends jax --out /tmp/results

The driver starts ONE subprocess per backend, one after the other (never at the same time, so the
two do not compete for the CPU). Each subprocess sets its backend (KERAS_BACKEND) and its thread
settings before Keras is imported, then times every contender on every shape:

    model = keras.Sequential([keras.Input((T, D)), <RNN layer, return_sequences=False>, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")              # row "defaults"
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse", jit_compile=True)  # row "jit"

A training step is `model.train_on_batch(x, y)`, inference is `model.predict_on_batch(x)`, on the
same arrays for every contender. After a warm-up of 2 calls of each, the contenders are timed
round-robin (rep 1 of every contender, then rep 2, ...), several calls per rep; per contender the
wall-clock median and minimum, the process CPU time median (`time.process_time`, all threads of the
process) and the spread ((max - min) / median) are recorded. CPU time is the primary measure.

Results: OUT/layers.json (everything), OUT/layers.md (tables, ratios, target checks) and
OUT/layers.png (training-step time relative to keras.layers.LSTM). See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))

# (batch, time steps, input dim, units)
SHAPES = [(512, 30, 1, 1), (512, 30, 32, 64), (64, 200, 32, 128), (16, 1024, 32, 128)]

# key, label, family (for the plot's colors)
CONTENDERS = [
    ("keras_lstm", "keras.layers.LSTM", "keras"),
    ("keras_gru", "keras.layers.GRU", "keras"),
    ("rnn_keras_lstmcell", "RNN(keras.layers.LSTMCell)", "keras"),
    ("rnn_hand_slstm", "RNN(hand-written SLSTMCell)", "slstm"),
    ("rnn_gen_slstm", "RNN(generated SLSTMCell)", "slstm"),
    ("gen_slstm", "generated SLSTM layer", "slstm"),
    ("gen_lstm", "generated LSTM layer", "lstm"),
    ("rnn_gen_lstm", "RNN(generated LSTMCell)", "lstm"),
    ("gen_mingru_scan", "generated MinGRU (parallel_scan=True)", "mingru"),
    ("gen_mingru_loop", "generated MinGRU (parallel_scan=False)", "mingru"),
    ("rnn_gen_mingru", "RNN(generated MinGRUCell)", "mingru"),
    ("gen_qrnn_scan", "generated QRNN (parallel_scan=True)", "qrnn"),
    ("gen_qrnn_loop", "generated QRNN (parallel_scan=False)", "qrnn"),
    ("rnn_gen_qrnn", "RNN(generated QRNNCell)", "qrnn"),
]
SPEC_OF = {key: family for key, _, family in CONTENDERS if "gen_" in key}  # eqcell spec of each generated one
LABELS = {key: label for key, label, _ in CONTENDERS}
ALL_KEYS = [key for key, _, _ in CONTENDERS]
REF_LSTM, REF_HAND = "keras_lstm", "rnn_hand_slstm"

# What --quick runs: the first two shapes with every contender, and T=1024 for minGRU (with
# keras.layers.LSTM as the plot's reference).
QUICK_PLAN = [
    (SHAPES[0], ALL_KEYS),
    (SHAPES[1], ALL_KEYS),
    (SHAPES[3], ["keras_lstm", "gen_mingru_scan", "gen_mingru_loop", "rnn_gen_mingru"]),
]
FULL_PLAN = [(shape, ALL_KEYS) for shape in SHAPES]

SETTINGS = {
    # reps: timed rounds per contender; target_s: the time one rep aims at (calls per rep are
    # chosen from the warm-up to reach it); max_calls: the most calls in one rep.
    "quick": dict(reps=5, target_s=0.08, max_calls=8),
    "full": dict(reps=7, target_s=0.25, max_calls=25),
}
MODES = [("default", "Keras defaults"), ("jit", "jit_compile=True")]

XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

# Issue 4's targets.
SLSTM_TARGET = 0.67          # generated SLSTM training step <= 0.67x the hand-written cell
SLSTM_SHAPES = [(512, 30, 32, 64), (64, 200, 32, 128)]
MINGRU_TARGET = 0.25         # minGRU scan <= 0.25x its own sequential loop at T=1024
MINGRU_T = 1024


# --------------------------------------------------------------------------------------------
# The worker: one backend, in its own process.
# --------------------------------------------------------------------------------------------

def _set_threads(backend: str, pin: str) -> dict:
    """Single-threaded settings, before any framework op. Returns what was set, for the record.

    The thread settings alone do not keep every runtime on one core (XLA on CPU ran independent
    operations of a training step on a second thread despite XLA_FLAGS), so by default the process
    is also pinned to one CPU: whatever threads a runtime starts then share that core."""
    threads = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    if pin != "none" and hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        cpu = allowed[-1] if pin == "auto" else int(pin)
        os.sched_setaffinity(0, {cpu})
        threads["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    else:
        threads["cpu_affinity"] = "not pinned"
    if backend == "tensorflow":
        import tensorflow as tf
        try:
            tf.config.threading.set_inter_op_parallelism_threads(1)
            tf.config.threading.set_intra_op_parallelism_threads(1)
        except RuntimeError as err:  # the context was already initialized
            threads["error"] = str(err)
        tf.get_logger().setLevel("ERROR")  # many models: tf.function retracing warnings are expected
        threads["tf.config.threading inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
        threads["tf.config.threading intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
    elif backend == "jax":
        threads["XLA_FLAGS"] = os.environ.get("XLA_FLAGS")
    elif backend == "torch":
        import torch
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError as err:
            threads["error"] = str(err)
        threads["torch.get_num_threads"] = torch.get_num_threads()
        threads["torch.get_num_interop_threads"] = torch.get_num_interop_threads()
    return threads


def _stats(values: list[float]) -> dict:
    ordered = sorted(values)
    n = len(ordered)

    def quantile(q):
        pos = q * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    median = quantile(0.5)
    return {
        "median": median,
        "min": ordered[0],
        "max": ordered[-1],
        "spread": (ordered[-1] - ordered[0]) / median if median > 0 else None,
        "iqr_rel": (quantile(0.75) - quantile(0.25)) / median if median > 0 else None,
    }


def _error_text(err: BaseException) -> str:
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(err)).split())  # no terminal colors
    if len(text) > 400:
        text = text[:400] + " ..."
    return f"{type(err).__name__}: {text}"


def worker(backend: str, quick: bool, out_path: str, only: list[str] | None, shapes: list[int] | None,
           reps: int | None, pin: str = "auto") -> None:
    threads = _set_threads(backend, pin)

    import numpy as np
    import keras

    sys.path.insert(0, HERE)
    import eqcell
    from handwritten_slstm import SLSTMCell as HandSLSTMCell

    settings = dict(SETTINGS["quick" if quick else "full"])
    if reps:
        settings["reps"] = reps
    plan = QUICK_PLAN if quick else FULL_PLAN
    if shapes:
        plan = [(SHAPES[i], ALL_KEYS) for i in shapes]
    if only:
        plan = [(shape, [k for k in keys if k in only]) for shape, keys in plan]

    generated, generated_sha1 = {}, {}

    def gen(spec):
        if spec not in generated:
            source = eqcell.generate(spec)
            generated_sha1[spec] = hashlib.sha1(source.encode()).hexdigest()[:12]
            cell = eqcell.load(spec)
            layer = getattr(sys.modules[cell.__module__], eqcell.analyze(spec).layer)
            generated[spec] = (cell, layer)
        return generated[spec]

    def make_layer(key, units):
        if key == "keras_lstm":
            return keras.layers.LSTM(units)
        if key == "keras_gru":
            return keras.layers.GRU(units)
        if key == "rnn_keras_lstmcell":
            return keras.layers.RNN(keras.layers.LSTMCell(units))
        if key == "rnn_hand_slstm":
            return keras.layers.RNN(HandSLSTMCell(units))
        cell, layer = gen(SPEC_OF[key])
        if key.startswith("rnn_gen_"):
            return keras.layers.RNN(cell(units))
        if key.endswith("_loop"):
            return layer(units, parallel_scan=False)
        if key.endswith("_scan"):
            return layer(units, parallel_scan=True)  # the scan itself, also where "auto" would loop
        return layer(units)

    def make_model(key, shape, mode):
        batch, steps, dim, units = shape
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((steps, dim)), make_layer(key, units), keras.layers.Dense(1)])
        kwargs = {"jit_compile": True} if mode == "jit" else {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-4), loss="mse", **kwargs)
            jit = bool(model.jit_compile)
        notes = sorted({str(w.message).split("\n")[0][:200] for w in caught if "jit" in str(w.message).lower()})
        return model, jit, notes

    # Sanity: the hand-written port computes what the generated cell computes, with the same weights.
    sanity = {}
    try:
        cell, layer = gen("slstm")
        xs = np.random.default_rng(1).standard_normal((4, 7, 3)).astype("float32")
        hand = keras.layers.RNN(HandSLSTMCell(5))
        ref = keras.layers.RNN(cell(5))
        fast = layer(5)
        for lay in (hand, ref, fast):
            lay(xs)
        ref.set_weights([w + 0.1 * np.arange(w.size, dtype="float32").reshape(w.shape) / w.size
                         for w in ref.get_weights()])
        hand.set_weights(ref.get_weights())
        fast.set_weights(ref.get_weights())
        y_ref = keras.ops.convert_to_numpy(ref(xs))
        sanity["hand_vs_generated_cell_max_abs_diff"] = float(np.abs(keras.ops.convert_to_numpy(hand(xs)) - y_ref).max())
        sanity["generated_layer_vs_cell_max_abs_diff"] = float(np.abs(keras.ops.convert_to_numpy(fast(xs)) - y_ref).max())
    except Exception as err:  # noqa: BLE001 - recorded, not fatal
        sanity["error"] = _error_text(err)
    print(f"[{backend}] threads: {threads}", flush=True)
    print(f"[{backend}] sanity: {sanity}", flush=True)

    result = {
        "backend": backend,
        "versions": _versions(backend),
        "threads": threads,
        "settings": settings,
        "sanity": sanity,
        "runs": [],
    }
    default_jit = {}  # shape -> set of resolved jit flags in the defaults row
    start_all = time.perf_counter()
    for shape, keys in plan:
        if not keys:
            continue
        batch, steps, dim, units = shape
        rng = np.random.default_rng(0)
        x = rng.random((batch, steps, dim), dtype=np.float32)
        y = x[:, :, :1].mean(axis=1)
        for mode, mode_label in MODES:
            run = {"shape": list(shape), "mode": mode, "mode_label": mode_label, "contenders": keys,
                   "skipped": None, "results": {}}
            result["runs"].append(run)
            if mode == "jit" and backend == "torch":
                run["skipped"] = "not measured on torch (jit_compile=True means torch.compile)"
            elif mode == "jit" and default_jit.get(tuple(shape)) == {True}:
                run["skipped"] = ("identical to the defaults row: Keras resolves jit_compile='auto' to True "
                                  "for every contender on this backend")
            if run["skipped"]:
                print(f"[{backend}] {shape} {mode_label}: skipped, {run['skipped']}", flush=True)
                continue
            t_block = time.perf_counter()
            models = {}
            for key in keys:
                entry = {"label": LABELS[key], "error": None}
                run["results"][key] = entry
                try:
                    model, jit, notes = make_model(key, shape, mode)
                    entry["jit_compile_resolved"] = jit
                    if notes:
                        entry["notes"] = notes
                    t0 = time.perf_counter()
                    model.train_on_batch(x, y)
                    entry["first_train_call_s"] = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    model.predict_on_batch(x)
                    entry["first_predict_call_s"] = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    model.train_on_batch(x, y)
                    t_train = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    model.predict_on_batch(x)
                    t_pred = time.perf_counter() - t0
                    entry["calls_per_rep"] = {
                        "train": max(1, min(settings["max_calls"], round(settings["target_s"] / max(t_train, 1e-6)))),
                        "predict": max(1, min(settings["max_calls"], round(settings["target_s"] / max(t_pred, 1e-6)))),
                    }
                    entry["samples"] = {"train": {"wall": [], "cpu": []}, "predict": {"wall": [], "cpu": []}}
                    models[key] = model
                except Exception as err:  # noqa: BLE001 - recorded, not fatal
                    entry["error"] = _error_text(err)
                    print(f"[{backend}] {shape} {mode_label} {LABELS[key]}: FAILED {entry['error']}", flush=True)
            if mode == "default":
                default_jit[tuple(shape)] = {e["jit_compile_resolved"] for e in run["results"].values()
                                             if "jit_compile_resolved" in e}
            # One untimed round-robin round first: a model's first calls after the others were built
            # (and a garbage collection of their leftovers) would otherwise land in its first rep.
            # The timed reps run with the garbage collector off, as timeit does.
            gc.collect()
            gc.disable()
            try:
                for rep in range(-1, settings["reps"]):  # round-robin: rep r of every contender, then r + 1
                    for key in list(models):
                        entry, model = run["results"][key], models[key]
                        try:
                            for what, call in (("train", lambda: model.train_on_batch(x, y)),
                                               ("predict", lambda: model.predict_on_batch(x))):
                                n = entry["calls_per_rep"][what] if rep >= 0 else 1
                                w0, c0 = time.perf_counter(), time.process_time()
                                for _ in range(n):
                                    call()
                                c1, w1 = time.process_time(), time.perf_counter()
                                if rep >= 0:
                                    entry["samples"][what]["wall"].append((w1 - w0) / n)
                                    entry["samples"][what]["cpu"].append((c1 - c0) / n)
                        except Exception as err:  # noqa: BLE001
                            entry["error"] = _error_text(err)
                            del models[key]
            finally:
                gc.enable()
            for key, entry in run["results"].items():
                if entry["error"] is None:
                    for what in ("train", "predict"):
                        s = entry["samples"][what]
                        entry[what] = {"wall": _stats(s["wall"]), "cpu": _stats(s["cpu"])}
            run["elapsed_s"] = time.perf_counter() - t_block
            models.clear()
            keras.backend.clear_session()
            print(format_block(backend, run), flush=True)
    result["elapsed_s"] = time.perf_counter() - start_all
    result["generated_module_sha1"] = generated_sha1  # which generated code was measured
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


def _versions(backend: str) -> dict:
    import keras
    import numpy
    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": numpy.__version__}
    try:
        if backend == "tensorflow":
            import tensorflow as tf
            versions["tensorflow"] = tf.__version__
        elif backend == "jax":
            import jax
            import jaxlib
            versions["jax"] = jax.__version__
            versions["jaxlib"] = jaxlib.__version__
        elif backend == "torch":
            import torch
            versions["torch"] = torch.__version__
    except Exception:  # noqa: BLE001
        pass
    return versions


# --------------------------------------------------------------------------------------------
# Ratios, tables, checks, plot (driver side; format_block is also used by the worker).
# --------------------------------------------------------------------------------------------

def _get(run, key, what="train", measure="cpu", stat="median"):
    entry = run["results"].get(key)
    if not entry or entry.get("error") or what not in entry:
        return None
    return entry[what][measure][stat]


def _ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def _ms(v):
    if v is None:
        return "-"
    v *= 1e3
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def _x(v):
    return "-" if v is None else f"{v:.2f}"


def _pct(v):
    return "-" if v is None else f"{100 * v:.0f}%"


def format_block(backend: str, run: dict) -> str:
    """The compact stdout table of one (shape, mode) block."""
    shape, mode_label = tuple(run["shape"]), run["mode_label"]
    head = (f"\n[{backend}] (batch, T, input_dim, units) = {shape}, {mode_label}, "
            f"{run.get('elapsed_s', 0):.0f} s; times per call, ms; ratios of process CPU time "
            "(contender / reference; < 1 is faster); spread = (max - min) / median of the training-step CPU time")
    cols = f"  {'contender':<40} {'train cpu':>9} {'wall':>7} {'spread':>6} {'infer cpu':>9} " \
           f"{'/LSTM':>6} {'/hand':>6} {'hand/':>6} {'jit':>3}"
    lines = [head, cols]
    lstm, hand = _get(run, REF_LSTM), _get(run, REF_HAND)
    for key in run["contenders"]:
        entry = run["results"].get(key, {})
        if entry.get("error"):
            lines.append(f"  {LABELS[key]:<40} FAILED: {entry['error'][:120]}")
            continue
        cpu = _get(run, key)
        jit = {True: "T", False: "F"}.get(entry.get("jit_compile_resolved"), "?")
        lines.append(f"  {LABELS[key]:<40} {_ms(cpu):>9} {_ms(_get(run, key, measure='wall')):>7} "
                     f"{_pct(entry['train']['cpu']['spread']):>6} {_ms(_get(run, key, 'predict')):>9} "
                     f"{_x(_ratio(cpu, lstm)):>6} {_x(_ratio(cpu, hand)):>6} {_x(_ratio(hand, cpu)):>6} {jit:>3}")
    return "\n".join(lines)


def checks(results: dict) -> list[dict]:
    """Issue 4's targets, on the Keras-defaults row, training step, process CPU time (wall shown too)."""
    out = []

    def find(backend, shape):
        for run in results[backend].get("runs", []):
            if tuple(run["shape"]) == tuple(shape) and run["mode"] == "default" and not run["skipped"]:
                return run
        return None

    def add(name, backend, shape, num_key, den_key, target, what="train"):
        run = find(backend, shape)
        item = {"check": name, "backend": backend, "shape": list(shape), "target": target, "what": what}
        if run is None or num_key not in run["results"] or den_key not in run["results"]:
            item.update(status="NOT MEASURED", detail="shape or contender not in this run (--quick?)")
        else:
            cpu = _ratio(_get(run, num_key, what), _get(run, den_key, what))
            wall = _ratio(_get(run, num_key, what, "wall"), _get(run, den_key, what, "wall"))
            errors = [run["results"][k]["error"] for k in (num_key, den_key) if run["results"][k]["error"]]
            if errors:
                item.update(status="MISS", detail="failed: " + "; ".join(errors))
            else:
                item.update(status="PASS" if cpu <= target else "MISS", cpu_ratio=cpu, wall_ratio=wall,
                            detail=f"{LABELS[num_key]} {_ms(_get(run, num_key, what))} ms / {LABELS[den_key]} "
                                   f"{_ms(_get(run, den_key, what))} ms CPU = {cpu:.3f}x (wall {wall:.3f}x)")
        out.append(item)

    for backend in results:
        if results[backend].get("error"):
            continue
        for shape in SLSTM_SHAPES:
            add(f"generated SLSTM layer <= {SLSTM_TARGET}x hand-written cell", backend, shape,
                "gen_slstm", REF_HAND, SLSTM_TARGET)
        shapes = sorted({tuple(r["shape"]) for r in results[backend]["runs"]
                         if "gen_lstm" in r["results"] and REF_LSTM in r["results"]}, key=SHAPES.index)
        for shape in shapes:
            add("generated LSTM layer no slower than keras.layers.LSTM", backend, shape, "gen_lstm", REF_LSTM, 1.0)
            add("generated LSTM layer no slower than keras.layers.LSTM", backend, shape, "gen_lstm", REF_LSTM, 1.0,
                what="predict")
        mingru_shapes = [s for s in SHAPES if s[1] == MINGRU_T]
        for shape in mingru_shapes:
            add(f"minGRU scan <= {MINGRU_TARGET}x its sequential loop", backend, shape,
                "gen_mingru_scan", "gen_mingru_loop", MINGRU_TARGET)
            add(f"minGRU scan <= {MINGRU_TARGET}x its sequential loop", backend, shape,
                "gen_mingru_scan", "gen_mingru_loop", MINGRU_TARGET, what="predict")
    return out


def format_checks(items: list[dict]) -> list[str]:
    lines = []
    for item in items:
        step = "training step" if item["what"] == "train" else "inference"
        lines.append(f"{item['status']:<12} [{item['backend']}] {tuple(item['shape'])} {step}: {item['check']}: "
                     f"{item['detail']}")
    return lines


def write_markdown(results: dict, meta: dict, check_items: list[dict], path: str) -> None:
    md = ["# eqcell layer benchmark", ""]
    md.append(f"Run: {meta['date']}, {'--quick' if meta['quick'] else 'full'}, host `{meta['host']}` "
              f"({meta['cpu_count']} CPUs, {meta['machine']}), total {meta['elapsed_s']:.0f} s. "
              f"Code: {meta['git']}" + (f", at the end {meta['git_at_end']} (changed during the run)"
                                        if meta.get("git_at_end") else "") + ".")
    md.append("")
    md.append("Model: `Sequential([Input((T, D)), <RNN layer, return_sequences=False>, Dense(1)])`, "
              "`compile(optimizer=SGD(1e-4), loss='mse')`, with Keras defaults and with `jit_compile=True`. "
              "Training step: `model.train_on_batch(x, y)`; inference: `model.predict_on_batch(x)`; same "
              "arrays for every contender. Times are per call; contenders were alternated round-robin. "
              "**CPU** = process CPU time (`time.process_time`, primary measure), **wall** = `time.perf_counter`. "
              "Spread = (max - min) / median of the training-step CPU time over the reps.")
    md.append("")
    md.append("Ratios are contender / reference (< 1: the contender is faster); `÷` columns read "
              "\"contender time divided by reference time\", `hand ÷` is the hand-written cell's time divided "
              "by the contender's (its speed-up over the hand-written cell). References: `keras.layers.LSTM` "
              "and `RNN(hand-written SLSTMCell)` (the seed article's cell, ported to Keras 3), in the same row "
              "(same backend, shape and compile mode). `jit` is what Keras resolved `model.jit_compile` to.")
    md.append("")
    md.append("## Target checks (issue 4)")
    md.append("")
    md.append("Keras-defaults row, process CPU time (wall in brackets).")
    md.append("")
    for line in format_checks(check_items):
        md.append(f"- {line}")
    md.append("")
    for backend, res in results.items():
        md.append(f"## {backend}")
        md.append("")
        if res.get("error"):
            md.append(f"Backend failed: `{res['error']}`")
            md.append("")
            continue
        md.append(f"Versions: {', '.join(f'{k} {v}' for k, v in res['versions'].items())}. "
                  f"Threads: {', '.join(f'{k}={v}' for k, v in res['threads'].items())}. "
                  f"Reps: {res['settings']['reps']}, each of about {res['settings']['target_s']} s "
                  f"(at most {res['settings']['max_calls']} calls). Elapsed {res['elapsed_s']:.0f} s. "
                  f"Generated modules measured (sha1 of the source): {res.get('generated_module_sha1')}.")
        md.append("")
        if res.get("sanity"):
            md.append(f"Sanity (same weights, forward pass): {res['sanity']}")
            md.append("")
        for run in res["runs"]:
            shape = tuple(run["shape"])
            md.append(f"### {backend}, (batch, T, input_dim, units) = {shape}, {run['mode_label']}")
            md.append("")
            if run["skipped"]:
                md.append(f"Skipped: {run['skipped']}.")
                md.append("")
                continue
            md.append("| contender | jit | train CPU ms | train wall ms (median / min) | spread | infer CPU ms | "
                      "infer wall ms | train CPU ÷ LSTM | LSTM ÷ train CPU | train CPU ÷ hand | hand ÷ train CPU | "
                      "train wall ÷ LSTM | train wall ÷ hand | infer CPU ÷ LSTM | infer CPU ÷ hand |")
            md.append("|---|---|" + "---:|" * 13)
            lstm, hand = _get(run, REF_LSTM), _get(run, REF_HAND)
            lstm_w, hand_w = _get(run, REF_LSTM, measure="wall"), _get(run, REF_HAND, measure="wall")
            lstm_p, hand_p = _get(run, REF_LSTM, "predict"), _get(run, REF_HAND, "predict")
            for key in run["contenders"]:
                entry = run["results"][key]
                if entry.get("error"):
                    md.append(f"| {LABELS[key]} | {entry.get('jit_compile_resolved', '?')} | failed: "
                              f"`{entry['error']}` |" + " |" * 12)
                    continue
                cpu, wall = _get(run, key), _get(run, key, measure="wall")
                pcpu = _get(run, key, "predict")
                md.append(
                    f"| {LABELS[key]} | {entry['jit_compile_resolved']} | {_ms(cpu)} | "
                    f"{_ms(wall)} / {_ms(_get(run, key, measure='wall', stat='min'))} | "
                    f"{_pct(entry['train']['cpu']['spread'])} | {_ms(pcpu)} | {_ms(_get(run, key, 'predict', 'wall'))} | "
                    f"{_x(_ratio(cpu, lstm))} | {_x(_ratio(lstm, cpu))} | {_x(_ratio(cpu, hand))} | "
                    f"{_x(_ratio(hand, cpu))} | {_x(_ratio(wall, lstm_w))} | {_x(_ratio(wall, hand_w))} | "
                    f"{_x(_ratio(pcpu, lstm_p))} | {_x(_ratio(pcpu, hand_p))} |")
            notes = {LABELS[k]: e["notes"] for k, e in run["results"].items() if e.get("notes")}
            if notes:
                md.append("")
                for label, texts in notes.items():
                    md.append(f"- {label}: Keras warned: {'; '.join(texts)}")
            md.append("")
    md.append("![training-step time relative to keras.layers.LSTM](layers.png)")
    md.append("")
    with open(path, "w") as f:
        f.write("\n".join(md))


FAMILY_COLORS = {"keras": "Greys", "slstm": "Reds", "lstm": "Blues", "mingru": "Purples", "qrnn": "Oranges"}


def write_plot(results: dict, meta: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mticker
    import matplotlib.transforms as mtransforms

    backends = [b for b in results if not results[b].get("error")]
    if not backends:
        return
    # A color per contender: one colormap per family, darker for the faster-by-design variants.
    colors, families = {}, {}
    for key, _, fam in CONTENDERS:
        families.setdefault(fam, []).append(key)
    for fam, keys in families.items():
        cmap = plt.get_cmap(FAMILY_COLORS[fam])
        for i, key in enumerate(keys):
            colors[key] = cmap(0.85 - 0.45 * i / max(1, len(keys) - 1))

    # One panel per (backend, compile mode) that was measured; skipped rows are said in a footnote.
    panels, skipped = [], []
    for backend in backends:
        for mode, mode_label in MODES:
            runs = [r for r in results[backend]["runs"] if r["mode"] == mode]
            shown = [r for r in runs if not r["skipped"]]
            if shown:
                panels.append((backend, mode_label, shown))
            elif runs:
                skipped.append(f"{backend}, {mode_label}: {runs[0]['skipped']}")
    if not panels:
        return
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(15.0, 8.5 * ncols), 4.8 * nrows + 0.6), squeeze=False, sharey=True)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    handles = {}
    for index, (backend, mode_label, shown) in enumerate(panels):
        ax = axes.flat[index]
        col = index % ncols
        ax.set_title(f"{backend}: {mode_label}", fontsize=11)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        width = 0.8 / len(ALL_KEYS)
        trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        for gi, run in enumerate(shown):
            ref = _get(run, REF_LSTM)
            for ki, key in enumerate(ALL_KEYS):
                if key not in run["contenders"]:
                    continue
                xpos = gi - 0.4 + (ki + 0.5) * width
                entry = run["results"][key]
                if entry.get("error") or ref is None:
                    ax.text(xpos, 0.02, "failed" if entry.get("error") else "n/a", transform=trans,
                            rotation=90, ha="center", va="bottom", fontsize=6, color="crimson")
                    continue
                val = _get(run, key) / ref
                lo = entry["train"]["cpu"]["min"] / ref
                hi = entry["train"]["cpu"]["max"] / ref
                bar = ax.bar(xpos, val, width=width * 0.92, color=colors[key], edgecolor="0.2", linewidth=0.3,
                             yerr=[[val - lo], [hi - val]], error_kw=dict(lw=0.6, capsize=0, ecolor="0.25"),
                             bottom=None)
                handles.setdefault(key, bar)
        ax.axhline(1.0, color="black", lw=1.0, ls="--", zorder=0)
        ax.annotate("keras.layers.LSTM = 1.0  (below: faster)", xy=(1.0, 1.0), xycoords=("axes fraction", "data"),
                    xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom", fontsize=8)
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels([f"B={r['shape'][0]} T={r['shape'][1]}\nD={r['shape'][2]} units={r['shape'][3]}"
                            for r in shown], fontsize=8)
        ax.set_xlim(-0.5, len(shown) - 0.5)
        ax.grid(axis="y", which="both", alpha=0.25)
        if col == 0:
            ax.set_ylabel("training-step CPU time / keras.layers.LSTM\n(log scale; whiskers: min-max over reps)",
                          fontsize=9)
    keys = [k for k in ALL_KEYS if k in handles]
    legend_args = ([handles[k] for k in keys], [LABELS[k] for k in keys])
    footnote = ("Not shown: " + "; ".join(skipped) + ".") if skipped else ""
    title = ("eqcell layers vs Keras: training step (train_on_batch), process CPU time, single-threaded "
             f"({'quick run' if meta['quick'] else 'full run'}, {meta['date']})")
    fig.suptitle(title, fontsize=12)
    spare = list(axes.flat[len(panels):])
    if spare:  # the legend and the footnote fill the empty panel
        spare[0].set_visible(True)
        spare[0].axis("off")
        spare[0].legend(*legend_args, loc="upper center", ncol=2, fontsize=9, frameon=False)
        if footnote:
            spare[0].text(0.5, 0.02, "\n".join(textwrap.wrap(footnote, 80)), transform=spare[0].transAxes,
                          ha="center", va="bottom", fontsize=8, color="0.3")
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.04 / nrows))
    else:
        lines = textwrap.wrap(footnote, 200)
        if lines:
            fig.text(0.5, 0.005, "\n".join(lines), ha="center", va="bottom", fontsize=8, color="0.3")
        fig.legend(*legend_args, loc="lower center", ncol=min(5, len(keys)), fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 0.012 * (len(lines) + 0.5) / nrows if lines else 0))
        bottom = (0.035 * math.ceil(len(keys) / 5) + 0.015 * (len(lines) + 1)) / nrows
        fig.tight_layout(rect=(0, bottom, 1, 1 - 0.04 / nrows))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# The driver.
# --------------------------------------------------------------------------------------------

def _git_state() -> dict:
    """The commit and whether the tree had uncommitted changes (with a hash of the diff)."""
    root = os.path.dirname(HERE)

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout

    try:
        diff = git("diff", "HEAD", "--", "eqcell", "templates", "specs")
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
    parser.add_argument("--quick", action="store_true", help="fewer reps, 2 shapes + minGRU at T=1024")
    parser.add_argument("--backends", default="tensorflow,jax", help="comma-separated (tensorflow, jax, torch)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    parser.add_argument("--only", help="comma-separated contender keys (default: all): " + ", ".join(ALL_KEYS))
    parser.add_argument("--shapes", help="comma-separated shape indices into " + str(SHAPES))
    parser.add_argument("--reps", type=int, help="override the number of timed reps")
    parser.add_argument("--pin", default="auto",
                        help="pin each backend's process to one CPU: auto (the last allowed CPU), a CPU number, "
                             "or none (default auto)")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_worker-out", dest="worker_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    shapes = [int(i) for i in args.shapes.split(",")] if args.shapes else None
    if only and (bad := [k for k in only if k not in ALL_KEYS]):
        parser.error(f"unknown contenders {bad}; choose from {ALL_KEYS}")

    if args._worker:
        worker(args._worker, args.quick, args.worker_out, only, shapes, args.reps, args.pin)
        return 0

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    os.makedirs(args.out, exist_ok=True)
    results = {}
    git_start = _git_state()
    t_start = time.perf_counter()
    for backend in backends:
        env = backend_env(backend)
        shown = {k: env[k] for k in ("KERAS_BACKEND", "OMP_NUM_THREADS", "XLA_FLAGS") if k in env}
        print(f"=== {backend}: subprocess with {shown}", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            tmp_path = tmp.name
        cmd = [sys.executable, os.path.abspath(__file__), "--_worker", backend, "--_worker-out", tmp_path]
        cmd += ["--quick"] if args.quick else []
        cmd += ["--only", args.only] if args.only else []
        cmd += ["--shapes", args.shapes] if args.shapes else []
        cmd += ["--reps", str(args.reps)] if args.reps else []
        cmd += ["--pin", args.pin]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env)
        try:
            if proc.returncode != 0:
                raise RuntimeError(f"worker exited with status {proc.returncode}")
            with open(tmp_path) as f:
                results[backend] = json.load(f)
        except Exception as err:  # noqa: BLE001
            results[backend] = {"backend": backend, "error": _error_text(err), "runs": []}
            print(f"=== {backend}: FAILED {results[backend]['error']}", flush=True)
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
        results[backend]["env"] = shown
        print(f"=== {backend}: {time.perf_counter() - t0:.0f} s", flush=True)

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "quick": args.quick,
        "host": platform.node(),
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
        "cpu_count": os.cpu_count(),
        "elapsed_s": time.perf_counter() - t_start,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "targets": {"slstm_vs_hand": SLSTM_TARGET, "mingru_scan_vs_loop": MINGRU_TARGET, "gen_lstm_vs_keras": 1.0},
    }
    meta["git"] = git_start
    git_end = _git_state()
    if git_end != git_start:
        meta["git_at_end"] = git_end
        print(f"WARNING: eqcell's sources changed during the run ({git_start} -> {git_end}); "
              "see generated_module_sha1 per backend", flush=True)
    check_items = checks(results)
    with open(os.path.join(args.out, "layers.json"), "w") as f:
        json.dump({"meta": meta, "checks": check_items, "backends": results}, f, indent=1)
    write_markdown(results, meta, check_items, os.path.join(args.out, "layers.md"))
    try:
        write_plot(results, meta, os.path.join(args.out, "layers.png"))
    except Exception as err:  # noqa: BLE001 - the tables are written already
        print(f"plot failed: {_error_text(err)}", flush=True)
    print("\nTarget checks (issue 4; Keras-defaults row, process CPU time, wall in brackets):")
    for line in format_checks(check_items):
        print("  " + line)
    print(f"\nwrote {os.path.join(args.out, 'layers.json')}, layers.md, layers.png "
          f"({meta['elapsed_s']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
