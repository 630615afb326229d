"""Prints one step expression as TensorFlow code for the tf-keras (Keras 2) target."""
from __future__ import annotations

from collections.abc import Mapping

from .base import EqPrinter

TF_FUNCTIONS = {
    "sigmoid": "tf.sigmoid", "tanh": "tf.tanh", "relu": "tf.nn.relu",
    "hard_sigmoid": "tf_keras.activations.hard_sigmoid", "softplus": "tf.nn.softplus",
    "softsign": "tf.nn.softsign", "exp": "tf.exp", "log": "tf.math.log", "abs": "tf.abs",
    "sqrt": "tf.sqrt", "silu": "tf.nn.silu", "elu": "tf.nn.elu", "layer_norm": "_layer_norm",
}


class TfKerasPrinter(EqPrinter):
    """`tanh(z_c)` -> `self.activation(z_c)` or `tf.tanh(z_c)`."""

    def __init__(self, names: Mapping[str, str], exposed: Mapping[str, str]):
        super().__init__(names, {**TF_FUNCTIONS, **exposed})

    def _print_gelu(self, expr):
        if "gelu" in self._functions and self._functions["gelu"].startswith("self."):
            return self._print_Function(expr)
        return f"tf.nn.gelu({self._print(expr.args[0])}, approximate=False)"
