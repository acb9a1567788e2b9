"""The one place that talks to Dask: where independent slabs run, from a laptop to Slurm.

A :class:`ParallelConfig` (``params:parallel``, ``conf/base/parameters_parallel.yml``)
names where the work runs:

* ``serial``: no Dask at all, a plain loop in this process (tests, tiny inputs).
* ``local``: a ``distributed.LocalCluster`` on this machine, one single-threaded
  worker process per core, or one worker per GPU when ``device: cuda``.
* ``slurm`` / ``pbs``: ``dask_jobqueue.SLURMCluster`` / ``PBSCluster`` that submits
  ``n_jobs`` batch jobs of ``cores`` cores and ``memory`` each.
* ``auto`` (default): ``serial`` when the machine has fewer than
  ``min_cores_for_cluster`` cores or there are fewer than ``min_tasks_for_cluster``
  slabs (starting worker processes and importing torch in each costs seconds, and on
  2 cores one process already keeps both busy), ``serial`` on a single GPU, otherwise
  ``local``.

:func:`open_client` gives a ``distributed.Client`` (or ``None`` for serial) and logs
the dashboard link; :func:`map_slabs` runs a function on independent slabs, through
the client when there is one, and returns the results in slab order.  Functions sent
to workers must be importable top-level functions; they should read their own input
(e.g. rows of an HDF5 file on a shared file system) instead of receiving big arrays.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .progress import Progress

logger = logging.getLogger(__name__)

__all__ = [
    "ParallelConfig",
    "resolve_mode",
    "open_client",
    "client_for",
    "map_slabs",
    "worker_device",
    "task_setup",
    "in_worker",
    "MODES",
]

Mode = Literal["auto", "serial", "local", "slurm", "pbs"]
MODES = ("auto", "serial", "local", "slurm", "pbs")


@dataclass(frozen=True)
class ParallelConfig:
    """Where slab-parallel work runs (see the module notes).

    Attributes
    ----------
    mode : {"auto", "serial", "local", "slurm", "pbs"}
    device : {"cpu", "cuda"}
        ``cuda`` makes a local cluster one worker per GPU; each task asks
        :func:`worker_device` for its GPU.
    n_workers : int, optional
        Local workers (default one per core, or per GPU).
    threads_per_worker : int
        Threads of each worker (and torch threads of each task).
    memory_per_worker_gb : float, optional
        Local worker memory limit in GB (default: the machine's memory shared equally).
    min_tasks_for_cluster, min_cores_for_cluster : int
        Thresholds of ``auto`` below which work stays serial.
    dashboard_address : str, optional
        Where the local dashboard listens (``":8787"``; ``":0"`` any free port,
        ``None`` no dashboard).
    cores, memory, walltime, queue, account, processes : jobqueue job shape
        Cores and memory (``"64GB"``) of one batch job, its wall time
        (``"02:00:00"``), queue/partition and account; ``processes`` workers per job
        (default ``cores``, single-threaded workers).
    n_jobs : int
        Batch jobs to submit.
    job_extra_directives : list of str
        Extra scheduler lines, e.g. ``["--gres=gpu:1"]`` or ``["-l select=1:ngpus=1"]``.
    job_script_prologue : list of str
        Shell lines run before the worker starts (``source .venv/bin/activate``).
    local_directory, log_directory : str, optional
        Worker scratch and batch-log folders.
    interface : str, optional
        Network interface of the workers (``ib0`` on InfiniBand clusters).
    """

    mode: Mode = "auto"
    device: Literal["cpu", "cuda"] = "cpu"
    n_workers: int | None = None
    threads_per_worker: int = 1
    memory_per_worker_gb: float | None = None
    min_tasks_for_cluster: int = 4
    min_cores_for_cluster: int = 4
    dashboard_address: str | None = ":8787"
    cores: int = 8
    memory: str = "32GB"
    walltime: str = "01:00:00"
    queue: str | None = None
    account: str | None = None
    processes: int | None = None
    n_jobs: int = 1
    job_extra_directives: list[str] = field(default_factory=list)
    job_script_prologue: list[str] = field(default_factory=list)
    local_directory: str | None = None
    log_directory: str | None = None
    interface: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"parallel.mode must be one of {MODES}, got {self.mode!r} "
                "(conf/<env>/parameters_parallel.yml)"
            )
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"parallel.device must be 'cpu' or 'cuda', got {self.device!r}")
        for name in ("threads_per_worker", "cores", "n_jobs"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"parallel.{name} must be a positive integer, got {value!r}")
        n = self.n_workers
        if n is not None and (int(n) != n or n < 1):
            raise ValueError(f"parallel.n_workers must be a positive integer or null, got {n!r}")


def _n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _n_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def resolve_mode(config: ParallelConfig, n_tasks: int | None = None) -> str:
    """The concrete mode (``serial``, ``local``, ``slurm`` or ``pbs``) for ``n_tasks`` slabs."""
    if config.mode != "auto":
        return config.mode
    if n_tasks is not None and n_tasks < config.min_tasks_for_cluster:
        return "serial"
    if config.device == "cuda":
        return "local" if _n_gpus() > 1 else "serial"
    return "local" if _n_cores() >= config.min_cores_for_cluster else "serial"


def _local_cluster(config: ParallelConfig, n_tasks: int | None) -> Any:
    from distributed import LocalCluster

    if config.device == "cuda":
        default = max(_n_gpus(), 1)
    else:
        default = max(_n_cores() // config.threads_per_worker, 1)
    n_workers = config.n_workers or default
    if n_tasks is not None:
        n_workers = max(1, min(n_workers, n_tasks))
    memory = (
        "auto" if config.memory_per_worker_gb is None else f"{config.memory_per_worker_gb}GB"
    )
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=config.threads_per_worker,
        processes=True,
        memory_limit=memory,
        dashboard_address=config.dashboard_address,
        local_directory=config.local_directory,
    )


def _jobqueue_cluster(config: ParallelConfig) -> Any:
    import dask_jobqueue

    cls = dask_jobqueue.SLURMCluster if config.mode == "slurm" else dask_jobqueue.PBSCluster
    kwargs: dict[str, Any] = dict(
        cores=config.cores,
        memory=config.memory,
        walltime=config.walltime,
        processes=config.processes or config.cores,
        queue=config.queue,
        account=config.account,
        job_extra_directives=list(config.job_extra_directives),
        job_script_prologue=list(config.job_script_prologue),
        local_directory=config.local_directory,
        log_directory=config.log_directory,
        interface=config.interface,
    )
    if config.dashboard_address is not None:
        kwargs["scheduler_options"] = {"dashboard_address": config.dashboard_address}
    cluster = cls(**{k: v for k, v in kwargs.items() if v is not None})
    logger.info("job script of each batch job:\n%s", cluster.job_script())
    cluster.scale(jobs=config.n_jobs)
    return cluster


@contextlib.contextmanager
def open_client(config: ParallelConfig | None = None, n_tasks: int | None = None) -> Iterator[Any]:
    """Yield a ``distributed.Client`` for ``config`` (``None`` in serial mode).

    The cluster is started on entry and shut down on exit; its dashboard link is
    logged at INFO.

    Parameters
    ----------
    config : ParallelConfig, optional
        Default ``ParallelConfig()`` (``auto``).
    n_tasks : int, optional
        Slabs that will run; ``auto`` stays serial for few, and a local cluster
        never starts more workers than slabs.
    """
    config = config or ParallelConfig()
    mode = resolve_mode(config, n_tasks)
    if mode == "serial":
        logger.info("parallel: serial (no Dask)%s", f", {n_tasks} slab(s)" if n_tasks else "")
        yield None
        return
    from distributed import Client

    cluster = _local_cluster(config, n_tasks) if mode == "local" else _jobqueue_cluster(config)
    try:
        with Client(cluster) as client:
            n = len(client.scheduler_info().get("workers", {}))
            logger.info(
                "parallel: %s cluster, %d worker(s) up; Dask dashboard: %s",
                mode, n, client.dashboard_link,
            )
            forward_worker_logs(client)
            yield client
    finally:
        cluster.close()


def _set_package_log_level(level: int) -> None:
    """On a worker: this package logs at ``level``, progress as lines (no bar)."""
    from .progress import log_lines_only

    logging.getLogger(__package__ or "xrf_sr_kedro").setLevel(level)
    log_lines_only()


def forward_worker_logs(client: Any) -> None:
    """Log records of this package on the workers (progress lines included) go to this log.

    Workers are other processes (or other machines) whose loggers have no handler
    and a WARNING level; this sets their package logger to this process's level and
    forwards its records (``Client.forward_logging``), so per-iteration progress of
    a slab reaches the driver's log, redirected or not.
    """
    name = __package__ or "xrf_sr_kedro"
    level = logging.getLogger(name).getEffectiveLevel()
    client.register_worker_callbacks(setup=functools.partial(_set_package_log_level, level))
    client.forward_logging(name, level=level)


def client_for(config: ParallelConfig | None, n_tasks: int, client: Any = None) -> Any:
    """A context yielding ``client`` (left open) if given, else :func:`open_client`."""
    if client is not None:
        return contextlib.nullcontext(client)
    return open_client(config, n_tasks)


def in_worker() -> bool:
    """Whether this code runs inside a Dask worker."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def task_setup(device: str = "cpu", threads: int = 1) -> str:
    """Call at the start of a slab task: pins torch threads on a worker, returns the device.

    In a Dask worker torch gets ``threads`` threads (one per worker by default, so
    workers do not oversubscribe the cores); in serial mode nothing changes.
    """
    if in_worker():
        import torch

        torch.set_num_threads(int(threads))
    return worker_device(device)


def worker_device(config_device: str = "cpu") -> str:
    """Torch device for a task: ``cuda:<i>`` by local worker number on multi-GPU nodes.

    A local cluster names its workers 0, 1, ...; worker ``i`` takes GPU
    ``i % n_gpus``.  Outside a worker, or for ``cpu``, the answer is ``cpu`` or
    ``cuda``.
    """
    if config_device != "cuda":
        return "cpu"
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return "cuda"
    n = _n_gpus()
    return f"cuda:{int(name) % n}" if isinstance(name, int) and n > 0 else "cuda"


def map_slabs(
    fn: Callable[..., Any],
    slabs: Sequence[Any],
    /,
    *,
    client: Any = None,
    on_result: Callable[[int, Any], None] | None = None,
    max_in_flight: int | None = None,
    desc: str = "slabs",
    progress: bool = True,
    **kwargs: Any,
) -> list[Any] | None:
    """Run ``fn(slab, **kwargs)`` for every slab; results in slab order.

    Parameters
    ----------
    fn : callable
        A top-level (picklable) function of one slab description.
    slabs : sequence
        Independent pieces of work (e.g. ``(start, stop)`` rows).
    client : distributed.Client, optional
        From :func:`open_client`; ``None`` runs a plain loop here.
    on_result : callable, optional
        ``on_result(index, result)`` is called in this process as each slab
        finishes (in completion order) and the result is then dropped, so only
        ``max_in_flight`` results are ever held: use it to write each slab to disk.
    max_in_flight : int, optional
        Slabs submitted but not yet handed over (default twice the workers).
    desc : str
        Progress label (see :mod:`xrf_sr_kedro.progress`).
    progress : bool
        Report progress.
    **kwargs
        Passed to every call of ``fn``.

    Returns
    -------
    list or None
        The results in slab order, or ``None`` when ``on_result`` took them.
    """
    n = len(slabs)
    results: list[Any] | None = [None] * n if on_result is None else None

    def take(i: int, result: Any) -> None:
        if on_result is None:
            results[i] = result  # type: ignore[index]
        else:
            on_result(i, result)

    with Progress(n, desc, unit="slab", enabled=progress) as bar:
        if client is None:
            for i, slab in enumerate(slabs):
                take(i, fn(slab, **kwargs))
                bar.update()
            return results
        from distributed import as_completed

        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        window = max_in_flight or 2 * n_workers
        pending = iter(enumerate(slabs))
        index_of: dict[str, int] = {}

        def submit_next(queue: Any) -> None:
            item = next(pending, None)
            if item is not None:
                i, slab = item
                fut = client.submit(fn, slab, pure=False, **kwargs)
                index_of[fut.key] = i
                queue.add(fut)

        queue = as_completed()
        for _ in range(min(window, n)):
            submit_next(queue)
        for fut in queue:
            take(index_of.pop(fut.key), fut.result())
            fut.release()
            bar.update()
            submit_next(queue)
    return results
