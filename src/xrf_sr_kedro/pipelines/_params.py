"""Typed node parameters.

Kedro 1.7 builds the dataclass annotated on a node's ``params:<pipeline>.<group>``
argument from the YAML.  A plain dataclass accepts anything, so every parameter
class is wrapped by :func:`validated`: pydantic then checks each field's type and
rejects unknown keys, and Kedro stops the run with a message naming the parameter,
e.g. ``Failed to instantiate ScanParams for parameter 'simulation.scan':
step_px  Input should be a valid integer``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import pydantic
from pydantic import ConfigDict

T = TypeVar("T")

_CONFIG = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def validated(cls: type[T]) -> type[T]:
    """Frozen, type-checked version of dataclass ``cls`` (also usable as a decorator).

    Applied to a domain dataclass (e.g. ``TrainConfig``) it returns a validating
    subclass, so the domain code keeps its plain dataclass and the YAML is checked
    against the very same fields.
    """
    return pydantic.dataclasses.dataclass(cls, frozen=True, config=_CONFIG)


def known_parameter_groups(conf_base: str | os.PathLike) -> list[str]:
    """Top-level keys of ``conf_base/parameters*.yml``: the groups the project reads.

    The base environment is the one source of the parameter names; an environment
    may override their values but not add a group.
    """
    import yaml

    keys: set[str] = set()
    for path in sorted(Path(conf_base).glob("parameters*.yml")):
        keys.update((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).keys())
    return sorted(keys)


def check_top_level_keys(params: dict, known: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError naming a top-level parameter key that is not in ``known``.

    A misspelled group (``enhancment:``) would otherwise be ignored silently and the
    defaults used.
    """
    import difflib

    for key in params:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of {sorted(known)}"
        raise ValueError(f"unknown top-level parameter key {key!r} in conf/*/parameters*.yml: {hint}")
