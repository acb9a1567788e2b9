"""The 270-reprojection chain's split halves, read over the whole band and within the band limit.

Run after a default ``make run`` (paths are the catalog's defaults)::

    OMP_NUM_THREADS=2 PYTHONPATH=src .venv/bin/python benchmarks/split_half_chain.py

The first reconstructions of the even and the odd measured projections
(``split_{even,odd}_more_angles_raw_slab_volume``, the evaluation's independent halves)
are reprojected to ``tomography.reprojection.n_angles`` angles, upsampled 4x by the
network (the engine with conf/base's settings) or by bicubic interpolation, and
reconstructed with the default OSPML settings, as the evaluation's chains do.  With
``--interleave`` the odd half is reprojected at angles halfway between the even half's,
so the two final reconstructions share no angle.  Each pair's split-half FSC is read
over the whole fine band and up to the measured data's Nyquist limit
(:func:`xrf_sr_kedro.metrics.fsc.split_half_band_limit_nm`, as the evaluation reads it),
with the correlation in the band of the spectral images (0.43-0.55 of the fine Nyquist
frequency, around the 30 nm sampling frequency).  Ends with
``split_half_<upsampler>_<angles>_{whole_band,band_limited}_nm`` and
``..._image_band_fsc`` lines.
"""

from __future__ import annotations

import argparse

import yaml

from xrf_sr_kedro.datasets import ProbeDataset, XRFHDF5Dataset
from xrf_sr_kedro.evaluation.controls import bicubic_reprojections_volume, fine_stack_volume
from xrf_sr_kedro.inference.stack import EngineSettings, enhance_with_checkpoint
from xrf_sr_kedro.io.checkpoint import load_checkpoint
from xrf_sr_kedro.metrics.fsc import fourier_shell_correlation, resolution_nm, split_half_band_limit_nm
from xrf_sr_kedro.tomo.recon import ReconSettings
from xrf_sr_kedro.tomo.reproject import even_angles_deg, project_volume

SCALE = 4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/06_models/selected_model.pt")
    ap.add_argument("--halves", default="data/07_model_output/evaluation_slab/split_{half}_more_angles_raw_slab_volume.h5")
    ap.add_argument("--probe", default="data/01_raw/embedded/hxn_zone_plate_probe.npy")
    ap.add_argument("--element", default="Zn_K")
    ap.add_argument("--upsamplers", default="network,bicubic")
    ap.add_argument("--interleave", choices=("off", "on", "both"), default="both")
    args = ap.parse_args()

    conf = yaml.safe_load(open("conf/base/parameters_tomography.yml"))["tomography"]
    recon, reprojection = ReconSettings(**conf["recon"]), conf["reprojection"]
    engine = yaml.safe_load(open("conf/base/parameters_enhancement.yml"))["enhancement"]["engine"]
    engine = EngineSettings(**{k: v for k, v in engine.items() if k in EngineSettings.__dataclass_fields__})
    halves = [XRFHDF5Dataset(filepath=args.halves.format(half=h)).load() for h in ("even", "odd")]
    checkpoint = load_checkpoint(args.checkpoint)
    probe = ProbeDataset(filepath=args.probe, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()
    angles = even_angles_deg(reprojection["n_angles"], reprojection["start_deg"], reprojection["stop_deg"])
    step = float(angles[1] - angles[0])
    offsets = {"off": [(0.0, 0.0)], "on": [(0.0, 0.5)], "both": [(0.0, 0.0), (0.0, 0.5)]}[args.interleave]
    measured_pixel_nm = halves[0].voxel_size_nm
    for upsampler in args.upsamplers.split(","):
        for offset in offsets:
            tag = f"{upsampler}_{'interleaved' if offset[1] else 'same'}_angles"
            fine = []
            for volume, shift in zip(halves, offset):
                stack = project_volume(volume, angles + shift * step, clip_negative=True,
                                       metadata={"kind": "split-half reprojection", "n_angles": len(angles)})
                if upsampler == "network":
                    enhanced = enhance_with_checkpoint(stack, checkpoint, probe, engine)
                    out = fine_stack_volume(enhanced, None, args.element, recon)
                else:
                    out = bicubic_reprojections_volume(stack, None, SCALE, args.element, recon)
                fine.append(out.data[out.elements.index(args.element)])
            voxel_nm = measured_pixel_nm / SCALE
            curve = fourier_shell_correlation(fine[0], fine[1], voxel_nm, apodize=True)
            limit = split_half_band_limit_nm(measured_pixel_nm, voxel_nm)
            images = curve["freq_fraction_nyquist"].between(0.43, 0.55)
            print(f"split_half_{tag}_whole_band_nm: {resolution_nm(curve):.1f}", flush=True)
            print(f"split_half_{tag}_band_limited_nm: {resolution_nm(curve, band_limit_nm=limit):.1f}", flush=True)
            print(f"split_half_{tag}_image_band_fsc: {float(curve['fsc'][images].mean()):.2f}", flush=True)


if __name__ == "__main__":
    main()
