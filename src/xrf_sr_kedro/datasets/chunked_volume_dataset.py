"""``ChunkedVolumeDataset``: a volume in chunked HDF5, loaded as a lazy slab reader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from xrf_sr_kedro.io.chunked import ChunkedVolume, open_volume
from xrf_sr_kedro.io.volume_files import save_volume
from xrf_sr_kedro.types import Volume


class ChunkedVolumeDataset(AbstractDataset[Volume | ChunkedVolume, ChunkedVolume]):
    """A volume larger than memory: ``load`` gives a :class:`ChunkedVolume` handle.

    The file has the ``Volume`` layout of :mod:`xrf_sr_kedro.io.hdf5` (so
    ``XRFHDF5Dataset`` can still read it whole), chunked one slice per chunk.
    ``load`` reads only the metadata; nodes read slabs with ``volume.read(e, s0, s1)``
    or hand ``volume.path`` to :mod:`xrf_sr_kedro.tomo.slabs`.  ``save`` takes an
    in-memory ``Volume`` or a ``ChunkedVolume`` (e.g. from ``reconstruct_slabs``
    into another path) and writes it slab by slab, atomically.  Local files only.
    The pipelines' volume entries use ``XRFHDF5Dataset`` instead, which does the same
    and loads a volume lazily only above ``lazy_min_voxels``; this dataset is for
    an entry that must always be lazy.

    Examples
    --------
    ::

        reconstruction_chunked:
          type: xrf_sr_kedro.datasets.ChunkedVolumeDataset
          filepath: data/07_model_output/reconstruction_chunked.h5
          slab_slices: 64
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        slab_slices: int = 64,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``slab_slices`` bounds the slices held in memory while saving."""
        if "://" in str(filepath) and not str(filepath).startswith("file://"):
            raise DatasetError(f"ChunkedVolumeDataset reads local files only, got {filepath}")
        self._filepath = Path(str(filepath).removeprefix("file://"))
        self._slab_slices = int(slab_slices)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "slab_slices": self._slab_slices}

    def load(self) -> ChunkedVolume:
        return open_volume(self._filepath)

    def save(self, data: Volume | ChunkedVolume) -> None:
        if not isinstance(data, (Volume, ChunkedVolume)):
            raise DatasetError(
                f"ChunkedVolumeDataset saves a Volume or ChunkedVolume, got {type(data).__name__}"
            )
        save_volume(self._filepath, data, slab_slices=self._slab_slices)

    def _exists(self) -> bool:
        return self._filepath.is_file()
