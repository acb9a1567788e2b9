"""Parallel-beam tomography in torch: projector, FBP, SIRT, OSEM, OSPML, reprojection.

Framework-free; runs on the GPU when one is present.  Conventions (angles,
rotation centre, array layout) are documented in :mod:`.projector` and
``docs/tomography.md``.
"""

from .fbp import fbp
from .iterative import ospml_quad, osem, penalised_objective, reconstruct, sirt
from .projector import ParallelBeamProjector, default_device
from .reproject import even_angles_deg, reproject

__all__ = [
    "ParallelBeamProjector",
    "default_device",
    "fbp",
    "sirt",
    "osem",
    "ospml_quad",
    "penalised_objective",
    "reconstruct",
    "reproject",
    "even_angles_deg",
]
