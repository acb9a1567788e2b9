"""Kedro datasets (kedro-datasets 9.x style) wrapping the framework-free :mod:`xrf_sr_kedro.io`.

Catalog ``type:`` names: ``xrf_sr_kedro.datasets.XRFHDF5Dataset``,
``PyXRFDataset``, ``TiffMapsDataset``, ``TiffVolumeDataset``, ``ProbeDataset``,
``TorchCheckpointDataset``, ``AtomicTextDataset`` (reports), and the read-only beamline readers
``MapsHDF5Dataset``, ``SpectraDataset``, ``MatMapsDataset``.
"""

from xrf_sr_kedro.datasets.atomic_text_dataset import AtomicTextDataset
from xrf_sr_kedro.datasets.chunked_volume_dataset import ChunkedVolumeDataset
from xrf_sr_kedro.datasets.maps_hdf5_dataset import MapsHDF5Dataset
from xrf_sr_kedro.datasets.mat_maps_dataset import MatMapsDataset
from xrf_sr_kedro.datasets.probe_dataset import ProbeDataset
from xrf_sr_kedro.datasets.pyxrf_dataset import PyXRFDataset
from xrf_sr_kedro.datasets.spectra_dataset import SpectraDataset
from xrf_sr_kedro.datasets.tiff_maps_dataset import TiffMapsDataset
from xrf_sr_kedro.datasets.tiff_volume_dataset import TiffVolumeDataset
from xrf_sr_kedro.datasets.torch_checkpoint_dataset import TorchCheckpointDataset
from xrf_sr_kedro.datasets.xrf_hdf5_dataset import XRFHDF5Dataset

__all__ = [
    "AtomicTextDataset",
    "ChunkedVolumeDataset",
    "MapsHDF5Dataset",
    "MatMapsDataset",
    "ProbeDataset",
    "PyXRFDataset",
    "SpectraDataset",
    "TiffMapsDataset",
    "TiffVolumeDataset",
    "TorchCheckpointDataset",
    "XRFHDF5Dataset",
]
