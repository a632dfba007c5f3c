"""Data-parallel setup: torch DDP processes started by `torchrun` (docs/training.md says why).

One process per device; `torchrun` sets RANK / WORLD_SIZE / LOCAL_RANK and the rendezvous.
gloo on CPU (the 2-process test), NCCL on CUDA. Without those variables this is one process.
"""
from __future__ import annotations

from dataclasses import dataclass
import os

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device('cpu')

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init(device: str) -> Dist:
    """Join the process group when started by torchrun; pick this process's device."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local = int(os.environ.get('LOCAL_RANK', '0'))
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise RuntimeError('--device cuda but torch sees no CUDA device '
                               f'(torch {torch.__version__} built for CPU?)')
        dev = torch.device('cuda', local if world > 1 else (torch.device(device).index or 0))
        torch.cuda.set_device(dev)
    else:
        dev = torch.device('cpu')
    if world > 1 and not dist.is_initialized():
        dist.init_process_group('nccl' if dev.type == 'cuda' else 'gloo')
    return Dist(rank, world, dev)


def all_sum(value: float, d: Dist) -> float:
    """Sum a float over the processes (identity on one process)."""
    if not d.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()


def shutdown(d: Dist) -> None:
    if d.active and dist.is_initialized():
        dist.destroy_process_group()
