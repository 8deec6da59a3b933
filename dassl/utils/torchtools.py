"""Checkpoint save/load in Dassl's layout, written atomically, plus RNG-state capture for exact resumption."""

from __future__ import annotations

import os
import os.path as osp
import pickle
import random
import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .tools import atomic_write, mkdir_if_missing

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "checkpoint_position",
    "checkpoint_candidates",
    "load_resume_checkpoint",
    "restore_checkpoint",
    "resume_from_checkpoint",
    "count_num_param",
    "load_pretrained_weights",
    "capture_rng_state",
    "restore_rng_state",
]


def _strip_module(state_dict: dict) -> OrderedDict:
    return OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def save_checkpoint(
    state: dict, save_dir: str, is_best: bool = False, remove_module_from_keys: bool = True, model_name: str = ""
) -> str:
    """Save ``state`` to ``save_dir/model.pth.tar-{epoch}`` (or ``model_name``) and point ``save_dir/checkpoint`` at it.

    Both files are written to a temporary name and renamed, so a kill mid-save never leaves a
    truncated checkpoint and the pointer always names a complete file.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys and "state_dict" in state:
        state = dict(state, state_dict=_strip_module(state["state_dict"]))
    fname = model_name or f"model.pth.tar-{state['epoch']}"
    fpath = osp.join(save_dir, fname)
    with atomic_write(fpath, "wb") as f:
        torch.save(state, f)
    print(f"Checkpoint saved to {fpath}")
    with atomic_write(osp.join(save_dir, "checkpoint")) as f:
        f.write(f"{osp.basename(fpath)}\n")
    if is_best:
        best = osp.join(osp.dirname(fpath), "model-best.pth.tar")
        with atomic_write(best, "wb") as f:
            torch.save(state, f)
        print(f'Best checkpoint saved to "{best}"')
    return fpath


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be loaded; the message names the file and what to do."""


def load_checkpoint(fpath: str) -> dict:
    """Load a checkpoint on CPU with ``weights_only=True`` (tensors and plain data, never arbitrary objects).

    Full unpickling could run code from the file, so it is never done; a file that needs it, or a truncated or
    corrupt one, raises CheckpointError naming the file.
    """
    if fpath is None:
        raise ValueError("File path is None")
    if not osp.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = _unpickler_reason(str(e))
        if "Unsupported global" not in reason:
            raise CheckpointError(
                f'"{fpath}" is not a readable checkpoint ({reason}); it is truncated, empty or corrupt. Delete it '
                f"(a run resumes from the previous checkpoint) or restore it."
            ) from None
        raise CheckpointError(
            f'"{fpath}" holds Python objects that are only loaded by full unpickling, which can run code from the '
            f"file, so it is refused ({reason}). If you trust the file, re-save its tensors: "
            f"torch.save(torch.load(path, weights_only=False), path)."
        ) from None
    except (EOFError, RuntimeError, ValueError, OSError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f'"{fpath}" is not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e!r}); '
            f"it is truncated, empty or corrupt. Delete it (a run resumes from the previous checkpoint) or restore it."
        ) from None


def _unpickler_reason(message: str) -> str:
    """The line of torch's weights-only error that says what was wrong (the rest is generic advice)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("WeightsUnpickler error:"):
            rest = line.removeprefix("WeightsUnpickler error:").strip()
            return rest or (lines[i + 1] if i + 1 < len(lines) else line)
    return lines[0] if lines else "unreadable"


def checkpoint_position(fname: str) -> tuple[int, int] | None:
    """``(epochs completed, batches into the next epoch)`` of a checkpoint file name, or None for other files.

    ``model.pth.tar-3`` is (3, 0); ``model.pth.tar-2+5`` (a checkpoint taken after 5 steps of epoch 3) is (2, 5).
    """
    match = re.fullmatch(r"model\.pth\.tar-(\d+)(?:\+(\d+))?", fname)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def checkpoint_candidates(fdir: str) -> list[str]:
    """Resume points in ``fdir``, best first: the file the ``checkpoint`` pointer names, then every other
    ``model.pth.tar-*`` from the latest position to the earliest."""
    pointed = None
    pointer = osp.join(fdir, "checkpoint")
    if osp.isfile(pointer):
        with open(pointer, errors="replace") as f:
            name = f.readline().strip()
        if name and osp.basename(name) == name:
            pointed = name
    others = sorted(
        (f for f in os.listdir(fdir) if checkpoint_position(f) is not None and f != pointed),
        key=lambda f: checkpoint_position(f) or (0, 0),
        reverse=True,
    )
    names = ([pointed] if pointed else []) + others
    return [osp.join(fdir, n) for n in names]


def load_resume_checkpoint(fdir: str) -> tuple[str, dict]:
    """The newest intact checkpoint in ``fdir`` and its path; a corrupt or missing newer one is skipped with a
    warning naming it. CheckpointError when none is intact."""
    problems = []
    for path in checkpoint_candidates(fdir):
        try:
            checkpoint = load_checkpoint(path)
            if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "epoch" not in checkpoint:
                raise CheckpointError(f'"{path}" is not a training checkpoint (no state_dict or epoch)')
        except (CheckpointError, FileNotFoundError) as e:
            print(f"Warning: cannot resume from {path}: {e}")
            problems.append(str(e))
            continue
        if problems:
            print(f"Warning: resuming from the previous intact checkpoint {path}")
        return path, checkpoint
    detail = "; ".join(problems) or "no model.pth.tar-* file"
    raise CheckpointError(
        f"No intact checkpoint to resume from in {fdir} ({detail}). Move the folder away to train from scratch."
    )


def restore_checkpoint(checkpoint: dict, model: nn.Module, optimizer: Any = None, scheduler: Any = None) -> None:
    """Load a checkpoint's weights, and its optimiser and scheduler states where both sides have one."""
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")


def resume_from_checkpoint(fdir: str, model: nn.Module, optimizer: Any = None, scheduler: Any = None) -> int:
    """Restore the newest intact checkpoint in ``fdir`` (the pointer's, else the previous); returns its ``epoch``
    (completed epochs)."""
    fpath, checkpoint = load_resume_checkpoint(fdir)
    print(f'Loading checkpoint from "{fpath}"')
    restore_checkpoint(checkpoint, model, optimizer, scheduler)
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def count_num_param(model: nn.Module | None = None, params: Iterable[torch.Tensor] | None = None) -> int:
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        return sum(p.numel() for p in params)
    raise ValueError("model and params must be provided")


def load_pretrained_weights(model: nn.Module, weight_path: str) -> None:
    """Load the entries of ``weight_path`` whose names and shapes match ``model``; report the rest."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = _strip_module(checkpoint.get("state_dict", checkpoint))
    model_dict = model.state_dict()
    matched = {k: v for k, v in state_dict.items() if k in model_dict and model_dict[k].size() == v.size()}
    discarded = [k for k in state_dict if k not in matched]
    if not matched:
        print(f"Cannot load {weight_path} (check the key names manually)")
        return
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    print(f'Successfully loaded pretrained weights from "{weight_path}"')
    if discarded:
        print(f"Layers discarded due to unmatched keys or size: {discarded}")


def capture_rng_state() -> dict:
    """Python, NumPy, torch and CUDA generator states in a form ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
