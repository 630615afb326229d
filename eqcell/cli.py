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


TARGET = click.Choice(["keras", "tf-keras"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eqcell")
def cli():
    """Recurrent cells from a paper's equations: a YAML spec in, a Keras cell module out.

    SPEC is a spec file, a shipped spec name (see `eqcell list`), or `-` for standard input.
    """


def _analyze(spec: str):
    """The CellIR of SPEC (`-`: standard input); a spec error becomes exit 2."""
    from .api import analyze
    from .spec import load_spec

    try:
        if spec == "-":
            return analyze(load_spec(click.get_text_stream("stdin").read(), display_name="<stdin>"))
        return analyze(spec)
    except SpecError as err:
        raise SpecFailed(str(err)) from None


@cli.command()
@click.argument("spec")
@click.option("-o", "--output", "output", default=None, metavar="PATH",
              help="File to write; `-` for standard output. Default: the class name in snake_case "
                   "(SLSTMCell -> slstm_cell.py) in the current folder.")
@click.option("--target", type=TARGET, default="keras", show_default=True,
              help="keras: a Keras 3 cell (TF, JAX, torch); tf-keras: a tf_keras AbstractRNNCell.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def generate(spec, output, target, force):
    """Generate the cell module for SPEC."""
    from .render import render, snake_case

    ir = _analyze(spec)
    code = render(ir, target)
    if output == "-":
        click.echo(code, nl=False)
        return
    path = Path(output) if output else Path(f"{snake_case(ir.name)}.py")
    if path.is_dir() or output and output.endswith(("/", "\\")):
        raise click.UsageError(f"{output} is a folder; give a file name, e.g. {path / f'{snake_case(ir.name)}.py'}")
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


@cli.command(name="list")
def list_specs():
    """List the shipped specs; their names work wherever SPEC is accepted."""
    from .spec import load_spec, shipped_names

    for name in shipped_names():
        spec = load_spec(name)
        first = (spec.description.strip().splitlines() or [""])[0]
        click.echo(f"{name:<12} {spec.name.value:<16} {first}")


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
