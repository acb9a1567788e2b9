"""Shared plumbing of the read-only beamline-file datasets (MAPS, spectra, MATLAB).

Each dataset names a file, a list of files or a glob pattern (one file per angle);
:meth:`BeamlineFilesDataset.missing_reason` finds them and checks the requested
elements against the first file (its channel names, or the calibrated energy range
of its spectra) *before any work*, so ``kedro run`` stops with one line listing
what the file holds.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from xrf_sr_kedro.types import XRFStack


def resolve_paths(filepath: str | list[str]) -> list[str]:
    """The files of ``filepath`` (a path, a glob pattern or a list), sorted for a pattern."""
    if isinstance(filepath, (list, tuple)):
        return [str(p) for p in filepath]
    return sorted(glob.glob(filepath)) if glob.has_magic(filepath) else [filepath]


class BeamlineFilesDataset(AbstractDataset[None, XRFStack]):
    """Base of the read-only beamline readers; subclasses set ``_what``, ``_read`` and
    ``_check`` (the element check on one file)."""

    #: Measured data: never a node's output (see :mod:`xrf_sr_kedro.guards`).
    read_only = True
    _what = "beamline file"

    def __init__(self, filepath: str | os.PathLike | list[str], elements: list[str],
                 metadata: dict[str, Any] | None) -> None:
        if isinstance(elements, str):
            elements = [elements]
        if not elements:
            raise DatasetError(f"{type(self).__name__}: elements must list at least one line, "
                               "e.g. [Fe_K]")
        many = isinstance(filepath, list)
        self._filepath = [str(p) for p in filepath] if many else str(filepath)
        self._elements = list(elements)
        self.metadata = metadata

    def _read(self, paths: list[str]) -> XRFStack:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check(self, path: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self) -> XRFStack:
        reason = self.missing_reason()
        if reason:
            raise DatasetError(reason)
        return self._read(resolve_paths(self._filepath))

    def save(self, data: XRFStack) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only; save results with XRFHDF5Dataset")

    def _exists(self) -> bool:
        return self.missing_reason() is None

    def missing_reason(self) -> str | None:
        """Why the stack cannot be read (no file, a missing element), or None."""
        paths = resolve_paths(self._filepath)
        if not paths:
            return f"{self._filepath}: no {self._what} matches this pattern"
        missing = [p for p in paths if not Path(p).is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            return f"{missing[0]}: file not found{more} (expected a {self._what})"
        try:
            self._check(paths[0])
        except (ValueError, OSError, KeyError) as exc:
            return str(exc)
        return None


def describe(obj: BeamlineFilesDataset, **extra: Any) -> dict[str, Any]:
    """``_describe`` of a beamline dataset: the files, the elements and ``extra``."""
    return {"filepath": obj._filepath, "elements": obj._elements, **extra}


