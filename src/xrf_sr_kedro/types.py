"""Containers that carry arrays together with their physical metadata.

These frozen dataclasses are the currency between pipelines: every array that is
saved or passed between Kedro nodes travels with its pixel size (nm), its angles
(degrees) and its element names.  They import nothing from Kedro and validate
their own shape on construction, naming the field and the expected shape.

Layout conventions
------------------
* ``XRFStack.data`` has shape ``(n_elements, n_frames, H, W)``.  Frames are the
  projections of a tomography series (then ``angles_deg`` has one entry a frame)
  or independent maps (``angles_deg`` is ``None``).
* ``Volume.data`` has shape ``(n_elements, n_slices, N, N)``: slices are along the
  rotation axis (the detector rows), each slice is the ``N x N`` plane
  perpendicular to it.
* ``PatchPairs.lr`` / ``.hr`` have shapes ``(n, 1, h, w)`` and ``(n, 1, h*s, w*s)``
  with values in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xrf_sr_kedro.validation import positive_float


def _set_elemental_array(obj: Any, layout: str, size_field: str) -> np.ndarray:
    """Validate and normalise ``obj.data`` (4-D float32), its size field and elements."""
    name = type(obj).__name__
    data = np.asarray(obj.data)
    if data.ndim != 4:
        raise ValueError(f"{name}.data must be 4-D {layout}, got shape {data.shape}")
    data = data.astype(np.float32, copy=False)
    object.__setattr__(obj, "data", data)
    object.__setattr__(obj, size_field, positive_float(size_field, getattr(obj, size_field)))
    elements = tuple(str(e) for e in obj.elements)
    if len(elements) != data.shape[0]:
        raise ValueError(
            f"{name} has {data.shape[0]} element channels but {len(elements)} "
            f"element names {elements}"
        )
    object.__setattr__(obj, "elements", elements)
    return data


@dataclass(frozen=True)
class XRFStack:
    """Elemental XRF maps, optionally a tomographic projection series.

    Attributes
    ----------
    data : ndarray, shape (n_elements, n_frames, H, W), float32
        Fluorescence signal in ``units`` (counts by default).
    pixel_size_nm : float
        Size of one pixel (the scan step) in nm.
    elements : tuple of str
        Emission line of each element channel, PyXRF style (``"Zn_K"``).
    angles_deg : ndarray of shape (n_frames,) or None
        Rotation angle of each projection in degrees; ``None`` for plain maps.
    units : str
        Physical unit of ``data``.
    metadata : dict
        Provenance (source file, checkpoint, normalisation, ...); JSON-serialisable.
    """

    data: np.ndarray
    pixel_size_nm: float
    elements: tuple[str, ...]
    angles_deg: np.ndarray | None = None
    units: str = "counts"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = _set_elemental_array(self, "(n_elements, n_frames, H, W)", "pixel_size_nm")
        if self.angles_deg is not None:
            angles = np.asarray(self.angles_deg, dtype=np.float64).reshape(-1)
            if angles.shape[0] != data.shape[1]:
                raise ValueError(
                    f"XRFStack has {data.shape[1]} frames but {angles.shape[0]} angles"
                )
            if not np.all(np.isfinite(angles)):
                raise ValueError("XRFStack.angles_deg contains NaN or inf")
            object.__setattr__(self, "angles_deg", angles)

    @property
    def n_frames(self) -> int:
        return int(self.data.shape[1])

    @property
    def shape_hw(self) -> tuple[int, int]:
        return int(self.data.shape[2]), int(self.data.shape[3])

    def select_elements(self, elements: list[str] | tuple[str, ...]) -> XRFStack:
        """Return a stack restricted to ``elements`` (in that order)."""
        missing = [e for e in elements if e not in self.elements]
        if missing:
            raise KeyError(
                f"element(s) {missing} not in stack; available: {list(self.elements)}"
            )
        idx = [self.elements.index(e) for e in elements]
        return replace(self, data=self.data[idx], elements=tuple(elements))

    def select_frames(self, index: np.ndarray | slice | list[int]) -> XRFStack:
        """Return a stack with the frames ``index`` (e.g. every second projection)."""
        angles = None if self.angles_deg is None else self.angles_deg[index]
        return replace(self, data=self.data[:, index], angles_deg=angles)


@dataclass(frozen=True)
class Volume:
    """A reconstructed (or ground-truth) elemental volume.

    Attributes
    ----------
    data : ndarray, shape (n_elements, n_slices, N, N), float32
        Concentration (or reconstructed signal) in ``units``.
    voxel_size_nm : float
        Edge length of one cubic voxel in nm.
    elements : tuple of str
    units : str
    metadata : dict
    """

    data: np.ndarray
    voxel_size_nm: float
    elements: tuple[str, ...]
    units: str = "a.u."
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _set_elemental_array(self, "(n_elements, n_slices, N, N)", "voxel_size_nm")


@dataclass(frozen=True)
class PatchPairs:
    """Low/high-resolution training patch pairs, values in [0, 1].

    Attributes
    ----------
    lr : ndarray, shape (n, 1, h, w), float32
        Fly-scanned, noisy, normalised low-resolution patches.
    hr : ndarray, shape (n, 1, h * scale, w * scale), float32
        Matching high-resolution patches.
    lr_pixel_size_nm, hr_pixel_size_nm : float
    metadata : dict
        Source images, probe, noise level, normalisation scale factors.
    """

    lr: np.ndarray
    hr: np.ndarray
    lr_pixel_size_nm: float
    hr_pixel_size_nm: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        lr = np.asarray(self.lr, dtype=np.float32)
        hr = np.asarray(self.hr, dtype=np.float32)
        if lr.ndim != 4 or hr.ndim != 4:
            raise ValueError(
                f"PatchPairs.lr and .hr must be 4-D (n, 1, h, w), got {lr.shape} and {hr.shape}"
            )
        if lr.shape[0] != hr.shape[0] or lr.shape[1] != hr.shape[1]:
            raise ValueError(f"PatchPairs lr {lr.shape} and hr {hr.shape} do not pair up")
        if hr.shape[2] % lr.shape[2] or hr.shape[3] % lr.shape[3] or (
            hr.shape[2] // lr.shape[2] != hr.shape[3] // lr.shape[3]
        ):
            raise ValueError(
                f"PatchPairs hr {hr.shape[2:]} is not an integer multiple of lr {lr.shape[2:]}"
            )
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "hr", hr)
        object.__setattr__(
            self,
            "lr_pixel_size_nm",
            positive_float("lr_pixel_size_nm", self.lr_pixel_size_nm),
        )
        object.__setattr__(
            self,
            "hr_pixel_size_nm",
            positive_float("hr_pixel_size_nm", self.hr_pixel_size_nm),
        )

    @property
    def scale(self) -> int:
        return int(self.hr.shape[2] // self.lr.shape[2])

    def __len__(self) -> int:
        return int(self.lr.shape[0])


@dataclass(frozen=True)
class ProbeIntensity:
    """Normalised probe intensity ``sum_k |P_k|^2`` (sums to 1) on a pixel grid.

    Attributes
    ----------
    intensity : ndarray, shape (h, w), float32, non-negative, sum 1
    pixel_size_nm : float
    metadata : dict
        Where it came from (ptychography file, zone-plate parameters, FWHM in nm).
    """

    intensity: np.ndarray
    pixel_size_nm: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = np.asarray(self.intensity, dtype=np.float64)
        if p.ndim != 2:
            raise ValueError(f"probe intensity must be 2-D, got shape {p.shape}")
        if not np.all(np.isfinite(p)):
            raise ValueError("probe intensity contains NaN or inf")
        if np.any(p < 0) or p.sum() <= 0:
            raise ValueError("probe intensity must be non-negative with a positive sum")
        object.__setattr__(self, "intensity", (p / p.sum()).astype(np.float32))
        object.__setattr__(
            self, "pixel_size_nm", positive_float("pixel_size_nm", self.pixel_size_nm)
        )
