"""Added time of each 3-D evaluation piece of issue 12 at the default size.

Needs the default simulation (``kedro run --pipeline simulation``: data/01_raw).  The
networks are an untrained ``small`` preset (inference cost does not depend on the
weights).  Each piece runs once on the shared slab; prints ``piece: seconds`` lines.

Run: OMP_NUM_THREADS=2 PYTHONPATH=src python benchmarks/evaluation_3d.py [slab_top_nm slab_bottom_nm] [pieces...]
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np

from xrf_sr_kedro.evaluation import controls
from xrf_sr_kedro.evaluation.scoring import MetricSettings
from xrf_sr_kedro.evaluation.volumes import score_volume
from xrf_sr_kedro.inference.stack import EngineSettings, enhance_with_checkpoint
from xrf_sr_kedro.io.hdf5 import load_h5
from xrf_sr_kedro.datasets.probe_dataset import ProbeDataset
from xrf_sr_kedro.models.dual_branch import build_model, config_from_name
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct_stack
from xrf_sr_kedro.tomo.reproject import even_angles_deg, project_volume

args = sys.argv[1:]
slab = (float(args[0]), float(args[1])) if len(args) >= 2 else (960.0, 1920.0)
pieces = set(args[2:])
TIMES: dict[str, float] = {}


def timed(name):
    def wrap(fn):
        if pieces and name not in pieces:
            return None
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        TIMES[name] = time.perf_counter() - t0
        cpu = time.process_time() - c0
        print(f"{name}: {TIMES[name]:.1f}  (cpu {cpu:.1f} s)", flush=True)
        return out
    return wrap


truth = load_h5("data/01_raw/truth_volume.h5")
raw = load_h5("data/01_raw/raw_xrf_projections.h5").select_elements(["Zn_K"])
probe = ProbeDataset(filepath="data/01_raw/embedded/hxn_zone_plate_probe.npy", pixel_size_nm=7.5).load()
recon = ReconSettings(elements=["Zn_K"])
metrics = MetricSettings()
config = config_from_name("small")
checkpoint = {"format_version": 1, "config": __import__("dataclasses").asdict(config), "preset": "small",
              "model_state": build_model(config).state_dict()}
engine = EngineSettings()
even, odd = controls.split_measured(controls.slab_stack(raw, slab))

vol = timed("coarse_recon_half_slab")(lambda: reconstruct_stack(even, **{**recon.__dict__, "slab_nm": None}))
rep = timed("reproject_270_slab")(lambda: project_volume(vol, even_angles_deg(270, -90, 90), clip_negative=True))
enh = timed("enhance_270_slab")(lambda: enhance_with_checkpoint(rep, checkpoint, probe, engine))
fine = timed("fine_recon_270_slab")(lambda: reconstruct_stack(enh, **{**recon.__dict__, "slab_nm": None}))
enh91 = timed("enhance_91_slab")(lambda: enhance_with_checkpoint(controls.slab_stack(raw, slab), checkpoint, probe, engine))
timed("fine_recon_91_slab")(lambda: controls.fine_stack_volume(enh91, None, "Zn_K", recon))
if rep is not None:
    timed("bicubic_reprojections")(lambda: controls.bicubic_reprojections_volume(rep, None, 4, "Zn_K", recon))
timed("tv_deconvolution_91")(lambda: controls.tv_deconvolution_volume(raw, probe, 0.01, slab, 4, "Zn_K", 200, "x", recon))
settings = controls.VolumeSettings(slab_nm=slab)
timed("tune_raw_sweep")(lambda: controls.tune_raw_reconstruction(truth, raw, probe, "Zn_K", recon, settings, metrics))
if fine is not None:
    v = controls.slab_view(fine, slab, 1920.0)
    timed("score_slab_volume")(lambda: score_volume(v, truth, "Zn_K", metrics))
print(f"total_s: {sum(TIMES.values()):.1f}")
