"""Stage 7: names. The one owner of every identifier a generated module binds.

A spec may use any identifier that is not a Python keyword or dunder, so its names meet the
generator's in one module: a variable called `frame`, `keep` or `inputs`, a parameter called
`kernel` or `weights`. Each namespace is filled in a fixed order and a name already taken gets a
trailing underscore (PEP 8's way around a clash), so no collision can happen and the choice does
not depend on anything but the spec and the templates:

- locals of the step (the cell's methods and the layer's scan): the input is `inputs`; then the
  spec's variables, their t-1 values (`c_tm1`), the generator's own values (`z_f`, `z`, `h_tm1_dp`),
  each avoiding every name the templates use and Python's builtins;
- attributes and constructor arguments of the cell: the fused weights keep Keras's names
  (`kernel`, `recurrent_kernel`, `bias`), then named sizes, exposed activations, and parameters
  stored as their own weight, each avoiding what the cell inherits from Keras (`weights`, `name`,
  `dtype`, ...), what the templates set, and its `<arg>_initializer`/`_regularizer`/`_constraint`;
- module globals: the cell and layer classes avoid the templates' imports and helpers.

Comments, docstrings and `symbol_weights` keep the spec's names."""
from __future__ import annotations

from typing import NamedTuple

import builtins
import keyword
from collections.abc import Iterable, Mapping

from .. import nodes
from .frozen import frozen
from .keras_names import INHERITED_ATTRIBUTES
from .structure import Structure

WEIGHT_ARGUMENT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


class ModuleNames(NamedTuple):
    """What the templates themselves write, outside their Jinja tags (render.module_names)."""

    names: frozenset[str]          # identifiers written bare: locals, arguments, globals, builtins
    attributes: frozenset[str]     # identifiers written after a dot, and the methods defined


class Names(NamedTuple):
    local: Mapping[str, str]       # symbol name (variable, t-1 read, generated local, input) -> identifier
    attribute: Mapping[str, str]   # weight (`$kernel`: made by eqcell; `w`: a lone parameter) -> attribute
    argument: Mapping[str, str]    # weight's own name -> its constructor arguments' prefix
    size: Mapping[str, str]        # named size -> constructor argument and attribute
    activation: Mapping[str, str]  # activation argument as written -> constructor argument and attribute
    constant: Mapping[str, str]    # constant as written -> constructor argument and attribute
    cell: str
    layer: str


class _Namespace:
    def __init__(self, taken: Iterable[str]):
        self.taken = set(taken)

    def claim(self, name: str) -> str:
        """`name`, with underscores appended until it is free."""
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


def choose_names(structure: Structure, weights, locals_: Iterable[str], sizes: Iterable[str],
                 activation_args: Iterable[str], cell: str, layer: str, module: ModuleNames) -> Names:
    """`weights`: (own name, kind, constructor prefix) of every weight, in build order; `locals_`:
    the generated locals' symbol names (`nodes.local`), in the order they are computed."""
    python = set(dir(builtins)) | set(keyword.kwlist)  # `lambda` (\lambda in a paper) is a spec name
    step = _Namespace(module.names | python)
    local = {structure.input: "inputs"}
    for v in structure.variables:
        local[v] = step.claim(v)
    for v in structure.variables:
        local[nodes.prev(v).name] = step.claim(f"{v}_tm1")
    if structure.input_prev:  # x_{t-1}, the previous input
        local[nodes.prev(structure.input).name] = step.claim(f"{structure.input}_tm1")
    for name in locals_:
        hint = nodes.local_hint(name)
        local[name] = step.claim(hint.replace(nodes.PREV_MARK, "_tm1") if hint else name)

    members = _Members(INHERITED_ATTRIBUTES | module.attributes | set(keyword.kwlist), module.names | python)
    attribute, argument = {}, {}
    for own, kind, prefix in weights:  # fused weights first: they keep Keras's names
        if kind != "vector":
            attribute[own] = members.claim(nodes.local_hint(own) or own, (), argument=False)
            argument[own] = members.claim(prefix, WEIGHT_ARGUMENT_SUFFIXES, argument=True, bare=False)
    size = {s: members.claim(s, (), argument=True) for s in sizes}
    activation = {a: members.claim(a, (), argument=True) for a in activation_args}
    constant = {c: members.claim(c, (), argument=True) for c in structure.constants}
    for own, kind, _ in weights:  # a parameter stored as its own weight: w, w_initializer, ...
        if kind == "vector":
            attribute[own] = argument[own] = members.claim(own, WEIGHT_ARGUMENT_SUFFIXES, argument=False)

    module_globals = _Namespace(module.names | python)
    cell_class = module_globals.claim(cell)
    return Names(frozen(local), frozen(attribute), frozen(argument), frozen(size), frozen(activation),
                 frozen(constant), cell_class, module_globals.claim(layer))


class _Members:
    """The cell's attributes and constructor arguments: every argument is also an attribute
    (`self.units`, `self.kernel_initializer`), so both are claimed from one pool; an argument
    also avoids the names `__init__` reads (builtins, module globals, the other arguments)."""

    def __init__(self, attributes: frozenset[str], code_names: frozenset[str]):
        self.attributes = set(attributes)
        self.arguments = set(attributes) | set(code_names)

    def claim(self, name: str, derived: tuple[str, ...], argument: bool, bare: bool = True) -> str:
        """`name` (and `name + d` for each derived suffix) with underscores appended until free;
        `bare=False`: only the derived names are bound (a weight's argument prefix)."""
        if name.startswith("__"):  # self.__x would be name-mangled; getattr could not find it
            name = "w" + name
        while True:
            bound = ([name] if bare else []) + [name + d for d in derived]
            if not any(b in self.arguments if argument or b != name else b in self.attributes for b in bound):
                break
            name += "_"
        self.attributes.update(bound)
        self.arguments.update(bound)
        return name
