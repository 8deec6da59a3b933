"""CLIP zero-shot head as a black-box target: open_clip models with OpenAI weights, plus tiny random CLIPs for tests.

Weights are found, in order: ``TARGET.CHECKPOINT``; the files ``clip.load`` leaves in ``~/.cache/clip`` (and
``$XDG_CACHE_HOME/clip``); the Hugging Face cache that open_clip fills (read only); a download, only when
``TARGET.DOWNLOAD`` is True. As with ``clip.load``, the checkpoint itself defines the architecture.
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.model import CLIP, build_model_from_openai_state_dict

from dassl.config import CfgNode
from trainers.config import ConfigKey, declare_keys
from trainers.weights import missing_weights

from .base import CLIP_MEAN, CLIP_STD, Target, common_target_args, register_target
from .templates import DEFAULT_TEMPLATE, build_prompts, template_for

# OpenAI model name (MODEL.BACKBONE.NAME) -> open_clip model whose "openai" weights it is (QuickGELU towers).
OPENAI_ARCHS = {
    "RN50": "RN50-quickgelu",
    "RN101": "RN101-quickgelu",
    "RN50x4": "RN50x4-quickgelu",
    "RN50x16": "RN50x16-quickgelu",
    "RN50x64": "RN50x64-quickgelu",
    "ViT-B/32": "ViT-B-32-quickgelu",
    "ViT-B/16": "ViT-B-16-quickgelu",
    "ViT-L/14": "ViT-L-14-quickgelu",
    "ViT-L/14@336px": "ViT-L-14-336-quickgelu",
}

# Tiny random CLIPs of both families (seconds on CPU). Widths are multiples of 64 so that OpenAI's
# state-dict layout reads them back (it infers heads as width // 64); 224 px input like the real models.
_TINY_TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=2)
TINY_ARCHS = {
    "tiny-vit": dict(
        embed_dim=64, vision_cfg=dict(image_size=224, patch_size=32, width=64, layers=2), text_cfg=_TINY_TEXT
    ),
    "tiny-rn": dict(embed_dim=64, vision_cfg=dict(image_size=224, width=8, layers=(1, 1, 1, 1)), text_cfg=_TINY_TEXT),
}
TINY_SEED = 0

# Entries of OpenAI TorchScript archives (and traced open_clip models) that are not weights.
_NON_WEIGHT_KEYS = {"input_resolution", "context_length", "vocab_size", "attn_mask"}
_TEXT_CHUNK = 256

LOGIT_PRECISIONS = ("autocast", "fp32")

KEYS = declare_keys(
    "TARGET.CLIP",
    ConfigKey(
        "LOGIT_PRECISION",
        "autocast",
        "dtype of the image-text product: autocast = the caller's autocast dtype, as in the reference (fp16 in "
        "BlackVIP's and VPWB's amp training on CUDA, fp32 without autocast); fp32 = always fp32",
        choices=LOGIT_PRECISIONS,
    ),
)


def tiny_clip(name: str) -> CLIP:
    """A tiny CLIP with seeded random weights (same weights on every call) and OpenAI's logit scale of 100."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model = CLIP(**TINY_ARCHS[name], quick_gelu=True, init_logit_scale=math.log(100.0))
    return model.eval()


def openai_cache_dirs() -> list[Path]:
    """Folders where ``clip.load`` keeps OpenAI checkpoints: ``~/.cache/clip``, then ``$XDG_CACHE_HOME/clip``."""
    dirs = [Path("~/.cache/clip").expanduser()]
    if os.environ.get("XDG_CACHE_HOME"):
        dirs.append(Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "clip")
    return list(dict.fromkeys(dirs))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """fp32 state dict from an OpenAI TorchScript archive, a plain state dict (.pt/.bin) or a .safetensors file."""
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    elif _is_torchscript(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; OpenAI's files still use it
            state = torch.jit.load(path, map_location="cpu").state_dict()
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items() if k not in _NON_WEIGHT_KEYS}
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _is_torchscript(path: str) -> bool:
    """True for a TorchScript archive (a zip holding ``constants.pkl``) rather than a ``torch.save`` file."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def model_from_state_dict(state: dict[str, torch.Tensor], source: str = "checkpoint") -> CLIP:
    """Build the CLIP that an OpenAI-layout state dict describes and load it exactly in fp32."""
    try:
        model = build_model_from_openai_state_dict(dict(state), quick_gelu=True, cast_dtype=None)
    except (KeyError, AssertionError) as err:
        raise ValueError(f"{source} is not a CLIP state dict in OpenAI's layout (missing {err})") from err
    model.float()
    model.load_state_dict(state)  # the builder rounds weights through fp16; reload them exactly
    return model.eval()


def _hf_candidates(arch: str) -> list[tuple[str, str]]:
    """(repo, file) pairs under which open_clip caches OpenAI's weights for ``arch`` on the Hugging Face hub."""
    repo = open_clip.get_pretrained_cfg(OPENAI_ARCHS[arch], "openai").get("hf_hub", "").strip("/")
    return [(repo, name) for name in (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)] if repo else []


def local_openai_weights(arch: str, folders: Sequence[Path] | None = None) -> tuple[Path | None, list[str]]:
    """OpenAI's checkpoint for ``arch`` from local files only (``folders``, default ``openai_cache_dirs()``, then
    the Hugging Face cache open_clip fills), or None; and every place looked at, for the error message."""
    from huggingface_hub import constants as hf_constants
    from huggingface_hub import try_to_load_from_cache

    filename = openai_filename(arch)
    tried = []
    for folder in openai_cache_dirs() if folders is None else folders:
        path = Path(folder) / filename
        tried.append(str(path))
        if path.is_file():
            return path, tried
    hf_cache = hf_constants.HF_HUB_CACHE
    for repo, name in _hf_candidates(arch):
        tried.append(os.path.join(hf_cache, "models--" + repo.replace("/", "--"), "snapshots", "*", name))
        hit = try_to_load_from_cache(repo, name, cache_dir=hf_cache)
        if isinstance(hit, str):
            return Path(hit), tried
    return None, tried


def openai_url(arch: str) -> str:
    """The address OpenAI publishes ``arch``'s checkpoint at (its SHA256 is the second-last path part)."""
    return open_clip.get_pretrained_cfg(OPENAI_ARCHS[arch], "openai")["url"]


def openai_filename(arch: str) -> str:
    """File name ``clip.load`` saves ``arch`` under, e.g. ``ViT-B-16.pt``."""
    return os.path.basename(openai_url(arch))


def find_openai_weights(arch: str, download: bool = False) -> Path:
    """Path of OpenAI's checkpoint for ``arch`` from the local caches, downloading only when asked."""
    path, tried = local_openai_weights(arch)
    if path is not None:
        return path
    url = openai_url(arch)
    if download:
        from open_clip.pretrained import download_pretrained_from_url

        return Path(download_pretrained_from_url(url, cache_dir=str(openai_cache_dirs()[0])))
    raise _missing_weights(arch, openai_filename(arch), url, tried)


def _missing_weights(arch: str, filename: str, url: str, tried: list[str]) -> FileNotFoundError:
    cache = openai_cache_dirs()[0]
    fixes = [
        f"place OpenAI's checkpoint {filename} ({url}) in {cache}/",
        "set TARGET.CHECKPOINT to a local CLIP weights file (OpenAI .pt or an open_clip state dict)",
        f"set TARGET.DOWNLOAD True on a machine with network access (it saves {filename} in {cache}/)",
    ]
    return missing_weights(f"CLIP {arch}", tried, fixes)


def _short(path: Path) -> str:
    """The path with the home folder written as ``~``, for log lines."""
    home = str(Path.home())
    return "~" + str(path)[len(home) :] if str(path).startswith(home + os.sep) else str(path)


def load_clip(arch: str, checkpoint: str = "", download: bool = False) -> tuple[CLIP, str]:
    """fp32 eval-mode CLIP for ``MODEL.BACKBONE.NAME`` and a phrase saying where its weights came from."""
    if arch not in OPENAI_ARCHS and arch not in TINY_ARCHS:
        raise ValueError(f"Unknown CLIP backbone {arch!r}; choose one of {[*OPENAI_ARCHS, *TINY_ARCHS]}")
    if checkpoint:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"TARGET.CHECKPOINT {checkpoint} does not exist")
        return model_from_state_dict(read_state_dict(path), str(path)), f"weights from {_short(path)}"
    if arch in TINY_ARCHS:
        return tiny_clip(arch), f"random init, seed {TINY_SEED}"
    path = find_openai_weights(arch, download)
    return model_from_state_dict(read_state_dict(path), str(path)), f"OpenAI weights from {_short(path)}"


def encode_prompts(model: CLIP, prompts: list[str]) -> torch.Tensor:
    """L2-normalised fp32 text features (C, D) of the prompts, computed on the model's device."""
    device = next(model.parameters()).device
    tokens = open_clip.tokenize(prompts, context_length=model.context_length).to(device)
    with torch.no_grad():
        feats = torch.cat([model.encode_text(t).float() for t in tokens.split(_TEXT_CHUNK)])
    return F.normalize(feats, dim=-1)


def logit_dtype(device_type: str, logit_precision: str = "autocast") -> torch.dtype:
    """dtype of the image-text product: the active autocast's dtype with ``"autocast"`` (fp32 without one), else fp32."""
    if logit_precision not in LOGIT_PRECISIONS:
        raise ValueError(f"TARGET.CLIP.LOGIT_PRECISION must be one of {LOGIT_PRECISIONS}, got {logit_precision!r}")
    if logit_precision == "autocast":
        enabled, dtype = _autocast_state(device_type)
        if enabled:
            return dtype
    return torch.float32


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    """Whether autocast is on for ``device_type`` and its dtype (torch >= 2.4 API, else the per-device one)."""
    if hasattr(torch, "get_autocast_dtype"):
        return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    if device_type == "cuda":
        return torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
    return torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()


def zero_shot_logits(
    image_features: torch.Tensor, text_features: torch.Tensor, scale: float, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``(scale * normalize(image_features)) @ text_features.T``, the product's operands and result in ``dtype``.

    Normalising and scaling run in fp32. With fp16 this is what the reference's ``logit_scale * image_features
    @ text_features.t()`` computes under CUDA autocast: autocast runs the norm in fp32 (so the division and the
    scaling are fp32 too) and casts both operands of the matmul to fp16.
    """
    with torch.autocast(image_features.device.type, enabled=False):
        scaled = scale * F.normalize(image_features.float(), dim=-1)
        return scaled.to(dtype) @ text_features.to(dtype).T


def _side(image_size) -> int:
    """Square input side from open_clip's ``visual.image_size`` (an int or an (H, W) pair)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    if h != w:
        raise ValueError(f"Only square CLIP inputs are supported, got {h}x{w}")
    return int(h)


@register_target("clip")
class CLIPTarget(Target):
    """Zero-shot CLIP: ``exp(logit_scale) * normalize(encode_image(x)) @ T.T`` with T encoded once at build.

    ``T`` holds one prompt per class (``template.format(name)``, underscores as spaces), L2-normalised and
    kept as a constant; the logit scale is 100 for OpenAI weights. Images are expected in CLIP's
    normalisation at ``input_size`` (other normalisations and sizes are converted, see ``Target``). The final
    product runs in the caller's autocast dtype (``logit_precision="autocast"``, the reference's behaviour)
    or always in fp32 (``"fp32"``); see ``zero_shot_logits``.
    """

    def __init__(
        self,
        classnames: list[str],
        arch: str = "ViT-B/16",
        template: str = DEFAULT_TEMPLATE,
        checkpoint: str = "",
        download: bool = False,
        logit_precision: str = "autocast",
        **kwargs,
    ):
        super().__init__(classnames, model_mean=CLIP_MEAN, model_std=CLIP_STD, **kwargs)
        logit_dtype(self.device.type, logit_precision)  # reject an unknown value before loading weights
        self.arch = arch
        self.logit_precision = logit_precision
        model, self._source = load_clip(arch, checkpoint, download)
        self.input_size = _side(model.visual.image_size)
        self.prompts = build_prompts(template, self.classnames)
        self._model = model.requires_grad_(False).to(self.device)
        self._text = encode_prompts(self._model, self.prompts)
        self._logit_scale = float(model.logit_scale.exp())
        self._model.to(self._dtype)

    @classmethod
    def example(cls) -> CLIPTarget:
        return cls(["cat", "dog", "car"], arch="tiny-vit")

    @classmethod
    def from_cfg(cls, cfg: CfgNode, classnames: list[str], device: str | torch.device) -> CLIPTarget:
        """``MODEL.BACKBONE.NAME`` (architecture), the dataset's template, ``TARGET.CHECKPOINT`` / ``DOWNLOAD``
        and ``TARGET.CLIP.LOGIT_PRECISION``."""
        return cls(
            classnames,
            arch=cfg.MODEL.BACKBONE.NAME,
            template=template_for(cfg.DATASET.NAME),
            checkpoint=cfg.TARGET.CHECKPOINT,
            download=bool(cfg.TARGET.DOWNLOAD),
            logit_precision=cfg.TARGET.CLIP.LOGIT_PRECISION,
            **common_target_args(cfg, device),
        )

    def describe(self) -> str:
        return f"CLIP {self.arch} ({self._source}), {self.precision}, {self.num_classes} classes"

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        feats = self._model.encode_image(images)
        dtype = logit_dtype(images.device.type, self.logit_precision)
        return zero_shot_logits(feats, self._text, self._logit_scale, dtype)

    def _move(self, device: torch.device) -> None:
        self._model.to(device)
        self._text = self._text.to(device)
