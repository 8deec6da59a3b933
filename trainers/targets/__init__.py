"""Black-box targets: frozen models that methods may only query (``normalised images -> downstream logits``).

``build_target`` is the one place that reads the config; the target classes take plain arguments.
"""

import torch

from .base import CLIP_MEAN, CLIP_STD, QueryCounter, Target
from .classifier import CLASSIFIER_ARCHS, ClassifierTarget
from .clip import OPENAI_ARCHS, TINY_ARCHS, CLIPTarget
from .label_map import SEMANTIC_TEMPERATURE, IndexMap, SemanticMap
from .templates import DATASET_TEMPLATES, DEFAULT_TEMPLATE, build_prompts, template_for

TARGETS = ("clip", "classifier")

__all__ = [
    "CLASSIFIER_ARCHS",
    "CLIP_MEAN",
    "CLIP_STD",
    "DATASET_TEMPLATES",
    "DEFAULT_TEMPLATE",
    "OPENAI_ARCHS",
    "SEMANTIC_TEMPERATURE",
    "TARGETS",
    "TINY_ARCHS",
    "CLIPTarget",
    "ClassifierTarget",
    "IndexMap",
    "QueryCounter",
    "SemanticMap",
    "Target",
    "build_prompts",
    "build_target",
    "template_for",
]


def build_target(cfg, classnames: list[str], device: str | torch.device = "cpu") -> Target:
    """The target that ``cfg.TARGET`` describes, for ``classnames``, on ``device``.

    Reads TARGET.*, MODEL.BACKBONE.NAME (CLIP architecture), DATASET.NAME (prompt template) and
    INPUT.PIXEL_MEAN/PIXEL_STD (the normalisation of the images the target will receive).
    """
    t = cfg.TARGET
    common = dict(
        max_batch=int(t.MAX_BATCH),
        counter=QueryCounter(float(t.USD_PER_1K)),
        precision=t.PRECISION,
        device=device,
        input_mean=tuple(cfg.INPUT.PIXEL_MEAN),
        input_std=tuple(cfg.INPUT.PIXEL_STD),
    )
    name = t.NAME.lower()
    if name == "clip":
        target = CLIPTarget(
            classnames,
            arch=cfg.MODEL.BACKBONE.NAME,
            template=template_for(cfg.DATASET.NAME),
            checkpoint=t.CHECKPOINT,
            download=bool(t.DOWNLOAD),
            **common,
        )
    elif name == "classifier":
        c = t.CLASSIFIER
        target = ClassifierTarget(
            classnames,
            arch=c.ARCH,
            label_map=c.LABEL_MAP,
            indices=list(c.INDICES),
            temperature=float(c.TEMPERATURE),
            checkpoint=t.CHECKPOINT,
            **common,
        )
    else:
        raise ValueError(f"TARGET.NAME must be one of {TARGETS}, got {t.NAME!r}")
    return target
