"""The torch target's generated layers against the hand-written PyTorch peers of the same cells.

    python benchmarks/bench_torch.py                          # every cell, both sizes
    python benchmarks/bench_torch.py --cells MGUCell,lstm_torch --sizes 64x100 --compile

Contenders, the same cell and sizes, batch_first input:

    torchrecurrent   torchrecurrent 0.2.5's layer of the cell (one Python loop over time, the input
                     projection inside every step), for each of its cells whose spec, pasted from
                     its documentation (tests/test_torchrecurrent.py), equals its code
    nn.LSTM, nn.GRU  PyTorch's own layers (oneDNN-fused on CPU), for lstm_torch and gru_torch
    eqcell           eqcell.load_layer(SPEC, target="torch"): the input projection of all steps in
                     one matmul, then the step loop
    eqcell compiled  the same under torch.compile (--compile; T = 100 only: Dynamo unrolls the
                     loop, so compiling T = 1000 steps takes minutes)

at (batch, T, input, hidden) = (64, 100, 64, 128) and (16, 1000, 64, 128) (a cell whose input must
be as wide as its state: input 128). Training step: forward, sum of squares, backward, SGD step;
inference: forward under no_grad. Process CPU time, one thread (torch.set_num_threads(1)),
contenders alternated (the order flips every repeat), per contender the median; the ratio is to
the peer (torchrecurrent, or nn.LSTM / nn.GRU) of the same repeat. Writes
benchmarks/results/torch.txt and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")   # tests/test_torchrecurrent.py imports keras
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

SIZES = {"64x100": (64, 100), "16x1000": (16, 1000)}
INPUT, HIDDEN = 64, 128
NATIVE = {"lstm_torch": "LSTM", "gru_torch": "GRU"}


def _cells():
    """(name, spec, peer factory, eqcell kwargs, square) for every cell both sides have."""
    import torch
    import torchrecurrent
    from test_torchrecurrent import CASES, spec_text

    import eqcell
    from eqcell.errors import SpecError
    cells = []
    for spec, native in NATIVE.items():
        cells.append((spec, spec, lambda f, h, native=native: getattr(torch.nn, native)(f, h, batch_first=True),
                      {}, False))
    for name, case in sorted(CASES.items()):
        if case.gap:
            continue
        spec = spec_text(name, case.extras)
        try:
            eqcell.generate(spec, target="torch")
        except SpecError:
            continue
        layer = getattr(torchrecurrent, name[:-len("Cell")])
        constants = {k.arg: k.default for k in eqcell.analyze(spec).constants}
        cells.append((name, spec, lambda f, h, layer=layer, kw=case.torch_kwargs: layer(f, h, batch_first=True, **kw),
                      constants, case.square))
    return cells


def _train_step(model, optimizer, x):
    optimizer.zero_grad()
    output, _ = model(x)
    (output ** 2).mean().backward()
    optimizer.step()


def _infer(model, x):
    import torch
    with torch.no_grad():
        model(x)


def _time(fn):
    start = time.process_time()
    fn()
    return time.process_time() - start


def run(selected, sizes, repeats, compile_cells):
    import torch

    import eqcell
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    rows = []
    for name, spec, peer_factory, kwargs, square in _cells():
        if selected and name not in selected:
            continue
        for size in sizes:
            batch, steps = SIZES[size]
            features = HIDDEN if square else INPUT
            torch.manual_seed(0)
            peer = peer_factory(features, HIDDEN)
            ours = eqcell.load_layer(spec, target="torch")(features, HIDDEN, batch_first=True, **kwargs)
            contenders = {"peer": peer, "eqcell": ours}
            compile_seconds = None
            if name in compile_cells and steps <= 100:
                compiled = torch.compile(ours)
                start = time.perf_counter()
                _train_step(compiled, torch.optim.SGD(ours.parameters(), lr=1e-4), torch.randn(batch, steps, features))
                compile_seconds = time.perf_counter() - start
                contenders["eqcell compiled"] = compiled
            x = torch.randn(batch, steps, features)
            optimizers = {n: torch.optim.SGD(m.parameters(), lr=1e-4) for n, m in contenders.items()}
            for n, m in contenders.items():   # warm up
                _train_step(m, optimizers[n], x)
                _infer(m, x)
            times = {(n, kind): [] for n in contenders for kind in ("train", "infer")}
            names = list(contenders)
            for rep in range(repeats):
                for n in (names if rep % 2 == 0 else names[::-1]):
                    m = contenders[n]
                    times[n, "train"].append(_time(lambda: _train_step(m, optimizers[n], x)))
                    times[n, "infer"].append(_time(lambda: _infer(m, x)))
            peer_name = f"nn.{NATIVE[name]}" if name in NATIVE else "torchrecurrent"
            for n in names:
                row = {"cell": name, "size": size, "contender": peer_name if n == "peer" else n, "peer": peer_name}
                for kind in ("train", "infer"):
                    row[f"{kind}_s"] = statistics.median(times[n, kind])
                    row[f"{kind}_ratio"] = statistics.median(p / q for p, q in zip(times[n, kind], times["peer", kind]))
                if n == "eqcell compiled":
                    row["compile_s"] = compile_seconds
                rows.append(row)
                print(f"{name:22} {size:8} {row['contender']:16} train {row['train_s']:.3f} s ({row['train_ratio']:.2f}x)"
                      f"  infer {row['infer_s']:.3f} s ({row['infer_ratio']:.2f}x)", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", default="", help="comma-separated cell names (default: all)")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", default="lstm_torch,gru_torch,MGUCell,IndRNNCell,JANETCell",
                        help="cells also timed under torch.compile (T = 100 only); empty for none")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    selected = {c for c in args.cells.split(",") if c}
    rows = run(selected, args.sizes.split(","), args.repeats, {c for c in args.compile.split(",") if c})
    import torch
    header = (f"# bench_torch.py, {platform.processor() or platform.machine()}, python {platform.python_version()}, "
              f"torch {torch.__version__}; (batch, T) in {', '.join(args.sizes.split(','))}, input {INPUT} "
              f"(128 for square cells), hidden {HIDDEN}; process CPU s, one thread, median of {args.repeats}; "
              f"ratio to the peer (torchrecurrent, or nn.LSTM / nn.GRU)\n")
    lines = ["| cell | batch x T | contender | training step (s) | / peer | inference (s) | / peer |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        compiled = f" (compile {r['compile_s']:.0f} s)" if r.get("compile_s") else ""
        lines.append(f"| {r['cell']} | {r['size']} | {r['contender']}{compiled} | {r['train_s']:.3f} | "
                     f"{r['train_ratio']:.2f} | {r['infer_s']:.3f} | {r['infer_ratio']:.2f} |")
    eqcell_rows = [r for r in rows if r["contender"] == "eqcell" and r["peer"] == "torchrecurrent"]
    if eqcell_rows:
        for kind in ("train", "infer"):
            ratios = [r[f"{kind}_ratio"] for r in eqcell_rows]
            lines.append(f"\neqcell / torchrecurrent, {kind}: median {statistics.median(ratios):.2f}x, "
                         f"worst {max(ratios):.2f}x over {len(ratios)} cell-sizes")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "torch.txt"), "w") as f:
        f.write(header + "\n".join(lines) + "\n")
    with open(os.path.join(args.out, "torch.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(header + "\n".join(lines))


if __name__ == "__main__":
    main()
