"""What differs between targets, in code that the printer and render write: one `Dialect` each.

What differs in the module's structure (imports, base classes, the layer's loop) lives in the
target's template (`templates/<target>.py.j2`), which fills the blocks of `templates/module.py.j2`."""
from __future__ import annotations

from typing import NamedTuple

from collections.abc import Mapping
from types import MappingProxyType


class Dialect(NamedTuple):
    target: str                     # "keras", "tf-keras", "torch"
    template: str                   # its template file in templates/
    lib: str                        # the Keras package the module imports: keras, tf_keras
    functions: Mapping[str, str]    # element-wise function -> code, `{}` standing for each argument
    matmul: str                     # one step: (batch, features) @ (features, width)
    sequence_matmul: str            # the same for a whole sequence (batch, T, features)
    split: str                      # value, sections
    split_at_indices: bool          # unequal sections as cut points (keras.ops.split), else sizes (tf.split)
    concat: str                     # a list of pieces, along the last axis
    full: Mapping[str, str]         # initial state kind -> code; {shape}, {dtype}, {value}, {weight}
    state_shape: str                # {batch}, {size}
    state_dtype: str
    single_state_bare: bool         # a one-state cell takes and returns a bare tensor, not a list
    is_nested: str                  # test that `states` is a list
    scan: bool                      # the layer has the parallel-scan path
    tensor: Mapping[str, str]       # explicit tensor node (eqcell.nodes) -> code; {0}, {1}: its arguments
    reshape: str                    # value, shape
    shape: str                      # a shape literal from its comma-separated sizes
    heads_matmul: str               # per-head values (..., heads, in) @ block-diagonal (heads, in, out)
    ops: Mapping[str, str]          # the parallel path's helpers' vocabulary (templates/parallel.py.j2)
    use_bias: str = "use_bias"      # the attribute that says whether the fused biases are used
    state_list: str = "[{}]"        # the states a step returns, from their comma-separated code
    split_count: str = ""           # a value cut into equal sections by their number, when not `split`
    fused_matmul: Mapping[str, str] = MappingProxyType({})   # "bias": x @ w + b in one call; "add": start + x @ w
    hoist_biases: bool = False      # a partly hoisted product adds all its biases once per sequence
    units: str = "units"            # the cell's attribute holding `units`
    input_dim: str = ""             # the cell's attribute holding the input's width, when its constructor takes it
    lerp: str = ""                  # (1 - a)*b + a*c in one call, lerp(b, c, a), where the framework has it
    keras_weights_doc: bool = True  # the class docstring lists the Keras weights (torch lists its parameters itself)


_COMMON = {"identity": "{}", "layer_norm": "_layer_norm({}, {}, {})"}

# what templates/parallel.py.j2 calls, each with the same arguments on every target; besides,
# `as_tensor` (a numpy mask as a tensor on a given device) where a target needs it
_PARALLEL_OPS = ("associative_scan", "cast", "concatenate", "cumsum", "einsum", "exp", "expand_dims", "eye", "flip",
                 "matmul", "maximum", "ones", "pad", "reshape", "shape", "solve_triangular", "stack", "sum",
                 "swapaxes", "transpose", "unstack", "where", "zeros", "zeros_like")

KERAS = Dialect(
    target="keras", template="keras.py.j2", lib="keras",
    functions=MappingProxyType({
        **_COMMON, "sigmoid": "ops.sigmoid({})", "tanh": "ops.tanh({})", "relu": "ops.relu({})",
        "hard_sigmoid": "ops.hard_sigmoid({})", "softplus": "ops.softplus({})",
        "softsign": "ops.softsign({})", "exp": "ops.exp({})", "log": "ops.log({})",
        "abs": "ops.absolute({})", "sqrt": "ops.sqrt({})", "silu": "ops.silu({})",
        "gelu": "ops.gelu({}, approximate=False)", "elu": "ops.elu({})", "logsigmoid": "ops.log_sigmoid({})",
        "max": "ops.maximum({}, {})", "min": "ops.minimum({}, {})"}),
    matmul="ops.matmul({}, {})", sequence_matmul="_matmul({}, {})",
    split="ops.split({}, {}, axis=-1)", split_at_indices=True, concat="ops.concatenate({}, axis=-1)",
    full=MappingProxyType({"zeros": "ops.zeros({shape}, dtype={dtype})", "ones": "ops.ones({shape}, dtype={dtype})",
                           "learned": "ops.broadcast_to(ops.cast({weight}, {dtype}), {shape})",
                           "number": "ops.full({shape}, {value}, dtype={dtype})"}),
    state_shape="(batch_size, {size})", state_dtype="self.compute_dtype",
    single_state_bare=False, is_nested="isinstance(states, (list, tuple))", scan=True,
    tensor=MappingProxyType({
        "MatrixVector": 'ops.einsum("...ij,...j->...i", {0}, {1})',
        "VectorMatrix": 'ops.einsum("...i,...ij->...j", {0}, {1})',
        "MatrixMatrix": "ops.matmul({0}, {1})",
        "Outer": 'ops.einsum("...i,...j->...ij", {0}, {1})',
        "DotProduct": "ops.sum({0} * {1}, axis=-1, keepdims=True)",
        "SwapAxes": "ops.swapaxes({0}, -1, -2)",
        "AsColumn": "ops.expand_dims({0}, -1)",
        "AsRow": "ops.expand_dims({0}, -2)",
        "Eye": "ops.eye({0}, dtype={owner}.compute_dtype)",
        "Norm": "ops.norm({0}, axis=-1, keepdims=True)"}),
    reshape="ops.reshape({}, {})", shape="({})", heads_matmul="_heads_matmul({}, {})",
    ops=MappingProxyType({**{name: f"ops.{name}" for name in _PARALLEL_OPS}, "as_tensor": ""}))

TF_KERAS = Dialect(
    target="tf-keras", template="tf_keras.py.j2", lib="tf_keras",
    functions=MappingProxyType({
        **_COMMON, "sigmoid": "tf.sigmoid({})", "tanh": "tf.tanh({})", "relu": "tf.nn.relu({})",
        "hard_sigmoid": "tf_keras.activations.hard_sigmoid({})", "softplus": "tf.nn.softplus({})",
        "softsign": "tf.nn.softsign({})", "exp": "tf.exp({})", "log": "tf.math.log({})",
        "abs": "tf.abs({})", "sqrt": "tf.sqrt({})", "silu": "tf.nn.silu({})",
        "gelu": "tf.nn.gelu({}, approximate=False)", "elu": "tf.nn.elu({})",
        "logsigmoid": "tf.math.log_sigmoid({})", "max": "tf.maximum({}, {})", "min": "tf.minimum({}, {})"}),
    matmul="tf.matmul({}, {})", sequence_matmul="tf.matmul({}, {})",
    split="tf.split({}, {}, axis=-1)", split_at_indices=False, concat="tf.concat({}, axis=-1)",
    full=MappingProxyType({"zeros": "tf.zeros({shape}, dtype={dtype})", "ones": "tf.ones({shape}, dtype={dtype})",
                           "learned": "tf.broadcast_to(tf.cast({weight}, {dtype}), {shape})",
                           "number": "tf.fill({shape}, tf.cast({value}, {dtype}))"}),
    state_shape="[batch_size, {size}]", state_dtype="dtype",
    single_state_bare=True, is_nested="tf.nest.is_nested(states)", scan=True,
    tensor=MappingProxyType({
        "MatrixVector": 'tf.einsum("...ij,...j->...i", {0}, {1})',
        "VectorMatrix": 'tf.einsum("...i,...ij->...j", {0}, {1})',
        "MatrixMatrix": "tf.matmul({0}, {1})",
        "Outer": 'tf.einsum("...i,...j->...ij", {0}, {1})',
        "DotProduct": "tf.reduce_sum({0} * {1}, axis=-1, keepdims=True)",
        "SwapAxes": "tf.linalg.matrix_transpose({0})",
        "AsColumn": "tf.expand_dims({0}, -1)",
        "AsRow": "tf.expand_dims({0}, -2)",
        "Eye": "tf.eye({0}, dtype={owner}.compute_dtype)",
        "Norm": "tf.norm({0}, axis=-1, keepdims=True)"}),
    reshape="tf.reshape({}, {})", shape="[{}]", heads_matmul="_heads_matmul({}, {})",
    ops=MappingProxyType({
        **{name: f"tf.{name}" for name in _PARALLEL_OPS},
        "associative_scan": "",  # none in TensorFlow: the blocked scan, and the loop for an unknown length
        "concatenate": "tf.concat", "flip": "_flip", "shape": "_shape", "solve_triangular": "tf.linalg.triangular_solve",
        "sum": "tf.reduce_sum", "swapaxes": "tf.experimental.numpy.swapaxes", "as_tensor": ""}))

TORCH = Dialect(
    target="torch", template="torch.py.j2", lib="torch",
    functions=MappingProxyType({
        **_COMMON, "sigmoid": "torch.sigmoid({})", "tanh": "torch.tanh({})", "relu": "torch.relu({})",
        "hard_sigmoid": "F.hardsigmoid({})", "softplus": "F.softplus({})", "softsign": "F.softsign({})",
        "exp": "torch.exp({})", "log": "torch.log({})", "abs": "torch.abs({})", "sqrt": "torch.sqrt({})",
        "silu": "F.silu({})", "gelu": "F.gelu({})", "elu": "F.elu({})", "logsigmoid": "F.logsigmoid({})",
        "max": "torch.maximum({}, {})", "min": "torch.minimum({}, {})"}),
    matmul="F.linear({}, {})", sequence_matmul="F.linear({}, {})",   # weights stored (out, in), as nn.Linear
    split="torch.split({}, {}, dim=-1)", split_at_indices=False, concat="torch.cat({}, dim=-1)",
    full=MappingProxyType({"zeros": "torch.zeros({shape}, dtype={dtype}, device=device)",
                           "ones": "torch.ones({shape}, dtype={dtype}, device=device)",
                           "learned": "{weight}.to(dtype).expand({shape})",
                           "number": "torch.full({shape}, {value}, dtype={dtype}, device=device)"}),
    state_shape="(batch_size, {size})", state_dtype="dtype",
    single_state_bare=True, is_nested="isinstance(states, (list, tuple))", scan=True,
    tensor=MappingProxyType({
        "MatrixVector": 'torch.einsum("...ij,...j->...i", {0}, {1})',
        "VectorMatrix": 'torch.einsum("...i,...ij->...j", {0}, {1})',
        "MatrixMatrix": "torch.matmul({0}, {1})",
        "Outer": 'torch.einsum("...i,...j->...ij", {0}, {1})',
        "DotProduct": "torch.sum({0} * {1}, dim=-1, keepdim=True)",
        "SwapAxes": "torch.transpose({0}, -1, -2)",
        "AsColumn": "torch.unsqueeze({0}, -1)",
        "AsRow": "torch.unsqueeze({0}, -2)",
        "Eye": "torch.eye({0}, dtype={owner}.weight_ih.dtype, device={owner}.weight_ih.device)",
        "Norm": "torch.linalg.vector_norm({0}, dim=-1, keepdim=True)"}),
    reshape="torch.reshape({}, {})", shape="({})", heads_matmul="_heads_matmul({}, {})",
    ops=MappingProxyType({
        **{name: f"torch.{name}" for name in _PARALLEL_OPS},
        "associative_scan": "",  # none public in PyTorch: the blocked scan
        "cast": "", "flip": "",  # the layer's own `_scan` (templates/torch.py.j2) needs neither
        "as_tensor": "torch.as_tensor", "concatenate": "torch.cat", "expand_dims": "torch.unsqueeze",
        "pad": "_pad", "shape": "_shape", "solve_triangular": "_solve_triangular", "transpose": "torch.permute",
        "unstack": "torch.unbind"}),
    use_bias="bias", state_list="({})", split_count="torch.chunk({}, {}, dim=-1)",
    fused_matmul=MappingProxyType({"bias": "F.linear({}, {}, {})", "add": "torch.addmm({}, {}, {}.t())"}),
    hoist_biases=True, units="hidden_size", input_dim="self.input_size", lerp="torch.lerp({}, {}, {})",
    keras_weights_doc=False)

DIALECTS = {d.target: d for d in (KERAS, TF_KERAS, TORCH)}
TARGETS = tuple(DIALECTS)
