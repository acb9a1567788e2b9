"""Train the default run's network on the default run's own pairs with recipe variants (issue 13).

Loads ``application_training_pairs`` and ``validation_region_pairs`` (the catalog's
files of a ``kedro run --pipeline simulation``), trains the ``small`` preset from
scratch with the default ``conf/base`` schedule scaled to ``--epochs`` and
``--steps`` per epoch, varying one setting a run, keeps the epoch with the best
validation-region PSNR (as the pretraining pipeline does) and writes it to
``data/06_models/recipe/<run>.pt``; score each on the phantom with
``benchmarks/network_2d.py --checkpoint data/06_models/recipe/<run>.pt``.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src nice .venv/bin/python benchmarks/recipe_runs.py \\
        --runs dihedral,flips,flips_l2 --epochs 6 --steps 150

Ends with ``<run>_<name>: value`` lines: best validation PSNR (dB), its gain over
bicubic, the epoch, training CPU seconds (process time, all threads) and wall seconds.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import torch

from xrf_sr_kedro.datasets import XRFHDF5Dataset
from xrf_sr_kedro.io.checkpoint import load_checkpoint
from xrf_sr_kedro.models.dual_branch import build_model, config_from_name
from xrf_sr_kedro.training.loop import TrainConfig, fit

#: run name -> TrainConfig fields that differ from the base recipe
RUNS: dict[str, dict] = {
    "dihedral": {"augmentation": "dihedral", "loss": "l1"},  # the recipe before issue 13's flips
    "flips": {"augmentation": "flips", "loss": "l1"},
    "flips_l2": {"augmentation": "flips", "loss": "l2"},
    "dihedral_l2": {"augmentation": "dihedral", "loss": "l2"},
    "flips_lr3e-3": {"augmentation": "flips", "learning_rate": 3e-3},
}


def pairs_with_counts(counts_range: tuple[float, float], natural_path: str, probe_path: str):
    """conf/base's training set rebuilt with another dose band (counts per scan point)."""
    import yaml

    from xrf_sr_kedro.datasets import ProbeDataset
    from xrf_sr_kedro.physics.application_pairs import training_pairs

    conf = yaml.safe_load(Path("conf/base/parameters_simulation.yml").read_text())
    p = dict(conf["simulation"]["application_pairs"])
    p["counts_range"] = counts_range
    probe = ProbeDataset(filepath=probe_path, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()
    return training_pairs(
        probe, XRFHDF5Dataset(filepath=natural_path).load(), p["natural_fraction"], p["n_samples"],
        p["size_px"], p["n_elements"], p["seed"], p["validation_seed"], p["projected_fraction"],
        p["step_px"], tuple(p["counts_range"]), p["background_counts"], p["readout_sigma_counts"],
        p["reprojection_fraction"], p["hf_noise_gain"], p["fast_axis"],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="dihedral,flips")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=150, help="Adam steps (batches of 8) per epoch; 0: full")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", default="data/05_model_input/application_training_pairs.h5")
    ap.add_argument("--validation", default="data/05_model_input/validation_region_pairs.h5")
    ap.add_argument("--out", default="data/06_models/recipe")
    ap.add_argument("--counts-range", default=None,
                    help="LO,HI: rebuild the training pairs with this dose band (counts per scan point)")
    ap.add_argument("--natural", default="data/05_model_input/pretraining_pairs.h5")
    ap.add_argument("--probe", default="data/01_raw/embedded/hxn_zone_plate_probe.npy")
    ap.add_argument("--tag", default="", help="suffix of the run names (e.g. the dose band)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.counts_range:
        lo, hi = (float(v) for v in args.counts_range.split(","))
        train = pairs_with_counts((lo, hi), args.natural, args.probe)
    else:
        train = XRFHDF5Dataset(filepath=args.pairs).load()
    val = XRFHDF5Dataset(filepath=args.validation).load()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    first_decay = max(1, round(args.epochs * 11 / 16))  # conf/base: halve after 11 of 16, then every 2
    for recipe in args.runs.split(","):
        run = recipe + args.tag
        fields = {"learning_rate": 2e-3, **RUNS[recipe]}
        cfg = TrainConfig(
            epochs=args.epochs, batch_size=8, lr_first_decay_epoch=first_decay,
            lr_decay_every=max(1, round(args.epochs * 2 / 16)), lr_gamma=0.5, val_every=1, seed=0,
            max_train_batches_per_epoch=args.steps or None, num_threads=args.threads, **fields,
        )
        torch.manual_seed(0)
        model = build_model(config_from_name("small"))
        t0, c0 = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as d:
            last = fit(model, train, val, cfg, d, device="cpu", training_data=f"recipe {run}")
            best = load_checkpoint(Path(d) / "best.pt")
            shutil.copyfile(Path(d) / "best.pt", Path(args.out) / f"{run}.pt")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        m = best["metrics"]
        print(f"{run}_val_psnr_db: {m['val_psnr']:.3f}")
        print(f"{run}_val_gain_over_bicubic_db: {m['val_psnr'] - m['bicubic_psnr']:.3f}")
        print(f"{run}_best_epoch: {best['epoch']}")
        print(f"{run}_last_val_psnr_db: {last['metrics']['val_psnr']:.3f}")
        print(f"{run}_train_cpu_s: {cpu:.0f}")
        print(f"{run}_train_wall_s: {wall:.0f}", flush=True)


if __name__ == "__main__":
    main()
