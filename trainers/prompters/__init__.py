"""Learnable image prompts: the ``Prompter`` base and registry, VP's pad, BAR's frame and BlackVIP's Coordinator."""

from .base import (
    CLIP_MEAN,
    CLIP_STD,
    PROMPTER_REGISTRY,
    Prompter,
    build_prompter,
    channel_stats,
    clip_to_pixel_range,
    prompter_names,
)
from .coordinator import ConvEncoder, Coordinator, CoordinatorContext, CoordinatorInit, Decoder, num_stages
from .pad import PAD_KEYS, PadPrompter
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
    "PadPrompter",
    "Program",
    "Prompter",
    "build_prompter",
    "channel_stats",
    "clip_to_pixel_range",
    "num_stages",
    "prompter_names",
]
