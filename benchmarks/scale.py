"""Per-slab times of the streamed steps, and the time they project for a large measurement.

Run: ``PYTHONPATH=src python benchmarks/scale.py [--widths 256 512] [--slab 8] [--threads 1]``

Measured in one run, each with ``--threads`` torch threads (default 1: the cost of
one single-threaded Dask worker, which is what a cluster multiplies):

1. ``reconstruct_slabs`` (file in, file out, OSPML 10 iterations, 10 subsets) on one
   slab of ``--slab`` slices at each width from ``--angles`` angles; the cost per
   voxel, angle and iteration at the largest width.
2. ``reproject_slabs`` of that slab to ``--reproj-angles`` angles.
3. The enhancement engine (``enhance_maps``, float32) with the ``small`` and
   ``paper`` presets on 128 x 128 maps: seconds per LR megapixel.

Slices and maps are independent, so the work of the default tomography pipeline
(reconstruct the measurement, reproject it to more angles, enhance the
reprojections ``--scale`` times, reconstruct the enhanced stack) scales with
voxels x angles x iterations and with LR pixels; the last lines project it, in
core-hours and in hours on a few machines, for ``--target-slices`` slices of
``--target-width`` px (default 2048 x 2048, enhanced to 8192).  The projection
uses the lowest cost per voxel and angle measured over ``--widths``, i.e. assumes a
projector whose cost per voxel and angle does not grow with the width (the aim of a
matrix-free Joseph projector; the sparse-matrix one slows down as its matrix grows
and cannot even be built at 8192 px), and perfect slab parallelism; ``load_1min``
says how busy the machine was.  Ends with ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xrf_sr_kedro.inference import enhance_maps
from xrf_sr_kedro.io.chunked import stack_writer
from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.parallel import ParallelConfig
from xrf_sr_kedro.tomo.slabs import reconstruct_slabs, reproject_slabs

SERIAL = ParallelConfig(mode="serial")
N_ITER, N_SUBSETS = 10, 10


def phantom_stack(path: Path, n_angles: int, n_rows: int, width: int) -> None:
    """Smooth non-negative projections of random blobs (values do not change the cost)."""
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, width)
    prof = np.exp(-(x[None, :] - rng.uniform(-0.5, 0.5, (n_angles, 1))) ** 2 / 0.1)
    data = np.broadcast_to(prof[:, None, :], (n_angles, n_rows, width)).astype(np.float32)
    angles = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    with stack_writer(path, (1, n_angles, n_rows, width), 100.0, ["Zn_K"], angles,
                      chunk_rows=n_rows) as w:
        w[0] = 100.0 * data


def time_recon(tmp: Path, width: int, slab: int, n_angles: int, reproj_angles: int, device: str):
    stack = tmp / f"stack_{width}.h5"
    phantom_stack(stack, n_angles, slab, width)
    kw = dict(algorithm="ospml_quad", n_iter=N_ITER, n_subsets=N_SUBSETS, reg_par=1.5,
              slab_slices=slab, parallel=SERIAL, progress=False)
    reconstruct_slabs(stack, tmp / "warm.h5", **{**kw, "n_iter": 1})  # build the projector
    t0 = time.perf_counter()
    vol = reconstruct_slabs(stack, tmp / f"vol_{width}.h5", **kw)
    t_rec = time.perf_counter() - t0
    angles = np.linspace(-90.0, 90.0, reproj_angles)
    reproject_slabs(vol.path, tmp / "warm_p.h5", angles, slab_slices=slab, parallel=SERIAL,
                    progress=False)
    t0 = time.perf_counter()
    reproject_slabs(vol.path, tmp / f"proj_{width}.h5", angles, slab_slices=slab,
                    parallel=SERIAL, progress=False)
    t_rep = time.perf_counter() - t0
    return t_rec, t_rep


def time_enhance(preset: str, n_maps: int, size: int, device: str) -> float:
    """Seconds per LR megapixel of the engine in float32."""
    torch.manual_seed(0)
    model = build_model(preset).eval()
    maps = np.random.default_rng(0).random((n_maps, size, size)).astype(np.float32) * 100
    enhance_maps(model, maps[:1, :64, :64], 4, device=device, precision="float32", progress=False)
    t0 = time.perf_counter()
    enhance_maps(model, maps, 4, device=device, precision="float32", progress=False)
    return (time.perf_counter() - t0) / (n_maps * size * size / 1e6)


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--slab", type=int, default=8, help="slices per measured slab")
    ap.add_argument("--angles", type=int, default=91, help="measured projections")
    ap.add_argument("--reproj-angles", type=int, default=270)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one worker)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--target-slices", type=int, default=2048)
    ap.add_argument("--target-width", type=int, default=2048)
    ap.add_argument("--scale", type=int, default=4)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch threads {args.threads}, "
          f"device {args.device}")
    load0 = os.getloadavg()[0]
    per_voxel = {}
    with tempfile.TemporaryDirectory() as d:
        for w in args.widths:
            t_rec, t_rep = time_recon(Path(d), w, args.slab, args.angles, args.reproj_angles,
                                      args.device)
            per_voxel[w] = (
                t_rec / (args.slab * w * w * args.angles * N_ITER),
                t_rep / (args.slab * w * w * args.reproj_angles),
            )
            print(f"recon_{w}px_s_per_slab_of_{args.slab}: {t_rec:.3f}")
            print(f"reproject_{w}px_s_per_slab_of_{args.slab}: {t_rep:.3f}")
            print(f"recon_{w}px_ns_per_voxel_angle_iter: {per_voxel[w][0] * 1e9:.3f}")
            print(f"reproject_{w}px_ns_per_voxel_angle: {per_voxel[w][1] * 1e9:.3f}")
    enh = {p: time_enhance(p, n, 128, args.device) for p, n in (("small", 2), ("paper", 1))}
    for p, s in enh.items():
        print(f"enhance_{p}_s_per_lr_mpx: {s:.2f}")

    # The lowest cost per voxel and angle measured: what a projector whose cost does
    # not grow with the width keeps at every width (the sparse matrix one slows down
    # once its matrix outgrows the caches, and is rebuilt per call above 2 GiB).
    c_rec = min(c[0] for c in per_voxel.values())
    c_rep = min(c[1] for c in per_voxel.values())
    n, w, s = args.target_slices, args.target_width, args.scale
    stages = {
        "recon_measured": c_rec * n * w * w * args.angles * N_ITER,
        "reproject": c_rep * n * w * w * args.reproj_angles,
        "enhance_small": enh["small"] * args.reproj_angles * n * w / 1e6,
        "recon_enhanced": c_rec * (n * s) * (w * s) ** 2 * args.reproj_angles * N_ITER,
    }
    # Seconds of one worker of --threads cores -> core-hours.
    core_h = {name: sec * args.threads / 3600 for name, sec in stages.items()}
    paper_core_h = enh["paper"] * args.reproj_angles * n * w / 1e6 * args.threads / 3600
    total_core_h = sum(core_h.values())
    print(f"load_1min: {load0:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"projection_uses_recon_ns_per_voxel_angle_iter: {c_rec * 1e9:.3f}")
    print(f"projection_uses_reproject_ns_per_voxel_angle: {c_rep * 1e9:.3f}")
    tag = f"{n}x{w}px_x{s}"
    for name, h in core_h.items():
        print(f"projected_{tag}_{name}_core_h: {h:.1f}")
    print(f"projected_{tag}_enhance_paper_preset_core_h: {paper_core_h:.1f}")
    print(f"projected_{tag}_total_core_h: {total_core_h:.1f}")
    for label, cores in (("2_cores", 2), ("64_core_workstation", 64), ("slurm_16x64_cores", 1024)):
        print(f"projected_{tag}_hours_on_{label}: {total_core_h / cores:.1f}")


if __name__ == "__main__":
    main()
