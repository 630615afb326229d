"""`eqcell verify --target torch`: the torch target's cell and layer against the spec's equations.

The reference is the same independent float64 numpy interpreter as for the Keras targets
(eqcell.verify.Interpreter). PyTorch computes float64 on CPU, so every case but one runs in float64.

- weights: `set_symbol_weights` puts the paper's parameters where the torch target's fused layout
  says (PyTorch's names, `weight_ih` as (out, in)); a cell from `--module` gets them by those
  names and shapes. `symbol_weights()` reads them back; `initial_state` is the spec's;
- the cell's one step, teacher-forced, batched and for a single example (an unbatched input);
- the layer on each path it takes (the step loop, the parallel form), in nn.LSTM's layouts: one
  layer batch_first, two layers bidirectional time-major with a given hx, packed sequences of
  unequal lengths (each direction within each sequence's length, its outputs zeros past it), float32;
  against the equations run layer by layer, direction by direction, sequence by sequence;
- gradients: each path's against the others' and a plain loop of the cell's (one direction),
  element by element, and every path's against central finite differences of the equations
  along a random direction (every cell's parameters, the input and hx together).

Each cell of a layer has its own random parameters (a layer or direction mixed up cannot hide).
Importing this module imports numpy only; torch loads when a run starts."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from .analysis.torch_names import for_torch
from .ir import CellIR
from .verify import (FD_EPS, FD_TOL, GRAD_TOL, TOL, Check, Interpreter, Report, Subject, VerifyError, _fmt,
                     _init_args, _Mismatch, _scaled_error, _size, _where, fused_weights, import_module_arg,
                     initial_values, random_params)


def torch_fused_weights(ir: CellIR, params: dict[str, np.ndarray], sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """The torch target's parameters, by name, holding `params` (paper orientation): the Keras
    layout of eqcell.verify.fused_weights under PyTorch's names (eqcell.analysis.torch_names),
    each kernel (in, out) stored as (out, in) (per head: (heads, out, in))."""
    renamed = for_torch(ir)
    fused = fused_weights(renamed, params, sizes)
    kernels = {w.name for w in renamed.weights if w.kind == "kernel"}
    return {name: np.swapaxes(value, -1, -2).copy() if name in kernels else value for name, value in fused.items()}


def _layout_text(ir: CellIR, name: str) -> str:
    renamed = for_torch(ir)
    members = next((w.members for w in renamed.weights if w.name == name), ())
    return f"{name} = [{' | '.join(members)}]" if members else name


@dataclass
class TorchCase:
    key: str
    label: str
    timesteps: int
    input_dim: int
    units: int
    layers: int = 1
    bidirectional: bool = False
    batch_first: bool = True
    lengths: tuple[int, ...] | None = None   # packed sequences
    initial: bool = False                    # a given hx (else the cells' own initial state)
    chunk_size: int | None = None
    dtype: str = "float64"
    seed: int = 0


class TorchRun:
    """One `verify --target torch` run: the cases, their checks, the report."""

    def __init__(self, ir: CellIR, subject: Subject, seed: int, echo):
        import torch

        self.torch = torch
        self.ir, self.subject, self.seed, self.echo = ir, subject, seed, echo
        self.interp = Interpreter(ir, "torch")
        self.heads = 2 if ir.heads else 1
        self.named_sizes = {name: self.heads * (2 + i) if ir.heads else 3 + i for i, name in enumerate(ir.sizes)}
        if ir.heads:
            self.named_sizes[ir.heads] = self.heads
        self.parallel = subject.layer is not None and "parallel_scan" in _init_args(subject.layer)
        self.chunked = subject.layer is not None and "chunk_size" in _init_args(subject.layer)
        # a state as wide as the input, or an input combined element-wise with the state: every
        # layer's input is as wide as the state, so one direction only when layers are stacked
        self.narrow = ir.square_input or any(s.size == "input_dim" for s in ir.states)
        self.report: Report | None = None

    # helpers --------------------------------------------------------------------------------
    def sizes(self, units: int, input_dim: int) -> dict[str, int]:
        return {"units": units, "input_dim": input_dim, **self.named_sizes,
                **({"h": self.heads} if self.ir.heads else {})}

    def dtype(self, name: str):
        return {"float64": self.torch.float64, "float32": self.torch.float32}[name]

    def layer_inputs(self, case: "TorchCase") -> list[int]:
        """Each layer's input width: the case's input, then both directions' outputs side by side."""
        directions = 2 if case.bidirectional else 1
        output = _size(self.ir.output_size, self.sizes(case.units, case.input_dim))
        return [case.input_dim] + [directions * output] * (case.layers - 1)

    def add(self, check: Check):
        self.report.checks.append(check)
        line = f"  {'ok  ' if check.ok else 'FAIL'} {check.name:<22} {check.detail}: max abs err {_fmt(check.err)}"
        if not check.ok:
            line += f"\n         {check.failure}"
        self.echo(line)

    def set_weights(self, cell, params, sizes, what: str) -> Check | None:
        """`params` into a cell: by set_symbol_weights (a generated cell, then checked against the
        torch target's fused layout) or by the fused parameters' names (a cell from --module)."""
        torch = self.torch
        fused = torch_fused_weights(self.ir, params, sizes)
        named = dict(cell.named_parameters())
        if self.subject.by_symbol:
            cell.set_symbol_weights({p.name: params[p.name] for p in self.ir.params})
        missing, extra = sorted(set(fused) - set(named)), sorted(set(named) - set(fused))
        if missing or extra:
            return Check("weights", what, math.inf, False,
                         f"the cell's parameters {sorted(named)} are not the torch target's fused parameters "
                         f"{sorted(fused)} (missing {missing}, unexpected {extra}); expected "
                         + "; ".join(f"{_layout_text(self.ir, n)} {tuple(v.shape)}" for n, v in fused.items()))
        with torch.no_grad():
            for name, value in fused.items():
                parameter = named[name]
                if tuple(parameter.shape) != value.shape:
                    return Check("weights", what, math.inf, False,
                                 f"parameter {name!r} has shape {tuple(parameter.shape)}, the torch target's layout "
                                 f"needs {value.shape} ({_layout_text(self.ir, name)})")
                if not self.subject.by_symbol or name.startswith("initial_"):
                    parameter.copy_(torch.as_tensor(value, dtype=parameter.dtype))
                    continue
                err, scaled = _scaled_error(parameter.detach().double().numpy(), value)
                if scaled > 1e-6:
                    return Check("weights", what, err, False,
                                 f"set_symbol_weights puts the parameters of {name!r} elsewhere than the torch "
                                 f"target's layout ({_layout_text(self.ir, name)})")
        return None

    # the run --------------------------------------------------------------------------------
    def cases(self) -> list[TorchCase]:
        units = 6 if self.ir.heads else 5
        narrow_input = units if self.ir.square_input else 3
        stacked_input = units if self.narrow else 4
        chunk = 4 if self.chunked else None
        cases = [
            TorchCase("A", "one layer, batch_first, default state", 6, narrow_input, units),
            TorchCase("B", "two layers" + ("" if self.narrow else ", bidirectional") + ", time-major, given hx",
                      9, stacked_input, units, layers=2, bidirectional=not self.narrow, batch_first=False,
                      initial=True),
            TorchCase("C", "packed sequences of lengths 34, 20, 7, 1, " + ("one direction" if self.narrow
                                                                          else "bidirectional")
                      + ", given hx" + (f", chunk_size {chunk}" if chunk else ""), 34, narrow_input, units,
                      bidirectional=not self.narrow, lengths=(34, 20, 7, 1), initial=True, chunk_size=chunk),
            TorchCase("D", "packed sequences, one direction, default state", 17, narrow_input, units,
                      lengths=(17, 3, 12, 9)),
            TorchCase("E", "float32, two layers, packed sequences", 11, stacked_input, units, layers=2,
                      lengths=(11, 5, 8, 2), dtype="float32"),
        ]
        return [replace(c, seed=self.seed + i + 1) for i, c in enumerate(cases)]

    def run(self, start: float) -> Report:
        ir, subject = self.ir, self.subject
        what = "generated module" if subject.source == "generated" else f"{subject.cell.__name__} from {subject.source}"
        cases = self.cases()
        self.report = Report(f"verify {ir.name} ({what}) against its equations: target torch, PyTorch "
                             f"{self.torch.__version__}, float64; seeds {self.seed}-{self.seed + len(cases)}")
        self.echo(self.report.header)
        self.check_step()
        if subject.layer is None:
            self.echo(f"  note: no layer class {ir.layer} in the module: the cell only")
        else:
            for case in cases:
                self.check_case(case)
        self.report.seconds = time.perf_counter() - start
        return self.report

    def new_cell(self, units, input_dim, dtype):
        return self.subject.cell(input_dim, units, **self.named_sizes, dtype=self.dtype(dtype))

    def check_step(self):
        """The cell's one step, teacher-forced, its initial state, an unbatched input."""
        ir = self.ir
        units = 6 if ir.heads else 5
        input_dim = units if ir.square_input else 3
        sizes = self.sizes(units, input_dim)
        self.interp.sizes = sizes
        rng = np.random.default_rng(self.seed)
        params = random_params(ir, sizes, rng)
        batch, steps = 4, 6
        x = rng.standard_normal((batch, steps, input_dim))
        start = {s.name: 0.5 * rng.standard_normal((batch, _size(s.size, sizes))) for s in ir.states}
        detail = f"cell(input, state), {steps} steps from the equations' states, batch {batch}"
        try:
            cell = self.new_cell(units, input_dim, "float64")
            bad = self.set_weights(cell, params, sizes, "parameters into the cell's")
            if bad:
                self.add(bad)
                return
            layout = ", ".join(_layout_text(ir, name) for name in torch_fused_weights(ir, params, sizes))
            how = "set_symbol_weights gives the torch target's layout" if self.subject.by_symbol else "filled by name"
            self.add(Check("weights", f"{how}: {layout}", 0.0, True))
            self.check_symbol_weights(cell, params, sizes)
            self.check_initial_state(cell, params, sizes, batch)
            worst, failure, prev = 0.0, "", start
            for t in range(steps):
                with np.errstate(all="ignore"):
                    values = self.interp.step(params, x[:, t], prev)
                want_states = self.interp.next_states(values, x[:, t])
                output, new = self.call_cell(cell, x[:, t], [prev[s.name] for s in ir.states])
                if len(new) != len(ir.states):
                    raise _Mismatch(f"the cell returned {len(new)} states, the spec has {len(ir.states)} "
                                    f"({', '.join(s.name for s in ir.states)})")
                pairs = [(f"output {ir.output}", output, np.broadcast_to(values[ir.output], output.shape))]
                pairs += [(f"state {s.name}", got, want_states[s.name]) for s, got in zip(ir.states, new)]
                for label, got, want in pairs:
                    err, scaled = _scaled_error(got, want)
                    worst = max(worst, err)
                    if scaled > TOL["float64"] and not failure:
                        failure = f"{label} differs from the equations first at step t={t} ({_where(got, want)}): " \
                                  f"max abs err {_fmt(err)}"
                prev = want_states
            self.add(Check("cell step", detail, worst, not failure, failure))
            # one example, unbatched, as nn.LSTMCell takes it
            output, new = self.call_cell(cell, x[0, 0], [start[s.name][0] for s in ir.states])
            batched, batched_new = self.call_cell(cell, x[:1, 0], [start[s.name][:1] for s in ir.states])
            err = max(_scaled_error(a, b[0])[0] for a, b in zip([output, *new], [batched, *batched_new]))
            self.add(Check("cell unbatched", "cell(input (input_size,), state (size,)) vs a batch of one", err,
                           err <= TOL["float64"], "" if err <= TOL["float64"] else
                           "an unbatched input gives other numbers than the same example in a batch"))
        except _Mismatch as err:
            self.add(Check("cell step", detail, math.inf, False, str(err)))
        except Exception as err:  # the cell failed to run: a finding, not a crash
            self.add(Check("cell step", detail, math.inf, False, f"raised {type(err).__name__}: {err}"))

    def call_cell(self, cell, x_t, states):
        torch = self.torch
        tensors = [torch.as_tensor(np.ascontiguousarray(s), dtype=torch.float64) for s in states]
        state = tensors[0] if len(tensors) == 1 else tuple(tensors)
        with torch.no_grad():
            output, new = cell(torch.as_tensor(np.ascontiguousarray(x_t), dtype=torch.float64), state)
        new = list(new) if isinstance(new, (list, tuple)) else [new]
        return output.double().numpy(), [v.double().numpy() for v in new]

    def check_symbol_weights(self, cell, params, sizes):
        """A cell's own `symbol_weights()` and `set_symbol_weights()`, where it has them, follow the
        torch target's layout (a hand-edited `_symbol_layout` is caught here)."""
        has_get, has_set = hasattr(cell, "symbol_weights"), hasattr(cell, "set_symbol_weights")
        if not (has_get or has_set):
            return
        ir = self.ir
        worst, failure = 0.0, ""
        try:
            got = cell.symbol_weights() if has_get else {}
            for p in ir.params if has_get else ():
                if p.name not in got:
                    failure = f"symbol_weights() has no {p.name!r}"
                    break
                err, scaled = _scaled_error(np.asarray(got[p.name], dtype=np.float64), params[p.name])
                worst = max(worst, err)
                if scaled > TOL["float64"]:
                    failure = (f"symbol_weights()[{p.name!r}] is not what the torch target's layout holds there "
                               f"({_layout_text(ir, p.weight)})")
                    break
            if has_set and not failure and not self.subject.by_symbol:  # a generated cell: checked already
                other = random_params(ir, sizes, np.random.default_rng(self.seed + 20_000))
                cell.set_symbol_weights({p.name: other[p.name] for p in ir.params})
                named = dict(cell.named_parameters())
                for name, value in torch_fused_weights(ir, other, sizes).items():
                    if name in named and not name.startswith("initial_"):
                        err, scaled = _scaled_error(named[name].detach().double().numpy(), value)
                        worst = max(worst, err)
                        if scaled > TOL["float64"] and not failure:
                            failure = (f"set_symbol_weights() fills {name!r} otherwise than the torch target's layout "
                                       f"({_layout_text(ir, name)})")
                bad = self.set_weights(cell, params, sizes, "")
                failure = failure or (bad.failure if bad else "")
        except Exception as err:
            worst, failure = math.inf, f"raised {type(err).__name__}: {err}"
        what = " and ".join(n for n, has in (("symbol_weights()", has_get), ("set_symbol_weights()", has_set)) if has)
        self.add(Check("symbol weights", f"{what} vs the torch target's layout", worst, not failure, failure))

    def check_initial_state(self, cell, params, sizes, batch):
        if not hasattr(cell, "initial_state"):
            return
        want = initial_values(self.ir, params, sizes, batch)
        try:
            got = cell.initial_state(batch)
            got = list(got) if isinstance(got, (list, tuple)) else [got]
            worst, failure = 0.0, ""
            if len(got) != len(self.ir.states):
                failure = f"initial_state returned {len(got)} states, the spec has {len(self.ir.states)}"
            for s, value in zip(self.ir.states, got):
                err, scaled = _scaled_error(value.detach().double().numpy(), want[s.name])
                worst = max(worst, err)
                if scaled > TOL["float64"] and not failure:
                    failure = f"state {s.name} starts at the wrong value (spec: {s.initial})"
            kinds = ", ".join(f"{s.name} {s.initial}" for s in self.ir.states)
            self.add(Check("initial state", f"initial_state vs the spec ({kinds})", worst, not failure, failure))
        except Exception as err:
            self.add(Check("initial state", "initial_state", math.inf, False, f"raised {type(err).__name__}: {err}"))

    # one case: the layer on each path, gradients ---------------------------------------------
    def check_case(self, case: TorchCase):
        ir = self.ir
        directions = 2 if case.bidirectional else 1
        rng = np.random.default_rng(case.seed)
        batch = 4
        cells = case.layers * directions
        widths = self.layer_inputs(case)
        params = [random_params(ir, self.sizes(case.units, widths[i // directions]), rng) for i in range(cells)]
        x = rng.standard_normal((batch, case.timesteps, case.input_dim))
        state_sizes = [_size(s.size, self.sizes(case.units, case.input_dim)) for s in ir.states]
        hx = ([0.5 * rng.standard_normal((cells, batch, size)) for size in state_sizes] if case.initial else None)
        lengths = np.asarray(case.lengths) if case.lengths else None
        live = None if lengths is None else np.arange(case.timesteps)[None, :] < lengths[:, None]
        out_width = directions * _size(ir.output_size, self.sizes(case.units, case.input_dim))
        w_out = rng.standard_normal((batch, case.timesteps, out_width))
        if live is not None:
            w_out = w_out * live[..., None]
        w_states = [rng.standard_normal((cells, batch, size)) for size in state_sizes]
        shape = (f"T={case.timesteps}, batch {batch}, input {case.input_dim}, hidden {case.units}"
                 + (f", {case.dtype}" if case.dtype != "float64" else "") + f", seed {case.seed}")
        self.echo(f"  case {case.key}: {case.label} ({shape})")
        want = self.expected(case, params, x, hx, lengths)
        contenders = [("layer", False), ("layer", True)] if self.parallel else [("layer", None)]
        if case.layers == 1 and directions == 1:
            contenders.append(("cell loop", None))
        results = {}
        tol = TOL[case.dtype]
        for kind, parallel in contenders:
            name = kind if parallel is None else f"{kind}, parallel_scan={parallel}"
            try:
                got, grads, took_scan = self.forward_and_grads(kind, parallel, case, params, x, hx, lengths,
                                                               [w_out] + w_states)
            except Exception as err:
                self.add(Check(f"{case.key} {name}", "forward and gradients", math.inf, False,
                               f"raised {type(err).__name__}: {err}"))
                continue
            if isinstance(got, Check):
                self.add(got)
                continue
            path = "" if kind != "layer" else (" [parallel]" if took_scan else " [step loop]")
            labels = [f"outputs {ir.output}"] + [f"final state {s.name}" for s in ir.states]
            worst, failure = 0.0, ""
            for label, g, w in zip(labels, got, want):
                err, scaled = _scaled_error(g, w)
                worst = max(worst, err)
                if scaled > tol and not failure:
                    failure = f"{label} differs from the equations ({_where(g, w)}): max abs err {_fmt(err)}"
            self.add(Check(f"{case.key} {kind}", f"outputs and final states{path} vs the equations", worst,
                           not failure, failure))
            results[name + path] = grads
        self.compare_gradients(case, results, params, x, hx, lengths, [w_out] + w_states)

    def expected(self, case: TorchCase, params, x, hx, lengths):
        """[outputs (batch, T, directions * output), each final state (cells, batch, size)] as the
        layer gives them, from the equations: layer by layer, each direction within each length."""
        ir = self.ir
        directions = 2 if case.bidirectional else 1
        batch, steps, _ = x.shape
        mask = None if lengths is None else np.arange(steps)[None, :] < lengths[:, None]
        finals = {s.name: [] for s in ir.states}
        sequence = x
        finite = True
        for layer in range(case.layers):
            sizes = self.sizes(case.units, sequence.shape[-1])
            self.interp.sizes = sizes
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                start = ({s.name: hx[i][index] for i, s in enumerate(ir.states)} if hx is not None
                         else initial_values(ir, params[index], sizes, batch))
                inputs = sequence if not direction else _reversed(sequence, lengths)
                trace = self.interp.run(params[index], inputs, start, mask, False, "previous",
                                        zero_output_for_mask=True)
                finite = finite and trace.finite
                outputs.append(trace.outputs if not direction else _reversed(trace.outputs, lengths))
                for s in ir.states:
                    finals[s.name].append(trace.states[s.name])
            sequence = np.concatenate(outputs, axis=-1)
        self.finite = finite
        return [sequence] + [np.stack(finals[s.name]) for s in ir.states]

    def forward_and_grads(self, kind, parallel, case, params, x, hx, lengths, loss_weights):
        """[outputs, finals...] as numpy, the gradients ({cell index: {parameter: grad}}, input, hx),
        and whether the parallel path ran."""
        torch = self.torch
        dtype = self.dtype(case.dtype)
        directions = 2 if case.bidirectional else 1
        if kind == "layer":
            extra = {} if parallel is None else {"parallel_scan": parallel}
            if case.chunk_size and self.chunked:
                extra["chunk_size"] = case.chunk_size
            module = self.subject.layer(case.input_dim, case.units, **self.named_sizes, num_layers=case.layers,
                                        bidirectional=case.bidirectional, batch_first=case.batch_first, dtype=dtype,
                                        **extra)
            if not hasattr(module, "cells"):
                return Check(f"{case.key} layer", "weights", math.inf, False,
                             f"{type(module).__name__} has no `cells` (one cell per layer and direction, as the "
                             "generated layer holds them): verify cannot set its weights"), None, False
            cells = list(module.cells)
        else:
            module = None
            cells = [self.new_cell(case.units, case.input_dim, case.dtype)]
        widths = self.layer_inputs(case)
        for index, cell in enumerate(cells):
            bad = self.set_weights(cell, params[index], self.sizes(case.units, widths[index // directions]),
                                   f"case {case.key}")
            if bad:
                return bad, None, False
        xs = torch.tensor(x, dtype=dtype, requires_grad=True)
        leaves = [torch.tensor(h, dtype=dtype, requires_grad=True) for h in hx] if hx is not None else []
        took = []
        if module is not None:
            if hasattr(module, "_scan"):
                scan = module._scan
                object.__setattr__(module, "_scan", lambda *a, **k: took.append(True) or scan(*a, **k))
            inputs = xs if case.batch_first else xs.transpose(0, 1)
            if lengths is not None:
                inputs = torch.nn.utils.rnn.pack_padded_sequence(inputs, torch.as_tensor(lengths),
                                                                 batch_first=case.batch_first, enforce_sorted=False)
            state = None if hx is None else (leaves[0] if len(leaves) == 1 else tuple(leaves))
            output, final = module(inputs, state)
            if lengths is not None:
                output, _ = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=True,
                                                                   total_length=case.timesteps)
            elif not case.batch_first:
                output = output.transpose(0, 1)
        else:
            output, final = _cell_loop(torch, cells[0], xs, leaves, lengths)
        finals = list(final) if isinstance(final, (list, tuple)) else [final]
        values = [output, *finals]
        loss = sum((v * torch.as_tensor(w, dtype=dtype)).sum() for v, w in zip(values, loss_weights))
        parameters = [(index, name, p) for index, cell in enumerate(cells) for name, p in cell.named_parameters()]
        grads = torch.autograd.grad(loss, [xs, *leaves, *(p for _, _, p in parameters)], allow_unused=True)
        as_numpy = [None if g is None else g.double().numpy() for g in grads]
        by_cell: dict[int, dict[str, np.ndarray]] = {}
        for (index, name, p), g in zip(parameters, as_numpy[1 + len(leaves):]):
            by_cell.setdefault(index, {})[name] = np.zeros(tuple(p.shape)) if g is None else g
        return ([v.detach().double().numpy() for v in values],
                (by_cell, as_numpy[0], as_numpy[1:1 + len(leaves)]), bool(took))

    def compare_gradients(self, case, results, params, x, hx, lengths, loss_weights):
        if not results:
            return
        ir = self.ir
        tol = GRAD_TOL[case.dtype]
        names = list(results)
        reference_name = names[0]
        reference = results[reference_name]
        for name in names[1:]:
            by_cell, gx, gh = results[name]
            ref_cells, ref_x, ref_h = reference
            worst, failure = 0.0, ""
            pairs = [(f"d/d {p} of cell {i}", by_cell.get(i, {}).get(p), g)
                     for i, grads in ref_cells.items() for p, g in grads.items() if i in by_cell]
            pairs += [("d/d input", gx, ref_x)] + [(f"d/d hx {s.name}", g, r) for s, g, r in zip(ir.states, gh, ref_h)]
            for label, g, r in pairs:
                if g is None:
                    failure = failure or f"no {label[4:]}"
                    continue
                err, scaled = _scaled_error(g, r)
                worst = max(worst, err)
                if scaled > tol and not failure:
                    failure = f"{label} differs from {reference_name}'s ({_where(g, r)}): max abs err {_fmt(err)}"
            self.add(Check(f"{case.key} gradients", f"{name} vs {reference_name}, every parameter, input, hx",
                           worst, not failure, failure))
        # each path's directional derivative vs central finite differences of the equations
        rng = np.random.default_rng(case.seed + 10_000)
        directions_p = [{k: rng.standard_normal(v.shape) for k, v in p.items()} for p in params]
        dx = rng.standard_normal(x.shape)
        dh = None if hx is None else [rng.standard_normal(h.shape) for h in hx]

        def loss(eps):
            p = [{k: v + eps * d[k] for k, v in cell.items()} for cell, d in zip(params, directions_p)]
            h = None if hx is None else [v + eps * d for v, d in zip(hx, dh)]
            values = self.expected(case, p, x + eps * dx, h, lengths)
            return sum(float(np.sum(v * w)) for v, w in zip(values, loss_weights)), self.finite

        (up, finite_up), (down, finite_down) = loss(FD_EPS), loss(-FD_EPS)
        (up2, _), (down2, _) = loss(FD_EPS / 2), loss(-FD_EPS / 2)
        numeric = (4 * (up2 - down2) / FD_EPS - (up - down) / (2 * FD_EPS)) / 3
        directions = 2 if case.bidirectional else 1
        widths = self.layer_inputs(case)
        for name, (by_cell, gx, gh) in results.items():
            analytic = float(np.sum(gx * dx))
            for index, grads in by_cell.items():
                fused = torch_fused_weights(ir, directions_p[index],
                                            self.sizes(case.units, widths[index // directions]))
                analytic += sum(float(np.sum(g * fused[k])) for k, g in grads.items() if k in fused)
            if dh is not None:
                analytic += sum(float(np.sum(g * d)) for g, d in zip(gh, dh))
            err = abs(analytic - numeric)
            scaled = err / max(1.0, abs(numeric))
            if not (finite_up and finite_down) and not math.isfinite(analytic):
                self.add(Check(f"{case.key} gradients", f"{name} vs finite differences: not compared, the "
                                                        "equations give NaN or inf for these random values",
                               math.nan, True))
                continue
            ok = scaled <= FD_TOL[case.dtype]
            self.add(Check(f"{case.key} gradients", f"{name} vs finite differences of the equations", err, ok,
                           "" if ok else f"d loss along a random direction: {name} gives {analytic:.9g}, finite "
                                         f"differences of the equations {numeric:.9g}"))


def _reversed(values: np.ndarray, lengths) -> np.ndarray:
    """Each sequence (batch, T, ...) backwards within its own length; the padding stays."""
    if lengths is None:
        return values[:, ::-1]
    out = values.copy()
    for row, length in enumerate(lengths):
        out[row, :length] = values[row, :length][::-1]
    return out


def _cell_loop(torch, cell, xs, leaves, lengths):
    """The plainest layer: the cell's forward at every step; past a sequence's length its state is
    kept and its output is zero."""
    state = None if not leaves else (leaves[0][0] if len(leaves) == 1 else tuple(h[0] for h in leaves))
    outputs = []
    for t in range(xs.shape[1]):
        output, new = cell(xs[:, t], state)   # state None: the cell's own initial state
        if lengths is not None and state is not None:  # (every length is at least 1)
            keep = torch.as_tensor(t < lengths).unsqueeze(-1)
            output = torch.where(keep, output, torch.zeros_like(output))
            new = (torch.where(keep, new, state) if not isinstance(new, tuple)
                   else tuple(torch.where(keep, a, b) for a, b in zip(new, state)))
        outputs.append(output)
        state = new
    finals = state if isinstance(state, tuple) else (state,)
    return torch.stack(outputs, dim=1), tuple(f.unsqueeze(0) for f in finals)


def load_torch_subject(spec, ir: CellIR, module_arg: str | None) -> Subject:
    """The generated torch module of `spec`, or the cell class named by `--module PATH[:CLASS]`
    (CLASS defaults to the spec's class name): an nn.Module built as (input_size, hidden_size,
    <sizes>, dtype=...) whose forward(input, state) returns (output, new_state), its parameters
    named and shaped as the torch target's. A class of the spec's layer name in the same module
    comes with it (verify sets its weights through its `cells`, as the generated layer holds them)."""
    import torch

    if module_arg is None:
        from .api import load, load_layer

        return Subject(load(spec, "torch"), load_layer(spec, "torch"), "generated", True, None)
    module, path, class_name = import_module_arg(module_arg)
    cell = getattr(module, class_name or ir.name, None)
    if not (isinstance(cell, type) and issubclass(cell, torch.nn.Module)):
        classes = [k for k, v in vars(module).items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                   and v.__module__ == module.__name__]
        raise VerifyError(f"--module {module_arg}: {path} has no nn.Module class {class_name or ir.name!r}"
                          + (f" (it defines {', '.join(classes)})" if classes else ""))
    layer = getattr(module, ir.layer, None)
    layer = layer if isinstance(layer, type) and issubclass(layer, torch.nn.Module) else None
    return Subject(cell, layer, str(path), False, module)
