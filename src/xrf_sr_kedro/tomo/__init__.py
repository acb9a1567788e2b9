"""Parallel-beam tomography in torch: projector, FBP, SIRT, OSEM, OSPML, recon driver, reprojection.

Framework-free; runs on the GPU when one is present.  Conventions (angles,
rotation centre, array layout) are documented in :mod:`.projector` and
``docs/tomography.md``.
"""

from .fbp import fbp
from .angles import as_angles_deg
from .iterative import ospml_quad, osem, penalised_objective, sirt
from .projector import ParallelBeamProjector, default_device
from .recon import ReconSettings, reconstruct, reconstruct_stack
from .reproject import even_angles_deg, project_volume, reproject

__all__ = [
    "ParallelBeamProjector",
    "default_device",
    "fbp",
    "sirt",
    "osem",
    "ospml_quad",
    "penalised_objective",
    "reconstruct",
    "reconstruct_stack",
    "ReconSettings",
    "as_angles_deg",
    "project_volume",
    "reproject",
    "even_angles_deg",
]
