"""Frozen image encoders for BlackVIP's Coordinator (``TRAINER.BLACKVIP.PT_BACKBONE``), by registered name."""

from . import huggingface  # noqa: F401 - registers vit-mae-base, vit-base, dino-resnet-50, tiny-vit
from .base import ENCODERS, FrozenEncoder, available_encoders, build_encoder, register_encoder
from .huggingface import ResNetPoolEncoder, ViTCLSEncoder, load_resnet, load_vit

__all__ = [
    "ENCODERS",
    "FrozenEncoder",
    "ResNetPoolEncoder",
    "ViTCLSEncoder",
    "available_encoders",
    "build_encoder",
    "load_resnet",
    "load_vit",
    "register_encoder",
]
