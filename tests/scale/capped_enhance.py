"""Run by test_scale_enhance_memory_cap.py in a subprocess: enhance -> save -> reconstruct under a cap.

Usage: ``python capped_enhance.py CHECKPOINT STACK OUT_FOLDER HEADROOM_MB``

Loads the checkpoint and the (small) reprojected stack, warms up on the first
frames (one streamed enhancement slab, one reconstruction in the same geometry:
imports, thread pools and the projector cost the same for any number of frames),
caps the data segment at its current size plus ``HEADROOM_MB``, then does what the
tomography chain does: the enhancement node (streamed, ``streaming: auto`` above a
small threshold), the catalog's save and lazy load of ``enhanced_reprojections``,
the reconstruction node (streamed from the lazy stack) and the volume's save; last
it checks the cap bites (the enhanced stack cannot be allocated whole under it).
Prints ``pipeline_ok`` and ``cap_bites``; any failure exits non-zero.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from xrf_sr_kedro.datasets import XRFHDF5Dataset
from xrf_sr_kedro.inference.stack import EngineSettings
from xrf_sr_kedro.io.chunked import ChunkedStack, ChunkedVolume, open_stack
from xrf_sr_kedro.physics.probe import gaussian_probe
from xrf_sr_kedro.pipelines.tomography.nodes import enhance_reprojections, reconstruct_volume
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct

from memory_cap import cap_data, require_cap_bites  # sibling module (the script's folder is on sys.path)

SERIAL = {"mode": "serial"}


def settings(scratch: Path) -> tuple[EngineSettings, ReconSettings]:
    """The engine and reconstruction settings of the capped run (and of the test's reference)."""
    engine = EngineSettings(tile_px=64, overlap_px=8, batch_size=2, frames_per_slab=4,
                            precision="float32", self_ensemble=False,
                            streaming_min_pixels=2**16, streaming_dir=str(scratch),
                            parallel=SERIAL)
    recon = ReconSettings(elements=None, algorithm="fbp", streaming="on", slab_slices=8,
                          streaming_dir=str(scratch), parallel=SERIAL)
    return engine, recon


def probe():
    return gaussian_probe(40.0, 12.5)


def main(checkpoint_path: str, stack_path: str, out: str, headroom_mb: float) -> None:
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    reprojections = open_stack(stack_path).to_stack()  # the coarse stack: 16x smaller
    engine, recon = settings(Path(out) / "scratch")
    # warm-up on the first slab: the same code paths, on 8 frames
    first = enhance_reprojections(reprojections.select_frames(slice(0, 8)), checkpoint, probe(),
                                  engine)
    rows = first.read_rows(0, 0, recon.slab_slices)
    reconstruct(np.zeros((reprojections.n_frames, *rows.shape[1:]), np.float32),
                reprojections.angles_deg, algorithm="fbp", progress=False)
    shutil.rmtree(first.path.parent)  # the warm-up's scratch folder
    n_el, n_frames, h, w = first.shape[0], reprojections.n_frames, *first.shape_hw
    cap_data(headroom_mb)
    enhanced = enhance_reprojections(reprojections, checkpoint, probe(), engine)
    assert isinstance(enhanced, ChunkedStack) and enhanced.scratch, type(enhanced)
    entry = XRFHDF5Dataset(filepath=str(Path(out) / "enhanced_reprojections.h5"),
                           lazy_stacks=True, lazy_min_voxels=2**16)
    entry.save(enhanced)
    loaded = entry.load()
    assert isinstance(loaded, ChunkedStack), type(loaded)
    volume = reconstruct_volume(loaded, recon)
    assert isinstance(volume, ChunkedVolume), type(volume)
    XRFHDF5Dataset(filepath=str(Path(out) / "enhanced_volume.h5")).save(volume)
    # checked last: a failed allocation can leave glibc's heap fragmented for what follows
    require_cap_bites((n_el, n_frames, h, w))
    print(f"pipeline_ok: enhanced {n_el * n_frames * h * w * 4 / 2**20:.1f} MiB, volume "
          f"{np.prod(volume.shape) * 4 / 2**20:.1f} MiB under {headroom_mb} MiB headroom")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
