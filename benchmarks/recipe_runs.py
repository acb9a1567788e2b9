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

Training-data mixes (issue 13, second round): ``--mixes`` names entries of
:data:`MIXES` (``file``: the catalog's ``application_training_pairs``; the others
rebuild conf/base's training set with more or fewer microstructures, projected 3-D
particle packings and natural pairs, see ``physics.particle_packings``), and
``--validation particle_packings`` builds the validation region from the 3-D
generator (held-out seed 2, 150 counts) instead of reading the catalog's file::

    OMP_NUM_THREADS=1 PYTHONPATH=src nice .venv/bin/python benchmarks/recipe_runs.py \
        --runs flips_l2 --mixes packings,packings_micro --epochs 16 --steps 299 \
        --validation particle_packings
    # score existing checkpoints on that validation region (no training):
    OMP_NUM_THREADS=1 PYTHONPATH=src nice .venv/bin/python benchmarks/recipe_runs.py \
        --validation particle_packings --score data/06_models/recipe/flips_l2_full16.pt

Ends with ``<run>_<name>: value`` lines: best validation PSNR (dB), its gain over
bicubic, the epoch, training CPU seconds (process time, all threads) and wall seconds.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from dataclasses import replace
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
    # the default recipe forced to float32 (amp=False): flips_l2 trains in bf16 where the
    # CPU computes it natively, this one everywhere in float32 (the precision control)
    "flips_l2_fp32": {"augmentation": "flips", "loss": "l2", "amp": False},
}

#: mix name -> simulation.application_pairs fields that differ from conf/base (None: the file).
#: conf/base: 600 microstructure samples x 2 elements (~1,193 maps) + as many natural pairs;
#: the mixes keep ~1,200 simulated maps (packings: 150 volumes x 4 angles x 2 elements).
MIXES: dict[str, dict | None] = {
    "file": None,
    "micro": {},  # conf/base rebuilt in-process (same as the file)
    "packings": {"n_samples": 0, "n_volumes": 150},
    "packings_micro": {"n_samples": 300, "n_volumes": 75},
    "packings_nat25": {"n_samples": 0, "n_volumes": 225, "natural_fraction": 0.25},
    "packings_micro_nat25": {"n_samples": 225, "n_volumes": 112, "natural_fraction": 0.25},
    "packings_only": {"n_samples": 0, "n_volumes": 300, "natural_fraction": 0.0},
    # three times conf/base's packings (3,600 maps) + the natural pairs (~1,660): offline pretraining
    "packings_x3": {"n_samples": 0, "n_volumes": 450},
    "smoke": {"n_samples": 2, "n_volumes": 2},  # seconds: checks the wiring
}


def _probe(probe_path: str):
    from xrf_sr_kedro.datasets import ProbeDataset

    return ProbeDataset(filepath=probe_path, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()


def rebuilt_pairs(overrides: dict, natural_path: str, probe_path: str):
    """conf/base's training set rebuilt with ``overrides`` of simulation.application_pairs."""
    import yaml

    from xrf_sr_kedro.physics.application_pairs import training_pairs

    conf = yaml.safe_load(Path("conf/base/parameters_simulation.yml").read_text())
    p = {**conf["simulation"]["application_pairs"], **overrides}
    return training_pairs(
        _probe(probe_path), XRFHDF5Dataset(filepath=natural_path).load(), p["natural_fraction"],
        p["n_samples"], p["size_px"], p["n_elements"], p["seed"], p["validation_seed"],
        p["projected_fraction"], p["step_px"], tuple(p["counts_range"]), p["background_counts"],
        p["readout_sigma_counts"], p["reprojection_fraction"], p["hf_noise_gain"], p["fast_axis"],
        p.get("n_volumes", 0), p.get("angles_per_volume", 4), p.get("volume_size_vox"),
    )


def jitter_range(pairs, fraction: float, seed: int = 0):
    """Each pair renormalised as if its map's range were wider by ``U(0, fraction)`` below and above."""
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.uniform(0, fraction, (len(pairs), 1, 1, 1)).astype(np.float32)
    b = rng.uniform(0, fraction, (len(pairs), 1, 1, 1)).astype(np.float32)
    return replace(pairs, lr=(pairs.lr + a) / (1 + a + b), hr=(pairs.hr + a) / (1 + a + b))


def validation_pairs(source: str, path: str, probe_path: str):
    """The validation region: the catalog's file, or rebuilt from conf/base with ``source``."""
    if source == "file":
        return XRFHDF5Dataset(filepath=path).load()
    import yaml

    from xrf_sr_kedro.physics.application_pairs import validation_region_pairs

    conf = yaml.safe_load(Path("conf/base/parameters_simulation.yml").read_text())
    v = {**conf["simulation"]["validation_region"], "source": source}
    if source == "particle_packings" and "angles_per_volume" not in conf["simulation"]["validation_region"]:
        v.update(n_samples=12, size_px=128, angles_per_volume=4)  # ~96 maps of 128 px
    return validation_region_pairs(
        _probe(probe_path), v["n_samples"], v["size_px"], v["seed"], v["mean_counts"],
        v["background_counts"], v["readout_sigma_counts"], v["projected_fraction"], v["step_px"],
        v["fast_axis"], v["source"], v.get("angles_per_volume", 4), v.get("volume_size_vox"),
    )


def score(checkpoints: list[str], val) -> None:
    """Loop PSNR of existing checkpoints on ``val`` (the training's checkpoint criterion)."""
    from xrf_sr_kedro.io.checkpoint import model_from_checkpoint
    from xrf_sr_kedro.training.loop import evaluate

    for path in checkpoints:
        m = evaluate(model_from_checkpoint(load_checkpoint(path)), val, device="cpu")
        name = Path(path).stem
        print(f"{name}_val_psnr_db: {m['val_psnr']:.3f}")
        print(f"{name}_val_gain_over_bicubic_db: {m['val_psnr'] - m['bicubic_psnr']:.3f}", flush=True)


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
    ap.add_argument("--mixes", default="file", help=f"training-data mixes, of {list(MIXES)}")
    ap.add_argument("--validation-source", default="file",
                    choices=("file", "microstructures", "particle_packings"),
                    help="validation region: the catalog's file or rebuilt with this generator")
    ap.add_argument("--init", default="", help="start from this checkpoint (fine-tuning); its preset")
    ap.add_argument("--lr", type=float, default=0.0, help="learning rate (0: the recipe's)")
    ap.add_argument("--range-jitter", type=float, default=0.0,
                    help="widen each pair's normalisation range by up to this fraction below and above "
                    "(a patch normalised like a window of a larger map)")
    ap.add_argument("--channels", type=int, default=0, help="feature channels (0: the small preset's 16)")
    ap.add_argument("--score", default="", help="CKPT,...: only score these on the validation region")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    val = validation_pairs(args.validation_source, args.validation, args.probe)
    print(f"validation: {args.validation_source}, {len(val)} maps")
    if args.score:
        score(args.score.split(","), val)
        return
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for mix in args.mixes.split(","):
        t0 = time.perf_counter()
        if args.counts_range:
            lo, hi = (float(v) for v in args.counts_range.split(","))
            train = rebuilt_pairs({**(MIXES[mix] or {}), "counts_range": (lo, hi)}, args.natural, args.probe)
        elif MIXES[mix] is None:
            train = XRFHDF5Dataset(filepath=args.pairs).load()
        else:
            train = rebuilt_pairs(MIXES[mix], args.natural, args.probe)
        if args.range_jitter:
            train = jitter_range(train, args.range_jitter)
        print(f"mix {mix}: {len(train)} training pairs ({train.metadata.get('counts')}), "
              f"built in {time.perf_counter() - t0:.0f} s", flush=True)
        train_runs(args, train, val, "" if mix == "file" else f"_{mix}")


def train_runs(args, train, val, mix_tag: str) -> None:
    """Every ``--runs`` recipe on ``train``, best epoch on ``val``; ``name: value`` lines."""
    first_decay = max(1, round(args.epochs * 11 / 16))  # conf/base: halve after 11 of 16, then every 2
    for recipe in args.runs.split(","):
        run = recipe + mix_tag + args.tag
        fields = {"learning_rate": args.lr or 2e-3, **RUNS[recipe]}
        cfg = TrainConfig(
            epochs=args.epochs, batch_size=8, lr_first_decay_epoch=first_decay,
            lr_decay_every=max(1, round(args.epochs * 2 / 16)), lr_gamma=0.5, val_every=1, seed=0,
            max_train_batches_per_epoch=args.steps or None, num_threads=args.threads, **fields,
        )
        torch.manual_seed(0)
        config = config_from_name("small")
        if args.channels:
            config = replace(config, channels=args.channels)
        model = build_model(config)
        t0, c0 = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as d:
            init = load_checkpoint(args.init) if args.init else None
            last = fit(model, train, val, cfg, d, device="cpu", training_data=f"recipe {run}",
                       init_checkpoint=init)
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
