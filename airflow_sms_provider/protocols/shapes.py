"""Checks of an answer's shape shared by the providers' parsers: what a paid call's data or a list page holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def object_data(value: Any) -> dict[str, Any]:
    """``value`` as a dict, or ValueError: raised inside a parser, so after a paid request the transport
    reports an answer that cannot be read (the call may have been carried out), not a failure like any other."""
    if not isinstance(value, Mapping):
        raise ValueError(f"data of type {type(value).__name__} where an object belongs")
    return dict(value)


def non_object_types(items: Any, objects: frozenset[type] = frozenset({dict})) -> list[str]:
    """The names of the types in ``items`` (a list) that are not ``objects``, sorted; ``items`` that is not
    a list names its own type. Empty when every item is an object. The types are collected in C."""
    odd = set(map(type, items)) - objects if isinstance(items, list) else {type(items)}
    return sorted(kind.__name__ for kind in odd)
