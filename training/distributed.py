"""Several processes training one model: the process group that ``torchrun`` or ``accelerate
launch`` describes in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), and the device each process trains on.

Run alone (no launcher), training is one process on the first GPU or the CPU, and nothing here
starts a process group.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from faderwise.tools.errors import FaderwiseError


class LaunchError(FaderwiseError):
    """The launcher's environment cannot describe a process group (the message names the variable)."""


@dataclass(frozen=True)
class Processes:
    """This process's place among those training together.

    Attributes:
        rank: 0 … ``world_size`` − 1; rank 0 writes the log, checkpoints and the final model.
        world_size: how many processes train together (1 without a launcher).
        local_rank: the process's index on its machine, which picks its GPU.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def processes_from_env(environ: Mapping[str, str] | None = None) -> Processes:
    """The launcher's description of this process (one process when no launcher set ``WORLD_SIZE``)."""
    environ = os.environ if environ is None else environ

    def whole_number(name: str, default: str) -> int:
        raw = environ.get(name, default)
        try:
            return int(raw)
        except ValueError:
            raise LaunchError(f"{name}={raw!r} is not a whole number (set by torchrun or accelerate launch)") from None

    rank = whole_number("RANK", "0")
    values = {"RANK": rank, "WORLD_SIZE": whole_number("WORLD_SIZE", "1"),
              "LOCAL_RANK": whole_number("LOCAL_RANK", str(rank))}
    processes = Processes(rank=values["RANK"], world_size=values["WORLD_SIZE"], local_rank=values["LOCAL_RANK"])
    if processes.world_size < 1 or not 0 <= processes.rank < processes.world_size:
        raise LaunchError(f"RANK={processes.rank} does not fit WORLD_SIZE={processes.world_size}")
    return processes


def device_for(processes: Processes) -> Any:
    """The GPU of this process's local rank, or the CPU on a machine without CUDA."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(processes.local_rank)
        return torch.device("cuda", processes.local_rank)
    return torch.device("cpu")


def start_group(processes: Processes, device: Any) -> None:
    """Join the launcher's process group: NCCL between GPUs, Gloo between CPU processes."""
    import torch.distributed as dist

    if processes.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def end_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def wait_for_all(processes: Processes) -> None:
    """Every process reaches this point before any goes on (after rank 0 wrote a checkpoint)."""
    if processes.distributed:
        import torch.distributed as dist

        dist.barrier()


def mean_over_processes(value: float, processes: Processes, device: Any) -> float:
    """``value`` averaged over the processes (each one's loss, for the log)."""
    if not processes.distributed:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / processes.world_size
