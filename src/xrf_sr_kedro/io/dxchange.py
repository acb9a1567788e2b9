"""Read APS Data Exchange HDF5 transmission tomography files (no dxchange needed)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py
import numpy as np

from xrf_sr_kedro.io.hdf5 import read_theta_deg

__all__ = ["TransmissionData", "read_transmission", "transmission_to_sinogram"]

_KEYS = {
    "data": "exchange/data",
    "white": "exchange/data_white",
    "dark": "exchange/data_dark",
    "theta_deg": "exchange/theta",
}


@dataclass(frozen=True)
class TransmissionData:
    """Raw transmission projections with their flat and dark fields.

    Attributes
    ----------
    data : ndarray, shape (n_angles, n_rows, n_cols), float32
    white : ndarray, shape (n_white, n_rows, n_cols), float32
        Flat (open beam) fields.
    dark : ndarray, shape (n_dark, n_rows, n_cols), float32
    theta_deg : ndarray, shape (n_angles,), float64
        Rotation angles in degrees.
    source : str
        File the data came from.
    """

    data: np.ndarray
    white: np.ndarray
    dark: np.ndarray
    theta_deg: np.ndarray
    source: str = ""


def read_transmission(path: str | os.PathLike) -> TransmissionData:
    """Read ``exchange/{data, data_white, data_dark, theta}`` from a Data Exchange file.

    ``theta`` is read by :func:`xrf_sr_kedro.io.hdf5.read_theta_deg`, the one
    reader of Data Exchange angles: degrees, unless the dataset's ``units``
    attribute says radians.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    KeyError
        Naming the file and the missing dataset.
    ValueError
        If the shapes do not agree (a DataFormatError for ``exchange/theta``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Data Exchange file not found: {path}")
    arrays = {}
    with h5py.File(path, "r") as f:
        for name, key in _KEYS.items():
            if key not in f:
                raise KeyError(f"{path}: missing dataset '{key}' (needed for {name})")
            if name != "theta_deg":
                arrays[name] = np.asarray(f[key][()])
        theta = read_theta_deg(f, path, f[_KEYS["data"]].shape[0])
    data = arrays["data"].astype(np.float32)
    white = arrays["white"].astype(np.float32)
    dark = arrays["dark"].astype(np.float32)
    if data.ndim != 3:
        raise ValueError(f"{path}: exchange/data must be 3-D, got shape {data.shape}")
    for name, arr in (("data_white", white), ("data_dark", dark)):
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != data.shape[1:]:
            raise ValueError(
                f"{path}: exchange/{name} shape {arr.shape} does not match the projections "
                f"{data.shape[1:]}"
            )
    white = white.reshape(-1, *data.shape[1:])
    dark = dark.reshape(-1, *data.shape[1:])
    return TransmissionData(data=data, white=white, dark=dark, theta_deg=theta, source=path)


def transmission_to_sinogram(
    data: np.ndarray, white: np.ndarray, dark: np.ndarray, min_transmission: float = 1e-6
) -> np.ndarray:
    """Line integrals ``-log((data - dark) / (white - dark))``.

    ``white`` and ``dark`` are averaged over their first axis when they are
    stacks (3-D).  Transmissions that are not positive (dead pixels, dark
    above signal) are clipped to ``min_transmission`` before the log.

    Returns
    -------
    ndarray, same shape as ``data``, float32
    """
    data = np.asarray(data, dtype=np.float32)
    white = np.asarray(white, dtype=np.float32)
    dark = np.asarray(dark, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"data must be 3-D (n_angles, n_rows, n_cols), got shape {data.shape}")
    white = white.mean(axis=0) if white.ndim == 3 else white
    dark = dark.mean(axis=0) if dark.ndim == 3 else dark
    for name, arr in (("white", white), ("dark", dark)):
        if arr.shape != data.shape[1:]:
            raise ValueError(
                f"{name} must have shape {data.shape[1:]} (or a stack of those), got {arr.shape}"
            )
    den = white - dark
    trans = np.where(den > 0, (data - dark) / np.where(den > 0, den, 1.0), min_transmission)
    trans = np.clip(trans, min_transmission, None)
    return (-np.log(trans)).astype(np.float32)
