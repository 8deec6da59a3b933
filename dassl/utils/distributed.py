"""The processes of one run started by ``torchrun``: the process group from its environment, which process writes,
and the few agreements the engine needs so that every process takes the same branch.

With one process (plain ``python train.py``, or ``torchrun --nproc_per_node 1``) no process group is made and every
function here is the identity or a no-op, so a single-process run does exactly what it did before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "agree_max",
    "backend",
    "barrier",
    "init_from_env",
    "is_writer",
    "rank",
    "shutdown",
    "world_size",
    "writer_decides",
]

T = TypeVar("T")


def init_from_env(use_cuda: bool = True) -> bool:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1): NCCL with one GPU per process
    (``LOCAL_RANK``) when CUDA is there and wanted, else gloo on CPU. Returns True when a group was made."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed; run one process.")
    if use_cuda and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise RuntimeError(
                f"Process with LOCAL_RANK {local} has no GPU of its own ({torch.cuda.device_count()} visible): "
                f"start at most that many processes per node (torchrun --nproc_per_node)."
            )
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return True


def shutdown() -> None:
    """Leave the process group (when there is one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    """Processes in this run (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_writer() -> bool:
    """True for the one process that writes the run folder (rank 0)."""
    return rank() == 0


def backend() -> str:
    """The process group's backend ("" without one)."""
    return str(dist.get_backend()) if world_size() > 1 else ""


def collective_device() -> torch.device:
    """Where tensors for a collective live: the process's GPU under NCCL, else the CPU."""
    if backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def agree_max(values: Sequence[int]) -> list[int]:
    """The element-wise maximum of ``values`` over all processes (``values`` itself with one process).

    Used for decisions a single process may see first (a stop signal, a checkpoint due by its clock), so that all
    processes act on them at the same step.
    """
    if world_size() == 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.int64, device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [int(v) for v in t.tolist()]


def barrier() -> None:
    """Wait until every process gets here (nothing with one process)."""
    if world_size() > 1:
        dist.barrier()


def writer_decides(action: Callable[[], T]) -> T:
    """Run ``action`` on the writer only and give its result, or its exception, to every process.

    For steps that touch the run folder (claiming it, evaluating and writing results): the other processes wait
    here instead of doing the work again, and an error on the writer is raised on every process instead of
    leaving them waiting in a later collective.
    """
    if world_size() == 1:
        return action()
    outcome: list[Any] = [None]
    error: BaseException | None = None
    if is_writer():
        try:
            outcome[0] = ("ok", action())
        except Exception as e:
            error = e
            outcome[0] = ("error", _portable(e))
    dist.broadcast_object_list(outcome, src=0)
    kind, value = outcome[0]
    if error is not None:
        raise error
    if kind == "error":
        raise value
    return value


def _portable(error: Exception) -> Exception:
    """``error`` when it survives pickling (to be raised as itself elsewhere), else a RuntimeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
