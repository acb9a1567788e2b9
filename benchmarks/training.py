"""Training and inference throughput of the dual-branch network on this machine.

Run::

    .venv/bin/python benchmarks/training.py [--quick]

For each preset: training steps (forward, L1 loss, backward, Adam step) on
batches of 64x64 LR patches (256x256 HR), in the layout and precision ``fit`` trains
in on this machine (channels-last on CPU; bf16 autocast where the hardware computes
bf16 natively, :func:`xrf_sr_kedro.training.precision.training_autocast`), reported as
patches/s, and at 32x32 also in plain float32 NCHW for the speedup; inference on one
64x64 -> 256x256 batch, reported as megapixels of output per second; and, for
``small``, the wall time of one ``fit`` epoch over 1000 patches (the number the
pipelines' default epochs are chosen from).  Uses CUDA when present.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from xrf_sr_kedro.models.dual_branch import build_model, count_parameters
from xrf_sr_kedro.device import resolve_device
from xrf_sr_kedro.training.loop import TrainConfig, fit
from xrf_sr_kedro.training.precision import training_autocast, training_memory_format
from xrf_sr_kedro.types import PatchPairs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_throughput(
    name: str, batch: int, steps: int, device: torch.device, lr_px: int = 64,
    as_fit: bool = True,
) -> float:
    """Patches per second of training steps; ``as_fit``: in the layout and precision
    ``fit`` trains in on ``device`` (channels-last on CPU, bf16 autocast where native),
    otherwise plain float32 NCHW (the reference)."""
    torch.manual_seed(0)
    fmt = training_memory_format(device) if as_fit else torch.contiguous_format
    autocast_dtype = training_autocast(True, device)[0] if as_fit else None
    model = build_model(name).to(device, memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    scale = model.config.scale
    x = torch.rand(batch, 1, lr_px, lr_px, device=device).contiguous(memory_format=fmt)
    y = torch.rand(batch, 1, lr_px * scale, lr_px * scale, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            out = model(x)
        F.l1_loss(out.float(), y).backward()
        opt.step()

    step()  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


@torch.no_grad()
def inference_throughput(
    name: str, batch: int, reps: int, device: torch.device, lr_px: int = 64
) -> float:
    torch.manual_seed(0)
    model = build_model(name).to(device).eval()
    x = torch.rand(batch, 1, lr_px, lr_px, device=device)
    model(x)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        out = model(x)
    _sync(device)
    return out.numel() * reps / (time.perf_counter() - t0) / 1e6


def small_epoch_seconds(n_patches: int, batch: int, device: torch.device, lr_px: int = 64) -> float:
    rng = np.random.default_rng(0)
    hr = rng.random((n_patches, 1, lr_px * 4, lr_px * 4), dtype=np.float32)
    lr = F.avg_pool2d(torch.from_numpy(hr), 4).numpy()
    pairs = PatchPairs(lr, hr, 120.0, 30.0)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        fit(build_model("small"), pairs, None, TrainConfig(epochs=1, batch_size=batch), tmp,
            device=str(device))
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and a 200-patch epoch")
    args = parser.parse_args()
    device = resolve_device(None)
    plan = {  # preset: (train batch, train steps, inference batch, inference reps)
        "small": (8, 3 if args.quick else 8, 8, 2 if args.quick else 5),
        "paper": (4, 1 if args.quick else 2, 1, 1 if args.quick else 2),
    }
    if device.type == "cuda":
        plan = {k: (16, 20, 16, 20) for k in plan}
    dtype = training_autocast(True, device)[0]
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, LR patch 64x64 -> 256x256, "
          f"training as fit() does: {'float32' if dtype is None else str(dtype)[6:]} autocast, "
          f"{'channels-last' if training_memory_format(device) == torch.channels_last else 'NCHW'}")
    print(f"{'preset':<8} {'params':>11} {'batch':>5} {'train patches/s':>16} {'infer MP/s':>11}")
    results = {}
    for name, (tb, ts, ib, ir) in plan.items():
        params = count_parameters(build_model(name))
        train = train_throughput(name, tb, ts, device)
        infer = inference_throughput(name, ib, ir, device)
        results[name] = train
        print(f"{name:<8} {params:>11,} {tb:>5} {train:>16.2f} {infer:>11.3f}", flush=True)
    n = 200 if args.quick else 1000
    epoch_s = small_epoch_seconds(n, 16, device)
    print(f"small: one fit() epoch over {n} patches (batch 16): {epoch_s:.1f} s "
          f"({epoch_s * 1000 / n:.1f} s per 1000 patches)")
    print(f"paper/small training time ratio per patch: {results['small'] / results['paper']:.1f}")
    print(f"small_epoch_s_per_1000_patches: {epoch_s * 1000 / n:.1f}")
    print(f"small_train_patches_per_s: {results['small']:.2f}")
    print(f"paper_train_patches_per_s: {results['paper']:.3f}")
    # the default pretraining trains `small` on 32x32 LR patches (conf/base/parameters_pretraining.yml)
    small_32 = train_throughput("small", 8, 3 * plan["small"][1], device, lr_px=32)
    ref_32 = train_throughput("small", 8, 3 * plan["small"][1], device, lr_px=32, as_fit=False)
    print(f"small 32x32 LR / 64x64 LR patches/s ratio: {small_32 / results['small']:.2f}")
    print(f"training_precision: {'float32' if dtype is None else str(dtype)[6:]}")
    print(f"small_train_patches_per_s_32px_float32_nchw: {ref_32:.2f}")
    print(f"fit_speedup_vs_float32_nchw_32px: {small_32 / ref_32:.2f}")
    print(f"small_train_patches_per_s_32px: {small_32:.2f}")
    print(f"default_pretraining_min_at_this_rate: {16 * 2386 / small_32 / 60:.1f}")


if __name__ == "__main__":
    main()
