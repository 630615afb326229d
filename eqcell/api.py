"""The Python API: generate, load, analyze. A spec is a path, a shipped name, or YAML text."""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

from .analyze import analyze as _analyze
from .ir import CellIR
from .render import module_names, render
from .spec import Spec, load_spec


def analyze(spec: str | Path | bytes | Spec) -> CellIR:
    """The CellIR of a spec: states, parameters, fused weights, ordered step."""
    return _analyze(spec if isinstance(spec, Spec) else load_spec(spec), module_names())


def generate(spec: str | Path | bytes | Spec, target: str = "keras") -> str:
    """The generated module's text for `target` ("keras", "tf-keras" or "torch")."""
    return render(analyze(spec), target)


class _GeneratedLoader(importlib.abc.SourceLoader):
    """Imports a generated module from its text, so tracebacks and `inspect` show its source."""

    def __init__(self, filename: str, code: str):
        self.filename, self.code = filename, code

    def get_filename(self, fullname):
        return self.filename

    def get_data(self, path):
        return self.code.encode("utf-8")


def _module(ir: CellIR, target: str):
    name = f"eqcell_generated_{ir.name}_{target.replace('-', '_')}_{ir.digest}"
    if name not in sys.modules:
        loader = _GeneratedLoader(f"<eqcell:{ir.name}:{target}>", render(ir, target))
        module_spec = importlib.util.spec_from_loader(name, loader)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    elif target != "torch":  # loaded before: its classes again own their registered Keras names
        _register(sys.modules[name], ir, target)
    return sys.modules[name]


def _register(module, ir: CellIR, target: str) -> None:
    lib = __import__("tf_keras" if target == "tf-keras" else "keras")
    for cls in (getattr(module, ir.name), getattr(module, ir.layer)):
        lib.saving.register_keras_serializable(package="eqcell")(cls)


def load(spec: str | Path | bytes | Spec, target: str = "keras"):
    """The generated cell class, imported from memory and registered for serialization (Keras
    targets; the torch target's modules need no registry: their state_dict holds the weights).

    The module stays in `sys.modules` as `eqcell_generated_<name>_<target>_<digest>`; its
    full-sequence layer is `sys.modules[cls.__module__].<layer name>` (`load_layer` returns it)."""
    ir = analyze(spec)
    return getattr(_module(ir, target), ir.name)


def load_layer(spec: str | Path | bytes | Spec, target: str = "keras"):
    """The generated full-sequence layer class (e.g. `SLSTM`), imported as `load` does."""
    ir = analyze(spec)
    return getattr(_module(ir, target), ir.layer)
