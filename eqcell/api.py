"""The Python API: generate, load, analyze. A spec is a path, a shipped name, or YAML text."""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

from .analyze import analyze as _analyze
from .ir import CellIR
from .render import render


def analyze(spec: str | Path) -> CellIR:
    """The CellIR of a spec: states, parameters, fused weights, ordered step."""
    return _analyze(spec)


def generate(spec: str | Path, target: str = "keras") -> str:
    """The generated module's text for `target` ("keras" or "tf-keras")."""
    return render(_analyze(spec), target)


class _GeneratedLoader(importlib.abc.SourceLoader):
    """Imports a generated module from its text, so tracebacks and `inspect` show its source."""

    def __init__(self, filename: str, code: str):
        self.filename, self.code = filename, code

    def get_filename(self, fullname):
        return self.filename

    def get_data(self, path):
        return self.code.encode("utf-8")


def load(spec: str | Path, target: str = "keras"):
    """The generated cell class, imported from memory and registered for serialization.

    The module stays in `sys.modules` as `eqcell_generated_<name>_<target>_<digest>`; its
    full-sequence layer is `sys.modules[cls.__module__].<layer name>` (`load_layer` returns it)."""
    ir = _analyze(spec)
    code = render(ir, target)
    name = f"eqcell_generated_{ir.name}_{target.replace('-', '_')}_{ir.digest}"
    if name not in sys.modules:
        loader = _GeneratedLoader(f"<eqcell:{ir.name}:{target}>", code)
        module_spec = importlib.util.spec_from_loader(name, loader)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return getattr(sys.modules[name], ir.name)


def load_layer(spec: str | Path, target: str = "keras"):
    """The generated full-sequence layer class (e.g. `SLSTM`), imported as `load` does."""
    cell = load(spec, target)
    return getattr(sys.modules[cell.__module__], _analyze(spec).layer)
