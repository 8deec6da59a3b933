"""Learnable image prompts: the ``Prompter`` base and registry, VP's pad and patches, BAR's frame and BlackVIP's
Coordinator."""

from .base import (
    CLIP_MEAN,
    CLIP_STD,
    PROMPTER_REGISTRY,
    Prompter,
    build_prompter,
    channel_stats,
    clip_to_pixel_range,
    prompter_names,
    prompters_reading,
)
from .coordinator import ConvEncoder, Coordinator, CoordinatorContext, CoordinatorInit, Decoder, num_stages
from .pad import PAD_KEYS, PadPrompter
from .patch import (
    EVAL_SEED,
    FixedPatchPrompter,
    PatchContext,
    RandomPatchPrompter,
    eval_locations,
    training_seed,
    vp_prompt_parameters,
)
from .program import Program

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "PAD_KEYS",
    "PROMPTER_REGISTRY",
    "ConvEncoder",
    "Coordinator",
    "CoordinatorContext",
    "CoordinatorInit",
    "Decoder",
    "EVAL_SEED",
    "FixedPatchPrompter",
    "PadPrompter",
    "PatchContext",
    "Program",
    "Prompter",
    "RandomPatchPrompter",
    "build_prompter",
    "channel_stats",
    "clip_to_pixel_range",
    "eval_locations",
    "num_stages",
    "prompter_names",
    "prompters_reading",
    "training_seed",
    "vp_prompt_parameters",
]
