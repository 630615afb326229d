"""Read-only mappings for the stages' results (a named tuple holding a dict is not frozen)."""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


def frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))
