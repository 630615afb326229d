"""The `eqcell` command: thin wrappers over the Python API.

Exit codes: 0 success, 2 a spec or usage error (message on stderr with file:line:col),
1 an internal error. Importing this module never imports a deep-learning framework."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import SpecError


class SpecFailed(click.ClickException):
    """A spec error, printed as is (it already says where and what to do)."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


TARGET = click.Choice(["keras", "tf-keras", "torch"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eqcell")
def cli():
    """Recurrent cells from a paper's equations: a YAML spec in, a Keras cell module out.

    SPEC is a spec file, a shipped spec name (see `eqcell list`), or `-` for standard input.
    """


def _load(spec: str, stdin: bytes | None = None):
    """The Spec of SPEC (`-`: standard input, read as bytes so that the loader reports text that
    is not UTF-8 as a spec error); a spec error becomes exit 2."""
    from .spec import load_spec

    try:
        if spec == "-":
            data = click.get_binary_stream("stdin").read() if stdin is None else stdin
            return load_spec(data, display_name="<stdin>")
        return load_spec(spec)
    except SpecError as err:
        raise SpecFailed(str(err)) from None


def _analyze(spec: str, stdin: bytes | None = None):
    """The CellIR of SPEC (`-`: standard input); a spec error becomes exit 2."""
    from .api import analyze

    loaded = _load(spec, stdin)
    try:
        return analyze(loaded)
    except SpecError as err:
        raise SpecFailed(str(err)) from None


@cli.command()
@click.argument("spec")
@click.option("-o", "--output", "output", default=None, metavar="PATH",
              help="File to write; `-` for standard output. Default: the class name in snake_case "
                   "in the current folder: SLSTMCell -> slstm_cell.py (keras target), "
                   "slstm_cell_tf_keras.py (tf-keras target).")
@click.option("--target", type=TARGET, default="keras", show_default=True,
              help="keras: a Keras 3 cell (TF, JAX, torch); tf-keras: a tf_keras AbstractRNNCell; "
                   "torch: a PyTorch nn.Module cell and layer (as nn.LSTMCell, nn.LSTM).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def generate(spec, output, target, force):
    """Generate the cell module for SPEC."""
    from .render import render, snake_case

    ir = _analyze(spec)
    try:
        code = render(ir, target)
    except SpecError as err:  # what the target cannot write (the torch target: heads, matrix states)
        raise SpecFailed(str(err)) from None
    if output == "-":
        click.echo(code, nl=False)
        return
    default_name = f"{snake_case(ir.name)}{'' if target == 'keras' else '_' + target.replace('-', '_')}.py"
    path = Path(output) if output else Path(default_name)
    if path.is_dir() or output and output.endswith(("/", "\\")):
        raise click.UsageError(f"{output} is a folder; give a file name, e.g. {path / default_name}")
    if not path.parent.is_dir():
        raise click.UsageError(f"folder {path.parent} does not exist; create it first")
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; pass --force to overwrite it")
    from .write import write_atomic

    try:
        write_atomic(path, code)
    except OSError as err:
        raise click.UsageError(f"cannot write {path}: {err.strerror}") from None
    click.echo(f"wrote {path} ({ir.name}, {ir.layer}; target {target})", err=True)


@cli.command()
@click.argument("specs", nargs=-1, required=True)
def check(specs):
    """Validate every SPEC: one line each (ok, or its first error); exit 2 if any failed."""
    failed = 0
    for spec in specs:
        try:
            ir = _analyze(spec)
        except SpecFailed as err:
            failed += 1
            click.echo(err.format_message(), err=True)
            continue
        states = ", ".join(s.name for s in ir.states)
        count = len(ir.equations)
        params, weights = len(ir.params), len(ir.weights)
        click.echo(f"{'<stdin>' if spec == '-' else spec}: ok: {ir.name}, {count} equation{'s' * (count != 1)}, "
                   f"states [{states}], {params} parameter{'s' * (params != 1)} in "
                   f"{weights} weight{'s' * (weights != 1)}")
    if failed:
        raise click.exceptions.Exit(2)


@cli.command()
@click.argument("spec")
@click.option("--latex", is_flag=True, help="Print the equations as LaTeX.")
@click.option("--input-dim", type=click.IntRange(min=1), default=None,
              help="Count parameters for this input size (default: units).")
@click.option("--units", type=click.IntRange(min=1), default=32, show_default=True,
              help="Units for the parameter count.")
def show(spec, latex, input_dim, units):
    """Show SPEC as eqcell understands it: equations, states, weights, parameter count."""
    from .show import describe

    ir = _analyze(spec)
    click.echo(describe(ir, latex=latex, units=units, input_dim=input_dim or units))


BACKENDS = ("tensorflow", "jax", "torch")


@cli.command()
@click.argument("spec")
@click.option("--module", "module", default=None, metavar="PATH[:CLASS]",
              help="Verify this cell class instead of the generated one (a hand-written or hand-edited "
                   "cell; CLASS defaults to the spec's class name). Its weights must carry the generated "
                   "cell's fused names and shapes (`eqcell show SPEC`: e.g. kernel = [W_f | W_c], "
                   "(input_dim, 2 * units)); verify fills them by that layout. A layer class of the spec's "
                   "layer name in the same module is verified too. With --target torch: an nn.Module whose "
                   "parameters carry the torch target's names and shapes (weight_ih (out, in), ...).")
@click.option("--target", type=click.Choice(["keras", "tf-keras", "torch"]), default="keras", show_default=True,
              help="keras: keras.layers.RNN on the current KERAS_BACKEND; tf-keras: tf_keras.layers.RNN; "
                   "torch: the nn.Module cell and its nn.LSTM-like layer (num_layers, bidirectional, packed "
                   "sequences), in PyTorch itself.")
@click.option("--backend", "backends", default=None, metavar="LIST",
              help="Comma-separated Keras backends (tensorflow,jax,torch) or `all` (every one installed), "
                   "each verified in its own process with KERAS_BACKEND set (keras target). Default: the "
                   "current backend, in this process.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="First random seed: weights, inputs and initial states differ per check.")
def verify(spec, module, target, backends, seed):
    """Check a cell against SPEC's equations, evaluated independently in float64 numpy.

    Checks the cell's one step, keras.layers.RNN(cell) and the generated layer on each path it
    takes (projection hoisted or per step, loop or parallel scan, the JAX rematerialized step),
    with masks with gaps, go_backwards, initial states, the last output only, float32; and the
    layer's gradients against RNN(cell)'s and against finite differences of the equations.
    Random weights differ per parameter. The cell runs in float64 on TensorFlow, in float32 on
    JAX and torch (Keras computes float64 matmuls in float32 there). With --target torch: the
    nn.Module cell (batched and unbatched) and its layer in nn.LSTM's layouts (two layers,
    bidirectional, packed sequences, hx), each path (step loop, parallel), float64. Exit 0 when everything
    agrees, 1 when something differs (naming the check, the output or state, the step and the
    error), 2 for a spec or usage error.
    """
    from .api import analyze

    stdin = click.get_binary_stream("stdin").read() if spec == "-" else None
    loaded = _load(spec, stdin)
    try:
        analyze(loaded)  # a spec error is exit 2 before any framework loads
    except SpecError as err:
        raise SpecFailed(str(err)) from None
    if backends is not None:
        if backends.strip() == "all":
            import importlib.util

            backends = ",".join(b for b in BACKENDS if importlib.util.find_spec(b) is not None)
        chosen = [b.strip() for b in backends.split(",") if b.strip()]
        unknown = [b for b in chosen if b not in BACKENDS]
        if unknown or not chosen:
            raise click.UsageError(f"--backend: unknown backend {', '.join(unknown) or repr(backends)}; "
                                   f"choose from {', '.join(BACKENDS)}")
        if target == "torch":
            raise click.UsageError("--backend: the torch target runs on PyTorch itself, not on a Keras backend")
        if target == "tf-keras" and chosen != ["tensorflow"]:
            raise click.UsageError("--backend: the tf-keras target runs on TensorFlow only")
        from .verify import verify_backends

        argv = [spec, "--target", target, "--seed", str(seed)] + (["--module", module] if module else [])
        raise click.exceptions.Exit(verify_backends(argv, chosen, stdin, echo=click.echo))
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from .verify import VerifyError, verify as run_verify

    try:
        report = run_verify(loaded, module=module, target=target, seed=seed, echo=click.echo)
    except VerifyError as err:
        raise click.UsageError(str(err)) from None
    failed = [c for c in report.checks if not c.ok]
    if failed:
        names = ", ".join(dict.fromkeys(c.name for c in failed))
        click.echo(f"FAILED: {len(failed)} of {len(report.checks)} checks differ ({names}); "
                   f"{report.seconds:.1f} s")
        raise click.exceptions.Exit(1)
    click.echo(f"ok: {len(report.checks)} checks agree with the equations; {report.seconds:.1f} s")


@cli.command(name="list")
def list_specs():
    """List the shipped specs; their names work wherever SPEC is accepted."""
    from .spec import load_spec, shipped_names

    rows = []
    for name in shipped_names():
        spec = load_spec(name)
        rows.append((name, spec.name.value, (spec.description.strip().splitlines() or [""])[0]))
    widths = [max(len(row[i]) for row in rows) for i in range(2)] if rows else [0, 0]
    for name, cls, first in rows:
        click.echo(f"{name:<{widths[0]}}  {cls:<{widths[1]}}  {first}")


def main(argv=None):
    """Console entry point: click's exit codes, 1 for anything unexpected."""
    try:
        cli.main(args=argv, prog_name="eqcell", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as err:  # an eqcell bug: say so, exit 1
        click.echo(f"eqcell: internal error: {type(err).__name__}: {err}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
