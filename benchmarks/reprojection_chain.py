"""The 3-D reprojection chain scored for given checkpoints, self-ensemble off and on.

Run (after a default ``kedro run``; paths are the catalog's defaults)::

    OMP_NUM_THREADS=2 PYTHONPATH=src .venv/bin/python benchmarks/reprojection_chain.py \\
        --checkpoints data/06_models/selected_model.pt[,OTHER.pt]

For each checkpoint and each self-ensemble setting: the raw volume's 270
reprojections (``data/02_intermediate/raw_reprojections.h5``) are enhanced by the
engine (float32), the rows of the shared slab are reconstructed with the default
OSPML settings (:func:`xrf_sr_kedro.evaluation.controls.fine_stack_volume`) and scored
against the truth as the evaluation scores its 3-D rows
(:func:`xrf_sr_kedro.evaluation.volumes.score_volume`).  This isolates the network from
the code: a checkpoint of an earlier run scores what that run's ``pretrained`` 3-D row
said.  Ends with ``name: value`` lines per checkpoint and setting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xrf_sr_kedro.datasets import ProbeDataset, XRFHDF5Dataset
from xrf_sr_kedro.evaluation.controls import fine_stack_volume
from xrf_sr_kedro.evaluation.scoring import MetricSettings
from xrf_sr_kedro.evaluation.volumes import score_volume
from xrf_sr_kedro.inference.stack import EngineSettings, enhance_with_checkpoint
from xrf_sr_kedro.io.checkpoint import load_checkpoint
from xrf_sr_kedro.tomo.recon import ReconSettings

COLUMNS = ("fsc_vs_truth_nm", "fsc_vs_truth_axial_nm", "psnr_db", "ssim")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", default="data/06_models/selected_model.pt")
    ap.add_argument("--reprojections", default="data/02_intermediate/raw_reprojections.h5")
    ap.add_argument("--truth-volume", default="data/01_raw/truth_volume.h5")
    ap.add_argument("--probe", default="data/01_raw/embedded/hxn_zone_plate_probe.npy")
    ap.add_argument("--element", default="Zn_K")
    ap.add_argument("--slab-nm", default="960,1920")
    args = ap.parse_args()

    reprojections = XRFHDF5Dataset(filepath=args.reprojections).load().select_elements([args.element])
    truth = XRFHDF5Dataset(filepath=args.truth_volume).load()
    probe = ProbeDataset(filepath=args.probe, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()
    slab = tuple(float(v) for v in args.slab_nm.split(","))
    for path in args.checkpoints.split(","):
        checkpoint = load_checkpoint(path)
        for ensemble in (False, True):
            settings = EngineSettings(precision="float32", self_ensemble=ensemble)
            enhanced = enhance_with_checkpoint(reprojections, checkpoint, probe, settings)
            volume = fine_stack_volume(enhanced, slab, args.element, ReconSettings())
            values = score_volume(volume, truth, args.element, MetricSettings())[0]
            tag = f"{Path(path).stem}_{'ensemble' if ensemble else 'plain'}"
            for column in COLUMNS:
                print(f"{tag}_{column}: {float(values[column]):.2f}", flush=True)


if __name__ == "__main__":
    main()
