"""Checks and metadata helpers shared by every reader and writer in :mod:`xrf_sr_kedro.io`.

Errors for bad files are :class:`DataFormatError` (a ``ValueError``) or
``FileNotFoundError`` whose message names the file, the key and what was expected.
:func:`jsonable` is the one JSON sanitiser of the project (file metadata,
checkpoint provenance, enhancement metadata).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "COUNT_UNITS",
    "FITTED_UNITS",
    "METADATA_ATTR",
    "DataFormatError",
    "check_ndim",
    "check_pixel_size",
    "check_signal",
    "decode_metadata",
    "decode_names",
    "decode_str",
    "encode_metadata",
    "jsonable",
    "require_file",
]

#: Root attribute holding an object's metadata dict as JSON text.
METADATA_ATTR = "metadata_json"

#: Units whose values are photon counts and so must not be negative.
COUNT_UNITS = frozenset({"counts", "photons", "cts"})
#: Units of fitted (least-squares) maps: small negative values are fit noise and
#: are clipped to zero with a logged warning rather than refused.
FITTED_UNITS = frozenset({"fitted counts"})


class DataFormatError(ValueError):
    """A file lacks a key, or holds values of the wrong shape, type or range.

    The message always names the file, the key inside it and what was expected.
    """

    def __init__(self, path: str | os.PathLike, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.path}, key {key}: {problem}")


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return ``path`` as a Path, or raise FileNotFoundError naming ``what`` was expected."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file not found (expected {what})")
    return p


def check_signal(
    data: np.ndarray,
    *,
    path: str | os.PathLike,
    key: str,
    units: str,
) -> np.ndarray:
    """Check a signal array for NaN/inf and negative values; return it (maybe clipped).

    Parameters
    ----------
    data : ndarray
        The values read from ``path[key]``.
    path, key : str
        Where the values came from (for the error message).
    units : str
        Negative values are an error for count units (:data:`COUNT_UNITS`), are
        clipped to 0 with a logged warning for fitted units (:data:`FITTED_UNITS`)
        and are allowed otherwise (e.g. reconstructions in ``"a.u."``).

    Raises
    ------
    DataFormatError
        If ``data`` contains NaN or inf, or negative values in count units.
    """
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise DataFormatError(path, key, f"expected a real numeric array, got dtype {data.dtype}")
    finite = np.isfinite(data)
    if not finite.all():
        n_bad = int(data.size - finite.sum())
        raise DataFormatError(
            path, key, f"contains {n_bad} NaN/inf value(s) of {data.size}; expected finite values"
        )
    if units in COUNT_UNITS or units in FITTED_UNITS:
        negative = data < 0
        n_neg = int(negative.sum())
        if n_neg:
            if units in COUNT_UNITS:
                raise DataFormatError(
                    path,
                    key,
                    f"contains {n_neg} negative value(s) (min {float(data.min()):.4g}); "
                    f"expected non-negative {units!r}",
                )
            logger.warning(
                "%s, key %s: clipped %d negative fitted value(s) (min %.4g) to 0",
                path,
                key,
                n_neg,
                float(data.min()),
            )
            data = np.where(negative, 0, data).astype(data.dtype, copy=False)
    return data


def check_pixel_size(value: Any, *, path: str | os.PathLike, key: str) -> float:
    """Return ``value`` as a positive finite float or raise naming file and key."""
    if value is None:
        raise DataFormatError(
            path, key, "pixel size missing; expected a positive number in nm (pass pixel_size_nm)"
        )
    try:
        v = float(np.asarray(value).reshape(-1)[0]) if np.ndim(value) else float(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise DataFormatError(path, key, f"pixel size {value!r} is not a number in nm") from exc
    if not np.isfinite(v) or v <= 0:
        raise DataFormatError(path, key, f"pixel size must be a positive finite nm value, got {v}")
    return v


def check_ndim(data: Any, ndims: Sequence[int], *, path: Any, key: str, layout: str) -> None:
    """Raise DataFormatError naming ``path`` and ``key`` unless ``data.ndim`` is in ``ndims``."""
    if data.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise DataFormatError(path, key, f"expected {want} {layout}, got shape {data.shape}")


def jsonable(value: Any, *, strict: bool = False) -> Any:
    """A JSON-serialisable copy of ``value``: the one sanitiser for metadata and provenance.

    Dataclasses and dicts become dicts (keys as text), lists, tuples and sets become
    lists, NumPy arrays and scalars and torch tensors become lists and numbers,
    bytes become text and paths become strings.  Anything else becomes ``str(value)``,
    or raises TypeError when ``strict`` (file metadata must round-trip).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v, strict=strict) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v, strict=strict) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, strict=strict) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO":
            return [jsonable(v, strict=strict) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        return value.detach().cpu().tolist()
    if strict:
        raise TypeError(f"metadata value of type {type(value).__name__} is not JSON-serialisable")
    return str(value)


def encode_metadata(metadata: dict[str, Any]) -> str:
    """JSON text of ``metadata``; NumPy arrays and scalars become lists and numbers."""
    return json.dumps(jsonable(metadata or {}, strict=True), sort_keys=True)


def decode_metadata(text: Any, *, path: Any = "<memory>") -> dict[str, Any]:
    """Inverse of :func:`encode_metadata` (``None`` gives an empty dict)."""
    if text is None:
        return {}
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        out = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"/@{METADATA_ATTR}", f"is not valid JSON: {exc}") from exc
    if not isinstance(out, dict):
        raise DataFormatError(path, f"/@{METADATA_ATTR}", "expected a JSON object")
    return out


def decode_str(x: Any) -> str:
    """``x`` as text (HDF5 attributes come back as bytes or str)."""
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def decode_names(values: Any) -> list[str]:
    """Strings from an HDF5 string dataset (bytes or str, stripped of NULs/space)."""
    return [decode_str(v).strip().strip("\x00") for v in np.asarray(values).reshape(-1)]
