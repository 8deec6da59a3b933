"""Finding pretrained weights, shared by every plugin that loads them (CLIP targets, classifiers, encoders).

Weights are looked for locally (an explicit path, then the usual caches) and downloaded only when the user
allowed it. When nothing is found, ``WeightsNotFoundError`` lists every place that was tried and how to fix
it, naming the config key to set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are at none of the places looked at, and downloading was not allowed."""


def missing_weights(what: str, tried: Sequence[str], fixes: Sequence[str]) -> WeightsNotFoundError:
    """The error for ``what`` (e.g. "CLIP ViT-B/16"): every path ``tried``, then the ways to fix it."""
    lines = [f"No weights found for {what}. Looked for:", *(f"  {p}" for p in tried), "To fix, do one of:"]
    lines += [f"  - {fix}" for fix in fixes]
    return WeightsNotFoundError("\n".join(lines))


HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def is_hf_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a Hugging Face checkpoint: config.json plus a weights file."""
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in HF_WEIGHT_FILES)


def _hf_download(repo_id: str, cache_dir: str) -> Path:
    """Fetch config and weights into the cache, preferring safetensors over the pickle format."""
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=["config.json", "model.safetensors*"]))
    if not is_hf_checkpoint(folder):
        folder = Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=["pytorch_model.bin*"]))
    return folder


def find_hf_checkpoint(
    what: str, repo_id: str, path: str = "", allow_download: bool = False, path_key: str = "", download_key: str = ""
) -> Path:
    """Folder holding ``repo_id``'s checkpoint: ``path`` (a folder, or a file inside one) if given, else the HF cache.

    The network is used only when ``allow_download`` is true and the cache lacks the checkpoint. ``path_key``
    and ``download_key`` are the config keys the error tells the user to set.
    """
    fixes = [
        f"run `huggingface-cli download {repo_id}` where the hub is reachable (and copy the cache or the downloaded "
        f"folder here), then set {path_key or 'path='} to the folder",
        f"set {download_key} to fetch it now" if download_key else "pass allow_download=True to fetch it now",
    ]
    needed = f"config.json plus {' or '.join(HF_WEIGHT_FILES[::2])} of '{repo_id}'"
    if path:
        folder = Path(path).expanduser()
        if folder.is_file():
            folder = folder.parent
        if not is_hf_checkpoint(folder):
            raise missing_weights(f"{what} ({repo_id})", [f"{folder}: {needed} (the given path)"], fixes)
        return folder
    from huggingface_hub import constants, snapshot_download

    cache_dir = constants.HF_HUB_CACHE
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
        if is_hf_checkpoint(folder):
            return folder
    except FileNotFoundError:
        pass
    if allow_download:
        return _hf_download(repo_id, cache_dir)
    raise missing_weights(f"{what} ({repo_id})", [f"the Hugging Face cache {cache_dir}: {needed}"], fixes)
