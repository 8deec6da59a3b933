"""Checkpoint save/load in Dassl's layout, written atomically, plus RNG-state capture for exact resumption."""

from __future__ import annotations

import os.path as osp
import pickle
import random
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


def load_checkpoint(fpath: str) -> dict:
    """Load a checkpoint on CPU; tensors-only loading first, full unpickling for older files."""
    if fpath is None:
        raise ValueError("File path is None")
    if not osp.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Checkpoints written by older tools may hold pickled Python objects.
        return torch.load(fpath, map_location="cpu", weights_only=False)
    except UnicodeDecodeError:
        return torch.load(fpath, map_location="cpu", weights_only=False, encoding="latin1")


def resume_from_checkpoint(fdir: str, model: nn.Module, optimizer: Any = None, scheduler: Any = None) -> int:
    """Restore the checkpoint named in ``fdir/checkpoint``; returns its ``epoch`` (completed epochs)."""
    with open(osp.join(fdir, "checkpoint")) as f:
        fpath = osp.join(fdir, f.readline().strip("\n"))
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
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
