"""``clip.load``, ``clip.tokenize`` and ``clip.available_models`` with OpenAI's signatures, offline by default.

Weights are looked for locally, in the order the toolkit's CLIP target uses (``trainers.targets.clip``): the
files ``clip.load`` leaves in ``~/.cache/clip`` (or ``download_root``), then the Hugging Face cache open_clip
fills. OpenAI's ``clip.load`` downloads whenever the file is missing or its SHA256 differs; here a download
happens only when asked for, with ``download=True`` or the environment variable ``BBVP_CLIP_DOWNLOAD=1``
(which reaches code that calls ``clip._download(url)`` itself, as CoOp's trainers do). The names of the
toolkit's tiny random CLIPs (``tiny-vit``, ``tiny-rn``) load too, for tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import open_clip
import torch
from torch import nn

from trainers.targets.clip import (
    OPENAI_ARCHS,
    TINY_ARCHS,
    local_openai_weights,
    openai_cache_dirs,
    openai_url,
    read_state_dict,
    tiny_clip,
)
from trainers.weights import missing_weights

from .model import build_model
from .simple_tokenizer import SimpleTokenizer

__all__ = ["available_models", "load", "tokenize"]

DOWNLOAD_ENV = "BBVP_CLIP_DOWNLOAD"
TINY_SCHEME = "tiny-clip://"

_MODELS: dict[str, str] = {
    **{arch: openai_url(arch) for arch in OPENAI_ARCHS},
    **{arch: TINY_SCHEME + arch for arch in TINY_ARCHS},
}

_tokenizer = SimpleTokenizer()


def available_models() -> list[str]:
    """Names ``load`` accepts besides a file path: OpenAI's models, then the tiny random CLIPs."""
    return list(_MODELS)


def download_allowed(download: bool | None = None) -> bool:
    """``download`` if given, else whether ``BBVP_CLIP_DOWNLOAD`` is set to 1/true/yes."""
    if download is not None:
        return download
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def _download(url: str, root: str | None = None, download: bool | None = None) -> str:
    """Local path of the checkpoint published at ``url`` (an entry of ``_MODELS``), fetched only when allowed.

    Looks in ``root`` (default: ``~/.cache/clip``, then ``$XDG_CACHE_HOME/clip``) and the Hugging Face cache.
    A file found there is used as it is: unlike OpenAI's ``_download``, no checksum mismatch triggers a
    download. The tiny CLIPs' weights are written to ``root`` from their fixed seed.
    """
    folders = [Path(root).expanduser()] if root else openai_cache_dirs()
    if url.startswith(TINY_SCHEME):
        return str(_save_tiny(url.removeprefix(TINY_SCHEME), folders[0]))
    arch = next((name for name, address in _MODELS.items() if address == url), None)
    filename = os.path.basename(url)
    if arch is None:
        tried = [str(folder / filename) for folder in folders]
        path = next((Path(p) for p in tried if Path(p).is_file()), None)
    else:
        path, tried = local_openai_weights(arch, folders)
    if path is not None:
        return str(_loadable(path, folders[0] / f"{Path(filename).stem}-from-hf.pt"))
    if download_allowed(download):
        from open_clip.pretrained import download_pretrained_from_url

        return download_pretrained_from_url(url, cache_dir=str(folders[0]))
    fixes = [
        f"place OpenAI's checkpoint {filename} ({url}) in {folders[0]}/",
        "pass the path of a local CLIP weights file: clip.load('/path/to/model.pt')",
        f"allow the download: set {DOWNLOAD_ENV}=1 in the environment, or call clip.load(name, download=True)",
    ]
    raise missing_weights(f"CLIP {arch or url}", tried, fixes)


def _save_tiny(name: str, folder: Path) -> Path:
    """Write the seeded tiny CLIP ``name`` as a state dict ``folder/<name>.pt`` (once) and return its path."""
    path = folder / f"{name}.pt"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        torch.save(tiny_clip(name).state_dict(), partial)
        os.replace(partial, path)
    return path


def _loadable(path: Path, copy: Path) -> Path:
    """``path``, or for a .safetensors file a ``torch.load``-able ``copy`` of it, written once (CoOp's loaders
    call ``torch.jit.load``, then ``torch.load``, on what ``_download`` returns)."""
    if path.suffix != ".safetensors":
        return path
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_name(f".{copy.name}.{os.getpid()}")
        torch.save(read_state_dict(path), partial)
        os.replace(partial, copy)
    return copy


def load(
    name: str,
    device: str | torch.device | None = None,
    jit: bool = False,
    download_root: str | None = None,
    download: bool | None = None,
) -> tuple[nn.Module, nn.Module]:
    """``(model, preprocess)`` for a name in ``available_models()`` or a checkpoint file, as OpenAI's ``clip.load``.

    The model is built as OpenAI's ``build_model`` builds it (fp16 weights) and made fp32 on the CPU;
    ``preprocess`` is CLIP's evaluation transform (bicubic resize, centre crop, RGB, tensor, normalise).
    ``download`` (default: ``BBVP_CLIP_DOWNLOAD``) allows fetching a missing checkpoint. TorchScript models
    (``jit=True``) are not offered: CoOp-family code loads with ``jit=False``. ``device`` defaults to CUDA when
    available, else the CPU.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if jit:
        raise NotImplementedError("clip.load(..., jit=True) is not supported here; use jit=False (the default)")
    if name in _MODELS:
        path = _download(_MODELS[name], download_root, download)
    elif Path(name).expanduser().is_file():
        path = str(Path(name).expanduser())
    else:
        raise RuntimeError(
            f"clip.load: {name!r} is neither a known CLIP name ({', '.join(available_models())}) nor a checkpoint "
            "file; pass one of those names or the path of a .pt file"
        )
    model = build_model(read_state_dict(path)).to(device)
    if str(device) == "cpu":
        model.float()
    return model, open_clip.image_transform(model.visual.input_resolution, is_train=False)


def tokenize(texts: str | list[str], context_length: int = 77, truncate: bool = False) -> torch.Tensor:
    """Token ids (N, context_length), int32: start token, the BPE ids of each text, end token, zeros.

    A text longer than ``context_length`` raises, unless ``truncate`` (then it is cut and ends with the end token).
    """
    texts = [texts] if isinstance(texts, str) else texts
    sot, eot = _tokenizer.encoder["<|startoftext|>"], _tokenizer.encoder["<|endoftext|>"]
    result = torch.zeros(len(texts), context_length, dtype=torch.int)
    for row, text in enumerate(texts):
        ids = [sot, *_tokenizer.encode(text), eot]
        if len(ids) > context_length:
            if not truncate:
                raise RuntimeError(
                    f"clip.tokenize: {text!r} is {len(ids)} tokens, more than context_length {context_length}; "
                    "shorten it or pass truncate=True"
                )
            ids = ids[: context_length - 1] + [eot]
        result[row, : len(ids)] = torch.tensor(ids)
    return result
