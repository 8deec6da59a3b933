"""OpenAI's ``clip`` package API on open_clip, so that CoOp-family trainers written against it run unchanged.

``import clip`` and ``from clip import clip`` both give ``load``, ``tokenize`` and ``available_models``; the
model (``clip.model``) and the tokenizer (``clip.simple_tokenizer``) behave as OpenAI's do. Weights come from
local files; nothing is downloaded unless asked for (see ``clip.clip.load``).
"""

from . import model, simple_tokenizer
from .clip import *  # noqa: F403 - OpenAI's package re-exports its clip module the same way
from .clip import __all__
