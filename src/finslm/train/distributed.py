"""Data-parallel training under torchrun (DDP).

A plain ``python`` process is rank 0 of a world of 1 and never touches ``torch.distributed``, so
the single-process path is exactly what it was.

    torchrun --nproc_per_node=4 stages/train.py minilm   # same outputs as one process
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from finslm.config import ConfigError


def dist_env() -> tuple[int, int, int]:
    """(rank, local rank, world size) as torchrun sets them; (0, 0, 1) in a plain process."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """True on the one process that writes outputs and logs (rank 0, or a plain process)."""
    return dist_env()[0] == 0


def init_distributed() -> int:
    """Join torchrun's process group (NCCL on GPU, gloo on CPU) once; return the world size."""
    _, local_rank, world = dist_env()
    if world == 1:
        return 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
            torch.cuda.set_device(device)
            dist.init_process_group(backend=ddp_backend(), device_id=device)
        else:
            dist.init_process_group(backend=ddp_backend())
    return dist.get_world_size()


def ddp_backend() -> str:
    import torch

    return "nccl" if torch.cuda.is_available() else "gloo"


def finish_distributed() -> None:
    """Wait for every rank (rank 0 is writing outputs), then leave the process group."""
    dist = sys.modules.get("torch.distributed")  # not imported: no group (and no torch import)
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def per_device_batch(batch_size: int, world: int, key: str = "batch_size") -> int:
    """``batch_size`` is the global batch: each of ``world`` processes takes an equal share."""
    if batch_size % world:
        lower, upper = batch_size - batch_size % world, batch_size + world - batch_size % world
        choices = f"{lower} or {upper}" if lower else str(upper)
        raise ConfigError(
            f"{key}: got {batch_size}; it is the global batch and must split evenly over "
            f"{world} processes (try {choices})"
        )
    return batch_size // world


@contextlib.contextmanager
def checkpoint_dir(world: int):
    """Where Trainer keeps per-epoch checkpoints until the best one is restored.

    One process: a private temporary folder (as always). Under torchrun every rank must see the
    same path (all ranks reload the best checkpoint), so rank 0 picks the name and each node
    gets its own folder, written by that node's local rank 0 (``save_on_each_node``), so no
    shared filesystem is needed.
    """
    if world == 1:
        with tempfile.TemporaryDirectory(prefix="finslm-ckpt-") as path:
            yield path
        return
    import torch.distributed as dist

    token = [uuid.uuid4().hex if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(token, src=0)
    node = os.environ.get("GROUP_RANK", "0")
    path = Path(tempfile.gettempdir()) / f"finslm-ckpt-{token[0]}-node{node}"
    path.mkdir(exist_ok=True)
    try:
        yield str(path)
        dist.barrier()  # nobody may still be reading the best checkpoint
    finally:
        if dist_env()[1] == 0:
            shutil.rmtree(path, ignore_errors=True)
