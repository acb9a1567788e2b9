"""Which files this project wrote: the guard against overwriting a user's data.

Every HDF5 file :func:`xrf_sr_kedro.io.hdf5.save_h5` writes carries the root
attribute ``creator = "xrf_sr_kedro"``.  :func:`refuse_foreign_overwrite` stops a
save that would replace an existing file without it (a measured Data Exchange
file, another program's output): the project never overwrites data it did not
write.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Root attribute and value written on every HDF5 file the project saves.
CREATOR_ATTR = "creator"
CREATOR = "xrf_sr_kedro"


class ProtectedDataError(PermissionError):
    """A save would overwrite data the project must not touch (one-line message)."""


def written_by_project(path: str | os.PathLike) -> bool:
    """True if ``path`` is an HDF5 file whose root ``creator`` is ``xrf_sr_kedro``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get(CREATOR_ATTR)
    except OSError:  # not HDF5, truncated, unreadable: not ours
        return False
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value == CREATOR


def refuse_foreign_overwrite(path: str | os.PathLike) -> None:
    """Raise :class:`ProtectedDataError` if ``path`` exists and the project did not write it.

    Raises
    ------
    ProtectedDataError
        Naming the file and what to do (point the catalog entry elsewhere).
    """
    p = Path(path)
    if p.exists() and not written_by_project(p):
        raise ProtectedDataError(
            f"{p}: refusing to overwrite a file xrf_sr_kedro did not write (no root "
            f"attribute {CREATOR_ATTR}={CREATOR!r}); it may be measured data - point this "
            "catalog entry's filepath at a new file"
        )


def read_only_error(name: str, path: str | os.PathLike) -> ProtectedDataError:
    """The error a read-only (measured) dataset raises on save."""
    return ProtectedDataError(
        f"{name} ({path}) is read-only (read_only: true: measured data, or a file shipped "
        "with the project): no node may write it; simulated stacks go to the simulated_* "
        "datasets, trained networks to data/06_models"
    )
