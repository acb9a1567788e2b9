"""DistributedDataParallel plumbing for :func:`xrf_sr_kedro.training.loop.fit`.

``fit`` calls :func:`init_distributed` itself: launched under ``torchrun`` (the
environment has ``WORLD_SIZE > 1``) it joins the process group (NCCL on GPUs,
gloo on CPU), otherwise it runs as one process.  Example (one node, 4 GPUs)::

    torchrun --standalone --nproc_per_node 4 -m kedro run --pipeline pretraining

Each rank trains on its :class:`~torch.utils.data.DistributedSampler` shard with
``batch_size // world_size`` patches per step, so the global batch (and hence the
result, up to floating-point summation order) equals single-process training with
``batch_size``.  Only rank 0 validates and writes checkpoints; metrics are
broadcast so every rank returns the same history.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    Attributes
    ----------
    world_size, rank, local_rank : int
    owns_group : bool
        ``True`` if :func:`init_distributed` created the process group (and
        :func:`shutdown_distributed` should destroy it).
    """

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(use_cuda: bool) -> DistributedContext:
    """Join (or create) the default process group if ``WORLD_SIZE > 1``.

    Parameters
    ----------
    use_cuda : bool
        Use the NCCL backend and bind this process to GPU ``LOCAL_RANK``;
        otherwise gloo.
    """
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", rank))
        if use_cuda:
            torch.cuda.set_device(local)
        return DistributedContext(world, rank, local, owns_group=False)
    world = env_world_size()
    if world <= 1:
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, init_method="env://", world_size=world, rank=rank)
    logger.info("joined %s process group as rank %d of %d", backend, rank, world)
    return DistributedContext(world, rank, local, owns_group=True)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it.

    No barrier: on an error in one rank the others must not wait for it here.
    """
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """Sum ``values`` over all ranks (a no-op for one process)."""
    if ctx.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_from_main(obj: Any, ctx: DistributedContext) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistributedContext) -> None:
    """Wait for all ranks (a no-op for one process)."""
    if ctx.enabled:
        dist.barrier()
