"""Prints one step expression as Keras 3 code (`keras.ops`, runs on every backend)."""
from __future__ import annotations

from collections.abc import Mapping

from .base import EqPrinter

KERAS_FUNCTIONS = {
    "sigmoid": "ops.sigmoid", "tanh": "ops.tanh", "relu": "ops.relu",
    "hard_sigmoid": "ops.hard_sigmoid", "softplus": "ops.softplus", "softsign": "ops.softsign",
    "exp": "ops.exp", "log": "ops.log", "abs": "ops.absolute", "sqrt": "ops.sqrt",
    "silu": "ops.silu", "elu": "ops.elu", "layer_norm": "_layer_norm",
}


class KerasPrinter(EqPrinter):
    """`tanh(z_c)` -> `self.activation(z_c)` or `ops.tanh(z_c)`; names come from the analysis."""

    def __init__(self, names: Mapping[str, str], exposed: Mapping[str, str]):
        super().__init__(names, {**KERAS_FUNCTIONS, **exposed})

    def _print_gelu(self, expr):
        if "gelu" in self._functions and self._functions["gelu"].startswith("self."):
            return self._print_Function(expr)
        return f"ops.gelu({self._print(expr.args[0])}, approximate=False)"
