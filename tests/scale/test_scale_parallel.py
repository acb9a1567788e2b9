"""Dask through parallel.py: configuration, slab order, and two workers equal to one."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from xrf_sr_kedro.parallel import ParallelConfig, map_slabs, open_client, resolve_mode
from xrf_sr_kedro.tomo.slabs import reconstruct_slabs


def slow_square(i: int, delay_s: float = 0.0) -> int:
    """Later slabs finish first, so completion order is the reverse of slab order."""
    time.sleep(delay_s * (5 - i))
    return i * i


def test_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match="parallel.mode must be one of"):
        ParallelConfig(mode="mpi")
    with pytest.raises(ValueError, match="parallel.n_jobs"):
        ParallelConfig(mode="slurm", n_jobs=0)


def test_auto_stays_serial_for_few_slabs_or_few_cores(monkeypatch):
    import xrf_sr_kedro.parallel as par

    cfg = ParallelConfig()
    monkeypatch.setattr(par, "_n_cores", lambda: 32)
    assert resolve_mode(cfg, n_tasks=2) == "serial"
    assert resolve_mode(cfg, n_tasks=64) == "local"
    monkeypatch.setattr(par, "_n_cores", lambda: 2)
    assert resolve_mode(cfg, n_tasks=64) == "serial"
    assert resolve_mode(ParallelConfig(mode="slurm"), n_tasks=1) == "slurm"


def test_serial_map_keeps_order_and_hands_results_over():
    assert map_slabs(slow_square, range(5), progress=False) == [0, 1, 4, 9, 16]
    seen: dict[int, int] = {}
    assert map_slabs(slow_square, range(5), on_result=seen.__setitem__, progress=False) is None
    assert seen == {i: i * i for i in range(5)}


def test_slurm_job_script_from_configuration():
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    cfg = ParallelConfig(
        mode="slurm", cores=4, memory="16GB", walltime="00:30:00", queue="short",
        job_extra_directives=["--gres=gpu:1"],
    )
    cluster = dask_jobqueue.SLURMCluster(
        cores=cfg.cores, memory=cfg.memory, walltime=cfg.walltime, queue=cfg.queue,
        processes=cfg.cores, job_extra_directives=cfg.job_extra_directives,
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -t 00:30:00", "#SBATCH --gres=gpu:1", "--nworkers 4"):
        assert line in script


@pytest.fixture(scope="module")
def two_workers():
    cfg = ParallelConfig(mode="local", n_workers=2, dashboard_address=":0")
    with open_client(cfg, n_tasks=8) as client:
        yield client


@pytest.mark.slow
def test_local_cluster_map_keeps_slab_order(two_workers):
    assert len(two_workers.scheduler_info()["workers"]) == 2
    out = map_slabs(slow_square, list(range(5)), client=two_workers, progress=False, delay_s=0.05)
    assert out == [0, 1, 4, 9, 16]


@pytest.mark.slow
def test_two_workers_give_the_same_volume_as_one(small_stack, tmp_path, two_workers):
    path, _, _ = small_stack
    kw = dict(algorithm="ospml_quad", n_iter=3, n_subsets=4, slab_slices=3, progress=False)
    one = reconstruct_slabs(path, tmp_path / "one.h5", parallel=ParallelConfig(mode="serial"), **kw)
    from distributed import get_task_stream

    with get_task_stream(two_workers) as stream:
        two = reconstruct_slabs(
            path, tmp_path / "two.h5", client=two_workers, max_in_flight=3, **kw
        )
    for e in range(2):
        a, b = one.read(e, 0, 13), two.read(e, 0, 13)
        np.testing.assert_allclose(b, a, rtol=2e-7 * 8, atol=1e-7 * float(a.max()))
    # Both workers reconstructed some of the 10 slabs.
    assert len(stream.data) == 10
    assert len({task["worker"] for task in stream.data}) == 2


def test_dashboard_link_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="xrf_sr_kedro.parallel")
    cfg = ParallelConfig(mode="local", n_workers=1, dashboard_address=":0")
    with open_client(cfg, n_tasks=1) as client:
        assert client is not None
    assert any("Dask dashboard: http" in r.getMessage() for r in caplog.records)


def test_base_configuration_builds_a_parallel_config():
    from pathlib import Path

    import yaml

    conf = Path(__file__).resolve().parents[2] / "conf" / "base" / "parameters_parallel.yml"
    cfg = ParallelConfig(**yaml.safe_load(conf.read_text())["parallel"])
    # The default never starts a cluster on a 2-core machine (make run).
    import xrf_sr_kedro.parallel as par

    assert cfg.mode == "auto"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(par, "_n_cores", lambda: 2)
        assert resolve_mode(cfg, n_tasks=1000) == "serial"


@pytest.mark.slow
def test_enhancement_on_two_workers_equals_serial(tmp_path, two_workers):
    import torch
    from scale_helpers import write_stack

    from xrf_sr_kedro.models.dual_branch import build_model
    from xrf_sr_kedro.streaming import enhance_stack_file

    path = tmp_path / "maps.h5"
    write_stack(path, 1, 6, 20, 24)
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    kw = dict(frames_per_slab=2, progress=False, tile_px=16, overlap_px=4, precision="float32")
    one = enhance_stack_file(model, path, tmp_path / "one.h5", 4,
                             parallel=ParallelConfig(mode="serial"), **kw)
    two = enhance_stack_file(model, path, tmp_path / "two.h5", 4, client=two_workers, **kw)
    a, b = one.read_frames(0, 0, 6), two.read_frames(0, 0, 6)
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6 * float(a.max()))
