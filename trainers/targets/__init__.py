"""Black-box targets: frozen models that methods may only query (``normalised images -> downstream logits``).

A target class registers with ``@register_target("name")`` and builds itself from the config in ``from_cfg``;
``build_target`` picks it by ``TARGET.NAME``. The target classes themselves take plain arguments.
"""

from .base import (
    CLIP_MEAN,
    CLIP_STD,
    TARGET_REGISTRY,
    QueryCounter,
    Target,
    build_target,
    common_target_args,
    register_target,
    target_names,
)
from .budget import Budget, BudgetExceeded
from .classifier import CLASSIFIER_ARCHS, ClassifierTarget
from .clip import OPENAI_ARCHS, TINY_ARCHS, CLIPTarget
from .label_map import SEMANTIC_TEMPERATURE, IndexMap, SemanticMap
from .remote import LoopbackSession, RemoteTarget, RemoteTargetError
from .templates import DATASET_TEMPLATES, DEFAULT_TEMPLATE, build_prompts, template_for

__all__ = [
    "CLASSIFIER_ARCHS",
    "CLIP_MEAN",
    "CLIP_STD",
    "DATASET_TEMPLATES",
    "DEFAULT_TEMPLATE",
    "OPENAI_ARCHS",
    "SEMANTIC_TEMPERATURE",
    "TARGET_REGISTRY",
    "TINY_ARCHS",
    "Budget",
    "BudgetExceeded",
    "CLIPTarget",
    "ClassifierTarget",
    "IndexMap",
    "LoopbackSession",
    "QueryCounter",
    "RemoteTarget",
    "RemoteTargetError",
    "SemanticMap",
    "Target",
    "build_prompts",
    "build_target",
    "common_target_args",
    "register_target",
    "target_names",
    "template_for",
]
